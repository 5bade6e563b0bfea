"""Streams: registration over the API, leases with takeover, a local file and a live RTSP source."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from functions.api.core import Api
from infra.gpu_worker.stream_runner import StreamRunner, StreamSupervisor
from shared.config import Settings
from shared.events import HttpRequest
from shared.services import Services
from shared.vision.detector import Detector, ModelSpec
from shared.vision.stream_registry import StreamLease, acquire_streams, renew_leases
from tests.conftest import REPO, need
from tests.vision_fixtures import TINY_BOXES_PER_IMAGE, tiny_model

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def stream_services(settings: Settings) -> Iterator[Services]:
    svc = Services.from_settings(
        settings.model_copy(
            update={
                "stream_lease_s": 1.5,
                "stream_allow_file_urls": True,
                "stream_backoff_cap_s": 1.0,
                "http_allow_networks": ("127.0.0.0/8",),
            }
        )
    )
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def detector(tmp_path: Path) -> Detector:
    return Detector(ModelSpec(path=tiny_model(tmp_path / "tiny.onnx")))


def call(
    api: Api, method: str, path: str, body: dict | None = None, ctype: str = "application/json"
) -> tuple[int, dict]:
    raw = json.dumps(body).encode() if body is not None else b""
    path, _, query = path.partition("?")
    resp = api.handle(HttpRequest.from_parts(method, path, query, headers={"content-type": ctype}, body=raw))
    return resp.status, json.loads(resp.body)


def stream_row(svc: Services, stream_id: int) -> dict:
    with svc.db.connection() as conn:
        cur = conn.execute("SELECT * FROM streams WHERE id = %s", (stream_id,))
        row = dict(zip([d.name for d in cur.description or []], cur.fetchone() or (), strict=True))
        conn.commit()
    return row


def frames_of(svc: Services, stream_id: int) -> list[tuple[float, int]]:
    with svc.db.connection() as conn:
        rows = conn.execute(
            "SELECT frame_ts, count(*) FROM detections WHERE stream_id = %s GROUP BY frame_ts ORDER BY frame_ts",
            (stream_id,),
        ).fetchall()
        conn.commit()
    return [(float(t), int(n)) for t, n in rows]


def wait_for(condition, timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def write_video(path: Path, seconds: float = 2.0, fps: int = 10, gop: int = 12) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.gop_size = gop
        for i in range(int(seconds * fps)):
            pixels = np.full((120, 160, 3), 90, np.uint8)
            pixels[40:60, 4 * i : 4 * i + 20] = 250  # a small moving square: P-frames between keyframes
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_stream_registration_is_validated(stream_services: Services) -> None:
    api = Api(stream_services)
    assert call(api, "POST", "/streams", {"url": "rtsp://127.0.0.1/x"}, ctype="text/plain")[0] == 415
    assert call(api, "POST", "/streams", {"url": "rtsp://127.0.0.1/x", "fps": 0})[0] == 400
    assert call(api, "POST", "/streams", {"url": "rtsp://127.0.0.1/x", "fps": 1000})[0] == 400
    status, body = call(api, "POST", "/streams", {"url": "gopher://127.0.0.1/x"})
    assert status == 400 and body["code"] == "url_refused"
    assert "gopher" not in body["detail"]
    # A private address is refused unless the outbound policy allows it (here only loopback is allowed).
    assert call(api, "POST", "/streams", {"url": "rtsp://10.0.0.8/cam"})[0] == 400
    assert call(api, "POST", "/streams", {"url": "http://169.254.169.254/latest"})[0] == 400
    status, body = call(api, "POST", "/streams", {"url": "rtsp://127.0.0.1:8554/cam", "fps": 2})
    assert status == 201 and body["stream"]["status"] == "pending"
    sid = body["stream"]["id"]
    assert [s["id"] for s in call(api, "GET", "/streams")[1]["items"]] == [sid]
    assert call(api, "DELETE", f"/streams/{sid}")[1]["stream"]["status"] == "stopped"
    assert call(api, "DELETE", "/streams/999999")[0] == 404
    assert call(api, "GET", "/images/999999/detections")[0] == 404


def test_file_urls_are_refused_unless_enabled(settings: Settings) -> None:
    svc = Services.from_settings(settings)  # the default: stream_allow_file_urls is off
    try:
        status, body = call(Api(svc), "POST", "/streams", {"url": "file:///etc/passwd"})
    finally:
        svc.close()
    assert status == 400 and body["code"] == "url_refused"


def test_a_lease_is_held_by_one_worker_and_taken_over_when_it_expires(stream_services: Services) -> None:
    svc = stream_services
    with svc.db.connection() as conn:
        conn.execute("INSERT INTO streams (url, fps) VALUES ('rtsp://127.0.0.1/a', 1)")
        a = acquire_streams(conn, "worker-a", 60, 4)
        b = acquire_streams(conn, "worker-b", 60, 4)
        assert len(a) == 1 and b == []
        # worker-a dies: its lease runs out
        conn.execute("UPDATE streams SET lease_expires_at = now() - interval '1 second'")
        b = acquire_streams(conn, "worker-b", 60, 4)
        assert [x.id for x in b] == [a[0].id]
        assert renew_leases(conn, "worker-a", [a[0].id], 60) == set()  # a comes back: no longer its stream
        assert renew_leases(conn, "worker-b", [a[0].id], 60) == {a[0].id}
        # a stream that asks for another model is left to the workers running that model
        conn.execute("INSERT INTO streams (url, fps, model) VALUES ('rtsp://127.0.0.1/b', 1, 'other')")
        assert acquire_streams(conn, "worker-c", 60, 4, model="tiny") == []
        assert len(acquire_streams(conn, "worker-c", 60, 4, model="other")) == 1
        conn.commit()


def test_live_buffer_drops_the_oldest_frames_when_behind(stream_services: Services, detector: Detector) -> None:
    lease = StreamLease(1, "rtsp://127.0.0.1/live", 5.0, False)
    runner = StreamRunner(stream_services, detector, lease, "w")
    for i in range(20):
        runner._push(float(i), None)
    assert runner._dropped == 12
    assert [ts for ts, _ in runner._frames] == [float(i) for i in range(12, 20)]


def test_file_stream_is_sampled_and_detected_per_frame(
    stream_services: Services, detector: Detector, tmp_path: Path
) -> None:
    svc = stream_services
    video = write_video(tmp_path / "clip.mp4", seconds=2.0, fps=10)
    # GIVEN a 2 s file registered at 2 frames per second
    status, body = call(Api(svc), "POST", "/streams", {"url": video.as_uri(), "fps": 2})
    assert status == 201
    sid = body["stream"]["id"]
    # WHEN a worker's supervisor picks it up
    sup = StreamSupervisor(svc, detector, owner="w1").start()
    try:
        wait_for(lambda: stream_row(svc, sid)["status"] == "ended", what="the file stream to end")
    finally:
        sup.stop()
    # THEN four frames (0, 0.5, 1.0, 1.5 s) were detected, each with its boxes, and the lease was given back
    frames = frames_of(svc, sid)
    assert [round(t, 2) for t, _ in frames] == [0.0, 0.5, 1.0, 1.5]
    assert all(n == TINY_BOXES_PER_IMAGE for _, n in frames)
    row = stream_row(svc, sid)
    assert row["frames_done"] == 4 and row["lease_owner"] is None and row["last_error"] is None
    # AND the API shows the stream and pages through its detections, oldest frame first
    api = Api(svc)
    status, body = call(api, "GET", f"/streams/{sid}")
    assert status == 200 and body["stream"]["status"] == "ended" and body["stream"]["frames_done"] == 4
    status, page = call(api, "GET", f"/streams/{sid}/detections?limit=3")
    assert status == 200 and [f["frame_ts"] for f in page["items"]] == [0.0, 0.5, 1.0]
    assert all(len(f["detections"]) == TINY_BOXES_PER_IMAGE for f in page["items"])
    assert set(page["items"][0]["detections"][0]) == {"model", "class_id", "label", "score", "box"}
    status, rest = call(api, "GET", f"/streams/{sid}/detections?cursor={page['next_cursor']}")
    assert [f["frame_ts"] for f in rest["items"]] == [1.5] and rest["next_cursor"]
    # past the last frame, the cursor stays where it is, so a client polling a running stream resumes there
    last = rest["next_cursor"]
    assert call(api, "GET", f"/streams/{sid}/detections?cursor={last}")[1] == {"items": [], "next_cursor": last}
    assert call(api, "GET", f"/streams/{sid}/detections?cursor=soon")[0] == 400
    status, other = call(api, "GET", f"/streams/999999/detections?cursor={last}")
    assert status == 400 and other["errors"] == [{"parameter": "cursor", "detail": "belongs to another stream"}]
    assert call(api, "GET", "/streams/999999")[0] == 404
    assert call(api, "GET", "/streams/999999/detections")[0] == 404


def test_keyframes_only_detects_just_the_keyframes(
    stream_services: Services, detector: Detector, tmp_path: Path
) -> None:
    svc = stream_services
    # GIVEN a 2 s clip at 10 fps with a keyframe every 5 frames, registered for keyframes only
    video = write_video(tmp_path / "gop5.mp4", seconds=2.0, fps=10, gop=5)
    body = call(Api(svc), "POST", "/streams", {"url": video.as_uri(), "fps": 10, "keyframes_only": True})[1]
    sid = body["stream"]["id"]
    sup = StreamSupervisor(svc, detector, owner="w1").start()
    try:
        wait_for(lambda: stream_row(svc, sid)["status"] == "ended", what="the file stream to end")
    finally:
        sup.stop()
    # THEN only the four keyframes were decoded and detected
    assert [round(t, 2) for t, _ in frames_of(svc, sid)] == [0.0, 0.5, 1.0, 1.5]


def test_frames_of_several_streams_share_model_calls(
    stream_services: Services, detector: Detector, tmp_path: Path
) -> None:
    svc = stream_services
    calls: list[int] = []
    real_run = detector.run_raw

    def paced(
        pixels: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:  # a device busy for 50 ms a call: frames pile up meanwhile
        calls.append(len(pixels))
        time.sleep(0.05)
        return real_run(pixels, out)

    detector.run_raw = paced  # type: ignore[method-assign]
    # GIVEN three 2 s clips registered at 5 frames per second each
    videos = [write_video(tmp_path / f"cam{i}.mp4", seconds=2.0, fps=10) for i in range(3)]
    ids = [call(Api(svc), "POST", "/streams", {"url": v.as_uri(), "fps": 5})[1]["stream"]["id"] for v in videos]
    # WHEN one worker holds all three
    sup = StreamSupervisor(svc, detector, owner="w1").start()
    try:
        wait_for(lambda: all(stream_row(svc, i)["status"] == "ended" for i in ids), what="the three streams to end")
    finally:
        sup.stop()
    # THEN model calls carried frames of more than one stream, fewer calls than frames were made
    stats = sup.batcher.stats()
    assert stats["frames"] == 30 and stats["most_requests"] >= 2
    assert len(calls) == stats["batches"] < 30
    # AND each stream got its own ten frames, each with its boxes
    for i in ids:
        frames = frames_of(svc, i)
        assert [round(t, 2) for t, _ in frames] == [round(0.2 * k, 2) for k in range(10)]
        assert all(n == TINY_BOXES_PER_IMAGE for _, n in frames)


def test_the_batcher_never_exceeds_max_batch_and_hands_errors_to_every_caller(detector: Detector) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from infra.gpu_worker.batcher import FrameBatcher
    from shared.vision.decode import DecodedImage

    rows: list[int] = []
    real_run = detector.run_raw

    def recording(pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        rows.append(len(pixels))
        time.sleep(0.02)
        return real_run(pixels, out)

    detector.run_raw = recording  # type: ignore[method-assign]
    batcher = FrameBatcher(detector, max_batch=4, max_wait_s=0.05).start()
    frame = DecodedImage(np.zeros((48, 64, 3), np.uint8), "frame", 64, 48)
    try:
        # GIVEN six callers with three frames each, against a batch of at most four
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda _: batcher.detect([frame] * 3), range(6)))
        # THEN every caller got three answers and no call carried more than four frames
        assert [len(r) for r in results] == [3] * 6 and all(len(d) == TINY_BOXES_PER_IMAGE for r in results for d in r)
        assert max(rows) <= 4 and sum(rows) == 18
        # AND a caller with more frames than a batch holds gets an answer for each, in batches of four
        rows.clear()
        assert [len(d) for d in batcher.detect([frame] * 6)] == [TINY_BOXES_PER_IMAGE] * 6
        assert sorted(rows) == [2, 4]
        # AND a frame that cannot be letterboxed (no colour channels) fails its own caller only
        flat = DecodedImage(np.zeros((48, 64), np.uint8), "frame", 64, 48)
        with ThreadPoolExecutor(2) as pool:
            bad, good = pool.submit(batcher.detect, [flat]), pool.submit(batcher.detect, [frame])
            assert len(good.result()) == 1
            with pytest.raises(ValueError):
                bad.result()
        # WHEN the model fails THEN each caller of that batch sees the error
        detector.run_raw = lambda pixels, out=None: (_ for _ in ()).throw(RuntimeError("device lost"))  # type: ignore[method-assign]
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(batcher.detect, [frame]) for _ in range(2)]
            for f in futures:
                with pytest.raises(RuntimeError, match="device lost"):
                    f.result()
    finally:
        batcher.stop()


def test_on_a_gpu_the_batcher_pads_frames_to_the_batch_size_on_a_session_warmed_beside_the_images(
    detector: Detector,
) -> None:
    from infra.gpu_worker.batcher import FrameBatcher
    from shared.vision.decode import DecodedImage

    # The session pool and the padding are the same code on any provider: run this one as on a GPU.
    detector.on_gpu = True
    shapes: list[tuple[int, ...]] = []
    real_run = detector._run_bound_on

    def recording(session: object, pixels: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        shapes.append(pixels.shape)
        return real_run(session, pixels, out)

    detector._run_bound_on = recording  # type: ignore[method-assign]
    # WHEN the batcher starts beside the image pipeline's calls
    batcher = FrameBatcher(detector, max_batch=4, max_wait_s=0.02).start()
    try:
        # THEN two sessions of the batch's shape are open and have run it once each
        assert detector.sessions == 2 and len(shapes) == 2
        frame = DecodedImage(np.zeros((48, 64, 3), np.uint8), "frame", 64, 48)
        # AND one frame is run as a full batch of four (one input shape per session), answered alone
        assert [len(d) for d in batcher.detect([frame])] == [TINY_BOXES_PER_IMAGE]
        assert {s[0] for s in shapes} == {4} and detector.sessions == 2
    finally:
        batcher.stop()


def test_the_batchers_model_calls_wait_for_a_turn_at_the_gpu_gate(detector: Detector, tmp_path: Path) -> None:
    from infra.gpu_worker.batcher import FrameBatcher
    from infra.gpu_worker.gate import GpuGate
    from shared.vision.decode import DecodedImage

    gate = GpuGate(tmp_path / "gate", 1)
    batcher = FrameBatcher(detector, max_batch=4, max_wait_s=0.01, gate=gate).start()
    frame = DecodedImage(np.zeros((48, 64, 3), np.uint8), "frame", 64, 48)
    done = threading.Event()
    found: list[Any] = []

    def call() -> None:
        found.extend(batcher.detect([frame]))
        done.set()

    try:
        # GIVEN an image pipeline's call holding the only turn (this thread)
        with gate.turn():
            threading.Thread(target=call, daemon=True).start()
            # THEN the stream frames wait for it
            assert not done.wait(0.5), "the stream batch ran while another call held the only turn"
        # WHEN the turn is given back THEN the frames are detected
        assert done.wait(10)
        assert len(found) == 1 and len(found[0]) == TINY_BOXES_PER_IMAGE
    finally:
        batcher.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_rtsp(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, str(REPO / "tests/servers/rtsp_server.py"), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "ready", f"RTSP server did not start: {line!r}"
    return proc


@pytest.mark.slow
def test_live_rtsp_stream_reconnects_and_stops(stream_services: Services, detector: Detector) -> None:
    ok = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"], capture_output=True
    )
    need(ok.returncode == 0, "GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0) is not installed")
    svc = stream_services
    port = free_port()
    server = start_rtsp(port)
    sup = None
    try:
        status, body = call(Api(svc), "POST", "/streams", {"url": f"rtsp://127.0.0.1:{port}/live", "fps": 2})
        assert status == 201
        sid = body["stream"]["id"]
        sup = StreamSupervisor(svc, detector, owner="w1").start()
        # THEN frames of the live source arrive, two per second of stream time
        wait_for(lambda: stream_row(svc, sid)["frames_done"] >= 3, timeout=40, what="live frames")
        # WHEN the source goes away, the stream records the error and retries
        server.terminate()
        server.wait(10)
        wait_for(lambda: stream_row(svc, sid)["status"] == "retrying", timeout=40, what="the retrying status")
        assert stream_row(svc, sid)["last_error"]
        # and when it is back, frames flow again
        done = stream_row(svc, sid)["frames_done"]
        server = start_rtsp(port)
        wait_for(lambda: stream_row(svc, sid)["frames_done"] > done + 1, timeout=60, what="frames after reconnect")
        assert stream_row(svc, sid)["last_error"] is None
        # WHEN it is deleted, the worker lets go at its next renewal
        call(Api(svc), "DELETE", f"/streams/{sid}")
        wait_for(lambda: stream_row(svc, sid)["lease_owner"] is None, timeout=20, what="the lease to be released")
    finally:
        if sup is not None:
            sup.stop()
        server.terminate()
        server.wait(10)
    # Live frames are stamped with their arrival time: increasing, and no frame from before the
    # reconnect was overwritten by one after it.
    stamps = [t for t, _ in frames_of(svc, sid)]
    assert len(stamps) == stream_row(svc, sid)["frames_done"]
    assert stamps[0] > 1_600_000_000


def test_file_frames_written_again_after_a_takeover_are_counted_once(stream_services: Services) -> None:
    from shared.vision.stream_registry import register_stream, write_frame

    svc = stream_services
    with svc.db.connection() as conn:
        sid = register_stream(conn, "file:///data/clip.mp4", 10.0, model=None, keyframes_only=False)["id"]
        # GIVEN a worker that stored three frames and was then killed (its lease lapses)
        (first,) = acquire_streams(conn, "w1", 30.0, 1)
        assert first.last_frame_ts is None
        assert write_frame(conn, sid, "w1", "m", [(0.0, []), (0.1, []), (0.2, [])], 0)
        conn.execute("UPDATE streams SET lease_expires_at = now() - interval '1 second' WHERE id = %s", (sid,))
        # WHEN another worker takes the stream over
        (taken,) = acquire_streams(conn, "w2", 30.0, 1)
        # THEN it learns where to resume, and frames it writes again are not counted again
        assert taken.last_frame_ts == pytest.approx(0.2)
        assert write_frame(conn, sid, "w2", "m", [(0.1, []), (0.2, []), (0.3, [])], 0)
        conn.commit()
    row = stream_row(svc, sid)
    assert row["frames_done"] == 4
    assert row["last_frame_ts"] == pytest.approx(0.3)
