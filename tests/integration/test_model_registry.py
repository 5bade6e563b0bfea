"""The embedding model registry over real PostgreSQL: add, activate (refused until the shadow
covers every track with a valid index), rollback and retire."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pytest

from shared.models import TrackIn
from shared.services import Services
from shared.store.registry import (
    ActivationRefused,
    ModelConflict,
    ModelSpec,
    ModelState,
    activate_model,
    active_model,
    add_model,
    coverage,
    get_model,
    list_models,
    retire_model,
    rollback_model,
)
from shared.store.tracks import TrackStore, upsert_tracks

BASE = ModelSpec("base", "1", "onnx", 384, 256, manifest_hash="aa11", options={"variant": "fp32"})
SMALL = ModelSpec("small", "1", "openai", 64, 512, options={"url": "http://embeddings.invalid/v1"})
TRACKS = 20


def _unit(rows: int, dims: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dims))
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def _embed(conn: psycopg.Connection[Any], key: str, ids: list[int], dims: int) -> None:
    hashes = dict(conn.execute("SELECT id, content_hash FROM tracks").fetchall())
    TrackStore(conn).write_embeddings(key, ids, [hashes[t] for t in ids], _unit(len(ids), dims, len(ids)))


def _ready_shadow(conn: psycopg.Connection[Any], ids: list[int]) -> None:
    """The small model added as a shadow, with every track's vector and its index (not committed)."""
    add_model(conn, SMALL)
    _embed(conn, SMALL.key, ids, 64)
    TrackStore(conn).ensure_hnsw_index(SMALL.key)


@pytest.fixture
def catalogue(services: Services) -> tuple[Services, list[int]]:
    """20 tracks, all embedded and indexed with the base model, which is registered first."""
    rows = [TrackIn(artist="a", title=f"t{i}", lyrics=f"l{i}", source="reg", source_id=str(i)) for i in range(TRACKS)]
    with services.db.connection() as conn:
        upsert_tracks(conn, rows)
        ids = [int(r[0]) for r in conn.execute("SELECT id FROM tracks ORDER BY id").fetchall()]
        _embed(conn, BASE.key, ids, 384)
        TrackStore(conn).ensure_hnsw_index(BASE.key)
        add_model(conn, BASE)
        conn.commit()
    return services, ids


def test_the_first_model_registered_is_active_and_later_ones_are_shadows(
    catalogue: tuple[Services, list[int]],
) -> None:
    services, _ = catalogue
    with services.db.connection() as conn:
        small = add_model(conn, SMALL)
        conn.commit()
        assert small.state is ModelState.SHADOW
        assert small.dimensions == 64 and small.provider == "openai" and small.options["url"].endswith("/v1")
        assert [(m.key, m.state) for m in list_models(conn)] == [
            ("base@1", ModelState.ACTIVE),
            ("small@1", ModelState.SHADOW),
        ]
        active = active_model(conn)
        assert active is not None and active.key == "base@1" and active.manifest_hash == "aa11"


def test_adding_the_same_model_again_changes_nothing_and_a_different_one_under_its_key_is_refused(
    catalogue: tuple[Services, list[int]],
) -> None:
    services, _ = catalogue
    with services.db.connection() as conn:
        assert add_model(conn, BASE).state is ModelState.ACTIVE
        with pytest.raises(ModelConflict, match="already registered"):
            add_model(conn, ModelSpec("base", "1", "onnx", 768, 256))
        with pytest.raises(ModelConflict, match="between 1 and 2000"):
            add_model(conn, ModelSpec("huge", "1", "openai", 3072, 8191))
        conn.rollback()


