"""The GPU worker process logs JSON lines with severity, service and the trace of the job at hand,
and its detection batch joins the trace the job was queued in."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.config import Settings
from shared.services import Services
from tests.conftest import REPO
from tests.integration.test_gpu_worker_crash import worker_env
from tests.servers.otlp_receiver import OtlpReceiver
from tests.trace_fixtures import otlp_receiver  # noqa: F401 - fixture
from tests.vision_fixtures import distinct_jpegs, tiny_model, upload

pytestmark = pytest.mark.slow

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def test_gpu_worker_logs_json_lines_with_severity_and_the_trace_id_of_its_batch(
    settings: Settings,
    services: Services,
    tmp_path: Path,
    otlp_receiver: OtlpReceiver,  # noqa: F811
) -> None:
    # GIVEN a detection job queued under a known trace (as ingest's span would have queued it)
    upload(services, "images/one.jpg", next(iter(distinct_jpegs(1, seed=3))))
    with services.db.connection() as conn:
        conn.execute("UPDATE jobs SET traceparent = %s WHERE kind = 'detect'", (f"00-{TRACE_ID}-{PARENT_ID}-01",))
        conn.commit()
    env = worker_env(
        settings,
        tiny_model(tmp_path / "tiny.onnx"),
        CONTENTFN_LOG_LEVEL="DEBUG",
        CONTENTFN_OTEL_EXPORTER_ENDPOINT=otlp_receiver.endpoint,
        CONTENTFN_OTEL_SAMPLE_RATIO="1",
    )
    # WHEN the worker process detects it and is stopped
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.gpu_worker", "--no-streams"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not otlp_receiver.wait_for("detect batch", timeout_s=0.2):
            assert proc.poll() is None, "the worker exited"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    # THEN every log line is a JSON object with severity, message and service (the ready line is a handshake)
    lines = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("gpu-worker ready")]
    records = [json.loads(ln) for ln in lines]
    assert records and all({"severity", "message", "service", "time"} <= r.keys() for r in records)
    assert {r["service"] for r in records} == {"contentfn-gpu-worker"}
    assert {"INFO", "DEBUG"} <= {r["severity"] for r in records}
    # AND the batch's record carries the job's trace id, as does its span, parented on the queuing span
    (batch_log,) = [r for r in records if r["message"].startswith("detection batch of")]
    assert batch_log["trace_id"] == TRACE_ID and len(batch_log["jobs"]) == 1
    (batch,) = otlp_receiver.wait_for("detect batch")
    assert (batch.trace_id, batch.parent_id, batch.service) == (TRACE_ID, PARENT_ID, "contentfn-gpu-worker")
