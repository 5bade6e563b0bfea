"""What Lambda's SQS event source mapping does, over a real (moto) queue: receive a batch, hand
it to the handler as the Lambda SQS event, delete the records not in ``batchItemFailures``."""

from __future__ import annotations

from typing import Any

__all__ = ["receive_event", "settle"]


def receive_event(client: Any, queue_url: str, *, max_messages: int = 10, wait_s: int = 1) -> dict[str, Any]:
    arn = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    out = client.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max_messages,
        WaitTimeSeconds=wait_s,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    records = []
    for msg in out.get("Messages") or []:
        records.append(
            {
                "messageId": msg["MessageId"],
                "receiptHandle": msg["ReceiptHandle"],
                "body": msg["Body"],
                "attributes": msg.get("Attributes") or {},
                "messageAttributes": {
                    k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType")}
                    for k, v in (msg.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": msg.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": arn.split(":")[3],
            }
        )
    return {"Records": records}


def settle(client: Any, queue_url: str, event: dict[str, Any], response: dict[str, Any]) -> int:
    """Delete the records the handler did not report as failed; returns how many were deleted."""
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    done = [r for r in event["Records"] if r["messageId"] not in failed]
    for r in done:
        client.delete_message(QueueUrl=queue_url, ReceiptHandle=r["receiptHandle"])
    return len(done)
