"""Opening a stream's source so that FFmpeg reaches nothing the outbound address policy refuses.

The URL was checked when the stream was registered, but that proves little by the time a worker
opens it: the name may resolve elsewhere now, and FFmpeg left to itself resolves names again at
connect time, follows HTTP redirects to any host, and lets HLS, DASH and concat playlists open
whatever segment URLs they name. So each source is opened here, never by ``av.open(url)``:

- **http / https**: FFmpeg never sees a URL. The worker fetches the body itself: each hop's host is
  resolved once, every address checked against the policy, and the connection made to the checked
  address (``Host`` and TLS SNI keep the name, see ``shared.net.client.pin_url``); redirects are
  followed by hand, each target checked the same way, at most ``max_redirects``. FFmpeg is handed
  the byte stream with no protocol allowed (``protocol_whitelist``) and only demuxers of
  self-contained formats (``format_whitelist``: MPEG-TS, MJPEG, FLV, Matroska/WebM, MP4, AVI, raw
  H.264/HEVC), so no playlist can make it open anything. A playlist itself (by content type or its
  first bytes) is refused with ``playlist_refused``: checking every segment host would mean
  re-implementing the HLS client, and a live camera does not need one.
- **rtsp**: the host is resolved once and checked; FFmpeg connects to a relay on 127.0.0.1 that
  connects to the checked address (``rtsp_relay.py``) and ends the session at a 3xx answer, which
  FFmpeg would otherwise follow to any address. Protocols are restricted to rtsp over TCP with
  interleaved transport: one connection carries everything, no UDP port is opened toward an
  address the server names.
- **rtsps**: the same relay, which is the TLS client here (SNI and certificate checked against the
  URL's host; see ``tls_context``), so it reads the answers in clear too. FFmpeg speaks
  plain RTSP to 127.0.0.1 and never holds the TLS session.
- **file**: the worker's own disk, allowed only where a setting says so (local runtime, tests).
- **Credentials** in the URL (``user:password@``) are refused: they would be stored, listed and
  logged. A failure is described by ``describe_failure`` as a code and a message that never quote
  the URL (FFmpeg's error text does, so only its errno text is kept).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from infra.gpu_worker.rtsp_relay import RtspRelay
from shared.net.client import REDIRECT_STATUSES, pin_url
from shared.net.errors import OutboundError, UpstreamUnavailable, UrlRefused
from shared.net.policy import AddressPolicy, IpAddress, Resolver, system_resolver

__all__ = [
    "HTTP_FORMATS",
    "StreamFailure",
    "StreamSourceError",
    "describe_failure",
    "open_source",
    "tls_context",
]

# Demuxers of formats that carry their own media: none of them opens another URL.
HTTP_FORMATS = "mpegts,mpjpeg,mjpeg,flv,matroska,mov,avi,h264,hevc"
_PLAYLIST_TYPES = ("mpegurl", "dash+xml", "x-scpls", "smil")
_PLAYLIST_MAGIC = (b"#EXTM3U", b"<?xml", b"<MPD", b"ffconcat", b"[playlist]")
_RTSP_PORTS = {"rtsp": 554, "rtsps": 322}
_URLISH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")


class StreamSourceError(Exception):
    """A source failure with its code; ``retryable`` False means the stream cannot ever be read as registered."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class StreamFailure:
    code: str
    message: str
    retryable: bool


def describe_failure(exc: BaseException) -> StreamFailure:
    """A code and a message fit to store, return and log: nothing in it quotes the URL."""
    import av

    if isinstance(exc, StreamSourceError):
        failure = StreamFailure(exc.code, exc.message, exc.retryable)
    elif isinstance(exc, UrlRefused):
        failure = StreamFailure("url_refused", str(exc), False)
    elif isinstance(exc, UpstreamUnavailable):
        failure = StreamFailure("source_unavailable", str(exc), True)
    elif isinstance(exc, OutboundError):
        failure = StreamFailure("source_refused", str(exc), True)
    elif isinstance(exc, httpx.TimeoutException):
        failure = StreamFailure("timeout", "the source did not answer in time", True)
    elif isinstance(exc, httpx.TransportError):
        failure = StreamFailure("source_unavailable", f"connection to the source failed: {type(exc).__name__}", True)
    elif isinstance(exc, av.error.InvalidDataError):
        failure = StreamFailure("invalid_stream", "the source is not a video stream this worker reads", True)
    elif isinstance(exc, av.error.FFmpegError):
        failure = StreamFailure("source_error", f"FFmpeg: {exc.strerror or type(exc).__name__}", True)
    elif isinstance(exc, OSError):
        failure = StreamFailure("source_error", exc.strerror or type(exc).__name__, True)
    else:
        failure = StreamFailure("worker_error", type(exc).__name__, True)
    # Belt and braces: none of the texts above should carry a URL, and none may.
    return StreamFailure(failure.code, _URLISH.sub("<url>", failure.message)[:500], failure.retryable)


