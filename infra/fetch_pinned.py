"""Fetch one file for an image build, pinned by its sha256: the build fails unless the bytes match.

    python3 infra/fetch_pinned.py URL SHA256 DEST

Used by the Dockerfiles for Amazon RDS's CA bundle, which cannot be vendored (AWS publishes new CAs
into it) and must not be taken unchecked. The digest is a build argument without a default: take it
from a copy you checked (``curl -fsS URL | sha256sum``) and bump it when AWS updates the bundle.
Nothing is written unless the digest matches. Standard library only (it runs before any install).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

MAX_BYTES = 4 * 1024 * 1024


def fetch_pinned(url: str, sha256: str, dest: Path, *, timeout_s: float = 60.0) -> None:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        raise SystemExit(f"fetch_pinned: the sha256 of {url} is required (64 lower-case hex digits), got {sha256!r}")
    if not url.startswith(("https://", "http://")):
        raise SystemExit(f"fetch_pinned: {url!r} is not an http(s) URL")
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (scheme checked above)
        data = response.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise SystemExit(f"fetch_pinned: {url} is larger than {MAX_BYTES} bytes")
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SystemExit(f"fetch_pinned: {url} has sha256 {digest}, expected {sha256}: refusing it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(partial, 0o644)
    os.replace(partial, dest)


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit("usage: fetch_pinned.py URL SHA256 DEST")
    url, sha256, dest = argv
    fetch_pinned(url, sha256, Path(dest))
    print(f"fetch_pinned: {dest} ({sha256[:12]}…) from {url}")


if __name__ == "__main__":
    main(sys.argv[1:])
