"""Amazon SQS queue adapter (boto3): batch send, receive, delete, visibility change, DLQ via redrive.

One queue per job kind, as Terraform creates them. A retryable failure hides the message for a
backoff delay; SQS's redrive policy moves it to the dead-letter queue after ``maxReceiveCount``
receives. A poison failure moves it to that DLQ at once (send + delete), so it is not retried.

Releasing a message (a worker shutting down, work given back unstarted) must not spend one of its
attempts, but every SQS receive counts towards ``maxReceiveCount``. So a release sends the body
again as a new message carrying the attempts spent before (``prior_attempts``; the release itself
is not counted) and deletes the received one: the job's attempts are its prior attempts plus the
new message's receive count. Because redrive counts only the new message's receives, a retryable
failure that reaches ``maxReceiveCount`` in all is dead-lettered here rather than left to redrive.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from shared.events import Job
from shared.queue.base import ClaimedJob, FailOutcome, NewJob, backoff_delay, trace_attributes
from shared.queue.errors import PublishFailed, QueueUnavailable

__all__ = ["PRIOR_ATTEMPTS", "SqsQueue", "job_message", "sqs_client"]

_BATCH = 10  # SQS's limit for send/delete/change-visibility batches and one receive
_MAX_DELAY_S = 900
_MAX_VISIBILITY_S = 12 * 3600
PRIOR_ATTEMPTS = "prior_attempts"  # message attribute: attempts spent before a release re-sent it


def sqs_client(*, endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 SQS client (an emulator's with ``endpoint_url``)."""
    import boto3

    return boto3.session.Session().client("sqs", endpoint_url=endpoint_url, region_name=region)


def job_message(job: NewJob) -> dict[str, Any]:
    """The message body every consumer parses (``shared.envelopes``): kind, payload, dedup_key."""
    return {"kind": job.kind, "payload": job.payload, "dedup_key": job.dedup_key}


