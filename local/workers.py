"""Background loops of the local runtime: the bucket watcher, the embed worker and the index keeper."""

from __future__ import annotations

import logging
import threading

from functions.embed.core import run_embed_batch
from functions.embed.index import IndexKeeper, IndexState
from functions.ingest.core import handle_object_created
from functions.ingest.deletion import handle_object_deleted
from shared.errors import ContentfnError
from shared.events import ObjectCreated, ObjectDeleted
from shared.services import Services

__all__ = ["BucketWatcher", "EmbedWorker", "IndexWorker"]

log = logging.getLogger(__name__)


class _Loop:
    name = "loop"
    idle_wait_s: float | None = None  # between idle ticks; None: CONTENTFN_WORKER_POLL_S

    def __init__(self, services: Services) -> None:
        self.services = services
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
            except Exception:
                log.exception("%s: iteration failed; retrying", self.name)
                busy = False
            if not busy:
                self._stop.wait(self.idle_wait_s or self.services.settings.worker_poll_s)

    def tick(self) -> bool:
        """One unit of work; True if there may be more right away."""
        raise NotImplementedError


class BucketWatcher(_Loop):
    """Turns each new object version in the local bucket folder into an ObjectCreated event (then
    the version it replaced into an ObjectDeleted of that version), and each delivered object that
    is gone from the folder into an ObjectDeleted event of every version.

    An object is delivered once its size and version have been stable for one poll, so a file
    still being copied in is not read half-way. Redelivery after a restart is harmless: the
    ingest function answers it from its idempotency record. Deletions are noticed between polls
    of a running watcher; a file removed while the runtime is down is not.
    """

    name = "bucket-watcher"

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self._pending: dict[str, str] = {}
        self._delivered: dict[str, str] = {}

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
            event = ObjectCreated(bucket=bucket, key=info.key, size=info.size, generation=version)
            try:
                handle_object_created(event, self.services)
            except ContentfnError as exc:
                log.warning("ingest of %s will be retried: %s", info.key, exc)
                continue
            replaced = self._delivered.get(info.key)
            self._delivered[info.key] = version
            self._pending.pop(info.key, None)
            if replaced is not None:
                # A rewritten file replaces its old version, as a GCS overwrite deletes the old
                # generation: the tracks only the old version held go.
                self._delete(ObjectDeleted(bucket=bucket, key=info.key, generation=replaced))
        self._deliver_deletions(bucket, present)
        return False

    def _deliver_deletions(self, bucket: str, present: set[str]) -> None:
        for key in [k for k in self._pending if k not in present]:
            del self._pending[key]  # gone before it was ever delivered: nothing to undo
        for key in [k for k in self._delivered if k not in present]:
            if self._delete(ObjectDeleted(bucket=bucket, key=key)):
                del self._delivered[key]

    def _delete(self, event: ObjectDeleted) -> bool:
        try:
            handle_object_deleted(event, self.services)
        except ContentfnError as exc:
            log.warning("deletion of %s failed: %s", event.key, exc)
            return False
        return True


class EmbedWorker(_Loop):
    name = "embed-worker"

    def tick(self) -> bool:
        return run_embed_batch(self.services).claimed > 0


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
