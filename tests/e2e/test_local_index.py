"""Local runtime: a bulk upload is embedded first, then the index keeper builds the HNSW index."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from local.runtime import LocalStack
from shared.config import Settings


def _health(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_bulk_upload_is_searchable_by_exact_scan_then_by_hnsw_once_embedded(
    settings: Settings, model_dir: Path
) -> None:
    # GIVEN the local stack, deferring the index while at least 40 embed jobs wait
    local = settings.model_copy(update={"api_port": 0, "worker_poll_s": 0.05, "hnsw_defer_backlog": 40})
    rows = [
        {"id": i, "artist": f"A{i % 4}", "title": f"T{i}", "lyrics": f"waves on the shore, verse {i}"}
        for i in range(96)
    ]
    with LocalStack(local) as stack:
        assert stack.services is not None
        assert _health(stack.url)["model"]["search_index"] == "exact"  # nothing to index yet
        # WHEN 96 tracks are uploaded into the watched bucket
        stack.services.blob.put(local.bucket, "bulk.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
        seen_exact_with_vectors = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            health = _health(stack.url)
            with stack.services.db.connection() as conn:
                (vectors,) = conn.execute("SELECT count(*) FROM embeddings").fetchone()  # type: ignore[misc]
                conn.commit()
            if health["model"]["search_index"] == "exact" and vectors > 0:
                seen_exact_with_vectors = True
            if health["model"]["search_index"] == "hnsw" and vectors == len(rows):
                break
            time.sleep(0.05)
        # THEN search answered by exact scan while the backlog was deep, and ends on the HNSW index
        assert health["model"]["search_index"] == "hnsw" and vectors == len(rows)
        assert seen_exact_with_vectors
        with urllib.request.urlopen(f"{stack.url}/search?q=ocean+waves&k=5", timeout=10) as resp:
            assert len(json.loads(resp.read())["results"]) == 5
