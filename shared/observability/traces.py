"""One trace per upload: spans from the object event through every job to the LLM call and the
GPU detection batch.

The tracer is this module's own provider, not OpenTelemetry's global one, so a process (or a test)
can point it at another exporter without the set-once global getting in the way. Off by default:
with no exporter configured, spans are non-recording and cost a context switch, yet the trace
context of an incoming job still flows into the jobs it enqueues, so a downstream process that
does export joins the same trace.

Jobs carry the context as W3C ``traceparent`` / ``tracestate`` strings beside their payload
(never inside it: dedup keys and payload models ignore them); queue adapters copy them into
message attributes and the Postgres outbox row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "SpanKind",
    "Traced",
    "configure_tracing",
    "current_ids",
    "flush_traces",
    "job_span",
    "record_failure",
    "span",
    "trace_context",
    "tracing_enabled",
]

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_TRACES_PATH = "/v1/traces"
_INSTRUMENTATION = "contentfn"

_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()
_provider: Any = None  # the SDK TracerProvider while tracing is on
_tracer: trace.Tracer = trace.NoOpTracer()


class Traced(Protocol):
    """What carries a trace context across a queue: a job (``shared.events.Job``, ``NewJob``)."""

    @property
    def traceparent(self) -> str | None: ...

    @property
    def tracestate(self) -> str | None: ...


def configure_tracing(
    service: str,
    endpoint: str | None,
    *,
    sample_ratio: float = 1.0,
    headers: Mapping[str, str] | None = None,
    attributes: Mapping[str, str] | None = None,
) -> bool:
    """Export this process's spans to ``endpoint`` (OTLP/HTTP; ``/v1/traces`` is added unless
    given); None turns exporting off. Returns whether spans are now exported.

    Sampling is decided once per trace at its root (``sample_ratio`` of them) and followed by
    every stage after it through the ``sampled`` flag of ``traceparent``, so a trace is either
    whole or absent.
    """
    global _provider, _tracer
    with _lock:
        old = _provider
        _provider, _tracer = None, trace.NoOpTracer()
        if old is not None:
            old.shutdown()
        if not endpoint:
            return False
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        url = endpoint if endpoint.rstrip("/").endswith(_TRACES_PATH) else endpoint.rstrip("/") + _TRACES_PATH
        resource = Resource.create({"service.name": service, **(attributes or {})})
        provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url, headers=dict(headers or {}))))
        _provider, _tracer = provider, provider.get_tracer(_INSTRUMENTATION)
    log.info("exporting traces to %s (sampling %.3g)", url, sample_ratio)
    return True


def tracing_enabled() -> bool:
    return _provider is not None


def flush_traces(timeout_ms: int = 5000) -> None:
    """Send the spans still buffered: a function instance may be frozen right after it answers."""
    provider = _provider
    if provider is not None:
        provider.force_flush(timeout_ms)


def _context_of(traceparent: str | None, tracestate: str | None) -> Context | None:
    if not traceparent:
        return None
    carrier = {TRACEPARENT: traceparent}
    if tracestate:
        carrier[TRACESTATE] = tracestate
    ctx = _propagator.extract(carrier)
    # A malformed header yields an invalid span: start a new trace rather than join nothing.
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Traced | None = None,
    links: Sequence[Traced] = (),
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A span around a block; ``parent``: a job whose trace it continues (else the current span).

    An exception ends the span with an error status and propagates unchanged.
    """
    ctx = _context_of(parent.traceparent, parent.tracestate) if parent is not None else None
    span_links = [
        Link(trace.get_current_span(c).get_span_context())
        for c in (_context_of(t.traceparent, t.tracestate) for t in links)
        if c is not None
    ]
    clean = {k: v for k, v in (attributes or {}).items() if v is not None}
    with _tracer.start_as_current_span(
        name, context=ctx, kind=kind, links=span_links, attributes=clean, record_exception=True
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def job_span(name: str, jobs: Sequence[Traced], *, attributes: Mapping[str, Any] | None = None) -> Any:
    """A consumer span over one job or a batch: the first job that carries a context is its
    parent (a batch of one upload stays in that upload's trace), the others are links."""
    carrying = [j for j in jobs if j.traceparent]
    parent = carrying[0] if carrying else None
    return span(name, kind=SpanKind.CONSUMER, parent=parent, links=carrying[1:], attributes=attributes)


def record_failure(exc: BaseException) -> None:
    """Mark the current span failed by ``exc`` where the caller handles it (a retried job)."""
    current = trace.get_current_span()
    current.record_exception(exc)
    current.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def trace_context() -> tuple[str | None, str | None]:
    """The current span as (``traceparent``, ``tracestate``), for the jobs enqueued under it."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None, None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT), carrier.get(TRACESTATE) or None


def current_ids() -> tuple[str, str, bool] | None:
    """(trace id, span id, sampled) of the current span in hex, for log records; None outside one."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"), ctx.trace_flags.sampled
