"""What every cloud entry point shares: its settings, one ``Services`` per process built on the
first event (not at import, so importing a handler stays cheap and testable), and the dead-letter
record for envelopes that can never be processed.

Cloud SDKs are imported here only inside :func:`build_blob`, for the backend actually chosen.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator

from shared.blob.base import Blob
from shared.config import ENV_PREFIX, Settings, check_settings
from shared.errors import ConfigError
from shared.observability import configure_logging, configure_tracing, flush_traces
from shared.services import Services
from shared.store.db import Database

if TYPE_CHECKING:
    from shared.queue.relay import RelayReport

__all__ = [
    "MIN_CLOUD_API_KEY_CHARS",
    "Cloud",
    "EntrySettings",
    "FunctionRuntime",
    "build_blob",
    "check_cloud_api_key",
    "load_entry_settings",
    "payload_digest",
    "record_poison",
]

log = logging.getLogger(__name__)

Cloud = Literal["aws", "gcp", "local"]
BlobBackend = Literal["local", "s3", "gcs"]
_DEFAULT_BLOB: dict[Cloud, BlobBackend] = {"aws": "s3", "gcp": "gcs", "local": "local"}
_MAX_STORED_ENVELOPE = 64 * 1024
# 32 characters of a random key are ≥ 160 bits in any common alphabet (hex, base64): beyond guessing.
MIN_CLOUD_API_KEY_CHARS = 32
_F = TypeVar("_F", bound=Callable[..., Any])


class EntrySettings(Settings):
    """Settings plus the knobs only cloud entry points read (same ``CONTENTFN_`` prefix)."""

    blob_backend: BlobBackend | None = Field(
        default=None,
        description=(
            "Object store of ObjectCreated events; unset means the cloud's own (S3 on AWS, GCS on GCP; the GPU"
            " service: the store beside its queue, S3 beside SQS, Cloud Storage beside Pub/Sub; Terraform sets it)."
            " `local` serves `make invoke` against the local stack's bucket folder."
        ),
    )
    gcs_endpoint: str | None = Field(
        default=None, description="Endpoint of an emulator (fake-gcs-server); unset in the cloud."
    )
    gcp_project: str | None = Field(default=None, description="Project of the Cloud Storage client.")
    migrate_on_start: bool = Field(
        default=True,
        description=(
            "Pending migrations are applied by the first process to start (an advisory lock serialises them):"
            " the cloud databases are private. false: run `contentfn db migrate` from inside the VPC."
        ),
    )
    queues: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Job kind → SQS queue URL or Pub/Sub topic (JSON; Terraform sets it from `publishes_to`). Jobs of"
            " these kinds are relayed from the Postgres outbox after each invocation (shared.queue.relay)."
        ),
    )
    relay_budget_s: float = Field(default=20.0, gt=0, description="Time one invocation may spend relaying.")
    metrics_otlp_endpoint: str | None = Field(
        default=None,
        description=(
            "GCP: OTLP/HTTP metrics endpoint the functions push their metrics to (Cloud Monitoring's"
            " `https://telemetry.googleapis.com/v1/metrics`, read by Managed Prometheus, or a collector's);"
            " unset: not pushed. AWS functions write EMF to their log instead and need no endpoint."
        ),
    )
    metrics_push_interval_s: float = Field(
        default=10.0, ge=0, description="GCP: least seconds between two metric pushes of one instance."
    )
    queue_backlogs: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Job kind → Pub/Sub subscription whose backlog Cloud Monitoring reports (JSON; Terraform sets it):"
            " what waits there counts for admission (detect) and for index deferral (embed). SQS queues report"
            " their own depth and need no entry."
        ),
    )

    @field_validator("queue_backlogs")
    @classmethod
    def _backlog_subscriptions(cls, value: dict[str, str]) -> dict[str, str]:
        from shared.queue.backlog import validate_subscriptions

        return validate_subscriptions(value)

    @field_validator("queues")
    @classmethod
    def _queue_targets(cls, value: dict[str, str]) -> dict[str, str]:
        from shared.queue.relay import validate_queue_targets

        return validate_queue_targets(value)


def load_entry_settings(**overrides: Any) -> EntrySettings:
    """Like :func:`shared.config.load_settings`: one ConfigError naming each bad variable."""
    try:
        settings = EntrySettings(**overrides)
    except ValidationError as exc:
        problems = [
            f"{ENV_PREFIX}{'.'.join(str(p) for p in err['loc']).upper() or '?'}: {err['msg']}" for err in exc.errors()
        ]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    check_settings(settings)
    return settings


def build_blob(settings: EntrySettings, cloud: Cloud) -> Blob:
    backend = settings.blob_backend or _DEFAULT_BLOB[cloud]
    if backend == "s3":
        from shared.blob.s3 import S3Blob

        return S3Blob.create(endpoint_url=settings.aws_endpoint_url, region=settings.aws_region)
    if backend == "gcs":
        from shared.blob.gcs import GcsBlob

        return GcsBlob.create(project=settings.gcp_project, endpoint=settings.gcs_endpoint)
    from shared.blob.local import LocalBlob

    return LocalBlob(settings.buckets_dir)


class FunctionRuntime:
    """Per-process state of one function's entry point on one cloud."""

    def __init__(
        self, function: str, cloud: Cloud, *, settings: EntrySettings | None = None, serves_http: bool = False
    ) -> None:
        """``serves_http``: the function answers HTTP requests, so in a cloud it must hold a strong key."""
        self.function = function
        self.cloud = cloud
        self.serves_http = serves_http
        self._settings = settings
        self._services: Services | None = None
        self._publishers: dict[str, Any] | None = None
        self._backlogs: dict[str, Any] = {}  # subscription → SubscriptionBacklog
        self._metrics_sink: Any = None  # EmfEmitter (AWS) or OtlpPusher (GCP), made on first flush
        self._lock = threading.Lock()

    @property
    def settings(self) -> EntrySettings:
        if self._settings is None:
            if self.cloud == "aws":
                from shared.secrets import resolve_aws_secret_ids

                resolve_aws_secret_ids()
            settings = load_entry_settings()
            if self.serves_http:
                settings = settings.for_serving_http()
                if self.cloud != "local":
                    check_cloud_api_key(settings)
            self._settings = settings
        return self._settings

    @property
    def services(self) -> Services:
        """Built on first use and kept for the life of the process (warm invocations reuse the pool)."""
        if self._services is None:
            with self._lock:
                if self._services is None:
                    s = self.settings
                    self.observe(s)
                    services = Services.from_settings(s, migrate=s.migrate_on_start, blob=build_blob(s, self.cloud))
                    if s.queues or s.queue_backlogs:
                        services.remote_backlog = self._remote_backlog
                    self._services = services
        return self._services

    @property
    def service_name(self) -> str:
        return f"contentfn-{self.function}"

    def observe(self, settings: Settings) -> None:
        """Logs in the platform's native form and the span exporter, once per set of services.

        GCP reads JSON entries from stdout; on AWS, Powertools' Logger formats (its handler gets the
        context filter where the entry point builds it); the local runtime keeps its console.
        """
        if self.cloud == "gcp":
            project = getattr(settings, "gcp_project", None) or os.environ.get("GOOGLE_CLOUD_PROJECT")
            configure_logging("gcp", self.service_name, level=settings.log_level, project=project)
        else:
            logging.getLogger().setLevel(settings.log_level)
        configure_tracing(
            self.service_name,
            settings.otel_exporter_endpoint,
            sample_ratio=settings.otel_sample_ratio,
            attributes={"cloud.provider": self.cloud, "faas.name": self.function},
        )

    def use(self, services: Services) -> None:
        """Inject ready-made services (tests, the local runtime)."""
        with self._lock:
            self._services = services

    def close(self) -> None:
        """Close the services and forget the settings: the next event re-reads the environment."""
        with self._lock:
            if self._services is not None:
                self._services.close()
                self._services = None
            self._settings = None
            self._publishers = None
            self._backlogs = {}

    def relaying(self, handler: _F) -> _F:
        """Decorate an entry point so that it relays the jobs it committed once it returns, then
        reports the invocation's metrics."""

        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            finally:
                self.relay()
                self.flush_metrics()
                # The instance may be frozen (Lambda) or throttled (Cloud Run) once it answers.
                flush_traces()

        return wrapper  # type: ignore[return-value]

    def flush_metrics(self) -> None:
        """The metrics this invocation changed, in the cloud's form: EMF on AWS, OTLP on GCP (when
        ``CONTENTFN_METRICS_OTLP_ENDPOINT`` is set). Never raises: metrics must not fail a job."""
        try:
            sink = self._metrics_sink
            if sink is None:
                sink = self._metrics_sink = self._make_metrics_sink()
            if sink and self.cloud == "aws":
                sink.emit()
            elif sink:
                sink.push()
        except Exception as exc:
            log.warning("metrics of %s not reported: %s: %s", self.function, type(exc).__name__, exc)

    def report_store_metrics(self, *, force: bool = True) -> None:
        """The store's figures — outbox depth and age by kind, dead letters, today's LLM budget —
        reported by scheduled drains (a few queries a minute), since no one scrapes a function.
        ``force=False``: on GCP, at most once per push interval. Never raises."""
        try:
            from prometheus_client import CollectorRegistry

            from shared.metrics.export import Deltas
            from shared.metrics.state import watch_store
            from shared.platform.metrics import EmfEmitter

            registry = CollectorRegistry(auto_describe=False)
            watch_store(registry, self.services.db, self.settings.llm_daily_token_budget)
            if self.cloud == "aws":
                EmfEmitter(self.function, deltas=Deltas(registry)).emit()
                return
            sink = self._metrics_sink if self._metrics_sink is not None else self._make_metrics_sink()
            self._metrics_sink = sink
            if sink:
                sink.push(force=force, registry=registry)
        except Exception as exc:
            log.warning("store metrics of %s not reported: %s: %s", self.function, type(exc).__name__, exc)

    def _make_metrics_sink(self) -> Any:
        from shared.platform.metrics import EmfEmitter
        from shared.platform.metrics_gcp import OtlpPusher

        if self.cloud == "aws":
            return EmfEmitter(self.function)
        endpoint = self.settings.metrics_otlp_endpoint
        if self.cloud != "gcp" or not endpoint:
            return False  # nothing to report to: remembered, so the check is not repeated
        resource = {"service.name": f"contentfn-{self.function}", "service.instance.id": uuid.uuid4().hex}
        return OtlpPusher(endpoint, resource, interval_s=self.settings.metrics_push_interval_s)

    def _publishers_for_queues(self) -> dict[str, Any]:
        if self._publishers is None:
            from shared.queue.relay import publishers_for

            settings = self.settings
            self._publishers = publishers_for(
                settings.queues, aws_endpoint_url=settings.aws_endpoint_url, aws_region=settings.aws_region
            )
        return self._publishers

    def _remote_backlog(self, kind: str) -> int:
        """Messages of ``kind`` waiting in its cloud queue: SQS tells its own depth, a Pub/Sub
        subscription named in ``CONTENTFN_QUEUE_BACKLOGS`` is read from Cloud Monitoring; else 0."""
        publisher = self._publishers_for_queues().get(kind)
        depth = getattr(publisher, "depth", None)
        reader = (lambda: depth(kind)) if depth is not None else self.backlog_of(kind)
        if reader is None:
            return 0
        try:
            return max(0, int(reader()))
        except Exception as exc:  # admission then sees only the Postgres backlog
            log.warning("could not read the depth of the %s queue: %s", kind, type(exc).__name__)
            return 0

    def backlog_of(self, kind: str) -> Callable[[], int] | None:
        """A reader of the Pub/Sub backlog of ``kind`` (``CONTENTFN_QUEUE_BACKLOGS``); None if not set."""
        subscription = self.settings.queue_backlogs.get(kind)
        if not subscription:
            return None
        with self._lock:
            reader = self._backlogs.get(subscription)
            if reader is None:
                from shared.queue.backlog import SubscriptionBacklog

                reader = self._backlogs[subscription] = SubscriptionBacklog.create(subscription)
        return reader.depth

    def relay(self) -> RelayReport | None:
        """Forward this function's freshly committed jobs to the cloud queues (``CONTENTFN_QUEUES``).

        Called after the function's own work has committed; never raises: what is not sent now
        waits in Postgres for the next invocation (a failure is logged and reported).
        """
        try:
            settings = self.settings
        except Exception:  # the handler has met (and reported) the same configuration error
            return None
        if not settings.queues:
            return None
        from shared.queue.postgres import PgQueue
        from shared.queue.relay import RelayReport, relay_outbox

        try:
            publishers = self._publishers_for_queues()
            queue = self.services.queue
            if not isinstance(queue, PgQueue):
                return None
            report = relay_outbox(queue, publishers, budget_s=settings.relay_budget_s)
        except Exception as exc:  # the function's own work is committed; the jobs wait in Postgres
            log.warning("relay to the cloud queues failed: %s: %s", type(exc).__name__, exc)
            return RelayReport(failed={"*": f"{type(exc).__name__}: {exc}"})
        if report.published or report.failed:
            log.info("relayed jobs to the cloud queues", extra={"relay": report.as_dict()})
        return report

    def poison(self, error: Exception | str, envelope: Any, *, delivery_id: str) -> bool:
        """Record an envelope that can never be processed; True if this delivery was new."""
        recorded = record_poison(
            self.services.db,
            kind=self.function,
            envelope=envelope,
            error=str(error),
            dedup_key=f"{self.function}:{self.cloud}:{delivery_id}",
        )
        log.warning("dead-lettered %s delivery %s: %s", self.function, delivery_id, error)
        return recorded


