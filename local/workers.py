"""Background loops of the local runtime: the bucket watcher, the embed worker and the index keeper."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from functions.embed.backfill import BackfillThrottle, backfill_step, uploads_waiting
from functions.embed.core import run_embed_batch
from functions.embed.index import IndexKeeper, IndexState
from functions.ingest.core import handle_object_created, record_given_up
from functions.ingest.deletion import handle_object_deleted
from shared.blob.base import BlobInfo
from shared.errors import IdempotencyInProgress, TransientError
from shared.events import ObjectCreated, ObjectDeleted
from shared.queue.base import backoff_delay
from shared.services import Services

__all__ = ["BucketWatcher", "EmbedWorker", "IndexWorker"]

log = logging.getLogger(__name__)


class _Loop:
    name = "loop"
    idle_wait_s: float | None = None  # between idle ticks; None: CONTENTFN_WORKER_POLL_S

    def __init__(self, services: Services) -> None:
        self.services = services
        self.failures = 0  # failed iterations in a row; the pause after one grows with it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.tick()
            except Exception as exc:
                self._stop.wait(self._pause_after_failure(exc))
                continue
            if self.failures:
                log.info("%s: resumed after %d failed iterations", self.name, self.failures)
                self.failures = 0
            if not busy:
                self._stop.wait(self.idle_wait_s or self.services.settings.worker_poll_s)

    def _pause_after_failure(self, exc: Exception) -> float:
        """Count a failed iteration and say how long to pause: a database restart or failover fails
        every claim until it is back, and a loop that retried at the poll rate would flood the log
        and the server the moment it returns."""
        settings = self.services.settings
        self.failures += 1
        delay = backoff_delay(self.failures, settings.worker_poll_s, settings.worker_failure_backoff_cap_s)
        if isinstance(exc, TransientError):  # expected during an outage: one line, no trace
            log.warning("%s: %s; retrying in %.1f s", self.name, _error_text(exc), delay)
        else:
            log.exception("%s: iteration failed; retrying in %.1f s", self.name, delay)
        return delay

    def tick(self) -> bool:
        """One unit of work; True if there may be more right away."""
        raise NotImplementedError


@dataclass
class _Failing:
    """Retry state of one object version whose ingest raised."""

    version: str
    attempts: int = 0
    retry_at: float = 0.0  # time.monotonic() before which it is not tried again
    last_error: str = ""
    given_up: bool = False  # attempts are used up; only recording the failure is left to do


class BucketWatcher(_Loop):
    """Turns each new object version in the local bucket folder into an ObjectCreated event (then
    the version it replaced into an ObjectDeleted of that version), and each delivered object that
    is gone from the folder into an ObjectDeleted event of every version.

    An object is delivered once its size and version have been stable for one poll, so a file
    still being copied in is not read half-way. Redelivery after a restart is harmless: the
    ingest function answers it from its idempotency record. Deletions are noticed between polls
    of a running watcher; a file removed while the runtime is down is not.

    One object never holds up the others: each is tried on its own, and one whose ingest raises
    (poison input does not: ingest records and refuses it itself) is tried again after a capped,
    jittered exponential backoff while the rest go on. After ``bucket_max_attempts`` tries it is
    recorded as failed in the ledger and the dead-letter store and passed over until a new version
    of it appears.
    """

    name = "bucket-watcher"

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self._pending: dict[str, str] = {}
        self._delivered: dict[str, str] = {}
        self._failing: dict[str, _Failing] = {}

    def tick(self) -> bool:
        bucket = self.services.settings.bucket
        (self.services.settings.buckets_dir / bucket).mkdir(parents=True, exist_ok=True)
        present: set[str] = set()
        for info in self.services.blob.list(bucket):
            present.add(info.key)
            version = info.generation or ""
            if self._delivered.get(info.key) == version:
                continue
            if self._pending.get(info.key) != version:
                self._pending[info.key] = version  # seen once; deliver when unchanged next poll
                continue
            if self._deliver(info, version):
                replaced = self._delivered.get(info.key)
                self._delivered[info.key] = version
                self._pending.pop(info.key, None)
                self._failing.pop(info.key, None)
                if replaced is not None:
                    # A rewritten file replaces its old version, as a GCS overwrite deletes the old
                    # generation: the tracks only the old version held go.
                    self._delete(bucket, info.key, replaced)
        self._deliver_deletions(bucket, present)
        return False

    def _deliver_deletions(self, bucket: str, present: set[str]) -> None:
        for key in [k for k in self._pending if k not in present]:
            del self._pending[key]  # gone before it was ever delivered: nothing to undo
            self._failing.pop(key, None)
        for key in [k for k in self._delivered if k not in present]:
            if self._delete(bucket, key, None):
                del self._delivered[key]

    def _delete(self, bucket: str, key: str, generation: str | None) -> bool:
        """Deliver one deletion (of every version when ``generation`` is None); True once it is done."""
        try:
            event = ObjectDeleted(bucket=bucket, key=key, generation=generation)
        except ValueError:
            return True  # a key no event can hold was never ingested (it was given up on): nothing to undo
        try:
            handle_object_deleted(event, self.services)
        except Exception as exc:  # anything: one deletion must not stop the watcher; retried next poll
            log.warning("deletion of %s failed: %s", ascii(key), _error_text(exc))
            return False
        return True

    def _deliver(self, info: BlobInfo, version: str) -> bool:
        """Try one object version now if its backoff allows; True once it needs no more tries."""
        failing = self._failing.get(info.key)
        if failing is not None and failing.version != version:
            failing = None  # a new version starts with fresh attempts
            del self._failing[info.key]
        now = time.monotonic()
        if failing is not None and now < failing.retry_at:
            return False
        if failing is not None and failing.given_up:
            return self._record_given_up(info, failing)
        try:
            # Inside the try: even a key the event cannot hold (not valid text) is this object's failure.
            event = ObjectCreated(bucket=info.bucket, key=info.key, size=info.size, generation=version)
            handle_object_created(event, self.services)
        except IdempotencyInProgress:
            # Another delivery holds the claim (or a crashed run did, until it expires): not a failure
            # of this object, so no attempt is counted.
            retry_at = now + self.services.settings.bucket_backoff_base_s
            self._failing.setdefault(info.key, _Failing(version)).retry_at = retry_at
            return False
        except Exception as exc:  # anything: a parser crash must not stop the watcher
            return self._failed(info, version, failing, exc)
        return True

    def _failed(self, info: BlobInfo, version: str, failing: _Failing | None, exc: Exception) -> bool:
        settings = self.services.settings
        if failing is None:
            failing = self._failing[info.key] = _Failing(version)
        failing.attempts += 1
        failing.last_error = _error_text(exc)
        shown = ascii(info.key)  # the key may not be printable text
        if failing.attempts >= settings.bucket_max_attempts:
            failing.given_up = True
            log.warning("ingest of %s failed (attempt %d, the last)", shown, failing.attempts, exc_info=exc)
            return self._record_given_up(info, failing)
        delay = backoff_delay(failing.attempts, settings.bucket_backoff_base_s, settings.bucket_backoff_cap_s)
        failing.retry_at = time.monotonic() + delay
        log.warning(
            "ingest of %s failed (attempt %d of %d); next try in %.1f s",
            shown,
            failing.attempts,
            settings.bucket_max_attempts,
            delay,
            exc_info=exc,
        )
        return False

    def _record_given_up(self, info: BlobInfo, failing: _Failing) -> bool:
        settings = self.services.settings
        try:
            record_given_up(
                self.services,
                bucket=info.bucket,
                key=info.key,
                generation=failing.version or None,
                size=info.size,
                error=failing.last_error,
                attempts=failing.attempts,
            )
        except Exception:
            # The database may be down: recording is retried at the capped delay, never in a tight loop.
            failing.retry_at = time.monotonic() + settings.bucket_backoff_cap_s
            log.exception("could not record that %s failed; trying again later", ascii(info.key))
            return False
        return True


def _error_text(exc: BaseException) -> str:
    """The exception's type and the first line of its message, short: it goes to the ledger and the DLQ."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0][:300]}" if message else type(exc).__name__


class EmbedWorker(_Loop):
    """Embeds new and changed tracks first; shadow-model backfill gets its share of the turns."""

    name = "embed-worker"

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.throttle = BackfillThrottle(services.settings.embed_backfill_share)

    def tick(self) -> bool:
        uploads = run_embed_batch(self.services).claimed > 0
        if not self.throttle.allow(uploads and uploads_waiting(self.services)):
            return True
        step = backfill_step(self.services)
        return uploads or step is not None


class IndexWorker(_Loop):
    """Builds the model's HNSW index once no bulk backlog is waiting (see functions.embed.index).

    Its own thread, so the embed worker keeps embedding the rest of the backlog during the build.
    """

    name = "index-keeper"
    idle_wait_s = 1.0  # a backlog count a second is plenty to notice that a bulk load has drained

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.keeper = IndexKeeper(services)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self.keeper.cancel()  # an interrupted build leaves an invalid index, dropped on the next start
        self._thread.join(timeout)

    def tick(self) -> bool:
        if not self.keeper.ready and self.keeper.tick() is IndexState.READY:
            log.info("search uses the HNSW index")
        return False
