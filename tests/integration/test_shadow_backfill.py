"""Shadow re-embedding over real PostgreSQL and a real embeddings HTTP server: the backfill covers
every track once per model, survives a killed worker, is throttled behind uploads, and the switch
of search to the new model happens at the activation's commit."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from functions.embed.backfill import BackfillThrottle, backfill_step
from shared.embedder.providers import openai_spec
from shared.models import TrackIn
from shared.services import Services
from shared.store.registry import activate_model, add_model, coverage, get_model, model_progress, rollback_model
from shared.store.tracks import TrackStore, upsert_tracks
from tests.conftest import REPO
from tests.servers.embeddings_server import EmbeddingsServer

TRACKS = 60
THEMES = ["rivers and rain", "city lights at night", "desert highways", "winter snow", "ocean waves"]


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    srv = EmbeddingsServer(dims=64)
    with srv:
        yield srv


def _services(services: Services) -> Services:
    """The suite's services, allowed to reach the loopback test server with its key."""
    settings = services.settings.model_copy(
        update={
            "http_allow_networks": (ipaddress.ip_network("127.0.0.0/8"),),
            "embed_api_key": SecretStr("test-key"),
            # The registry is read on every search here, so a switch shows at the commit that made it.
            "search_model_cache_s": 0.0,
        }
    )
    return dataclasses.replace(services, settings=settings, _model_embedders={})


@pytest.fixture
def catalogue(services: Services, server: EmbeddingsServer) -> Services:
    """60 tracks; model "alpha" (64-d, the test server) active and fully embedded and indexed."""
    svc = _services(services)
    rows = [
        TrackIn(
            artist=f"a{i % 4}", title=f"t{i}", lyrics=f"a song about {THEMES[i % 5]} {i}", source="bf", source_id=str(i)
        )
        for i in range(TRACKS)
    ]
    alpha = openai_spec(name="alpha", version="1", dimensions=64, base_url=server.url, batch_size=16)
    with svc.db.connection() as conn:
        upsert_tracks(conn, rows)
        add_model(conn, alpha)
        conn.commit()
    return svc


def _add_beta(svc: Services, server: EmbeddingsServer, *, version: str = "1") -> str:
    beta = openai_spec(name="beta", version=version, dimensions=64, base_url=server.url + "/v1", batch_size=8)
    with svc.db.connection() as conn:
        model = add_model(conn, beta)
        conn.commit()
    return model.key


def _run_backfill(svc: Services, limit: int) -> list[int]:
    sizes = []
    while (step := backfill_step(svc, limit)) is not None:
        sizes.append(step.embedded)
    return sizes


def test_a_shadow_model_is_backfilled_over_every_track_then_indexed_and_activatable(
    catalogue: Services, server: EmbeddingsServer
) -> None:
    svc = catalogue
    _run_backfill(svc, 25)  # alpha is active: nothing to backfill for it
    key = _add_beta(svc, server)
    sizes = _run_backfill(svc, 25)
    assert sizes == [25, 25, 10, 0, 0]  # then the end of the pass, then a pass from the start finds nothing
    with svc.db.connection() as conn:
        cov = coverage(conn, key)
        assert (cov.tracks, cov.embedded, cov.index) == (TRACKS, TRACKS, "valid")
        assert get_model(conn, key).backfill_done
        per_track = conn.execute("SELECT count(*), count(DISTINCT track_id) FROM embeddings WHERE model = %s", (key,))
        assert per_track.fetchone() == (TRACKS, TRACKS)
        progress = {p.key: p for p in model_progress(conn)}
        assert progress[key].percent == 100.0 and progress[key].state == "shadow"
        activate_model(conn, key)
        conn.commit()


def test_a_track_changed_behind_the_cursor_is_caught_up_by_the_wrapping_pass(
    catalogue: Services, server: EmbeddingsServer
) -> None:
    svc = catalogue
    key = _add_beta(svc, server)
    assert backfill_step(svc, 30) is not None  # first 30 tracks done
    with svc.db.connection() as conn:
        upsert_tracks(conn, [TrackIn(artist="a0", title="t0", lyrics="rewritten words", source="bf", source_id="0")])
        conn.commit()
    _run_backfill(svc, 30)
    with svc.db.connection() as conn:
        assert coverage(conn, key).embedded == TRACKS


