"""Settings validation, content hashing and backoff: pure functions, no services."""

from __future__ import annotations

import random

import pytest

from shared.config import load_settings
from shared.errors import ConfigError
from shared.events import ObjectCreated
from shared.models import TrackIn, content_hash
from shared.queue.base import backoff_delay


def test_bad_setting_fails_at_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTENTFN_API_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="CONTENTFN_API_PORT"):
        load_settings()


def test_pool_min_above_max_is_refused_naming_both_variables() -> None:
    with pytest.raises(ConfigError, match="CONTENTFN_DB_POOL_MIN exceeds CONTENTFN_DB_POOL_MAX"):
        load_settings(db_pool_min=9, db_pool_max=2)


def test_record_cap_below_the_field_cap_is_refused_naming_both_variables() -> None:
    with pytest.raises(ConfigError, match="CONTENTFN_MAX_RECORD_BYTES is below CONTENTFN_MAX_FIELD_BYTES"):
        load_settings(max_record_bytes=4096, max_field_bytes=8192)


def test_empty_api_key_means_auth_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTENTFN_API_KEY", "")
    assert load_settings().api_key is None


def test_content_hash_ignores_case_spacing_and_unicode_form() -> None:
    a = content_hash("Beyoncé", "Halo", "Remember   those walls\nI built")
    b = content_hash("BEYONCE\u0301", " Halo ", "remember those walls I built")
    assert a == b
    assert a != content_hash("Beyoncé", "Halo", "Remember those walls I burnt")


def test_track_without_source_id_is_keyed_by_its_content_hash() -> None:
    t = TrackIn(artist="A", title="T", lyrics="L")
    assert t.key == ("upload", t.hash)
    assert TrackIn(artist="A", title="T", lyrics="L", source_id=42).key == ("upload", "42")


def test_object_created_idempotency_key_changes_with_the_version_only() -> None:
    e1 = ObjectCreated(bucket="b", key="k.csv", generation="1")
    assert e1.idempotency_key == ObjectCreated(bucket="b", key="k.csv", generation="1", size=3).idempotency_key
    assert e1.idempotency_key != ObjectCreated(bucket="b", key="k.csv", generation="2").idempotency_key


@pytest.mark.parametrize("attempts", [1, 2, 3, 8, 30])
def test_backoff_grows_exponentially_with_jitter_and_never_exceeds_the_cap(attempts: int) -> None:
    rng = random.Random(attempts)
    delays = [backoff_delay(attempts, 1.0, 60.0, rng) for _ in range(200)]
    expected = min(60.0, 2 ** (attempts - 1))
    assert all(expected / 2 <= d <= expected for d in delays)
    assert max(delays) - min(delays) > expected / 10  # jitter actually spreads retries
