"""The GPU worker on CPU, in process: uploads under images/ end as detections, refusals keep their reason."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from functions.api.core import Api
from functions.ingest.reports import ImageReport
from infra.gpu_worker.http import HealthServer
from infra.gpu_worker.metrics import STAGES
from infra.gpu_worker.worker import GpuWorker
from shared.config import Settings
from shared.events import HttpRequest
from shared.services import Services
from shared.vision.decode import decode_image
from shared.vision.detector import Detector, ModelSpec, default_model_path
from shared.vision.sessions import batch_sizes
from tests.conftest import need
from tests.integration.test_detector_real import photo_jpeg
from tests.unit.test_vision_decode import encoded, png_bomb
from tests.vision_fixtures import (
    TINY_BOXES_PER_IMAGE,
    distinct_jpegs,
    image_id_of,
    metric_samples,
    tiny_model,
    upload,
)


@pytest.fixture
def vision_services(settings: Settings, tmp_path: Path) -> Iterator[Services]:
    svc = Services.from_settings(
        settings.model_copy(
            update={"gpu_max_batch": 4, "gpu_max_in_flight": 2, "gpu_max_wait_ms": 10.0, "gpu_decode_threads": 2}
        )
    )
    try:
        yield svc
    finally:
        svc.close()


def wait_for(condition, timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def scalar(services: Services, sql: str, *args: object) -> int:
    with services.db.connection() as conn:
        row = conn.execute(sql, args).fetchone()
        conn.commit()
    return int(row[0]) if row and row[0] is not None else 0


def test_uploaded_photo_ends_as_detections_and_refusals_keep_their_reason(vision_services: Services) -> None:
    path = default_model_path()
    need(path is not None, "the nudenet wheel is not installed")
    assert path is not None
    svc = vision_services
    # GIVEN a photo, the same photo again under another key, a bomb, a GIF and a text file under images/
    face = upload(svc, "images/astronaut.jpg", photo_jpeg("astronaut"))
    again = upload(svc, "images/copy-of-astronaut.jpg", photo_jpeg("astronaut"))
    bomb = upload(svc, "images/bomb.png", png_bomb(60_000, 60_000))
    gif = upload(svc, "images/anim.gif", encoded("GIF"))
    text = upload(svc, "images/notes.jpg", b"not an image at all")
    # THEN the copy is recognised by content and only one detection job is queued
    assert isinstance(face, ImageReport) and isinstance(again, ImageReport)
    assert face.queued and face.new and face.admission and face.admission["admit"]
    assert again.image_id == face.image_id and not again.queued
    assert [r.status for r in (bomb, gif, text)] == ["rejected"] * 3
    assert bomb.error and bomb.error.startswith("too_many_pixels")
    assert gif.error and gif.error.startswith("unsupported_format")
    assert svc.queue.depth("detect") == 1
    # WHEN the worker runs
    worker = GpuWorker(svc, Detector(ModelSpec(path=path))).start()
    health = HealthServer(worker, "127.0.0.1", 0).start()
    try:
        wait_for(lambda: svc.queue.depth("detect") == 0, what="the detection job")

        def scrape() -> str:
            return urllib.request.urlopen(f"http://127.0.0.1:{health.port}/metrics", timeout=5).read().decode()

        # The job is acked in the write's transaction; the worker counts the image just after that
        # commit, so a scrape right after the queue empties may come before the count.
        wait_for(
            lambda: any(
                labels["outcome"] == "done" for labels, _ in metric_samples(scrape(), "contentfn_gpu_images_total")
            ),
            what="the written image in /metrics",
        )
        body = scrape()
        healthz = urllib.request.urlopen(f"http://127.0.0.1:{health.port}/healthz", timeout=5).read().decode()
    finally:
        worker.stop(grace_s=5)
        health.stop()
    # THEN the face is stored against the image, in original pixels, and the image is done
    with svc.db.connection() as conn:
        status = conn.execute("SELECT status, width, height, format FROM images WHERE id = %s", (face.image_id,))
        assert status.fetchone() == ("done", 512, 512, "jpeg")
        labels = [r[0] for r in conn.execute("SELECT label FROM detections WHERE image_id = %s", (face.image_id,))]
        reasons = dict(conn.execute("SELECT key, reason FROM images WHERE status = 'rejected'").fetchall())
        conn.commit()
    assert "FACE_FEMALE" in labels
    assert set(reasons) == {"images/bomb.png", "images/anim.gif", "images/notes.jpg"}
    done = [v for labels, v in metric_samples(body, "contentfn_gpu_images_total") if labels["outcome"] == "done"]
    assert done == [1.0]  # the one job: the copy was known by its content, the rest refused at ingest
    assert len(metric_samples(body, "contentfn_gpu_queue_lag_seconds")) == 1
    # AND where the image's time went is counted per stage: the one image was read, decoded, run, written
    stages = {labels["stage"]: v for labels, v in metric_samples(body, "contentfn_gpu_stage_seconds_total")}
    assert set(stages) == set(STAGES)
    assert all(stages[k] > 0 for k in ("claim", "read", "decode", "infer", "write")), stages
    assert '"provider": "CPUExecutionProvider"' in healthz
    assert '"malloc_keep_mib": 0' in healthz  # in a shared process (the local runtime's) malloc is left alone
    # AND the API lists the images newest first, by status, a page at a time
    api = Api(svc)

    def get(query: str) -> tuple[int, dict]:
        resp = api.handle(HttpRequest.from_parts("GET", "/images", query))
        return resp.status, json.loads(resp.body)

    code, everything = get("")
    assert code == 200 and [i["key"] for i in everything["items"]] == [
        "images/notes.jpg",
        "images/anim.gif",
        "images/bomb.png",
        "images/astronaut.jpg",
    ]
    assert everything["items"][-1]["status"] == "done" and everything["items"][-1]["detections"] == len(labels)
    assert [i["status"] for i in get("status=rejected")[1]["items"]] == ["rejected"] * 3
    first = get("limit=2")[1]
    rest = get(f"limit=2&cursor={first['next_cursor']}")[1]
    assert [i["id"] for i in first["items"] + rest["items"]] == [i["id"] for i in everything["items"]]
    assert get("status=lost")[0] == 400


@pytest.mark.parametrize("infer_threads", [1, 2])
def test_images_are_batched_and_every_job_is_acked_once(
    vision_services: Services, tmp_path: Path, infer_threads: int
) -> None:
    svc = vision_services
    # GIVEN 40 distinct images queued and a tiny model that finds two boxes in each
    for i, data in enumerate(distinct_jpegs(40)):
        upload(svc, f"images/{i}.jpg", data)
    detector = Detector(ModelSpec(path=tiny_model(tmp_path / "tiny.onnx")))
    worker = GpuWorker(svc, detector, infer_threads=infer_threads)
    if infer_threads > 1:  # as on a GPU: partial batches padded to the full size, warmed up
        worker.buckets = batch_sizes(worker.max_batch)
    # WHEN the worker drains the queue
    worker.start()
    try:
        wait_for(lambda: svc.queue.depth("detect") == 0, what="the queue to drain")
    finally:
        worker.stop(grace_s=5)
    # THEN each image has exactly its two detections, batches were filled, nothing is in flight
    assert scalar(svc, "SELECT count(*) FROM images WHERE status = 'done'") == 40
    assert scalar(svc, "SELECT count(*) FROM detections") == 40 * TINY_BOXES_PER_IMAGE
    assert worker.metrics.batches < 40 and worker.metrics.in_flight_peak <= worker.permits
    assert worker.in_flight == 0 and svc.queue.dead_count() == 0


def test_late_items_go_back_to_the_queue_and_sigterm_drains(vision_services: Services, tmp_path: Path) -> None:
    svc = vision_services
    for i, data in enumerate(distinct_jpegs(12, seed=3)):
        upload(svc, f"images/{i}.jpg", data)
    worker = GpuWorker(svc, Detector(ModelSpec(path=tiny_model(tmp_path / "tiny.onnx"))))
    worker.deadline_s = 0.0  # every claimed item is already late when a batch forms
    worker.start()
    wait_for(lambda: worker.metrics.images_released >= 4, what="late items released")
    worker.stop(grace_s=2)
    # THEN nothing was written, nothing was lost, and released jobs did not use up an attempt
    assert scalar(svc, "SELECT count(*) FROM detections") == 0
    assert svc.queue.depth("detect") == 12
    assert scalar(svc, "SELECT max(attempts) FROM jobs") == 0


def test_a_failed_model_call_retries_its_jobs_and_frees_their_places(vision_services: Services, tmp_path: Path) -> None:
    svc = vision_services
    for i, data in enumerate(distinct_jpegs(8, seed=5)):
        upload(svc, f"images/{i}.jpg", data)
    detector = Detector(ModelSpec(path=tiny_model(tmp_path / "tiny.onnx")))
    real_run = detector.run_raw
    failures = [2]  # the device fails the first two calls (out of memory, say), then recovers

    def flaky(pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if failures[0] > 0:
            failures[0] -= 1
            raise RuntimeError("CUDA failure 2: out of memory")
        return real_run(pixels, out)

    detector.run_raw = flaky  # type: ignore[method-assign]
    worker = GpuWorker(svc, detector).start()
    try:
        wait_for(lambda: scalar(svc, "SELECT count(*) FROM images WHERE status = 'done'") == 8, what="every image")
    finally:
        worker.stop(grace_s=5)
    # THEN every image is done once, the failed calls' jobs were retried, and no place stayed taken
    assert failures == [0] and worker.metrics.images_failed > 0
    assert scalar(svc, "SELECT count(*) FROM detections") == 8 * TINY_BOXES_PER_IMAGE
    assert worker.in_flight == 0 and svc.queue.dead_count() == 0 and svc.queue.depth("detect") == 0


def test_each_photo_of_a_mixed_batch_gets_its_own_detections(settings: Settings) -> None:
    path = default_model_path()
    need(path is not None, "the nudenet wheel is not installed")
    assert path is not None
    # GIVEN a worker that gathers up to 8 images for as long as 2 s
    svc = Services.from_settings(
        settings.model_copy(
            update={"gpu_max_batch": 8, "gpu_max_in_flight": 2, "gpu_max_wait_ms": 2000.0, "gpu_decode_threads": 2}
        )
    )
    try:
        # AND four photos of different sizes, and one more whose object is replaced by junk once queued
        names = ("astronaut", "coffee", "chelsea", "rocket")
        ids = {name: image_id_of(upload(svc, f"images/{name}.jpg", photo_jpeg(name))) for name in names}
        junk = upload(svc, "images/replaced.jpg", photo_jpeg("camera"))
        svc.blob.put(svc.settings.bucket, "images/replaced.jpg", b"no longer an image")
        worker = GpuWorker(svc, Detector(ModelSpec(path=path))).start()
        try:
            wait_for(lambda: svc.queue.depth("detect") == 0, what="the five jobs")
        finally:
            worker.stop(grace_s=5)
        with svc.db.connection() as conn:
            stored = {
                name: sorted(
                    conn.execute(
                        "SELECT label, x1, y1, x2, y2 FROM detections WHERE image_id = %s", (image_id,)
                    ).fetchall()
                )
                for name, image_id in ids.items()
            }
            refused = conn.execute("SELECT status, reason FROM images WHERE id = %s", (image_id_of(junk),)).fetchone()
            conn.commit()
    finally:
        svc.close()
    # THEN the four photos ran in one model call, each wherever its decode left it in the batch
    assert worker.metrics.batches == 1
    # AND each photo's rows are what the model finds in that photo alone
    alone = Detector(ModelSpec(path=path))
    for name in names:
        image = decode_image(photo_jpeg(name), max_bytes=10**7, max_pixels=10**8, draft_to=alone.input_size)
        (found,) = alone.detect([image])
        expected = sorted((d.label, *d.box) for d in found)
        assert [r[0] for r in stored[name]] == [e[0] for e in expected], name
        np.testing.assert_allclose([r[1:] for r in stored[name]], [e[1:] for e in expected], atol=1.0)
    assert any(stored.values()) and len({tuple(r[0] for r in v) for v in stored.values()}) > 1
    # AND the replaced object is refused with its reason, beside the batch
    assert refused is not None and refused[0] == "rejected" and refused[1].startswith("unsupported_format")