def test_search_switches_to_the_activated_model_and_back_on_rollback(
    catalogue: Services, server: EmbeddingsServer
) -> None:
    svc = catalogue
    with svc.db.connection() as conn:
        ids = [int(r[0]) for r in conn.execute("SELECT id FROM tracks ORDER BY id")]
        hashes = dict(conn.execute("SELECT id, content_hash FROM tracks").fetchall())
        texts = TrackStore(conn).texts_for(ids)
        alpha = svc.search_embedder()
        TrackStore(conn).write_embeddings(
            alpha.model_key, ids, [hashes[i] for i in ids], alpha.embed([texts[i][1] for i in ids])
        )
        conn.commit()
    key = _add_beta(svc, server)
    _run_backfill(svc, 64)
    assert svc.search_embedder().model_key == "alpha@1"
    with svc.db.connection() as conn:
        activate_model(conn, key)
        assert svc.search_embedder().model_key == "alpha@1"  # not committed yet: search still reads alpha
        conn.commit()
    beta = svc.search_embedder()
    assert beta.model_key == key
    with svc.db.connection() as conn:
        hits = TrackStore(conn).search(beta.embed(["a song about desert highways 7"])[0], key, 3, ef_search=100)
        conn.commit()
        assert hits[0].title == "t7"
        rollback_model(conn)
        conn.commit()
    assert svc.search_embedder().model_key == "alpha@1"


def test_backfill_gets_a_share_of_the_turns_while_uploads_wait_and_every_turn_otherwise() -> None:
    throttle = BackfillThrottle(0.25)
    assert [throttle.allow(True) for _ in range(8)] == [False, False, False, True] * 2
    assert all(throttle.allow(False) for _ in range(5))
    assert BackfillThrottle(1.0).allow(True)


_CHILD = """
import json, sys, time
from shared.config import load_settings
from shared.services import Services
from functions.embed.backfill import backfill_step
args = json.loads(sys.argv[1])
svc = Services.from_settings(load_settings(**args["settings"]), migrate=False)
while backfill_step(svc, args["limit"]) is not None:
    pass
print("finished", flush=True)
"""


def _child(svc: Services) -> subprocess.Popen[str]:
    s = svc.settings
    args = {
        "limit": 4,
        "settings": {
            "database_url": s.database_url.get_secret_value() if s.database_url else None,
            "data_dir": str(s.data_dir),
            "model_dir": str(s.resolved_model_dir),
            "http_allow_networks": ["127.0.0.0/8"],
            "embed_api_key": "test-key",
        },
    }
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(args)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )


def _cursor(svc: Services, key: str) -> int:
    with svc.db.connection() as conn:
        cursor = get_model(conn, key).backfill_after
        conn.commit()
    return cursor


def test_a_backfill_worker_killed_twice_mid_pass_resumes_and_embeds_every_track_once(
    catalogue: Services, server: EmbeddingsServer
) -> None:
    svc = catalogue
    server.latency_s = 0.1  # 15 steps of 4 tracks: about 1.5 s of backfill, long enough to kill it twice
    key = _add_beta(svc, server)
    for _ in range(2):
        before = _cursor(svc, key)
        child = _child(svc)
        deadline = time.monotonic() + 60
        while _cursor(svc, key) <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert child.returncode == -signal.SIGKILL
        assert before < _cursor(svc, key) < TRACKS + 1000
        with svc.db.connection() as conn:
            assert not get_model(conn, key).backfill_done
            conn.commit()
    child = _child(svc)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0 and "finished" in out
    with svc.db.connection() as conn:
        cov = coverage(conn, key)
        assert (cov.embedded, cov.index) == (TRACKS, "valid")
        rows = conn.execute("SELECT count(*), count(DISTINCT track_id) FROM embeddings WHERE model = %s", (key,))
        assert rows.fetchone() == (TRACKS, TRACKS)
        assert get_model(conn, key).backfill_done
    # A killed step is redone, never more: at most one step of 4 tracks per kill was embedded twice.
    assert TRACKS <= server.inputs <= TRACKS + 2 * 4


def test_the_cloud_embed_hook_steps_the_backfill_within_its_share_while_uploads_wait(
    catalogue: Services, server: EmbeddingsServer
) -> None:
    from functions.embed.handling import after_embed_batch

    svc = catalogue
    _add_beta(svc, server)
    # GIVEN uploads waiting in the cloud queue that delivered the batch, and a share of 1/4
    steps = [after_embed_batch(svc, lambda: 5).get("backfill") for _ in range(8)]
    # THEN one batch in four is followed by a backfill step
    assert [s is not None for s in steps] == [False, False, False, True] * 2
    assert steps[3] == {"model": "beta@1", "embedded": 60, "done": False}  # the whole catalogue, one batch
    assert steps[7] == {"model": "beta@1", "embedded": 0, "done": False}  # end of the pass: wraps to the start
    # WHEN nothing waits THEN the very next batch is followed by a step: the pass from the start finishes it
    assert after_embed_batch(svc, lambda: 0)["backfill"] == {"model": "beta@1", "embedded": 0, "done": True}
