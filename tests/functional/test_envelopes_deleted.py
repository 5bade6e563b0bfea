"""Deletion envelopes: which version a deletion names decides what it may remove."""

from __future__ import annotations

import pytest

from shared.envelopes import aws, gcp
from shared.envelopes.any_cloud import domain_events
from shared.envelopes.errors import MalformedEnvelope
from shared.events import ObjectCreated, ObjectDeleted
from tests.event_files import load_event

KEY = "incoming/Beyoncé tracks 2024.jsonl"


def test_gcs_deleted_cloudevent_names_the_generation_the_finalized_event_ingested() -> None:
    # GIVEN the finalized and the deleted event of one generation
    created = domain_events("gcp", load_event("gcp_storage_finalized_binary.json"))[0]
    deleted = domain_events("gcp", load_event("gcp_storage_deleted_binary.json"))[0]
    # THEN the deletion names exactly the version the ingest recorded
    assert isinstance(created, ObjectCreated) and isinstance(deleted, ObjectDeleted)
    assert (deleted.bucket, deleted.key, deleted.generation) == (created.bucket, created.key, created.version)


def test_gcs_deleted_data_without_generation_is_malformed() -> None:
    doc = load_event("gcp_storage_finalized_structured.json")["body"]
    del doc["data"]["generation"]
    with pytest.raises(MalformedEnvelope, match="generation"):
        gcp.object_deleted_from_cloudevent({"type": gcp.GCS_DELETED}, doc["data"])


def test_s3_delete_marker_takes_every_version_of_the_key() -> None:
    (event,) = aws.objects_from_s3_notification(load_event("aws_s3_object_removed.json"))
    assert event == ObjectDeleted(bucket="contentfn-dev-uploads", key=KEY, generation=None, event_time=event.event_time)


@pytest.mark.parametrize(("version", "expected"), [("v-7", "v-7"), (None, None)])
def test_s3_plain_delete_names_its_version_or_none_in_an_unversioned_bucket(
    version: str | None, expected: str | None
) -> None:
    # GIVEN an ObjectRemoved:Delete record, with a version id (a version removed for good) or without
    doc = load_event("aws_s3_object_removed.json")
    record = doc["Records"][0]
    record["eventName"] = "ObjectRemoved:Delete"
    record["s3"]["object"].pop("versionId")
    if version is not None:
        record["s3"]["object"]["versionId"] = version
    # THEN the deletion names that version, or none (the key is gone)
    (event,) = aws.objects_from_s3_notification(doc)
    assert isinstance(event, ObjectDeleted) and event.generation == expected and event.key == KEY


def test_eventbridge_deletions_permanent_names_the_version_and_a_marker_names_none() -> None:
    doc = load_event("aws_eventbridge_s3_object_deleted.json")
    assert aws.trigger_of(doc) == "eventbridge_s3"
    permanent = aws.object_from_eventbridge(doc)
    doc["detail"]["deletion-type"] = "Delete Marker Created"
    marker = aws.object_from_eventbridge(doc)
    assert isinstance(permanent, ObjectDeleted) and permanent.generation == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert isinstance(marker, ObjectDeleted) and marker.generation is None


def test_one_s3_notification_may_carry_an_upload_and_a_deletion() -> None:
    doc = load_event("aws_s3_object_created.json")
    doc["Records"].append(load_event("aws_s3_object_removed.json")["Records"][0])
    kinds = [type(e).__name__ for e in aws.objects_from_s3_notification(doc)]
    assert kinds == ["ObjectCreated", "ObjectDeleted"]
