"""The demo path end to end, as a newcomer runs it: the real CLI in a fresh data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _sample() -> list[dict[str, str]]:
    return [json.loads(line) for line in (REPO / "local" / "data" / "sample_tracks.jsonl").open() if line.strip()]


def _cli(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_demo_uploads_embeds_searches_and_stops_cleanly_then_reruns_as_a_noop(state_dir: Path, model_dir: Path) -> None:
    # GIVEN a fresh data directory and the built model
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONTENTFN_")},
        "CONTENTFN_DATA_DIR": str(state_dir),
        "CONTENTFN_MODEL_DIR": str(model_dir),
        "CONTENTFN_API_PORT": "0",
        "COLUMNS": "200",
    }
    sample_rows = sum(1 for line in (REPO / "local" / "data" / "sample_tracks.jsonl").open() if line.strip())

    # WHEN the demo runs
    first = _cli(["demo"], env)

    # THEN every sample row is ingested and embedded, three searches print, and it stops cleanly
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    assert f"{sample_rows} rows ok, 0 bad, {sample_rows} new" in out
    assert out.count("GET /search?q=") == 3
    assert f"stats: {sample_rows} tracks" in out and "dead jobs 0" in out
    assert "stopped cleanly" in out
    # AND it ends saying how to open the web console
    assert out.rstrip().splitlines()[-1].startswith("open the web console: run `make up`")
    assert out.rstrip().endswith("then the console URL it prints")  # port 0 here: chosen at start

    # AND a second run finds the same object version already ingested: nothing new, nothing changed
    second = _cli(["demo"], env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"{sample_rows} rows ok, 0 bad, {sample_rows} new, 0 changed" in second.stdout  # replayed report
    assert f"stats: {sample_rows} tracks" in second.stdout

    # AND `contentfn status` shows the file and the stages; `search` works without a server
    status = _cli(["status"], env)
    assert status.returncode == 0 and "sample_tracks.jsonl" in status.stdout and "embedded" in status.stdout
    found = _cli(["search", "sailing across the stormy sea", "-k", "3"], env)
    assert found.returncode == 0, found.stderr[-2000:]
    ocean_artists = {r["artist"] for r in _sample() if r["theme"] == "ocean"}
    assert sum(found.stdout.count(a) for a in ocean_artists) == 3, found.stdout


@pytest.mark.slow
def test_status_shows_refused_files_with_their_error(state_dir: Path, model_dir: Path) -> None:
    from local.runtime import LocalStack
    from shared.config import load_settings

    settings = load_settings(data_dir=state_dir, model_dir=model_dir, api_port=0, max_upload_bytes=10_000)
    bucket = settings.buckets_dir / settings.bucket
    with LocalStack(settings, serve_api=False) as stack:
        assert stack.services is not None
        bucket.mkdir(parents=True, exist_ok=True)
        (bucket / "notes.txt").write_text("hello")
        (bucket / "huge.jsonl").write_bytes(b"{}\n" * 5000)
        (bucket / "ok.jsonl").write_text(json.dumps({"artist": "A", "title": "T", "lyrics": "L"}) + "\n")
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and stack.services.queue.dead_count("ingest") < 2:
            time.sleep(0.1)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONTENTFN_")},
        "CONTENTFN_DATA_DIR": str(state_dir),
        "COLUMNS": "250",
    }
    status = _cli(["status"], env)
    assert status.returncode == 0, status.stderr
    assert "rejected" in status.stdout and "unsupported" in status.stdout.lower()
    assert "the cap is 10000" in status.stdout
    assert "dead jobs: 2" in status.stdout
