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
from shared.queue.base import ClaimedJob, FailOutcome, NewJob, backoff_delay, trace_attributes
from shared.queue.errors import PublishFailed, QueueUnavailable
from shared.queue.sqs import job_message

__all__ = ["PRIOR_ATTEMPTS", "OrderingKey", "PubSubPublisher", "PubSubPullQueue", "PubSubPuller", "subscriber_client"]

log = logging.getLogger(__name__)

OrderingKey = Callable[[NewJob], str | None]


def subscriber_client() -> Any:
    """A Pub/Sub SubscriberClient (unary pull and acknowledge) with the platform's credentials."""
    from google.cloud import pubsub_v1

    return pubsub_v1.SubscriberClient()


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
            attrs |= trace_attributes(job)
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
        envelope = _envelope(message, int(message.delivery_attempt or 1), self.subscription)
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


class PubSubPullQueue:
    """The claim-style Queue port over one subscription, by synchronous pull (the GPU worker's loop).

    ``claim`` pulls up to ``limit`` messages and sets their ack deadline to the lease; ``ack``
    acknowledges; a retryable ``fail`` sets the deadline to the backoff delay, so the message comes
    back once it has passed (the subscription's dead-letter policy counts the deliveries); a poison
    message is copied to the dead-letter topic when one is configured and acknowledged, otherwise
    nacked for the dead-letter policy.

    ``release`` must not spend a delivery attempt, but a nack (deadline 0) counts as one for the
    subscription's dead-letter policy. With ``republish`` (a publisher on the subscription's own
    topic) a released message is published again carrying the attempts it had spent before
    (``prior_attempts``) and the received one is acknowledged: a job's attempts are its prior
    attempts plus the delivery attempt. The dead-letter policy then counts only the new message's
    deliveries, so a retryable failure that reaches ``max_attempts`` in all is dead-lettered here.
    Without ``republish``, a release nacks and spends the attempt. Pub/Sub tells the backlog of
    a subscription only through Cloud Monitoring: ``depth`` reads it there (minutes behind; -1 when
    it cannot be read), or from ``backlog`` when one is given.
    """

    def __init__(
        self,
        subscriber: Any,
        subscription: str,
        *,
        kind: str,
        visibility_s: float = 120.0,
        backoff_base_s: float = 2.0,
        backoff_cap_s: float = 300.0,
        pull_timeout_s: float = 5.0,
        dead_letter: PubSubPublisher | None = None,
        backlog: Any = None,
        republish: PubSubPublisher | None = None,
        max_attempts: int | None = None,
    ) -> None:
        self._subscriber = subscriber
        self._republish = republish
        self.max_attempts = max_attempts
        self._backlog = backlog
        self.subscription = subscription
        self.kind = kind
        self.visibility_s = visibility_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.pull_timeout_s = pull_timeout_s
        self._dead_letter = dead_letter

    @classmethod
    def create(cls, subscription: str, *, kind: str, **kw: Any) -> PubSubPullQueue:
        from google.cloud import pubsub_v1

        return cls(pubsub_v1.SubscriberClient(), subscription, kind=kind, **kw)

    def claim(self, kind: str, limit: int, *, visibility_s: float | None = None) -> list[ClaimedJob]:
        if kind != self.kind:
            raise ValueError(f"this subscription carries {self.kind!r} jobs, not {kind!r}")
        request = {"subscription": self.subscription, "max_messages": max(1, min(_MAX_PULL, limit))}
        try:
            response = self._call("pull", request=request, timeout=self.pull_timeout_s)
        except _Empty:
            return []
        claimed: list[ClaimedJob] = []
        for received in response.received_messages:
            attempt = int(received.delivery_attempt or 1)
            envelope = _envelope(received.message, attempt, self.subscription)
            try:
                job = job_from_pubsub(envelope)
            except EnvelopeError as exc:
                self._poison(str(received.ack_id), envelope, str(exc))
                continue
            prior = _prior_attempts(envelope.attributes)
            if prior:
                job = job.model_copy(update={"attempts": job.attempts + prior})
            claimed.append(ClaimedJob(job=job, lease_id=str(received.ack_id), extra={"envelope": envelope}))
        if claimed:
            lease = visibility_s if visibility_s is not None else self.visibility_s
            self._deadline([c.lease_id for c in claimed], lease)
        return claimed

    def ack(self, claimed: Sequence[ClaimedJob]) -> int:
        if claimed:
            request = {"subscription": self.subscription, "ack_ids": [c.lease_id for c in claimed]}
            self._call("acknowledge", request=request)
        return len(claimed)

    def fail(self, claimed: ClaimedJob, error: str, *, retryable: bool) -> FailOutcome:
        if not retryable:
            self._poison(claimed.lease_id, claimed.extra.get("envelope"), error)
            return "dead"
        if self.max_attempts is not None and claimed.job.attempts >= self.max_attempts:
            # The dead-letter policy counts only this message's deliveries, not those before a release.
            error = f"gave up after {claimed.job.attempts} attempts: {error}"
            self._poison(claimed.lease_id, claimed.extra.get("envelope"), error)
            return "dead"
        self._deadline([claimed.lease_id], backoff_delay(claimed.job.attempts, self.backoff_base_s, self.backoff_cap_s))
        return "retry"

    def release(self, claimed: Sequence[ClaimedJob]) -> int:
        """Give jobs back without spending an attempt (see the class); a job that cannot be
        published again is nacked instead. Returns how many were given back."""
        if not claimed:
            return 0
        nack = [c.lease_id for c in claimed]
        if self._republish is not None:
            pending = []
            for c in claimed:
                envelope: PubSubMessage | None = c.extra.get("envelope")
                if envelope is None:
                    continue
                attrs = {k: v for k, v in envelope.attributes.items() if k != PRIOR_ATTEMPTS}
                attrs[PRIOR_ATTEMPTS] = str(max(0, c.job.attempts - 1))  # this delivery was given back unused
                key = envelope.ordering_key or ""
                try:
                    future = self._republish._publisher.publish(
                        self._republish.topic, envelope.data, ordering_key=key, **attrs
                    )
                except Exception as exc:  # e.g. an ordering key on a publisher without ordering
                    log.warning("republishing released job %s failed: %s", c.id, type(exc).__name__)
                    continue
                pending.append((c, future))
            republished = []
            for c, future in pending:
                try:
                    future.result(timeout=self._republish.timeout_s)
                    republished.append(c.lease_id)
                except Exception as exc:
                    log.warning("republishing released job %s failed: %s", c.id, type(exc).__name__)
            if republished:
                self._call("acknowledge", request={"subscription": self.subscription, "ack_ids": republished})
            nack = [a for a in nack if a not in set(republished)]
        if nack:
            self._deadline(nack, 0)
        return len(claimed)

    def depth(self, kind: str | None = None) -> int:
        """The subscription's backlog as Cloud Monitoring last sampled it; -1 when it cannot be read."""
        try:
            if self._backlog is None:
                from shared.queue.backlog import SubscriptionBacklog

                self._backlog = SubscriptionBacklog.create(self.subscription)
            return self._backlog.depth()
        except Exception as exc:
            log.debug("backlog of %s unknown: %s", self.subscription, type(exc).__name__)
            return -1

    def dead_count(self, kind: str | None = None) -> int:
        return -1

    def _deadline(self, ack_ids: list[str], seconds: float) -> None:
        request = {
            "subscription": self.subscription,
            "ack_ids": ack_ids,
            "ack_deadline_seconds": int(min(_MAX_ACK_DEADLINE_S, max(0.0, seconds))),
        }
        self._call("modify_ack_deadline", request=request)

    def _poison(self, ack_id: str, envelope: PubSubMessage | None, error: str) -> None:
        if self._dead_letter is None or envelope is None:
            self._deadline([ack_id], 0)  # the subscription's dead-letter policy moves it after max attempts
            return
        attrs = dict(envelope.attributes) | {"error": error[:1000] or "poison"}
        try:
            self._dead_letter._publisher.publish(self._dead_letter.topic, envelope.data, **attrs).result(timeout=30)
        except Exception as exc:
            raise QueueUnavailable(f"dead-letter publish failed: {type(exc).__name__}") from exc
        self._call("acknowledge", request={"subscription": self.subscription, "ack_ids": [ack_id]})

    def _call(self, operation: str, **params: Any) -> Any:
        try:
            return getattr(self._subscriber, operation)(**params)
        except Exception as exc:
            module = type(exc).__module__
            if operation == "pull" and type(exc).__name__ == "DeadlineExceeded":
                raise _Empty from exc  # a pull that found nothing before its timeout
            if module.startswith(("google.api_core", "grpc")):
                raise QueueUnavailable(f"Pub/Sub {operation} failed: {type(exc).__name__}") from exc
            raise


class _Empty(Exception):
    pass


_MAX_PULL = 1000
PRIOR_ATTEMPTS = "prior_attempts"  # message attribute: attempts spent before a release republished it


def _prior_attempts(attributes: dict[str, str]) -> int:
    try:
        return max(0, int(attributes.get(PRIOR_ATTEMPTS, "0")))
    except ValueError:
        return 0


_MAX_ACK_DEADLINE_S = 600


def _envelope(message: Any, delivery_attempt: int, subscription: str) -> PubSubMessage:
    return PubSubMessage(
        message_id=str(message.message_id),
        data=bytes(message.data),
        attributes=dict(message.attributes),
        publish_time=message.publish_time,
        ordering_key=message.ordering_key or None,
        delivery_attempt=delivery_attempt,
        subscription=subscription,
    )