def check_cloud_api_key(settings: Settings) -> None:
    """Refuse to serve HTTP in a cloud with no key or a guessable one.

    Without ``CONTENTFN_API_KEY`` the API would take no key at all (the local runtime's default), and
    the key is the admin-scoped key named ``env``: a short one would open every admin route to guessing.
    """
    key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    if len(key) < MIN_CLOUD_API_KEY_CHARS:
        raise ConfigError(
            f"invalid configuration: {ENV_PREFIX}API_KEY must be set to a random key of at least"
            f" {MIN_CLOUD_API_KEY_CHARS} characters in a cloud runtime (it is {'empty' if not key else 'too short'})"
        )


def record_poison(db: Database, *, kind: str, envelope: Any, error: str, dedup_key: str) -> bool:
    """Insert into ``dead_jobs`` unless this delivery is already there (redeliveries add nothing)."""
    payload = _storable(envelope)
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (dedup_key,))
        cur.execute(
            """
            INSERT INTO dead_jobs (job_id, kind, payload, dedup_key, attempts, last_error, retryable, created_at)
            SELECT NULL, %s, %s::jsonb, %s, 1, %s, false, now()
            WHERE NOT EXISTS (SELECT 1 FROM dead_jobs WHERE dedup_key = %s)
            """,
            (kind, json.dumps(payload), dedup_key, error[:2000], dedup_key),
        )
        added = cur.rowcount == 1
        conn.commit()
    return added


def payload_digest(payload: Any) -> str:
    """A stable id for a delivery that carries none of its own (same payload ⇒ same id)."""
    text = json.dumps(payload, sort_keys=True, default=str) if not isinstance(payload, bytes | str) else payload
    raw = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:32]


def _storable(envelope: Any) -> dict[str, Any]:
    """The envelope as JSON for inspection, cut to a bounded size (with a digest of the whole)."""
    if isinstance(envelope, bytes | bytearray):
        text = bytes(envelope).decode("utf-8", errors="replace")
    elif isinstance(envelope, str):
        text = envelope
    else:
        text = json.dumps(envelope, default=str, ensure_ascii=False)
    if len(text) > _MAX_STORED_ENVELOPE:
        digest = hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()
        return {"envelope_truncated": text[:4096], "chars": len(text), "sha256": digest}
    if isinstance(envelope, Mapping | list):
        return {"envelope": json.loads(text)}  # bytes and other odd values already made text
    return {"envelope_text": text}