def test_activate_is_refused_saying_what_is_missing_until_every_track_and_the_index_are_there(
    catalogue: tuple[Services, list[int]],
) -> None:
    services, ids = catalogue
    with services.db.connection() as conn:
        add_model(conn, SMALL)
        conn.commit()
        with pytest.raises(ActivationRefused) as nothing:
            activate_model(conn, SMALL.key)
        conn.rollback()
        assert nothing.value.missing == [
            "20 of 20 tracks have no current vector yet (backfill running)",
            "its HNSW index is missing",
        ]
        _embed(conn, SMALL.key, ids[:-1], 64)
        TrackStore(conn).ensure_hnsw_index(SMALL.key)
        conn.commit()
        with pytest.raises(ActivationRefused, match="1 of 20 tracks have no current vector"):
            activate_model(conn, SMALL.key)
        conn.rollback()
        _embed(conn, SMALL.key, ids[-1:], 64)
        conn.commit()
        activated = activate_model(conn, SMALL.key)
        conn.commit()
        assert activated.state is ModelState.ACTIVE
        assert get_model(conn, BASE.key).state is ModelState.SHADOW
        assert coverage(conn, SMALL.key).complete


def test_a_vector_of_older_content_does_not_count_as_covering_the_track(
    catalogue: tuple[Services, list[int]],
) -> None:
    services, ids = catalogue
    with services.db.connection() as conn:
        _ready_shadow(conn, ids)
        upsert_tracks(conn, [TrackIn(artist="a", title="t3", lyrics="rewritten", source="reg", source_id="3")])
        conn.commit()
        cov = coverage(conn, SMALL.key)
        assert (cov.tracks, cov.embedded, cov.index) == (20, 19, "valid")
        with pytest.raises(ActivationRefused, match="1 of 20 tracks"):
            activate_model(conn, SMALL.key)
        conn.rollback()


def test_rollback_returns_search_to_the_previous_model_at_once(catalogue: tuple[Services, list[int]]) -> None:
    services, ids = catalogue
    with services.db.connection() as conn:
        _ready_shadow(conn, ids)
        activate_model(conn, SMALL.key)
        conn.commit()
        back = rollback_model(conn)
        conn.commit()
        assert back.key == BASE.key and back.state is ModelState.ACTIVE
        assert get_model(conn, SMALL.key).state is ModelState.SHADOW
        switches = conn.execute("SELECT from_key, to_key, reason FROM embedding_model_switches ORDER BY id").fetchall()
        assert switches == [
            (None, "base@1", "activate"),
            ("base@1", "small@1", "activate"),
            ("small@1", "base@1", "rollback"),
        ]
        # The model before the current one is the one rolled back from: a second rollback undoes the first.
        assert rollback_model(conn).key == SMALL.key
        conn.rollback()


def test_a_switch_made_by_another_process_reaches_search_within_the_cache_bound(
    catalogue: tuple[Services, list[int]],
) -> None:
    # GIVEN a shadow model ready to serve, and a second process's services that reuse the active
    # model for 1 s, having just read it
    services, ids = catalogue
    with services.db.connection() as conn:
        _ready_shadow(conn, ids)
        conn.commit()
    other = Services.from_settings(services.settings.model_copy(update={"search_model_cache_s": 1.0}), migrate=False)
    try:
        assert other.search_model_key() == BASE.key
        # WHEN the first process activates the shadow and commits
        with services.db.connection() as conn:
            activate_model(conn, SMALL.key)
            conn.commit()
        switched_at = time.monotonic()
        # THEN the second still searches the old model at first (no registry query per search)
        assert other.search_model_key() == BASE.key
        # AND reads the new one within the bound
        while other.search_model_key() != SMALL.key:
            assert time.monotonic() - switched_at < 1.0, "the switch did not reach search within the bound"
            time.sleep(0.05)
        # AND once told a switch happened (as the API's own routes tell it), they read it at once
        with services.db.connection() as conn:
            rollback_model(conn)
            conn.commit()
        other.forget_search_model()
        assert other.search_model_key() == BASE.key
    finally:
        other.close()


def test_rollback_with_no_earlier_model_is_refused(catalogue: tuple[Services, list[int]]) -> None:
    services, _ = catalogue
    with services.db.connection() as conn:
        with pytest.raises(ModelConflict, match="no previous model"):
            rollback_model(conn)
        conn.rollback()


