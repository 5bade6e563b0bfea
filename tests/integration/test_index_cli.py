"""``contentfn index status|build`` against a real PostgreSQL: the build step an operator runs after
a bulk first load in the cloud."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from functions.embed.core import run_embed_batch
from functions.ingest.core import handle_object_created
from local.cli import main
from shared.events import ObjectCreated
from shared.services import Services


def _env(services: Services) -> dict[str, str]:
    s = services.settings
    assert s.database_url is not None
    return {
        "CONTENTFN_DATABASE_URL": s.database_url.get_secret_value(),
        "CONTENTFN_DATA_DIR": str(s.data_dir),
        "CONTENTFN_MODEL_DIR": str(s.resolved_model_dir),
    }


@pytest.fixture
def loaded(services: Services) -> Services:
    """24 tracks embedded under a deferral threshold that keeps the index from being built."""
    svc = dataclasses.replace(services, settings=services.settings.model_copy(update={"hnsw_defer_backlog": 10_000}))
    body = "".join(
        json.dumps({"id": i, "artist": "A", "title": f"T{i}", "lyrics": f"song number {i} about the sea"}) + "\n"
        for i in range(24)
    )
    info = svc.blob.put(svc.settings.bucket, "bulk.jsonl", body.encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), svc)
    while run_embed_batch(svc).claimed:
        pass
    return svc


def test_index_build_turns_an_exact_scan_into_a_valid_hnsw_index(loaded: Services, tmp_path: Path) -> None:
    runner = CliRunner()
    env = _env(loaded)
    # GIVEN embedded vectors and no index
    before = runner.invoke(main, ["index", "status"], env=env)
    assert before.exit_code == 0, before.output
    assert "index: missing" in before.output and "vectors: 24" in before.output
    # WHEN the operator builds it
    built = runner.invoke(main, ["index", "build"], env=env)
    # THEN it is valid, and says so
    assert built.exit_code == 0, built.output
    assert "index ready" in built.output and "index: valid" in built.output
    after = runner.invoke(main, ["index", "status"], env=env)
    assert "index: valid" in after.output and "embed_jobs: 0" in after.output
