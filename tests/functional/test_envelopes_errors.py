"""Envelope parsers refuse what can never succeed with one poison error per failure mode."""

from __future__ import annotations

import base64
import json

import pytest

from shared.envelopes import aws, gcp
from shared.envelopes.errors import MalformedEnvelope, RequestTooLarge, UnsupportedEvent
from shared.errors import PoisonError
from tests.event_files import load_event


def test_envelope_errors_are_poison_so_the_edge_dead_letters_them() -> None:
    assert issubclass(MalformedEnvelope, PoisonError) and issubclass(UnsupportedEvent, PoisonError)
    assert issubclass(RequestTooLarge, PoisonError)


def test_s3_test_event_yields_no_objects() -> None:
    assert aws.objects_from_s3_notification({"Service": "Amazon S3", "Event": "s3:TestEvent"}) == []


def test_s3_object_restore_is_unsupported() -> None:
    event = load_event("aws_s3_object_created.json")
    event["Records"][0]["eventName"] = "ObjectRestore:Completed"
    with pytest.raises(UnsupportedEvent):
        aws.objects_from_s3_notification(event)


def test_sqs_record_with_a_non_json_body_is_malformed_and_the_error_does_not_echo_it() -> None:
    record = load_event("aws_sqs_s3_notification.json")["Records"][0]
    record["body"] = "<secret-ish garbage>"
    with pytest.raises(MalformedEnvelope) as err:
        aws.objects_from_sqs_record(record)
    assert "garbage" not in str(err.value)


def test_sqs_job_without_kind_or_payload_is_malformed() -> None:
    record = load_event("aws_sqs_jobs.json")["Records"][0]
    record["body"] = json.dumps({"payload": {"track_id": 1}})
    with pytest.raises(MalformedEnvelope, match="kind"):
        aws.job_from_sqs_record(record)
    record["body"] = json.dumps({"kind": "embed"})
    with pytest.raises(MalformedEnvelope, match="payload"):
        aws.job_from_sqs_record(record)


def test_s3_key_decoding_keeps_a_literal_plus_written_as_percent_2b() -> None:
    event = load_event("aws_s3_object_created.json")
    event["Records"][0]["s3"]["object"]["key"] = "c%2B%2B/a+b%C3%A9.csv"
    assert aws.objects_from_s3_notification(event)[0].key == "c++/a bé.csv"


def test_eventbridge_event_of_another_source_is_unsupported() -> None:
    event = load_event("aws_eventbridge_s3_object_created.json")
    event["detail-type"] = "Object Restore Completed"
    with pytest.raises(UnsupportedEvent):
        aws.object_from_eventbridge(event)


def test_cloudevent_of_another_type_is_unsupported() -> None:
    doc = load_event("gcp_storage_finalized_structured.json")["body"]
    attrs = {k: v for k, v in doc.items() if k != "data"} | {"type": "google.cloud.storage.object.v1.deleted"}
    with pytest.raises(UnsupportedEvent):
        gcp.object_created_from_cloudevent(attrs, doc["data"])


def test_storage_data_without_generation_is_malformed() -> None:
    doc = load_event("gcp_storage_finalized_structured.json")["body"]
    del doc["data"]["generation"]
    with pytest.raises(MalformedEnvelope, match="generation"):
        gcp.object_created_from_cloudevent({"type": gcp.GCS_FINALIZED}, doc["data"])


def test_binary_cloudevent_without_ce_headers_is_malformed() -> None:
    with pytest.raises(MalformedEnvelope):
        gcp.cloudevent_from_http({"Content-Type": "application/json"}, b"{}")


def test_push_message_with_bad_base64_or_no_id_is_malformed() -> None:
    body = load_event("gcp_pubsub_push_job.json")["body"]
    body["message"]["data"] = "%%%not base64"
    with pytest.raises(MalformedEnvelope, match="base64"):
        gcp.pubsub_from_push(body)
    body = load_event("gcp_pubsub_push_job.json")["body"]
    del body["message"]["messageId"], body["message"]["message_id"]
    with pytest.raises(MalformedEnvelope, match="messageId"):
        gcp.pubsub_from_push(body)


def test_push_job_kind_may_come_from_attributes() -> None:
    body = load_event("gcp_pubsub_push_job.json")["body"]
    body["message"]["data"] = base64.b64encode(json.dumps({"payload": {"track_id": 7}}).encode()).decode()
    job = gcp.job_from_pubsub(gcp.pubsub_from_push(body))
    assert job.kind == "embed" and job.payload == {"track_id": 7}


def test_scheduler_http_without_headers_is_malformed() -> None:
    with pytest.raises(MalformedEnvelope):
        gcp.schedule_tick_from_scheduler_http({"X-CloudScheduler": "true"})


def test_http_body_over_the_limit_is_refused_before_decoding() -> None:
    event = load_event("aws_apigw_v2_search.json")
    event["body"] = base64.b64encode(b"x" * 2048).decode()
    event["isBase64Encoded"] = True
    with pytest.raises(RequestTooLarge):
        aws.http_request_from_apigw_v2(event, max_body_bytes=1024)


def test_http_base64_body_and_cookies_are_decoded() -> None:
    event = load_event("aws_function_url_health.json")
    event["body"] = base64.b64encode(b'{"a":1}').decode()
    event["isBase64Encoded"] = True
    event["cookies"] = ["a=1", "b=2"]
    req = aws.http_request_from_apigw_v2(event)
    assert req.body == b'{"a":1}' and req.headers["cookie"] == "a=1; b=2"


def test_scheduler_input_without_a_rendered_time_uses_the_invoke_time() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    tick = aws.schedule_tick_from_eventbridge({"source": "contentfn.scheduler", "function": "scrape"}, now=now)
    assert tick.schedule == "scrape" and tick.fired_at == now


def test_poison_envelopes_are_stored_as_bounded_json_whatever_they_hold() -> None:
    from shared.platform.runtime import _storable

    assert _storable({"data": b"\xff raw", "n": 1}) == {"envelope": {"data": "b'\\xff raw'", "n": 1}}
    assert _storable(b"not json \xff")["envelope_text"].startswith("not json")
    big = _storable("x" * 100_000)
    assert big["chars"] == 100_000 and len(big["envelope_truncated"]) == 4096 and len(big["sha256"]) == 64
