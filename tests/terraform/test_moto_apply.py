"""The AWS dev environment applied to a moto server on loopback, checked with boto3, destroyed.

Only the test copy gets the provider override; the committed env stays clean. Services moto does
not emulate well enough (ECS GPU capacity, RDS, ElastiCache, API Gateway authorizers, NAT,
RedriveAllowPolicy) are switched off with the env's create_* toggles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.terraform import tftools
from tests.terraform.conftest import prepare_aws_env

pytestmark = pytest.mark.slow

TOGGLES = [
    "-var=create_gpu_service=false",
    "-var=create_database=false",
    "-var=create_cache=false",
    "-var=create_http_api=false",
    "-var=create_nat_gateway=false",
    "-var=create_redrive_allow_policies=false",
]
PREFIX = "contentfn-dev"


def _client(service: str, endpoint: str) -> Any:
    boto3 = pytest.importorskip("boto3")
    return boto3.client(
        service, endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


@pytest.mark.timeout(420)
def test_dev_env_applies_to_moto_and_destroys(
    tmp_path: Path, moto_endpoint: str, tf_env: dict[str, str], terraform_bin: str
) -> None:
    workdir = prepare_aws_env(tmp_path, "dev", moto_endpoint, tf_env, terraform_bin)
    apply = [terraform_bin, "apply", "-auto-approve", "-input=false", "-no-color", "-parallelism=30", *TOGGLES]
    destroy = [terraform_bin, "destroy", "-auto-approve", "-input=false", "-no-color", "-parallelism=30", *TOGGLES]
    s3, sqs = _client("s3", moto_endpoint), _client("sqs", moto_endpoint)
    lam, scheduler = _client("lambda", moto_endpoint), _client("scheduler", moto_endpoint)
    try:
        # WHEN the dev env is applied
        tftools.run(apply, workdir, tf_env, timeout=300)

        # THEN the uploads bucket exists, private and encrypted, with its access-log bucket
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        uploads = next(b for b in buckets if b.startswith(f"{PREFIX}-uploads-") and not b.endswith("-access-logs"))
        assert f"{uploads}-access-logs" in buckets
        block = s3.get_public_access_block(Bucket=uploads)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        rule = s3.get_bucket_encryption(Bucket=uploads)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        notification = s3.get_bucket_notification_configuration(Bucket=uploads)
        # S3 → SQS → Lambda: the bucket notifies ingest's queue, never the function itself
        assert [c["QueueArn"].split(":")[-1] for c in notification["QueueConfigurations"]] == [f"{PREFIX}-ingest"]
        assert not notification.get("LambdaFunctionConfigurations")

        # AND every job queue redrives to its dead letter queue after the configured attempts
        urls = sqs.list_queues(QueueNamePrefix=PREFIX)["QueueUrls"]
        names = {u.rsplit("/", 1)[1]: u for u in urls}
        for queue in ("ingest", "embed", "enrich", "analyze", "detect"):
            attributes = sqs.get_queue_attributes(QueueUrl=names[f"{PREFIX}-{queue}"], AttributeNames=["All"])[
                "Attributes"
            ]
            redrive = json.loads(attributes["RedrivePolicy"])
            assert redrive["deadLetterTargetArn"].endswith(f":{PREFIX}-{queue}-dlq")
            assert int(redrive["maxReceiveCount"]) == 5
            assert f"{PREFIX}-{queue}-dlq" in names
        for name in tftools.function_names():
            assert f"{PREFIX}-{name}-dlq" in names, f"{name} has no dead letter queue"

        # AND queue-triggered functions report partial batch failures
        mappings = lam.list_event_source_mappings()["EventSourceMappings"]
        assert {m["FunctionArn"].rsplit(":", 1)[1] for m in mappings} >= {f"{PREFIX}-embed", f"{PREFIX}-ingest"}
        assert all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)

        # AND the scrape schedule targets its function with a dead letter queue
        schedule = scheduler.get_schedule(Name=f"{PREFIX}-scrape")
        assert schedule["Target"]["Arn"].endswith(f":{PREFIX}-scrape")
        assert schedule["Target"]["DeadLetterConfig"]["Arn"].endswith(f":{PREFIX}-scrape-dlq")
        # AND the dead-letter import runs on its own schedule
        schedule = scheduler.get_schedule(Name=f"{PREFIX}-deadletters")
        assert schedule["Target"]["Arn"].endswith(f":{PREFIX}-deadletters")
    finally:
        # AND destroy removes what apply created
        tftools.run(destroy, workdir, tf_env, timeout=300)

    assert not sqs.list_queues(QueueNamePrefix=PREFIX).get("QueueUrls")
    assert not [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(PREFIX)]
    assert not [s for s in scheduler.list_schedules()["Schedules"] if s["Name"].startswith(PREFIX)]
