"""Vision through the cloud entry points: an S3 notification for images/ queues a detection job, and
the HTTP API adapters route the new detection and stream endpoints like the core."""

from __future__ import annotations

import json

from local.lambda_context import LocalLambdaContext
from shared.config import Settings
from shared.services import Services
from tests.entry_fixtures import TEST_API_KEY, count, put_local
from tests.event_files import load_event
from tests.integration.test_detector_real import photo_jpeg

BUCKET = "contentfn-dev-uploads"


def test_s3_notification_for_an_image_queues_one_detection_job(
    entry_env: Settings, services: Services, lambda_context: LocalLambdaContext
) -> None:
    from functions.ingest.aws import handler

    # GIVEN a photo under images/ and the real-format S3 notification, pointed at it
    put_local(entry_env, BUCKET, "images/astronaut.jpg", photo_jpeg("astronaut"))
    event = load_event("aws_s3_object_created.json")
    event["Records"][0]["s3"]["object"]["key"] = "images/astronaut.jpg"
    # WHEN it is delivered twice
    handler(event, lambda_context)
    handler(event, lambda_context)
    # THEN one image row and one detection job exist
    assert count(services, "SELECT count(*) FROM images WHERE status = 'pending'") == 1
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'detect'") == 1


def test_http_api_routes_streams_and_detections(entry_env: Settings, lambda_context: LocalLambdaContext) -> None:
    from functions.api.aws import handler

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        event = load_event("aws_function_url_health.json")
        event["rawPath"], event["requestContext"]["http"]["method"] = path, method
        event["requestContext"]["http"]["path"] = path
        event["headers"]["x-api-key"] = TEST_API_KEY
        if body is not None:
            event["body"] = json.dumps(body)
            event["headers"]["content-type"] = "application/json"
        out = handler(event, lambda_context)
        return out["statusCode"], json.loads(out["body"])

    status, created = call("POST", "/streams", {"url": "rtsp://93.184.216.34/cam", "fps": 1})
    assert status == 201, created
    sid = created["stream"]["id"]
    assert call("GET", "/streams")[1]["items"][0]["id"] == sid
    assert call("DELETE", f"/streams/{sid}")[1]["stream"]["status"] == "stopped"
    assert call("GET", "/images/12345/detections")[0] == 404
