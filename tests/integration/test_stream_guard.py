"""Stream sources opened safely and streams kept from exhausting a worker, against real HTTP sources
on 127.0.0.1 and 127.0.0.2 (MPEG-TS made with PyAV), a closed RTSP port and real Postgres.

The outbound policy here allows 127.0.0.1/32 only, so 127.0.0.2 stands for an internal address a
source must never reach.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from functions.api.core import Api
from infra.gpu_worker.stream_runner import StreamSupervisor
from shared.config import Settings
from shared.events import HttpRequest, HttpResponse
from shared.services import Services
from shared.vision.detector import Detector, ModelSpec
from tests.tls_fixtures import tls_material
from tests.vision_fixtures import tiny_model

SECRET = "s3cr3t-token"


def mpegts_clip(seconds: float = 2.0, fps: int = 10, size: tuple[int, int] = (160, 120)) -> bytes:
    width, height = size
    buf = io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        stream = out.add_stream("mpeg2video", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            pixels = np.full((height, width, 3), 90, np.uint8)
            pixels[40:60, 4 * i : 4 * i + 20] = 250
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


class VideoSource:
    """A real HTTP server on ``host``: ``routes[path] = (status, headers, body)``; records every request."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body = owner.routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for key, value in {"content-length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def paths(self) -> list[str]:
        return [p for p, _ in self.seen]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def source() -> Iterator[VideoSource]:
    server = VideoSource()
    yield server
    server.close()


@pytest.fixture
def internal() -> Iterator[VideoSource]:
    server = VideoSource("127.0.0.2")
    server.routes["/live.ts"] = (200, {"content-type": "video/mp2t"}, mpegts_clip())
    yield server
    server.close()


@pytest.fixture
def detector(tmp_path: Path) -> Detector:
    return Detector(ModelSpec(path=tiny_model(tmp_path / "tiny.onnx")))


@pytest.fixture
def guarded(settings: Settings) -> Iterator[Callable[..., Services]]:
    opened: list[Services] = []

    def make(**overrides: Any) -> Services:
        update: dict[str, Any] = {
            "stream_lease_s": 1.5,
            "stream_backoff_cap_s": 0.3,
            "http_allow_networks": ("127.0.0.1/32",),
            **overrides,
        }
        svc = Services.from_settings(settings.model_copy(update=update))
        opened.append(svc)
        return svc

    yield make
    for svc in opened:
        svc.close()


def answer(api: Api, method: str, path: str, body: dict[str, Any] | None = None) -> HttpResponse:
    raw = json.dumps(body).encode() if body is not None else b""
    return api.handle(HttpRequest.from_parts(method, path, "", headers={"content-type": "application/json"}, body=raw))


