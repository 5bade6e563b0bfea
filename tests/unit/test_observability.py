"""Structured logs in each platform's form, and the trace context a job carries beside its payload."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from shared.envelopes._common import job_from_body
from shared.events import Job
from shared.observability import configure_logging, log_context, span
from shared.observability.traces import trace_context
from shared.queue.base import NewJob, trace_attributes
from shared.queue.kinds import EmbedPayload

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"
QUEUED = Job(id="7", kind="embed", payload={"track_id": 1}, traceparent=TRACEPARENT, tracestate="vendor=a")


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    """A stream the root logger writes to while the test runs; the root's handlers restored after."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    # An AWS handler test earlier in the same process may have given the product's loggers handlers
    # of their own that do not propagate (Powertools' copy_config_to_registered_loggers): a process
    # runs on one platform only, so each test here starts from plain, propagating product loggers.
    product = [logging.getLogger(name) for name in ("shared", "functions")]
    saved = [(lg, list(lg.handlers), lg.propagate, lg.level) for lg in product]
    for lg in product:
        for handler in list(lg.handlers):
            lg.removeHandler(handler)
        lg.propagate, lg.level = True, logging.NOTSET
    stream = io.StringIO()
    yield stream, logging.getLogger("shared.tests.observability")
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)
    for lg, handlers, propagate, lvl in saved:
        for handler in handlers:
            lg.addHandler(handler)
        lg.propagate, lg.level = propagate, lvl


def test_gcp_log_entry_has_cloud_logging_severity_trace_and_what_it_concerns(
    captured: tuple[io.StringIO, logging.Logger],
) -> None:
    stream, log = captured
    configure_logging("gcp", "contentfn-embed", project="contentfn-dev", stream=stream)
    # WHEN a warning is logged while a queued job's span is current, with the job named
    with span("embed job", parent=QUEUED), log_context(job="7", kind="embed"):
        log.warning("slow batch of %d", 3, extra={"batch": 3})
    entry = json.loads(stream.getvalue())
    # THEN Cloud Logging reads its severity, message, trace and span, and the fields name the job
    assert entry["severity"] == "WARNING" and entry["message"] == "slow batch of 3"
    assert entry["logging.googleapis.com/trace"] == f"projects/contentfn-dev/traces/{TRACE_ID}"
    assert entry["logging.googleapis.com/spanId"] == SPAN_ID  # exporting is off: the queuing span's own id
    assert entry["logging.googleapis.com/trace_sampled"] is True
    assert (entry["service"], entry["job"], entry["kind"], entry["batch"]) == ("contentfn-embed", "7", "embed", 3)


def test_gcp_log_entry_of_an_exception_is_an_error_with_its_traceback_and_no_trace_outside_a_span(
    captured: tuple[io.StringIO, logging.Logger],
) -> None:
    stream, log = captured
    configure_logging("gcp", "contentfn-ingest", stream=stream)
    try:
        raise ValueError("bad row")
    except ValueError:
        log.exception("ingest failed")
    entry = json.loads(stream.getvalue())
    assert entry["severity"] == "ERROR" and "ValueError: bad row" in entry["message"]
    assert "logging.googleapis.com/trace" not in entry


def test_json_lines_carry_severity_service_and_trace_id(captured: tuple[io.StringIO, logging.Logger]) -> None:
    stream, log = captured
    configure_logging("json", "contentfn-gpu-worker", level="DEBUG", stream=stream)
    with span("detect batch", parent=QUEUED):
        log.debug("batch")
    log.info("idle")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inside["severity"], inside["trace_id"], inside["service"]) == ("DEBUG", TRACE_ID, "contentfn-gpu-worker")
    assert outside["severity"] == "INFO" and "trace_id" not in outside


def test_powertools_log_records_carry_the_trace_id_and_the_job(capsys: pytest.CaptureFixture[str]) -> None:
    from shared.platform.aws import powertools_logger

    logger = powertools_logger("contentfn-test-obs")
    with span("analyze job", parent=QUEUED), log_context(job="7"):
        logging.getLogger("shared.tests.powertools").warning("llm slow")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "llm slow" in line]
    assert lines and lines[0]["level"] == "WARNING" and lines[0]["service"] == "contentfn-test-obs"
    assert (lines[0]["trace_id"], lines[0]["job"]) == (TRACE_ID, "7")
    logger.registered_handler.close()


def test_a_job_queued_inside_a_span_carries_its_context_and_its_dedup_key_is_unchanged() -> None:
    job = EmbedPayload(track_id=1, content_hash="h").to_job()
    assert trace_context() == (None, None) and trace_attributes(job) == {}
    with span("ingest object", parent=QUEUED):
        assert trace_context() == (TRACEPARENT, "vendor=a")
        assert trace_attributes(job) == {"traceparent": TRACEPARENT, "tracestate": "vendor=a"}
    # A relayed job keeps its own context, whatever span relays it.
    own = NewJob("embed", {"track_id": 2}, traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-00")
    assert trace_attributes(own) == {"traceparent": own.traceparent}
    assert job.dedup_key == "embed:1:h" and "traceparent" not in job.payload


def test_job_message_attributes_give_the_context_and_an_overlong_one_is_dropped_not_poison() -> None:
    body = {"kind": "embed", "payload": {"track_id": 1}}
    job = job_from_body(body, message_id="m", attempts=1, attributes={"traceparent": TRACEPARENT}, what="t")
    assert job.traceparent == TRACEPARENT and job.payload == {"track_id": 1}
    long = job_from_body(body, message_id="m", attempts=1, attributes={"traceparent": "0" * 500}, what="t")
    assert long.traceparent is None


def test_a_malformed_traceparent_starts_a_new_trace_instead_of_joining_nothing() -> None:
    broken = Job(id="1", kind="embed", payload={}, traceparent="00-not-a-trace-01")
    with span("embed job", parent=broken):
        assert trace_context() == (None, None)  # exporting is off and there is no valid parent