class SqsQueue:
    """The Queue port over one SQS queue (and the DLQ its redrive policy names)."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        *,
        kind: str,
        visibility_s: float = 120.0,
        wait_s: int = 0,
        backoff_base_s: float = 2.0,
        backoff_cap_s: float = 300.0,
    ) -> None:
        self._client = client
        self.queue_url = queue_url
        self.kind = kind
        self.visibility_s = visibility_s
        self.wait_s = wait_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._dlq_url: str | None = None
        self._max_receives: int | None = None
        self._fifo = queue_url.endswith(".fifo")

    @classmethod
    def create(
        cls, queue_url: str, *, kind: str, endpoint_url: str | None = None, region: str | None = None, **kw: Any
    ) -> SqsQueue:
        return cls(sqs_client(endpoint_url=endpoint_url, region=region), queue_url, kind=kind, **kw)

    # -- producing ---------------------------------------------------------------------------
    def enqueue_many(self, jobs: Sequence[NewJob]) -> int:
        """Send in batches of ten. Raises PublishFailed naming how many entries SQS refused."""
        sent = 0
        for start in range(0, len(jobs), _BATCH):
            chunk = jobs[start : start + _BATCH]
            entries = [self._entry(str(i), job) for i, job in enumerate(chunk)]
            out = self._call("send_message_batch", QueueUrl=self.queue_url, Entries=entries)
            failed = out.get("Failed") or []
            if failed:
                codes = sorted({f.get("Code", "?") for f in failed})
                raise PublishFailed(f"SQS refused {len(failed)} of {len(chunk)} messages ({', '.join(codes)})")
            sent += len(out.get("Successful") or [])
        return sent

    def _entry(self, entry_id: str, job: NewJob) -> dict[str, Any]:
        attrs: dict[str, Any] = {"kind": {"DataType": "String", "StringValue": job.kind}}
        if job.dedup_key:
            attrs["dedup_key"] = {"DataType": "String", "StringValue": job.dedup_key}
        for name, value in trace_attributes(job).items():
            attrs[name] = {"DataType": "String", "StringValue": value}
        entry: dict[str, Any] = {
            "Id": entry_id,
            "MessageBody": json.dumps(job_message(job), separators=(",", ":")),
            "MessageAttributes": attrs,
        }
        if self._fifo:
            # FIFO queues deduplicate for five minutes on this id; ordering is per group.
            entry["MessageGroupId"] = job.kind
            if job.dedup_key:
                entry["MessageDeduplicationId"] = job.dedup_key[:128]
        elif job.delay_s > 0:
            entry["DelaySeconds"] = min(_MAX_DELAY_S, int(job.delay_s))
        return entry

    # -- consuming ---------------------------------------------------------------------------
    def claim(self, kind: str, limit: int, *, visibility_s: float | None = None) -> list[ClaimedJob]:
        """Receive up to ``limit`` (≤ 10) messages; each ``lease_id`` is the receipt handle."""
        if kind != self.kind:
            raise ValueError(f"this queue carries {self.kind!r} jobs, not {kind!r}")
        out = self._call(
            "receive_message",
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(_BATCH, limit)),
            VisibilityTimeout=int(self.visibility_s if visibility_s is None else visibility_s),
            WaitTimeSeconds=self.wait_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        claimed = []
        for msg in out.get("Messages") or []:
            extra = {"body": msg["Body"], "message": msg}
            claimed.append(ClaimedJob(job=self._job(msg), lease_id=msg["ReceiptHandle"], extra=extra))
        return claimed

    def _job(self, msg: dict[str, Any]) -> Job:
        attempts = int((msg.get("Attributes") or {}).get("ApproximateReceiveCount", 1)) + _prior_attempts(msg)
        attrs = {
            str(k): str(v["StringValue"])
            for k, v in (msg.get("MessageAttributes") or {}).items()
            if isinstance(v, dict) and isinstance(v.get("StringValue"), str)
        }
        try:
            doc = json.loads(msg["Body"])
            return Job(
                id=msg["MessageId"],
                kind=doc["kind"],
                payload=doc["payload"],
                attempts=attempts,
                dedup_key=doc.get("dedup_key"),
                traceparent=attrs.get("traceparent"),
                tracestate=attrs.get("tracestate"),
            )
        except (ValueError, KeyError, TypeError):
            # Unparseable: hand it out with an empty payload so the consumer's poison path dead-letters it.
            return Job(id=msg["MessageId"], kind=self.kind, payload={}, attempts=attempts)

    def ack(self, claimed: Sequence[ClaimedJob]) -> int:
        done = 0
        for start in range(0, len(claimed), _BATCH):
            chunk = claimed[start : start + _BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": c.lease_id} for i, c in enumerate(chunk)]
            out = self._call("delete_message_batch", QueueUrl=self.queue_url, Entries=entries)
            done += len(out.get("Successful") or [])
        return done

    def fail(self, claimed: ClaimedJob, error: str, *, retryable: bool) -> FailOutcome:
        """Retryable: hide for a backoff delay (redrive dead-letters after maxReceiveCount).
        Poison: copy to the DLQ with the error as an attribute, then delete."""
        if not retryable:
            self._dead_letter(claimed, error)
            return "dead"
        max_receives = self._redrive()[1]
        if max_receives is not None and claimed.job.attempts >= max_receives:
            # Redrive would count only this message's receives, not those before a release.
            self._dead_letter(claimed, f"gave up after {claimed.job.attempts} attempts: {error}")
            return "dead"
        delay = backoff_delay(claimed.job.attempts, self.backoff_base_s, self.backoff_cap_s)
        self.change_visibility(claimed, delay)
        return "retry"

    def change_visibility(self, claimed: ClaimedJob, seconds: float) -> None:
        self._call(
            "change_message_visibility",
            QueueUrl=self.queue_url,
            ReceiptHandle=claimed.lease_id,
            VisibilityTimeout=max(0, min(_MAX_VISIBILITY_S, int(seconds))),
        )

    def release(self, claimed: Sequence[ClaimedJob]) -> int:
        """Give jobs back without spending an attempt: re-send each with the attempts it had spent
        before this receive, then delete the received message (a crash in between leaves both, which
        at-least-once delivery allows). Returns how many were given back."""
        released = 0
        for start in range(0, len(claimed), _BATCH):
            chunk = claimed[start : start + _BATCH]
            entries = [self._release_entry(str(i), c) for i, c in enumerate(chunk)]
            out = self._call("send_message_batch", QueueUrl=self.queue_url, Entries=entries)
            sent = {int(e["Id"]) for e in out.get("Successful") or []}
            for i, c in enumerate(chunk):
                if i not in sent:  # not re-sent: show it again at once, which spends the attempt
                    self.change_visibility(c, 0)
            resent = [c for i, c in enumerate(chunk) if i in sent]
            if resent:
                self.ack(resent)
            released += len(chunk)
        return released

    def _release_entry(self, entry_id: str, claimed: ClaimedJob) -> dict[str, Any]:
        msg = claimed.extra.get("message") or {}
        attrs = {
            name: {k: v for k, v in value.items() if k in ("DataType", "StringValue")}
            for name, value in (msg.get("MessageAttributes") or {}).items()
            if name != PRIOR_ATTEMPTS and "StringValue" in value
        }
        spent = max(0, claimed.job.attempts - 1)  # this receive was given back unused
        attrs[PRIOR_ATTEMPTS] = {"DataType": "Number", "StringValue": str(spent)}
        body = claimed.extra.get("body") or json.dumps(job_message(NewJob(claimed.job.kind, claimed.job.payload)))
        entry: dict[str, Any] = {"Id": entry_id, "MessageBody": body, "MessageAttributes": attrs}
        if self._fifo:
            # A new deduplication id per release: the job's own would be dropped as a duplicate.
            entry["MessageGroupId"] = claimed.job.kind
            entry["MessageDeduplicationId"] = f"{claimed.id}:released"[:128]
        return entry

    def depth(self, kind: str | None = None) -> int:
        return self._count(self.queue_url)

    def dead_count(self, kind: str | None = None) -> int:
        dlq = self._redrive()[0]
        return self._count(dlq) if dlq else 0

    # -- internals ---------------------------------------------------------------------------
    def _dead_letter(self, claimed: ClaimedJob, error: str) -> None:
        dlq = self._redrive()[0]
        if dlq is None:
            raise QueueUnavailable(f"{self.queue_url} has no redrive policy; cannot dead-letter")
        body = claimed.extra.get("body") or json.dumps({"kind": claimed.job.kind, "payload": claimed.job.payload})
        extra: dict[str, Any] = {}
        if dlq.endswith(".fifo"):
            extra = {"MessageGroupId": claimed.job.kind, "MessageDeduplicationId": claimed.job.id[:128]}
        self._call(
            "send_message",
            QueueUrl=dlq,
            MessageBody=body,
            MessageAttributes={
                "error": {"DataType": "String", "StringValue": error[:1000] or "poison"},
                "source_message_id": {"DataType": "String", "StringValue": claimed.job.id},
            },
            **extra,
        )
        self.ack([claimed])

    def _redrive(self) -> tuple[str | None, int | None]:
        if self._max_receives is None:
            attrs = self._call("get_queue_attributes", QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"])
            policy = (attrs.get("Attributes") or {}).get("RedrivePolicy")
            if policy:
                doc = json.loads(policy)
                # A redrive target is in the queue's own account and region: its URL is the queue's
                # with the name replaced (no GetQueueUrl call, so no permission for one).
                name = str(doc["deadLetterTargetArn"]).rsplit(":", 1)[-1]
                self._dlq_url = f"{self.queue_url.rsplit('/', 1)[0]}/{name}"
                self._max_receives = int(doc["maxReceiveCount"])
            else:
                self._max_receives = 0
        return self._dlq_url, (self._max_receives or None)

    def _count(self, url: str) -> int:
        attrs = self._call(
            "get_queue_attributes",
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(
            attrs.get("ApproximateNumberOfMessagesNotVisible", 0)
        )

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self._client, operation)(**params)
        except Exception as exc:
            if type(exc).__module__.startswith(("botocore", "urllib3")):
                raise QueueUnavailable(f"SQS {operation} failed: {type(exc).__name__}") from exc
            raise


def _prior_attempts(msg: dict[str, Any]) -> int:
    value = ((msg.get("MessageAttributes") or {}).get(PRIOR_ATTEMPTS) or {}).get("StringValue")
    try:
        return max(0, int(value)) if value is not None else 0
    except ValueError:
        return 0
