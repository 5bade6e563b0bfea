"""Structured logs in the form each platform reads natively, each record naming the function or
service, the job or object it concerns, and the trace it belongs to.

- ``gcp``: one JSON object per line on stdout with Cloud Logging's special fields (``severity``,
  ``message``, ``logging.googleapis.com/trace``, ``.../spanId``, ``.../trace_sampled``), so the
  log explorer shows severities and links each line to its trace;
- ``json``: JSON lines with ``severity`` and ``trace_id`` (the GPU worker, any log shipper);
- ``console``: the readable lines of the local runtime, left as they are configured;
- on AWS, Powertools' Logger formats; :class:`ContextFilter` on its handler adds the same keys.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from shared.observability.traces import current_ids

__all__ = [
    "CloudLoggingFormatter",
    "ContextFilter",
    "JsonLinesFormatter",
    "LogStyle",
    "configure_logging",
    "log_context",
    "remove_installed_handler",
]

LogStyle = Literal["gcp", "json", "console"]

_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "contentfn_log_context", default=None
)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` or a filter.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
_OWN = frozenset({"trace_id", "span_id", "trace_sampled", "service"})
_GCP_TRACE = "logging.googleapis.com/trace"
_GCP_SPAN = "logging.googleapis.com/spanId"
_GCP_SAMPLED = "logging.googleapis.com/trace_sampled"
_GCP_SOURCE = "logging.googleapis.com/sourceLocation"
# Cloud Logging's LogSeverity names for Python's levels.
_SEVERITY = {"WARNING": "WARNING", "CRITICAL": "CRITICAL", "ERROR": "ERROR", "INFO": "INFO", "DEBUG": "DEBUG"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Name what the records logged inside concern (``job=``, ``kind=``, ``object=``, ...)."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Adds the service, the trace and span ids of the current span and the :func:`log_context`
    fields to each record (a context field never overrides what the call passed in ``extra``)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        # Set, not defaulted: one record passes every root handler, each with its own filter.
        record.service = self.service
        ids = current_ids()
        if ids is not None:
            record.trace_id, record.span_id, record.trace_sampled = ids
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k not in _OWN and not k.startswith("_")}


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z")


def _message(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info:
        message = f"{message}\n{formatter.formatException(record.exc_info)}"
    return message


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, default=str, ensure_ascii=False, separators=(",", ":"))


class CloudLoggingFormatter(logging.Formatter):
    """One Cloud Logging structured entry per record (the agent of Cloud Run reads stdout)."""

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": _message(self, record),
            "time": _time(record),
            "logger": record.name,
            "service": getattr(record, "service", None),
            _GCP_SOURCE: {"file": record.pathname, "line": record.lineno, "function": record.funcName},
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            # The explorer links an entry to Cloud Trace only through the project-qualified name.
            doc[_GCP_TRACE] = f"projects/{self.project}/traces/{trace_id}" if self.project else trace_id
            doc[_GCP_SPAN] = getattr(record, "span_id", None)
            doc[_GCP_SAMPLED] = bool(getattr(record, "trace_sampled", False))
        doc.update(_extras(record))
        return _dumps(doc)


class JsonLinesFormatter(logging.Formatter):
    """A JSON object per line with ``severity``, ``message``, ``service`` and ``trace_id``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _time(record),
            "severity": record.levelname,
            "message": _message(self, record),
            "logger": record.name,
            "service": getattr(record, "service", None),
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            doc["trace_id"] = trace_id
            doc["span_id"] = getattr(record, "span_id", None)
        doc.update(_extras(record))
        return _dumps(doc)


class _StdoutHandler(logging.StreamHandler[Any]):
    """Writes to ``sys.stdout`` as it is when each record is emitted (a test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


_installed: logging.Handler | None = None


def configure_logging(
    style: LogStyle, service: str, *, level: str = "INFO", project: str | None = None, stream: Any = None
) -> logging.Handler | None:
    """Route the root logger's records through one handler of ``style`` on stdout (or ``stream``),
    replacing the one an earlier call installed; ``console`` only adds the context filter to the
    handlers already there."""
    global _installed
    root = logging.getLogger()
    root.setLevel(level)
    context = ContextFilter(service)
    if style == "console":
        for existing in root.handlers:
            if not any(isinstance(f, ContextFilter) for f in existing.filters):
                existing.addFilter(context)
        return None
    handler = logging.StreamHandler(stream) if stream is not None else _StdoutHandler()
    handler.setFormatter(CloudLoggingFormatter(project) if style == "gcp" else JsonLinesFormatter())
    handler.addFilter(context)
    if _installed is not None:
        root.removeHandler(_installed)
    root.addHandler(handler)
    _installed = handler
    return handler


def remove_installed_handler() -> None:
    """Take out the handler :func:`configure_logging` installed (a test runner's process outlives
    the function it hosted)."""
    global _installed
    if _installed is not None:
        logging.getLogger().removeHandler(_installed)
        _installed = None
