"""Local runtime: `contentfn upload photo.jpg --prefix images/` ends as detections in the API and in `contentfn status`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from local.runtime import LocalStack
from shared.config import Settings
from shared.vision.detector import default_model_path
from tests.conftest import REPO, need
from tests.integration.test_detector_real import photo_jpeg

pytestmark = pytest.mark.slow


def cli(args: list[str], settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONTENTFN_")},
        "CONTENTFN_DATA_DIR": str(settings.data_dir),
        "CONTENTFN_DATABASE_URL": settings.database_url.get_secret_value() if settings.database_url else "",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "local.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_uploaded_photo_is_detected_by_the_local_runtime(settings: Settings, model_dir: Path, tmp_path: Path) -> None:
    need(default_model_path() is not None, "the nudenet wheel is not installed")
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(photo_jpeg("astronaut"))
    local = settings.model_copy(update={"api_port": 0, "worker_poll_s": 0.1})
    with LocalStack(local) as stack:
        assert stack.services is not None
        # WHEN the photo is uploaded with the CLI under images/
        up = cli(["upload", str(photo), "--prefix", "images/"], local)
        assert up.returncode == 0, up.stderr[-2000:]
        # THEN the watcher ingests it and the CPU worker detects it
        subject = f"object:{local.bucket}/images/astronaut.jpg"
        end = time.monotonic() + 60
        image_id, body = None, {}
        while time.monotonic() < end:
            with stack.services.db.connection() as conn:
                row = conn.execute("SELECT detail FROM ledger WHERE subject = %s", (subject,)).fetchone()
                conn.commit()
            if row and row[0].get("image_id"):
                image_id = row[0]["image_id"]
                with urllib.request.urlopen(f"{stack.url}/images/{image_id}/detections", timeout=5) as resp:
                    body = json.loads(resp.read())
                if body["image"]["status"] == "done":
                    break
            time.sleep(0.2)
        assert body.get("image", {}).get("status") == "done", body
        assert "FACE_FEMALE" in [d["label"] for d in body["detections"]]
        # AND `contentfn status` shows the image and its detections
        status = cli(["status"], local)
        assert status.returncode == 0, status.stderr[-2000:]
        assert "images/astronaut.jpg" in status.stdout
        assert "images: 1 done" in status.stdout
