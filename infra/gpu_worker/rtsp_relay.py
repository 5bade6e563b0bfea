"""A one-connection TCP relay between FFmpeg and an RTSP server that refuses RTSP redirects.

FFmpeg's RTSP client follows a 3xx answer to its setup requests to whatever address the answer
names, with no option or hook to refuse it. So FFmpeg is pointed at this relay on 127.0.0.1 and
the relay connects to the address the policy checked. With interleaved TCP transport the whole
session (requests, answers, media as ``$``-framed packets) runs over that one connection, so
the relay reads every answer's status line: a 3xx closes both sides before FFmpeg can act on it,
and ``refused`` says why. Media frames are forwarded without a look inside.

For ``rtsps`` the relay is the TLS client (``tls``: the context, ``server_name``: the URL's host,
for SNI and certificate checks), so it reads the answers in clear as well and FFmpeg speaks plain
RTSP to 127.0.0.1 only. One thread moves both directions (``select``), because an SSL connection
must not be read and written from two threads at once.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import threading

__all__ = ["RtspRelay"]

_STATUS = re.compile(rb"^RTSP/\d\.\d (\d{3})")
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_MAX_HEAD = 64 * 1024
_CHUNK = 65536


class RtspRelay:
    """Accepts one connection on ``127.0.0.1:port`` and relays it to ``target`` (a checked address)."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        timeout_s: float,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.tls = tls
        self.server_name = server_name
        self.refused: str | None = None
        self.unreachable: str | None = None  # why the checked address could not be connected to
        self.tls_failed: str | None = None  # why the TLS handshake with it failed
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.settimeout(timeout_s)
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = [self._listener]
        self._thread = threading.Thread(target=self._serve, name="rtsp-relay", daemon=True)

    def __enter__(self) -> RtspRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for sock in list(self._sockets):
            with contextlib.suppress(OSError, ValueError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError, ValueError):
                sock.close()
        self._thread.join(self.timeout_s)

    def _serve(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        finally:
            self._listener.close()
        self._sockets.append(client)
        upstream = self._connect()
        if upstream is None:
            client.close()
            return
        self._sockets.append(upstream)
        try:
            self._relay(client, upstream)
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError, ValueError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError, ValueError):
                    sock.close()

    def _connect(self) -> socket.socket | None:
        try:
            raw = socket.create_connection(self.target, timeout=self.timeout_s)
        except OSError as exc:
            self.unreachable = f"cannot connect to the RTSP source: {exc.strerror or type(exc).__name__}"
            return None
        if self.tls is None:
            return raw
        try:
            return self.tls.wrap_socket(raw, server_hostname=self.server_name)
        except ssl.SSLCertVerificationError as exc:
            self.tls_failed = f"the RTSP source's certificate was refused: {exc.verify_message or exc.reason}"
        except (ssl.SSLError, OSError) as exc:
            self.tls_failed = f"TLS with the RTSP source failed: {getattr(exc, 'reason', None) or type(exc).__name__}"
        raw.close()
        return None

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        """Move bytes both ways until either side closes or the server answers a redirect.

        Live media may pause for longer than a connect timeout, so there is no read timeout here:
        FFmpeg keeps its own, and ``close`` wakes the ``select``.
        """
        upstream.setblocking(False)
        client.settimeout(None)
        buf = b""
        with contextlib.suppress(OSError, ValueError):
            while True:
                readable: list[socket.socket]
                if isinstance(upstream, ssl.SSLSocket) and upstream.pending():
                    readable = [upstream]  # decrypted bytes already buffered: select would not see them
                else:
                    readable, _, _ = select.select([client, upstream], [], [])
                if client in readable:
                    data = client.recv(_CHUNK)
                    if not data:
                        return
                    self._send(upstream, data)
                if upstream in readable:
                    try:
                        data = upstream.recv(_CHUNK)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                        continue  # TLS records that carried no data (a session ticket, say)
                    if not data:
                        return
                    buf += data
                    while buf:
                        size = self._message_size(buf)
                        if size is None:
                            break
                        if size < 0:
                            return
                        client.sendall(buf[:size])
                        buf = buf[size:]

    def _send(self, sock: socket.socket, data: bytes) -> None:
        """``sendall`` on a non-blocking (possibly TLS) socket."""
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except (ssl.SSLWantWriteError, BlockingIOError):
                select.select([], [sock], [], self.timeout_s)
            except ssl.SSLWantReadError:
                select.select([sock], [], [], self.timeout_s)

    def _message_size(self, buf: bytes) -> int | None:
        """Bytes of the first whole message in ``buf``; None: incomplete; -1: refused (relay ends)."""
        if buf[:1] == b"$":  # interleaved media: '$', channel, 16-bit length
            if len(buf) < 4:
                return None
            size = 4 + int.from_bytes(buf[2:4], "big")
            return size if len(buf) >= size else None
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > _MAX_HEAD:
                self.refused = "the RTSP server sent an oversized header"
                return -1
            return None
        head = buf[:end]
        status = _STATUS.match(head)
        if status is not None and 300 <= int(status.group(1)) < 400:
            self.refused = f"the RTSP server answered {int(status.group(1))} (a redirect); redirects are not followed"
            return -1
        length = _LENGTH.search(head)
        size = end + 4 + (int(length.group(1)) if length else 0)
        return size if len(buf) >= size else None
