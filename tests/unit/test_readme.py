"""The README's promises hold: its sample track file is accepted as written, and the documents it
and the moved notes link to exist."""

from __future__ import annotations

import io
import re

import pytest

from functions.ingest.parsing import BadRow, ParsedRow, iter_rows
from tests.conftest import REPO

DOCS = ("README.md", "docs/benchmarks.md", "infra/gpu_worker/README.md", "shared/queue/README.md")


def test_the_readme_sample_track_file_parses_into_three_good_rows() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```jsonl\n(.*?)```", readme, re.S)
    assert block is not None, "README.md has no ```jsonl sample"
    rows = list(iter_rows(io.BytesIO(block.group(1).encode()), "jsonl", max_field_bytes=1 << 20))
    assert not [row for row in rows if isinstance(row, BadRow)]
    tracks = [row.track for row in rows if isinstance(row, ParsedRow)]
    assert [(t.source_id, t.metadata) for t in tracks] == [
        ("tw-001", {}),
        ("mq-017", {"year": 2019}),
        (None, {"genre": "synth-pop", "explicit": False}),
    ]
    assert tracks[0].source == "catalogue"


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_point_at_files_that_exist(doc: str) -> None:
    path = REPO / doc
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8"))
    assert targets
    missing = [t for t in targets if not (path.parent / t).exists()]
    assert not missing, f"{doc} links to missing files: {missing}"