def call(api: Api, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    resp = answer(api, method, path, body)
    return resp.status, json.loads(resp.body)


def stream_row(svc: Services, stream_id: int) -> dict[str, Any]:
    with svc.db.connection() as conn:
        cur = conn.execute("SELECT * FROM streams WHERE id = %s", (stream_id,))
        row = dict(zip([d.name for d in cur.description or []], cur.fetchone() or (), strict=True))
        conn.commit()
    return row


def register(svc: Services, url: str, fps: float = 2.0) -> int:
    status, body = call(Api(svc), "POST", "/streams", {"url": url, "fps": fps})
    assert status == 201, body
    return int(body["stream"]["id"])


def run_until(svc: Services, detector: Detector, done: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    import time

    sup = StreamSupervisor(svc, detector, owner="w1").start()
    try:
        end = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < end, f"timed out waiting for {what}"
            time.sleep(0.1)
    finally:
        sup.stop()


# -- item 1: sources checked and pinned when opened ---------------------------------------------


def test_an_http_source_is_fetched_by_the_worker_and_its_frames_detected(
    guarded: Callable[..., Services], detector: Detector, source: VideoSource
) -> None:
    # GIVEN a live MPEG-TS source over HTTP on an allowed address
    svc = guarded()
    source.routes["/live.ts"] = (200, {"content-type": "video/mp2t"}, mpegts_clip())
    sid = register(svc, f"{source.url}/live.ts")
    # WHEN a worker holds it THEN its frames are detected and stored
    run_until(svc, detector, lambda: stream_row(svc, sid)["frames_done"] >= 3, "frames of the HTTP source")
    row = stream_row(svc, sid)
    # (a clip ends: the live source is then reconnected to, which is no error)
    assert row["last_error"] in (None, "reconnecting") and row["last_error_code"] is None
    # AND the request carried the URL's own host name, sent to the checked address
    assert source.seen[0][1]["host"] == source.url.removeprefix("http://")


def test_a_source_refused_when_opened_fails_without_a_single_request(
    guarded: Callable[..., Services], detector: Detector, source: VideoSource
) -> None:
    # GIVEN a stream accepted at registration (its address was allowed then)
    source.routes["/live.ts"] = (200, {"content-type": "video/mp2t"}, mpegts_clip())
    sid = register(guarded(), f"{source.url}/live.ts")
    # WHEN a worker whose policy refuses that address now opens it
    worker = guarded(http_allow_networks=())
    run_until(worker, detector, lambda: stream_row(worker, sid)["status"] == "failed", "the stream to fail")
    # THEN the source was never asked, and the error is a code plus a message without the URL
    assert source.seen == []
    row = stream_row(worker, sid)
    assert row["last_error_code"] == "url_refused" and row["lease_owner"] is None
    assert "loopback" in row["last_error"] and "127.0.0.1" not in row["last_error"]


def test_a_redirect_to_a_refused_address_is_not_followed(
    guarded: Callable[..., Services], detector: Detector, source: VideoSource, internal: VideoSource
) -> None:
    # GIVEN an allowed source that redirects to an internal one
    svc = guarded()
    source.routes["/cam"] = (302, {"location": f"{internal.url}/live.ts"}, b"")
    sid = register(svc, f"{source.url}/cam")
    run_until(svc, detector, lambda: stream_row(svc, sid)["status"] == "failed", "the stream to fail")
    # THEN the internal server was never reached and the stream failed as refused
    assert source.paths() == ["/cam"] and internal.seen == []
    row = stream_row(svc, sid)
    assert row["last_error_code"] == "url_refused" and row["frames_done"] == 0
    assert "127.0.0.2" not in row["last_error"]


def test_an_hls_playlist_is_refused_and_none_of_its_segments_fetched(
    guarded: Callable[..., Services], detector: Detector, source: VideoSource, internal: VideoSource
) -> None:
    # GIVEN an allowed source serving a playlist whose segments live on an internal server and on itself
    svc = guarded()
    playlist = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
        f"#EXTINF:2,\n{internal.url}/live.ts\n#EXTINF:2,\n{source.url}/seg.ts\n#EXT-X-ENDLIST\n"
    ).encode()
    source.routes["/index.m3u8"] = (200, {"content-type": "application/vnd.apple.mpegurl"}, playlist)
    source.routes["/plain.m3u8"] = (200, {"content-type": "video/mp2t"}, playlist)  # lying about its type
    ids = [register(svc, f"{source.url}/index.m3u8"), register(svc, f"{source.url}/plain.m3u8")]
    run_until(svc, detector, lambda: all(stream_row(svc, i)["status"] == "failed" for i in ids), "the streams to fail")
    # THEN only the playlists were fetched, no segment anywhere
    assert sorted(source.paths()) == ["/index.m3u8", "/plain.m3u8"] and internal.seen == []
    assert {stream_row(svc, i)["last_error_code"] for i in ids} == {"playlist_refused"}


def test_credentials_in_a_url_are_refused_and_never_listed_or_logged(
    guarded: Callable[..., Services], detector: Detector, source: VideoSource, caplog: pytest.LogCaptureFixture
) -> None:
    svc = guarded()
    api = Api(svc)
    url = f"http://viewer:{SECRET}@{source.url.removeprefix('http://')}/live.ts"
    # WHEN a URL with credentials is registered THEN it is refused without echoing them
    status, body = call(api, "POST", "/streams", {"url": url, "fps": 1})
    assert status == 400 and body["code"] == "url_refused" and SECRET not in json.dumps(body)
    # GIVEN such a URL stored before this rule (inserted directly)
    with svc.db.connection() as conn:
        sid = int(conn.execute("INSERT INTO streams (url, fps) VALUES (%s, 1) RETURNING id", (url,)).fetchone()[0])
        conn.commit()
    # THEN neither the listing nor the stream shows the credentials
    assert SECRET not in json.dumps(call(api, "GET", "/streams")[1])
    status, body = call(api, "GET", f"/streams/{sid}")
    assert status == 200 and body["stream"]["url"].startswith("http://***@127.0.0.1:")
    # AND a worker refuses to open it, without a request, a stored secret or a logged one
    caplog.set_level(logging.DEBUG)
    run_until(svc, detector, lambda: stream_row(svc, sid)["status"] == "failed", "the stream to fail")
    assert source.seen == []
    assert stream_row(svc, sid)["last_error_code"] == "url_refused"
    assert SECRET not in json.dumps(call(api, "GET", f"/streams/{sid}")[1])
    assert SECRET not in caplog.text


def test_ffmpegs_error_text_which_quotes_the_url_is_neither_stored_nor_returned(
    guarded: Callable[..., Services], detector: Detector
) -> None:
    # GIVEN an RTSP source on a closed port, its path holding a token
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    svc = guarded()
    sid = register(svc, f"rtsp://127.0.0.1:{port}/cam?token={SECRET}")
    # WHEN a worker fails to connect
    run_until(svc, detector, lambda: stream_row(svc, sid)["last_error_code"] is not None, "an error on the stream")
    # THEN the stream keeps a code and a message without the URL, and so does the API
    row = stream_row(svc, sid)
    assert row["last_error_code"] == "source_unavailable" and row["status"] in ("retrying", "running")
    assert "Connection refused" in row["last_error"]
    assert SECRET not in row["last_error"] and "rtsp://" not in row["last_error"]
    body = call(Api(svc), "GET", f"/streams/{sid}")[1]
    assert body["stream"]["last_error_code"] == "source_unavailable" and SECRET not in body["stream"]["last_error"]


# -- item 2: a stream cannot exhaust a worker -----------------------------------------------------


def test_frames_over_the_pixel_cap_fail_the_stream_before_any_is_detected(
    guarded: Callable[..., Services], detector: Detector, source: VideoSource
) -> None:
    # GIVEN a 640x360 source and a cap of 320x180 pixels
    svc = guarded(stream_max_pixels=320 * 180)
    source.routes["/big.ts"] = (200, {"content-type": "video/mp2t"}, mpegts_clip(1.0, size=(640, 360)))
    sid = register(svc, f"{source.url}/big.ts")
    run_until(svc, detector, lambda: stream_row(svc, sid)["status"] == "failed", "the stream to fail")
    # THEN no frame was detected and the stream says why, once (a failed stream is not retried)
    row = stream_row(svc, sid)
    assert row["frames_done"] == 0 and row["last_error_code"] == "frame_too_large"
    assert "640x360" in row["last_error"] and source.paths() == ["/big.ts"]


def test_stream_count_quotas_hold_overall_and_per_owner(guarded: Callable[..., Services], source: VideoSource) -> None:
    svc = guarded(stream_max_active=3, stream_max_per_owner=2)
    api = Api(svc)
    url = f"{source.url}/live.ts"
    # GIVEN an API without keys (every stream owned by the anonymous caller) and that caller's two streams
    first, _second = register(svc, url), register(svc, url)
    # WHEN it registers a third THEN its own quota refuses it
    refused = answer(api, "POST", "/streams", {"url": url, "fps": 1})
    status, body = refused.status, json.loads(refused.body)
    assert status == 429 and body["code"] == "stream_quota_exceeded" and "per key" in body["detail"]
    # AND it says when to try again: a fixed short interval, since a place frees at no foreseeable time
    assert refused.headers["retry-after"] == "60"
    # GIVEN another owner's stream filling the overall quota, and the caller freeing a place
    with svc.db.connection() as conn:
        conn.execute("INSERT INTO streams (url, fps, owner) VALUES (%s, 1, 'other-key')", (url,))
        conn.commit()
    assert call(api, "DELETE", f"/streams/{first}")[0] == 200
    # THEN the overall quota still counts the other owner's stream, so one place only is free
    register(svc, url)
    status, body = call(api, "POST", "/streams", {"url": url, "fps": 1})
    assert status == 429 and "at once" in body["detail"]


def test_a_rate_below_the_minimum_fps_is_refused(guarded: Callable[..., Services], source: VideoSource) -> None:
    svc = guarded(stream_min_fps=0.5)
    status, body = call(Api(svc), "POST", "/streams", {"url": f"{source.url}/live.ts", "fps": 0.1})
    assert status == 400 and "at least 0.5" in body["detail"]
    assert register(svc, f"{source.url}/live.ts", fps=0.5) > 0


def test_a_source_that_yields_no_frame_expires_after_the_idle_limit_and_frees_its_place(
    guarded: Callable[..., Services], detector: Detector, source: VideoSource
) -> None:
    # GIVEN a source that only answers 503, and a one-second idle limit
    svc = guarded(stream_idle_expiry_s=1.0, stream_max_active=1)
    source.routes["/down.ts"] = (503, {}, b"")
    sid = register(svc, f"{source.url}/down.ts")
    run_until(svc, detector, lambda: stream_row(svc, sid)["status"] == "expired", "the stream to expire")
    # THEN it expired with its code after a few tries, and its place is free again
    row = stream_row(svc, sid)
    assert row["last_error_code"] == "idle_expired" and "HTTP 503" in row["last_error"]
    assert row["lease_owner"] is None and len(source.paths()) >= 2
    assert register(svc, f"{source.url}/down.ts") > sid


@pytest.mark.parametrize("scheme", ["rtsp", "rtsps"])
def test_an_rtsp_redirect_to_a_refused_address_is_not_followed(
    guarded: Callable[..., Services], detector: Detector, tls_server: tuple[ssl.SSLContext, Path], scheme: str
) -> None:
    # GIVEN an RTSP server (over TLS for rtsps, read by the relay in clear) on an allowed address
    # that redirects DESCRIBE to an internal address
    context, ca_file = tls_server
    internal = socket.create_server(("127.0.0.2", 0))
    internal.settimeout(0.2)
    target = f"{scheme}://127.0.0.2:{internal.getsockname()[1]}/cam"
    server = socket.create_server(("127.0.0.1", 0))
    asked: list[bytes] = []

    def answer() -> None:
        conn, _ = server.accept()
        if scheme == "rtsps":
            conn = context.wrap_socket(conn, server_side=True)
        with contextlib.suppress(OSError), conn:
            buf = b""
            while data := conn.recv(4096):
                buf += data
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    method = head.split(b" ", 1)[0]
                    asked.append(method)
                    cseq = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"cseq"))
                    if method == b"OPTIONS":
                        conn.sendall(b"RTSP/1.0 200 OK\r\n" + cseq + b"\r\nPublic: DESCRIBE, SETUP, PLAY\r\n\r\n")
                    else:
                        conn.sendall(
                            b"RTSP/1.0 302 Found\r\n" + cseq + b"\r\nLocation: " + target.encode() + b"\r\n\r\n"
                        )

    threading.Thread(target=answer, daemon=True).start()
    svc = guarded(stream_tls_ca_file=str(ca_file))
    sid = register(svc, f"{scheme}://127.0.0.1:{server.getsockname()[1]}/cam")
    try:
        # WHEN a worker opens it
        run_until(svc, detector, lambda: stream_row(svc, sid)["status"] == "failed", "the stream to fail")
        # THEN the redirect was refused and the internal address never connected to
        with pytest.raises(TimeoutError):
            internal.accept()
    finally:
        server.close()
        internal.close()
    assert b"DESCRIBE" in asked
    row = stream_row(svc, sid)
    assert row["last_error_code"] == "url_refused" and "redirect" in row["last_error"]
    assert "127.0.0.2" not in row["last_error"]


