"""The short chaos run of `make test`: every fault kind once over a small upload; nothing lost, nothing twice.

`make chaos` runs the long one (tests/chaos/__main__.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.chaos.harness import ChaosConfig, run_chaos
from tests.chaos.services import FAKETIME_LIB
from tests.conftest import model_dir_path, need

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_short_chaos_run_loses_and_duplicates_nothing_under_every_fault_kind() -> None:
    need(shutil.which("redis-server") is not None, "redis-server is not installed")
    need(FAKETIME_LIB.is_file(), "libfaketime is not installed (Debian package faketime)")
    need(os.geteuid() == 0, "the disk-full fault mounts a size-limited tmpfs, which needs root")
    assert (Path(model_dir_path()) / "manifest.json").is_file(), "run `make model` first"
    # GIVEN the stack as one process per role over real PostgreSQL, Redis, LLM server and a tmpfs bucket
    # WHEN tracks, images and file streams go in while every fault kind is injected once
    result = run_chaos(ChaosConfig(tracks=300, images=10, seed=7, rounds=1, stream_frames=120, quiet_timeout_s=300))
    report = "\n".join([*result.report(), result.line()])
    # THEN every fault kind was injected and recovered from, and every effect is there exactly once
    assert len(result.faults) == 14, report
    assert "disk_full" in {k for k, _ in result.faults}, report
    assert result.lost == 0, report
    assert result.duplicated == 0, report
    # AND the LLM answered, and its faults hit calls in flight (the analyzer fell back for those)
    assert result.llm_outcomes.get("ok", 0) > 0, report
    assert result.llm_outcomes.get("error", 0) > 0, report
    assert all(t < 180 for _, t in result.faults), report
