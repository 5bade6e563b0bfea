"""A one-connection TCP relay between FFmpeg and an RTSP server that refuses RTSP redirects.

FFmpeg's RTSP client follows a 3xx answer to its setup requests to whatever address the answer
names, with no option or hook to refuse it. So FFmpeg is pointed at this relay on 127.0.0.1 and
the relay connects to the address the policy checked. With interleaved TCP transport the whole
session (requests, answers, media as ``$``-framed packets) runs over that one connection, so
the relay reads every answer's status line: a 3xx closes both sides before FFmpeg can act on it,
and ``refused`` says why. Media frames are forwarded without a look inside.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading

__all__ = ["RtspRelay"]

_STATUS = re.compile(rb"^RTSP/\d\.\d (\d{3})")
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_MAX_HEAD = 64 * 1024


class RtspRelay:
    """Accepts one connection on ``127.0.0.1:port`` and relays it to ``target`` (a checked address)."""

    def __init__(self, target: tuple[str, int], *, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.refused: str | None = None
        self.unreachable: str | None = None  # why the checked address could not be connected to
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
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
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
        try:
            upstream = socket.create_connection(self.target, timeout=self.timeout_s)
        except OSError as exc:
            self.unreachable = f"cannot connect to the RTSP source: {exc.strerror or type(exc).__name__}"
            client.close()
            return
        self._sockets.append(upstream)
        # Live media may pause for longer than a connect timeout: FFmpeg keeps its own read timeout.
        upstream.settimeout(None)
        client.settimeout(None)
        outbound = threading.Thread(target=self._pump, args=(client, upstream), name="rtsp-relay-out", daemon=True)
        outbound.start()
        try:
            self._pump_answers(upstream, client)
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            outbound.join(self.timeout_s)
            client.close()
            upstream.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _pump_answers(self, upstream: socket.socket, client: socket.socket) -> None:
        """Forward server → FFmpeg one whole message at a time; stop at a redirect."""
        buf = b""
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                buf += data
                while buf:
                    size = self._message_size(buf)
                    if size is None:
                        break
                    if size < 0:
                        return
                    client.sendall(buf[:size])
                    buf = buf[size:]

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