class RtpOverRtspServer:
    """A minimal live RTSP server: one session, MPEG-TS over RTP interleaved on the RTSP connection."""

    def __init__(self, clip: bytes, seconds: float, tls: ssl.SSLContext | None = None) -> None:
        self.clip = clip
        self.seconds = seconds
        self.tls = tls
        self.methods: list[str] = []
        self.stopping = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self) -> None:
        self.stopping.set()
        self._server.close()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self._server.accept()
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn:
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        buf = b""
        while not self.stopping.is_set() and (data := conn.recv(4096)):
            buf += data
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                method = lines[0].split(" ", 1)[0]
                self.methods.append(method)
                cseq = next(x for x in lines if x.lower().startswith("cseq"))
                extra, body = self._answer(method)
                conn.sendall(f"RTSP/1.0 200 OK\r\n{cseq}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                if method == "PLAY":
                    threading.Thread(target=self._media, args=(conn,), daemon=True).start()

    def _answer(self, method: str) -> tuple[str, bytes]:
        if method == "OPTIONS":
            return "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n", b""
        if method == "DESCRIBE":
            sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 33\r\na=control:track0\r\n"
            return "Content-Type: application/sdp\r\n", sdp.encode()
        if method == "SETUP":
            return "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 4711\r\n", b""
        return "Session: 4711\r\n", b""

    def _media(self, conn: socket.socket) -> None:
        seq, chunk = 0, 7 * 188
        pause = self.seconds / max(1, len(self.clip) // chunk)  # live: the clip takes its own time
        with contextlib.suppress(OSError):
            for start in range(0, len(self.clip), chunk):
                if self.stopping.is_set():
                    return
                rtp = bytes([0x80, 33]) + seq.to_bytes(2, "big") + (seq * 900).to_bytes(4, "big") + b"\0\0\0\1"
                packet = rtp + self.clip[start : start + chunk]
                conn.sendall(b"$\0" + len(packet).to_bytes(2, "big") + packet)
                seq += 1
                self.stopping.wait(pause)


def test_an_rtsp_source_is_read_through_the_relay_to_its_checked_address(
    guarded: Callable[..., Services], detector: Detector
) -> None:
    # GIVEN a live RTSP source on an allowed address
    server = RtpOverRtspServer(mpegts_clip(seconds=8.0), seconds=8.0)
    svc = guarded()
    sid = register(svc, f"rtsp://127.0.0.1:{server.port}/cam")
    try:
        # WHEN a worker holds it THEN its frames are detected over the one relayed connection
        run_until(svc, detector, lambda: stream_row(svc, sid)["frames_done"] >= 3, "RTSP frames")
    finally:
        server.close()
    assert server.methods[:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]
    assert stream_row(svc, sid)["last_error_code"] is None


@pytest.fixture
def tls_server(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 signed by a throwaway CA, and that CA's PEM file."""
    cert, key, ca_pem = tls_material(tmp_path, san=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca_pem)
    return context, ca_file


def test_an_rtsps_source_is_read_through_the_relay_over_tls_checked_against_its_ca(
    guarded: Callable[..., Services], detector: Detector, tls_server: tuple[ssl.SSLContext, Path]
) -> None:
    # GIVEN a live RTSP-over-TLS source whose certificate is signed by a CA the worker is given
    context, ca_file = tls_server
    server = RtpOverRtspServer(mpegts_clip(seconds=8.0), seconds=8.0, tls=context)
    svc = guarded(stream_tls_ca_file=str(ca_file))
    sid = register(svc, f"rtsps://127.0.0.1:{server.port}/cam")
    try:
        # WHEN a worker holds it THEN its frames are detected over the relay's TLS connection
        run_until(svc, detector, lambda: stream_row(svc, sid)["frames_done"] >= 3, "RTSPS frames")
    finally:
        server.close()
    assert server.methods[:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]
    assert stream_row(svc, sid)["last_error_code"] is None


def test_an_rtsps_source_with_a_certificate_no_trusted_ca_signed_is_not_read(
    guarded: Callable[..., Services], detector: Detector, tls_server: tuple[ssl.SSLContext, Path]
) -> None:
    # GIVEN an RTSPS source whose CA the worker does not trust (the system's CAs only)
    context, _ = tls_server
    server = RtpOverRtspServer(mpegts_clip(seconds=4.0), seconds=4.0, tls=context)
    svc = guarded()
    sid = register(svc, f"rtsps://127.0.0.1:{server.port}/cam")
    try:
        # WHEN a worker opens it THEN the handshake fails with its own code and no request is sent
        run_until(svc, detector, lambda: stream_row(svc, sid)["last_error_code"] is not None, "a TLS failure")
    finally:
        server.close()
    row = stream_row(svc, sid)
    assert row["last_error_code"] == "tls_failed" and "certificate" in row["last_error"], row
    assert row["frames_done"] == 0 and server.methods == []
