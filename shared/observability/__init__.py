"""Observability of every process: structured logs in each platform's native form and one
OpenTelemetry trace per upload, joined across queue hops by W3C trace context.

- :mod:`shared.observability.traces` — the tracer (OTLP over HTTP, off by default), the ``span``
  helper domain code uses, and the ``traceparent`` carried by jobs;
- :mod:`shared.observability.logs` — JSON log formats (Cloud Logging, JSON lines) and the context
  (function, job, object, trace id) every log record carries.
"""

from shared.observability.logs import configure_logging, log_context
from shared.observability.traces import configure_tracing, flush_traces, job_span, span, trace_context

__all__ = ["configure_logging", "configure_tracing", "flush_traces", "job_span", "log_context", "span", "trace_context"]