@contextmanager
def open_source(
    url: str,
    *,
    policy: AddressPolicy,
    allow_files: bool,
    timeout_s: float = 10.0,
    max_redirects: int = 3,
    resolver: Resolver = system_resolver,
    tls_verify: bool = True,
    tls_ca_file: str | None = None,
) -> Iterator[Any]:
    """An open ``av`` input container for ``url``, closed (with its connection) on exit.

    ``tls_verify`` and ``tls_ca_file`` say how an ``rtsps`` source's certificate is checked (``tls_context``).
    """
    import av

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if "@" in parts.netloc:
        raise UrlRefused("credentials in stream URLs are refused")
    if scheme == "file":
        if not allow_files:
            raise UrlRefused("file URLs are not allowed for streams here")
        with av.open(unquote(parts.path), options={"format_whitelist": HTTP_FORMATS}) as container:
            yield container
    elif scheme in ("http", "https"):
        with _HttpBody.open(url, policy, resolver, timeout_s, max_redirects) as body:
            options = {"format_whitelist": HTTP_FORMATS, "protocol_whitelist": "none"}
            with av.open(body, options=options, timeout=(timeout_s, timeout_s)) as container:
                yield container
    elif scheme in _RTSP_PORTS:
        ip, port = _check_rtsp_host(url, policy, resolver)
        secure = scheme == "rtsps"
        relay = RtspRelay(
            (str(ip), port),
            timeout_s=timeout_s,
            tls=tls_context(verify=tls_verify, ca_file=tls_ca_file) if secure else None,
            server_name=parts.hostname if secure else None,
        )
        with relay:
            local = urlunsplit(parts._replace(scheme="rtsp", netloc=f"127.0.0.1:{relay.port}"))
            options = {"rtsp_transport": "tcp", "protocol_whitelist": "rtsp,tcp", "allowed_media_types": "video"}
            try:
                session = av.open(local, "r", format="rtsp", options=options, timeout=(timeout_s, timeout_s))
            except Exception:
                if relay.refused:
                    raise UrlRefused(relay.refused) from None
                if relay.unreachable:
                    raise UpstreamUnavailable(relay.unreachable) from None
                if relay.tls_failed:
                    raise StreamSourceError("tls_failed", relay.tls_failed, retryable=True) from None
                raise
            with session:
                yield session
    else:
        raise UrlRefused("stream URL must be rtsp://, rtsps://, http:// or https://")


def tls_context(*, verify: bool = True, ca_file: str | None = None) -> ssl.SSLContext:
    """The TLS client context for ``rtsps`` sources: the system's CAs (or ``ca_file``'s), host name checked.

    ``verify=False`` keeps the address pinned and checked but accepts any certificate (a camera with
    a self-signed one); the stream is then private from onlookers, not from an impostor on the path.
    """
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _check_rtsp_host(url: str, policy: AddressPolicy, resolver: Resolver) -> tuple[IpAddress, int]:
    """The checked address and port to connect to (the name is resolved here, once)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise UrlRefused("stream URL has no host")
    port = parts.port or _RTSP_PORTS[parts.scheme.lower()]
    return policy.check_host(host, port, resolver)[0], port


class _HttpBody:
    """A pinned HTTP response body read by FFmpeg through ``read(n)`` (no ``seek``: a live stream)."""

    def __init__(self, client: httpx.Client, response: httpx.Response) -> None:
        self._client = client
        self._response = response
        self._chunks = response.iter_bytes()
        self._pending = b""

    @classmethod
    @contextmanager
    def open(
        cls, url: str, policy: AddressPolicy, resolver: Resolver, timeout_s: float, max_redirects: int
    ) -> Iterator[_HttpBody]:
        # trust_env=False: a proxy from the environment would connect by name and undo the pinning.
        client = httpx.Client(trust_env=False, follow_redirects=False, timeout=httpx.Timeout(timeout_s))
        try:
            response = cls._follow(client, httpx.URL(url), policy, resolver, max_redirects)
            body = cls(client, response)
            try:
                body._refuse_playlists()
                yield body
            finally:
                response.close()
        finally:
            client.close()

    @staticmethod
    def _follow(
        client: httpx.Client, url: httpx.URL, policy: AddressPolicy, resolver: Resolver, max_redirects: int
    ) -> httpx.Response:
        for _hop in range(max_redirects + 1):
            pinned = pin_url(url, policy, resolver)
            request = client.build_request(
                "GET", pinned.url, headers={"user-agent": "contentfn", **pinned.headers}, extensions=pinned.extensions
            )
            response = client.send(request, stream=True)
            location = response.headers.get("location")
            if response.status_code in REDIRECT_STATUSES and location:
                response.close()
                url = url.join(location)
                continue
            if response.status_code != 200:
                response.close()
                raise StreamSourceError(
                    "source_status", f"the source answered HTTP {response.status_code}", retryable=True
                )
            return response
        raise UrlRefused(f"more than {max_redirects} redirects")

    def _refuse_playlists(self) -> None:
        ctype = self._response.headers.get("content-type", "").lower()
        head = self._fill(64).lstrip()
        if any(t in ctype for t in _PLAYLIST_TYPES) or head.startswith(_PLAYLIST_MAGIC):
            raise StreamSourceError(
                "playlist_refused", "playlists (HLS, DASH and the like) are not opened as streams", retryable=False
            )

    def _fill(self, n: int) -> bytes:
        while len(self._pending) < n:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._pending += chunk
        return self._pending

    def read(self, n: int = -1) -> bytes:
        want = n if n > 0 else 64 * 1024
        data = self._fill(1)[:want]  # hand over what has arrived; FFmpeg asks again
        self._pending = self._pending[len(data) :]
        return data
