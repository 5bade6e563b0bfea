"""Local-folder blob store: ``<root>/<bucket>/<key>``. The embedded default and the local watcher's source."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from shared.blob.base import BlobInfo, SignedUpload
from shared.errors import ObjectNotFound, ObjectTooLarge, PoisonError

__all__ = ["BoundedReader", "LocalBlob"]


class BoundedReader(io.RawIOBase):
    """A reader that fails instead of yielding more than ``limit`` bytes."""

    def __init__(self, raw: BinaryIO, limit: int, name: str) -> None:
        self._raw = raw
        self._left = limit
        self._limit = limit
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")[: self._left + 1]
        readinto = getattr(self._raw, "readinto", None)
        if readinto is not None:  # a file: straight into the caller's buffer, one system call
            n = readinto(view) or 0
        else:  # a cloud stream that only reads
            data = self._raw.read(len(view))
            n = len(data)
            view[:n] = data
        if n > self._left:
            raise ObjectTooLarge(f"{self._name} grew beyond the {self._limit}-byte cap while being read")
        self._left -= n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class LocalBlob:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        pure = PurePosixPath(key)
        if pure.is_absolute() or ".." in pure.parts or not key or "\x00" in key:
            raise PoisonError("object key is not a safe relative path")
        if "/" in bucket or bucket in ("", ".", ".."):
            raise PoisonError("bucket name is not valid")
        return self.root / bucket / Path(*pure.parts)

    def read_url(self, bucket: str, key: str, *, expires_s: int) -> str | None:
        """A folder has no URL of its own: the API serves local bytes itself."""
        self._path(bucket, key)  # the same refusal of unsafe names as every other operation
        return None

    def write_url(self, bucket: str, key: str, *, expires_s: int, content_type: str, size: int) -> SignedUpload | None:
        """Nothing to sign: the local API writes uploaded bytes into the folder itself."""
        self._path(bucket, key)
        return None

    def signed_origin(self, bucket: str) -> str | None:
        return None

    def stat(self, bucket: str, key: str) -> BlobInfo:
        path = self._path(bucket, key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ObjectNotFound(f"object {bucket}/{key} does not exist") from None
        if not path.is_file():
            raise ObjectNotFound(f"object {bucket}/{key} is not a file")
        # mtime_ns + size stands in for a cloud generation number: a rewrite is a new version.
        return BlobInfo(bucket, key, st.st_size, generation=f"{st.st_mtime_ns}-{st.st_size}")

    def open(self, bucket: str, key: str, *, max_bytes: int) -> BinaryIO:
        info = self.stat(bucket, key)
        if info.size > max_bytes:
            raise ObjectTooLarge(f"object {bucket}/{key} is {info.size} bytes; the cap is {max_bytes}")
        raw = self._path(bucket, key).open("rb", buffering=0)
        return io.BufferedReader(BoundedReader(raw, max_bytes, f"{bucket}/{key}"), buffer_size=1 << 20)  # type: ignore[return-value]

    def put(self, bucket: str, key: str, data: bytes, *, content_type: str | None = None) -> BlobInfo:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a watcher never sees a half-written object.
        tmp = path.with_name(f".{path.name}.part")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:
            # A full disk fails the write half-way: the partial copy would hold the space it took
            # (and keep the disk full) until the next put of the same key.
            tmp.unlink(missing_ok=True)
            raise
        return self.stat(bucket, key)

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]:
        base = self.root / bucket
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            key = path.relative_to(base).as_posix()
            if key.startswith(prefix):
                try:
                    info = self.stat(bucket, key)
                except ObjectNotFound:
                    continue  # deleted since the folder was read: gone, not an error of the listing
                yield info
