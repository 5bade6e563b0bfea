"""Bring the cloud queues' dead letters into the dead-letter store of record (``dead_jobs``).

``dead_jobs`` is the one store of record: ``contentfn dead`` and ``/dead-jobs`` read it, replay and
purge there. What a cloud queue dead-letters on its own (an SQS message past ``maxReceiveCount``, a
Pub/Sub message past ``max_delivery_attempts``, a detection job the GPU service copied to its DLQ as
poison) is drained from the DLQ or dead-letter subscription into it: each message is inserted with
its origin (``source_message_id``) and only then deleted or acknowledged, so a crash in between
imports nothing twice, and neither does a second importer. A message a function already recorded
as poison (its delivery's dedup key ends in the message id) is not recorded again, only removed
from the DLQ: the cloud DLQ holds messages only until they are imported.

The SDK clients are passed in, or made by the queue adapters (``shared.queue.sqs``, ``.pubsub``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.config import Settings
from shared.store.db import Database

__all__ = [
    "DeadLetter",
    "ImportReport",
    "import_dead_letter_sources",
    "import_pubsub_dead_letters",
    "import_sqs_dlq",
    "record_dead_letters",
    "sqs_letter",
]

_SQS_BATCH = 10
_PUBSUB_BATCH = 100
_DEFAULT_ERROR = "its queue gave up on it: delivered the maximum number of times without success"


@dataclass(frozen=True)
class DeadLetter:
    """One message of a cloud dead-letter queue, as the dead-letter store records it."""

    source_message_id: str  # "sqs:<id>" / "pubsub:<id>": the import's idempotency key
    message_id: str  # the id the consuming function saw (poison it recorded is found by it)
    kind: str
    body: str
    attributes: dict[str, str]
    attempts: int
    error: str | None  # set when the consumer dead-lettered it as poison


class ImportReport(BaseModel):
    """One import over the configured dead-letter queues: what was recorded, what was there already."""

    model_config = ConfigDict(extra="forbid")

    imported: int = 0
    already_recorded: int = 0
    sources: dict[str, int] = Field(default_factory=dict)  # imported per DLQ / subscription

    def add(self, source: str, imported: int, known: int) -> None:
        self.imported += imported
        self.already_recorded += known
        self.sources[source] = self.sources.get(source, 0) + imported


def record_dead_letters(db: Database, letters: Sequence[DeadLetter]) -> tuple[int, int]:
    """Insert the letters not yet recorded in one transaction; returns (inserted, already there)."""
    inserted = 0
    with db.connection() as conn:
        for letter in letters:
            row = conn.execute(
                """
                INSERT INTO dead_jobs (job_id, kind, payload, dedup_key, attempts, last_error, retryable,
                                       created_at, source_message_id)
                SELECT NULL, %(kind)s, %(payload)s::jsonb, %(dedup)s, %(attempts)s, %(error)s, %(retryable)s, now(),
                       %(source)s
                WHERE NOT EXISTS (SELECT 1 FROM dead_jobs WHERE dedup_key LIKE '%%:' || %(message_id)s)
                ON CONFLICT (source_message_id) WHERE source_message_id IS NOT NULL DO NOTHING
                RETURNING id
                """,
                {
                    "kind": letter.kind,
                    "payload": json.dumps(_payload(letter)),
                    "dedup": _job_doc(letter.body).get("dedup_key"),
                    "attempts": max(1, letter.attempts),
                    "error": (letter.error or _DEFAULT_ERROR)[:2000],
                    "retryable": letter.error is None,
                    "source": letter.source_message_id,
                    "message_id": _like_escaped(letter.message_id),
                },
            ).fetchone()
            inserted += row is not None
        conn.commit()
    return inserted, len(letters) - inserted


def import_dead_letter_sources(
    db: Database, sources: dict[str, str], settings: Settings, *, max_messages: int = 1000
) -> ImportReport:
    """Drain each source (SQS DLQ URL or Pub/Sub subscription → the kind it holds); the SDK of
    each cloud is imported only when one of its queues is named."""
    report = ImportReport()
    client: Any = None
    subscriber: Any = None
    for source, kind in sources.items():
        if source.startswith("projects/") and "/subscriptions/" in source:
            if subscriber is None:
                from shared.queue.pubsub import subscriber_client

                subscriber = subscriber_client()
            part = import_pubsub_dead_letters(db, subscriber, source, kind=kind, max_messages=max_messages)
        else:
            if client is None:
                from shared.queue.sqs import sqs_client

                client = sqs_client(endpoint_url=settings.aws_endpoint_url, region=settings.aws_region)
            part = import_sqs_dlq(db, client, source, kind=kind, max_messages=max_messages)
        report.imported += part.imported
        report.already_recorded += part.already_recorded
        report.sources[source] = part.imported
    return report


def import_sqs_dlq(db: Database, client: Any, dlq_url: str, *, kind: str, max_messages: int = 1000) -> ImportReport:
    """Drain up to ``max_messages`` from one SQS dead-letter queue into ``dead_jobs``.

    ``kind`` names what the queue's consumer handles (``ingest`` for S3 notifications); a job
    message's own kind wins. Messages are received with a short visibility: if this run dies, they
    come back for the next.
    """
    report = ImportReport()
    while report.imported + report.already_recorded < max_messages:
        out = client.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=_SQS_BATCH,
            VisibilityTimeout=60,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        messages = out.get("Messages") or []
        if not messages:
            break
        letters = [sqs_letter(m, kind) for m in messages]
        report.add(dlq_url, *record_dead_letters(db, letters))
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        client.delete_message_batch(QueueUrl=dlq_url, Entries=entries)
    return report


def import_pubsub_dead_letters(
    db: Database, subscriber: Any, subscription: str, *, kind: str, max_messages: int = 1000, timeout_s: float = 10.0
) -> ImportReport:
    """Drain up to ``max_messages`` from a subscription on a dead-letter topic into ``dead_jobs``."""
    report = ImportReport()
    while report.imported + report.already_recorded < max_messages:
        request = {"subscription": subscription, "max_messages": _PUBSUB_BATCH}
        try:
            response = subscriber.pull(request=request, timeout=timeout_s)
        except Exception as exc:
            if type(exc).__name__ == "DeadlineExceeded":  # nothing arrived before the timeout
                break
            raise
        received = list(response.received_messages)
        if not received:
            break
        letters = [_pubsub_letter(r.message, kind) for r in received]
        report.add(subscription, *record_dead_letters(db, letters))
        subscriber.acknowledge(request={"subscription": subscription, "ack_ids": [r.ack_id for r in received]})
    return report


def sqs_letter(msg: dict[str, Any], kind: str) -> DeadLetter:
    """One received DLQ message (``receive_message``'s dict) as the store records it."""
    attrs = {
        str(k): str(v["StringValue"])
        for k, v in (msg.get("MessageAttributes") or {}).items()
        if isinstance(v, dict) and "StringValue" in v
    }
    # A poison copy names the message the consumer received; a redriven message keeps its id.
    origin = attrs.get("source_message_id") or str(msg["MessageId"])
    try:
        attempts = int((msg.get("Attributes") or {}).get("ApproximateReceiveCount", 1))
    except ValueError:
        attempts = 1
    body = str(msg.get("Body") or "")
    return DeadLetter(
        source_message_id=f"sqs:{origin}",
        message_id=origin,
        kind=_kind(body, kind),
        body=body,
        attributes=attrs,
        attempts=attempts,
        error=attrs.get("error"),
    )


def _pubsub_letter(message: Any, kind: str) -> DeadLetter:
    attrs = {str(k): str(v) for k, v in dict(message.attributes).items()}
    body = bytes(message.data).decode("utf-8", errors="replace")
    try:
        attempts = int(attrs.get("CloudPubSubDeadLetterSourceDeliveryCount", "1"))
    except ValueError:
        attempts = 1
    message_id = str(message.message_id)
    return DeadLetter(
        source_message_id=f"pubsub:{message_id}",
        message_id=message_id,
        kind=_kind(body, kind),
        body=body,
        attributes=attrs,
        attempts=attempts,
        error=attrs.get("error"),
    )


def _job_doc(body: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _kind(body: str, default: str) -> str:
    kind = _job_doc(body).get("kind")
    return kind if isinstance(kind, str) and kind else default


def _payload(letter: DeadLetter) -> dict[str, Any]:
    """As the store keeps deliveries: the job (or event) under ``envelope``, so a job is replayable."""
    doc = _job_doc(letter.body)
    held: dict[str, Any] = {"envelope": doc} if doc else {"envelope_text": letter.body[:65536]}
    return held | {"source": {"message_id": letter.source_message_id, "attributes": letter.attributes}}


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
