"""The local blob store: bounded reads from files and from streams that only read."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shared.blob.local import BoundedReader, LocalBlob
from shared.errors import ObjectTooLarge


def test_an_object_within_the_cap_reads_whole(tmp_path: Path) -> None:
    blob = LocalBlob(tmp_path)
    blob.put("b", "images/x.jpg", b"0123456789" * 1000)
    with blob.open("b", "images/x.jpg", max_bytes=10_000) as f:
        assert f.read(10_001) == b"0123456789" * 1000


def test_an_object_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    blob = LocalBlob(tmp_path)
    blob.put("b", "k", b"x" * 101)
    with pytest.raises(ObjectTooLarge, match="cap is 100"):
        blob.open("b", "k", max_bytes=100)


@pytest.mark.parametrize("raw_kind", ["file", "read-only stream"])
def test_a_source_yielding_more_than_the_cap_fails_while_read(tmp_path: Path, raw_kind: str) -> None:
    # GIVEN a source that holds more than the cap (an object that grew after its size was checked)
    path = tmp_path / "grown"
    path.write_bytes(b"y" * 5000)

    class ReadOnly:
        def __init__(self) -> None:
            self._f = io.BytesIO(path.read_bytes())

        def read(self, n: int = -1) -> bytes:
            return self._f.read(n)

        def close(self) -> None:
            self._f.close()

    raw = path.open("rb", buffering=0) if raw_kind == "file" else ReadOnly()
    reader = io.BufferedReader(BoundedReader(raw, 4096, "b/grown"))  # type: ignore[arg-type]
    # WHEN read to the end THEN it fails naming the object and the cap, never returning 5000 bytes
    with pytest.raises(ObjectTooLarge, match="b/grown grew beyond the 4096-byte cap"):
        reader.read()
    reader.close()


def test_put_that_runs_out_of_space_leaves_no_partial_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    # GIVEN a process that may write files of 1 KB at most (the kernel refuses the rest, as on a full disk)
    code = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from shared.blob import LocalBlob\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))\n"
        "try:\n"
        "    LocalBlob(Path(sys.argv[1])).put('b', 'tracks/big.jsonl', b'x' * 10_000)\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
    )
    # WHEN it puts a larger object
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    # THEN the put fails and neither the object nor a partial copy of it is left
    assert done.stdout.startswith("refused"), done.stderr
    assert list((tmp_path / "b").rglob("*")) == [tmp_path / "b" / "tracks"]
