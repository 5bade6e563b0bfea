"""Outbox relay: jobs committed to the Postgres ``jobs`` table, forwarded to the cloud's queues.

Producers (ingest, scrape, enrich, the API) enqueue downstream jobs in the same transaction that
writes their rows, so no job announces something that did not commit. On a cloud, the function
that produced them then relays the kinds it publishes (``CONTENTFN_QUEUES``: job kind → SQS queue
URL or Pub/Sub topic, set by Terraform from ``publishes_to``) to those queues, where the consuming
function or the GPU service is triggered.

Delivery: a batch is claimed with a short lease (``FOR UPDATE SKIP LOCKED``, so two relays never
send the same row at once), published, and its rows are deleted only after the cloud queue has
accepted every message of the batch. A crash or a failed publish in between leaves the rows to
be sent again (at-least-once; every consumer is idempotent). A refused publish releases the batch
without using up an attempt and stops that kind for this pass; kinds without a cloud queue stay in
Postgres for the scheduled drains.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import ConfigError
from shared.queue.base import JobSource, NewJob
from shared.queue.errors import PublishFailed, QueueUnavailable

__all__ = ["Publisher", "RelayReport", "publishers_for", "relay_outbox", "validate_queue_targets"]

log = logging.getLogger(__name__)

_PUBSUB_TOPIC = "projects/"
_LEASE_S = 60.0


class Publisher(Protocol):
    def enqueue_many(self, jobs: Sequence[NewJob]) -> int: ...


@dataclass
class RelayReport:
    published: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    out_of_time: bool = False

    @property
    def total(self) -> int:
        return sum(self.published.values())

    def as_dict(self) -> dict[str, Any]:
        return {"published": self.published, "failed": self.failed, "out_of_time": self.out_of_time}


def validate_queue_targets(queues: Mapping[str, str]) -> dict[str, str]:
    """Each target must be an SQS queue URL or a Pub/Sub topic path; the error names the kind."""
    for kind, target in queues.items():
        if not kind or not isinstance(target, str):
            raise ValueError("each entry must map a job kind to a queue URL or topic")
        is_sqs = target.startswith(("https://", "http://"))
        is_topic = target.startswith(_PUBSUB_TOPIC) and "/topics/" in target
        if not (is_sqs or is_topic):
            raise ValueError(
                f"the target of {kind!r} is neither an SQS queue URL nor a Pub/Sub topic (projects/P/topics/T)"
            )
    return dict(queues)


def publishers_for(
    queues: Mapping[str, str], *, aws_endpoint_url: str | None = None, aws_region: str | None = None
) -> dict[str, Publisher]:
    """One publisher per job kind; cloud SDKs are imported only for the targets configured."""
    publishers: dict[str, Publisher] = {}
    for kind, target in queues.items():
        if target.startswith(("https://", "http://")):
            from shared.queue.sqs import SqsQueue

            publishers[kind] = SqsQueue.create(target, kind=kind, endpoint_url=aws_endpoint_url, region=aws_region)
        elif target.startswith(_PUBSUB_TOPIC):
            from shared.queue.pubsub import PubSubPublisher

            publishers[kind] = PubSubPublisher.create(target)
        else:  # validate_queue_targets refuses these when settings load
            raise ConfigError(f"CONTENTFN_QUEUES: no publisher for the target of {kind!r}")
    return publishers


def relay_outbox(
    queue: JobSource,
    publishers: Mapping[str, Publisher],
    *,
    budget_s: float,
    batch: int = 100,
    lease_s: float = _LEASE_S,
) -> RelayReport:
    """Forward waiting jobs of each publisher's kind until none wait or ``budget_s`` is spent."""
    report = RelayReport()
    deadline = time.monotonic() + budget_s
    for kind, publisher in publishers.items():
        sent = 0
        while True:
            if time.monotonic() >= deadline:
                report.out_of_time = True
                break
            claimed = queue.claim(kind, batch, visibility_s=lease_s)
            if not claimed:
                break
            jobs = [
                NewJob(
                    kind=c.job.kind,
                    payload=c.job.payload,
                    dedup_key=c.job.dedup_key,
                    traceparent=c.job.traceparent,
                    tracestate=c.job.tracestate,
                )
                for c in claimed
            ]
            try:
                publisher.enqueue_many(jobs)
            except (PublishFailed, QueueUnavailable) as exc:
                queue.release(claimed)
                report.failed[kind] = str(exc)
                log.warning("relay of %s jobs stopped after %d sent: %s", kind, sent, exc)
                break
            sent += queue.ack(claimed)
        if sent:
            report.published[kind] = sent
    return report
