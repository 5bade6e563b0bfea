"""Fixtures and checks of the trace tests: the OTLP receiver, and one upload's trace read back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from shared.observability.traces import configure_tracing, flush_traces
from tests.servers.otlp_receiver import OtlpReceiver, ReceivedSpan

__all__ = ["UploadTrace", "otlp_receiver", "upload_trace", "wait_for_spans"]


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        # This process's tracer pointed at the receiver: turn it off for the tests that follow.
        configure_tracing("contentfn-tests", None)
        receiver.stop()


def wait_for_spans(receiver: OtlpReceiver, name: str, count: int, *, timeout_s: float = 90.0) -> list[ReceivedSpan]:
    """Flush this process's spans until ``count`` spans named ``name`` arrived (or time runs out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        flush_traces()
        found = [s for s in receiver.collected() if s.name == name]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@dataclass(frozen=True)
class UploadTrace:
    root: ReceivedSpan
    spans: list[ReceivedSpan]

    def named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name]

    def parent_of(self, child: ReceivedSpan) -> ReceivedSpan:
        parents = [s for s in self.spans if s.span_id == child.parent_id]
        assert parents, f"the parent of {child.name} ({child.parent_id}) is not in the trace"
        return parents[0]


def upload_trace(receiver: OtlpReceiver, key: str) -> UploadTrace:
    """The trace whose root is the ``ingest object`` span of object ``key``: exactly one such root."""
    roots = [s for s in receiver.collected() if s.name == "ingest object" and s.attributes.get("object.key") == key]
    assert len(roots) == 1, f"{len(roots)} ingest spans for {key}"
    root = roots[0]
    spans = receiver.trace(root.trace_id)
    # One root only: every other span of the trace has its parent inside it (no broken hop).
    ids = {s.span_id for s in spans}
    orphans = [s.name for s in spans if s is not root and s.parent_id not in ids]
    assert root.parent_id is None and not orphans, f"spans whose parent is missing: {orphans}"
    return UploadTrace(root, spans)
