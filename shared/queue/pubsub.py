"""Google Cloud Pub/Sub queue adapter: publish jobs (attributes, ordering key) and streaming pull
for long-running consumers such as the GPU worker, with bounded in-flight messages.

Push delivery (Cloud Run functions) needs no client: the entry points parse the push envelope
(``shared.envelopes.gcp``) and answer with an HTTP status. The SDK is imported only by ``create``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from shared.envelopes.errors import EnvelopeError
from shared.envelopes.gcp import PubSubMessage, job_from_pubsub
from shared.queue.base import ClaimedJob, FailOutcome, NewJob
from shared.queue.errors import PublishFailed
from shared.queue.sqs import job_message

__all__ = ["OrderingKey", "PubSubPublisher", "PubSubPuller"]

log = logging.getLogger(__name__)

OrderingKey = Callable[[NewJob], str | None]


class PubSubPublisher:
    """Publishes jobs to one topic. Each message carries ``kind`` and ``dedup_key`` as attributes
    (subscriptions filter on them) and an optional ordering key (e.g. one stream's frames in order)."""

    def __init__(
        self, publisher: Any, topic: str, *, ordering_key: OrderingKey | None = None, timeout_s: float = 30.0
    ) -> None:
        self._publisher = publisher
        self.topic = topic
        self._ordering_key = ordering_key
        self.timeout_s = timeout_s

    @classmethod
    def create(cls, topic: str, *, ordering_key: OrderingKey | None = None, **kw: Any) -> PubSubPublisher:
        from google.cloud import pubsub_v1

        options = pubsub_v1.types.PublisherOptions(enable_message_ordering=ordering_key is not None)
        return cls(pubsub_v1.PublisherClient(publisher_options=options), topic, ordering_key=ordering_key, **kw)

    def enqueue_many(self, jobs: Sequence[NewJob]) -> int:
        """Publish and wait for every message id. Raises PublishFailed if any publish failed."""
        pending: list[tuple[NewJob, str, Future[str]]] = []
        for job in jobs:
            key = (self._ordering_key(job) if self._ordering_key else None) or ""
            attrs = {"kind": job.kind}
            if job.dedup_key:
                attrs["dedup_key"] = job.dedup_key
            data = json.dumps(job_message(job), separators=(",", ":")).encode()
            pending.append((job, key, self._publisher.publish(self.topic, data, ordering_key=key, **attrs)))
        failed = 0
        for _, key, future in pending:
            try:
                future.result(timeout=self.timeout_s)
            except Exception as exc:
                failed += 1
                log.warning("publish to %s failed: %s", self.topic, type(exc).__name__)
                if key:
                    # A failed ordered publish pauses its key until resumed; the retry resumes it.
                    self._publisher.resume_publish(self.topic, key)
        if failed:
            raise PublishFailed(f"{failed} of {len(pending)} messages to {self.topic} were not published")
        return len(pending)


class PubSubPuller:
    """Streaming pull with flow control: at most ``max_in_flight`` messages are leased at once, so a
    capped consumer applies backpressure to the subscription instead of buffering without bound.

    ``lease_id`` is the ack id; the library's message object rides in ``ClaimedJob.extra``.
    """

    def __init__(
        self,
        subscriber: Any,
        subscription: str,
        *,
        max_in_flight: int = 2,
        dead_letter: PubSubPublisher | None = None,
    ) -> None:
        self._subscriber = subscriber
        self.subscription = subscription
        self.max_in_flight = max_in_flight
        self._dead_letter = dead_letter

    @classmethod
    def create(cls, subscription: str, **kw: Any) -> PubSubPuller:
        from google.cloud import pubsub_v1

        return cls(pubsub_v1.SubscriberClient(), subscription, **kw)

    def stream(self, handle: Callable[[ClaimedJob], None]) -> Any:
        """Start pulling; ``handle`` runs on the library's threads and must ack or fail each job.

        Returns the library's StreamingPullFuture (``cancel()`` then ``result()`` to stop).
        Malformed messages are dead-lettered here and never reach ``handle``.
        """
        from google.cloud import pubsub_v1

        def on_message(message: Any) -> None:
            claimed = self._claimed(message)
            if claimed is not None:
                handle(claimed)

        flow = pubsub_v1.types.FlowControl(max_messages=self.max_in_flight)
        return self._subscriber.subscribe(self.subscription, callback=on_message, flow_control=flow)

    def _claimed(self, message: Any) -> ClaimedJob | None:
        envelope = PubSubMessage(
            message_id=str(message.message_id),
            data=bytes(message.data),
            attributes=dict(message.attributes),
            publish_time=message.publish_time,
            ordering_key=message.ordering_key or None,
            delivery_attempt=int(message.delivery_attempt or 1),
            subscription=self.subscription,
        )
        try:
            job = job_from_pubsub(envelope)
        except EnvelopeError as exc:
            self._poison(message, str(exc))
            return None
        return ClaimedJob(job=job, lease_id=str(message.ack_id), extra={"message": message})

    def ack(self, claimed: Sequence[ClaimedJob]) -> int:
        for c in claimed:
            c.extra["message"].ack()
        return len(claimed)

    def fail(self, claimed: ClaimedJob, error: str, *, retryable: bool) -> FailOutcome:
        """Retryable: nack; the subscription's retry policy spaces redeliveries (exponential backoff)
        and its dead-letter policy takes over after max attempts. Poison: dead-letter now and ack.

        Not modify_ack_deadline: the library keeps extending leases of unfinished messages, so a
        longer deadline would hold the message rather than schedule a retry.
        """
        message = claimed.extra["message"]
        if not retryable:
            self._poison(message, error)
            return "dead"
        message.nack()
        return "retry"

    def release(self, claimed: Sequence[ClaimedJob]) -> int:
        for c in claimed:
            c.extra["message"].nack()
        return len(claimed)

    def _poison(self, message: Any, error: str) -> None:
        if self._dead_letter is None:
            # No topic to copy to: nack, and the subscription's dead-letter policy moves it.
            message.nack()
            return
        publisher = self._dead_letter._publisher
        attrs = dict(message.attributes) | {"error": error[:1000] or "poison"}
        publisher.publish(self._dead_letter.topic, bytes(message.data), **attrs).result(timeout=30)
        message.ack()
