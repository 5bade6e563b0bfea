"""Golden tests: every ``events/*.json`` → the domain events it must become.

Regenerate after a deliberate change with ``CONTENTFN_UPDATE_GOLDEN=1 pytest tests/functional``
and review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from shared.envelopes.any_cloud import DomainEvent, domain_events
from tests.event_files import event_names, load_event

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("CONTENTFN_UPDATE_GOLDEN") == "1"


def _describe(event: DomainEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(event).__name__, "event": event.model_dump(mode="json")}
    key = getattr(event, "idempotency_key", None)
    if key is not None:
        out["idempotency_key"] = key
    return out


def test_every_event_file_has_a_golden_and_every_golden_an_event_file() -> None:
    assert event_names(), "events/ is empty"
    goldens = sorted(p.name for p in GOLDEN.glob("*.json"))
    assert UPDATE or goldens == event_names()


@pytest.mark.parametrize("name", event_names())
def test_event_file_parses_into_its_golden_domain_events(name: str) -> None:
    # GIVEN a real-format payload WHEN it is unwrapped THEN the domain events equal the golden file
    cloud = name.split("_", 1)[0]
    assert cloud in ("aws", "gcp"), f"{name}: file names start with aws_ or gcp_"
    got = [_describe(e) for e in domain_events(cloud, load_event(name))]  # type: ignore[arg-type]
    path = GOLDEN / name
    if UPDATE:
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert got == json.loads(path.read_text(encoding="utf-8"))


def test_one_s3_upload_has_one_idempotency_key_whichever_route_delivered_it() -> None:
    keys = {
        domain_events("aws", load_event(name))[0].idempotency_key  # type: ignore[union-attr]
        for name in (
            "aws_s3_object_created.json",
            "aws_sqs_s3_notification.json",
            "aws_eventbridge_s3_object_created.json",
        )
    }
    assert len(keys) == 1


def test_one_gcs_upload_has_one_idempotency_key_in_binary_and_structured_mode() -> None:
    keys = {
        domain_events("gcp", load_event(name))[0].idempotency_key  # type: ignore[union-attr]
        for name in ("gcp_storage_finalized_binary.json", "gcp_storage_finalized_structured.json")
    }
    assert keys == {"object:contentfn-dev-uploads/incoming/Beyoncé tracks 2024.jsonl#1763805600123456"}
