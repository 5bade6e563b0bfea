"""Job payload models (shared.queue.kinds): one way in, one way out, malformed payloads named not echoed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.errors import PoisonError
from shared.events import Job
from shared.queue.kinds import (
    DETECT_JOB,
    EMBED_JOB,
    PAYLOADS,
    DetectPayload,
    EmbedPayload,
    MalformedPayload,
    analyze_job,
    embed_job,
    enrich_job,
    parse_payload,
    track_jobs,
)

# A valid payload per kind: a kind added to the registry without one here fails every test below.
VALID: dict[str, dict[str, Any]] = {
    "embed": {"track_id": 1, "content_hash": "h1"},
    "enrich": {"track_id": 2, "content_hash": "h2"},
    "analyze": {"track_id": 3, "content_hash": "h3"},
    "detect": {"image_id": 4, "bucket": "uploads", "key": "images/a.jpg", "content_hash": "h4"},
}


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_every_kind_round_trips_through_its_job(kind: str) -> None:
    model = PAYLOADS[kind]
    payload = model.model_validate(VALID[kind])
    job = payload.to_job()
    assert job.kind == kind and job.payload == VALID[kind] and job.dedup_key
    delivered = Job(id="1", kind=job.kind, payload=job.payload, dedup_key=job.dedup_key)
    assert model.from_job(delivered) == payload == parse_payload(kind, job.payload)


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_every_kind_refuses_an_unknown_key_and_is_frozen(kind: str) -> None:
    with pytest.raises(MalformedPayload, match=rf"^malformed {kind} job payload: surprise: Extra inputs"):
        parse_payload(kind, {**VALID[kind], "surprise": 1})
    payload = parse_payload(kind, VALID[kind])
    with pytest.raises(ValidationError):
        setattr(payload, "content_hash", "changed")  # noqa: B010 - assigning a frozen field on purpose


def test_a_string_track_id_is_poison_naming_the_kind_and_the_field() -> None:
    with pytest.raises(PoisonError) as caught:
        parse_payload(EMBED_JOB, {"track_id": "12"})
    assert str(caught.value) == "malformed embed job payload: track_id: Input should be a valid integer"


def test_a_boolean_track_id_is_not_taken_for_an_integer() -> None:
    with pytest.raises(MalformedPayload, match="track_id: Input should be a valid integer"):
        parse_payload(EMBED_JOB, {"track_id": True})


def test_a_detect_payload_without_its_object_names_each_missing_field() -> None:
    with pytest.raises(MalformedPayload) as caught:
        parse_payload(DETECT_JOB, {"image_id": 5, "bucket": ""})
    assert str(caught.value) == (
        "malformed detect job payload: bucket: String should have at least 1 character; "
        "key: Field required; content_hash: Field required"
    )


def test_the_error_never_echoes_a_huge_value_or_key() -> None:
    huge = "x" * 100_000
    with pytest.raises(MalformedPayload) as caught:
        parse_payload(EMBED_JOB, {"track_id": huge, huge: huge, "a": 1, "b": 2})
    message = str(caught.value)
    assert len(message) < 400 and "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" not in message
    assert message.startswith("malformed embed job payload: track_id: Input should be a valid integer; ")
    assert message.endswith("(and 1 more)")


def test_an_unknown_kind_or_a_non_object_payload_is_poison() -> None:
    with pytest.raises(MalformedPayload, match="unknown job kind 'reindex'"):
        parse_payload("reindex", {"track_id": 1})
    with pytest.raises(MalformedPayload, match="malformed embed job payload: payload: Input should be a valid dict"):
        parse_payload(EMBED_JOB, ["not", "an", "object"])


def test_a_job_of_another_kind_is_not_read_as_this_kind() -> None:
    job = Job(id="1", kind="enrich", payload={"track_id": 1})
    with pytest.raises(MalformedPayload, match="job kind 'enrich' is not 'embed'"):
        EmbedPayload.from_job(job)


def test_the_shorthand_constructors_pin_the_content_version_in_the_dedup_key() -> None:
    assert embed_job(7, "h").dedup_key == "embed:7:h"
    assert enrich_job(7, "h").dedup_key == "enrich:7:h"
    assert analyze_job(7, "h").payload == {"track_id": 7, "content_hash": "h"}
    assert [j.kind for j in track_jobs(7, "h")] == ["embed", "enrich"]
    # A track job sent without a hash (by hand) is still work, keyed by its track alone.
    assert EmbedPayload(track_id=7).to_job().dedup_key == "embed:7"
    detect = DetectPayload(image_id=1, bucket="b", key="k", content_hash="c").to_job(delay_s=2.5)
    assert (detect.dedup_key, detect.delay_s) == ("detect:c", 2.5)


def _kinds_named_in_product_code() -> set[str]:
    """Kinds passed by name or literal to ``.claim(...)``, ``NewJob(...)`` or ``.enqueue(...)`` anywhere
    in the product's packages; a name is resolved in its module (a variable like ``kind`` is not)."""
    import ast
    import importlib

    from tests.conftest import REPO

    found: set[str] = set()
    for package in ("shared", "functions", "infra", "local"):
        for path in sorted((REPO / package).rglob("*.py")):
            module_name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if name not in ("claim", "NewJob", "enqueue"):
                    continue
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
                elif isinstance(first, ast.Name):
                    value = getattr(importlib.import_module(module_name), first.id, None)
                    if isinstance(value, str):
                        found.add(value)
    return found


def test_every_kind_the_product_queues_or_claims_has_a_payload_model() -> None:
    named = _kinds_named_in_product_code()
    assert {"embed", "enrich", "analyze", "detect"} <= named  # the scan sees the known consumers
    assert named <= set(PAYLOADS), f"job kinds without a payload model: {sorted(named - set(PAYLOADS))}"