def test_retire_drops_the_models_vectors_and_index_and_the_active_model_cannot_be_retired(
    catalogue: tuple[Services, list[int]],
) -> None:
    services, ids = catalogue
    with services.db.connection() as conn:
        _ready_shadow(conn, ids)
        conn.commit()
        with pytest.raises(ModelConflict, match="is active"):
            retire_model(conn, BASE.key)
        conn.rollback()
        assert retire_model(conn, SMALL.key) == TRACKS
        conn.commit()
        assert get_model(conn, SMALL.key).state is ModelState.RETIRED
        assert TrackStore(conn).hnsw_index_state(SMALL.key) == "missing"
        assert conn.execute("SELECT count(*) FROM embeddings WHERE model = %s", (SMALL.key,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM embeddings WHERE model = %s", (BASE.key,)).fetchone() == (TRACKS,)
        with pytest.raises(ActivationRefused, match="retired"):
            activate_model(conn, SMALL.key)
        conn.rollback()


# Ways to make a retire fail midway, each after its vectors were deleted: the registry update
# refused by a trigger, or the last step, the index drop, refused by an event trigger.
_FAILURES = {
    "at the registry update": (
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'refused update of %', OLD.key; END $$;"
        " CREATE TRIGGER refuse BEFORE UPDATE ON embedding_models FOR EACH ROW EXECUTE FUNCTION refuse()"
    ),
    "at the index drop": (
        "CREATE FUNCTION refuse() RETURNS event_trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'refused %', tg_tag; END $$;"
        " CREATE EVENT TRIGGER refuse ON ddl_command_start WHEN TAG IN ('DROP INDEX') EXECUTE FUNCTION refuse()"
    ),
}


@pytest.fixture
def failing_retire(catalogue: tuple[Services, list[int]]) -> Callable[[str], tuple[Services, list[int]]]:
    """Set up with one of ``_FAILURES``: a ready shadow (:func:`_ready_shadow`) whose retire is made
    to fail there (committed)."""
    services, ids = catalogue

    def arrange(where: str) -> tuple[Services, list[int]]:
        with services.db.connection() as conn:
            _ready_shadow(conn, ids)
            conn.execute(_FAILURES[where])
            conn.commit()
        return services, ids

    return arrange


@pytest.mark.parametrize("where", list(_FAILURES))
def test_a_retire_that_fails_midway_leaves_the_model_its_vectors_and_its_index(
    failing_retire: Callable[[str], tuple[Services, list[int]]], where: str
) -> None:
    services, _ = failing_retire(where)
    # WHEN a retire fails after deleting the vectors (as the CLI and the API call it: a fresh connection)
    with pytest.raises(psycopg.errors.RaiseException, match="refused"), services.db.connection() as conn:
        retire_model(conn, SMALL.key)
    # THEN nothing of it happened: a shadow still, every vector and the index in place
    with services.db.connection() as conn:
        assert get_model(conn, SMALL.key).state is ModelState.SHADOW
        assert conn.execute("SELECT count(*) FROM embeddings WHERE model = %s", (SMALL.key,)).fetchone() == (TRACKS,)
        assert TrackStore(conn).hnsw_index_state(SMALL.key) == "valid"
        conn.commit()


def test_a_retire_inside_a_callers_open_transaction_fails_alone(
    failing_retire: Callable[[str], tuple[Services, list[int]]],
) -> None:
    services, ids = failing_retire("at the index drop")
    with services.db.connection() as conn:
        # GIVEN the caller's transaction holds a change of its own
        conn.execute("UPDATE tracks SET title = 'kept' WHERE id = %s", (ids[0],))
        # WHEN the retire inside it fails at its last step
        with pytest.raises(psycopg.errors.RaiseException):
            retire_model(conn, SMALL.key)
        # THEN only the retire is undone (its savepoint): the caller may still commit its own change
        conn.commit()
        assert conn.execute("SELECT title FROM tracks WHERE id = %s", (ids[0],)).fetchone() == ("kept",)
        assert conn.execute("SELECT count(*) FROM embeddings WHERE model = %s", (SMALL.key,)).fetchone() == (TRACKS,)
        assert get_model(conn, SMALL.key).state is ModelState.SHADOW
        conn.commit()


def test_a_second_active_model_is_refused_by_the_database(catalogue: tuple[Services, list[int]]) -> None:
    services, _ = catalogue
    with services.db.connection() as conn:
        add_model(conn, SMALL)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("UPDATE embedding_models SET state = 'active' WHERE key = %s", (SMALL.key,))
        conn.rollback()
