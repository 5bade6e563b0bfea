"""``contentfn eval`` through the real database, the real embedder and the HTTP LLM test server,
checked against figures computed by hand from the sample label and query files."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from local.cli import main
from shared.models import TrackIn
from shared.services import Services
from shared.store.tracks import TrackStore, embedding_text, upsert_tracks
from tests.conftest import REPO
from tests.intel_fixtures import intel_services, llm_server, sample_rows  # noqa: F401
from tests.servers.llm_server import LlmServer

LABELS = REPO / "local" / "data" / "eval_labels.csv"
QUERIES = REPO / "local" / "data" / "eval_queries.jsonl"


def _env(svc: Services, **extra: str) -> dict[str, str]:
    s = svc.settings
    assert s.database_url is not None
    return {
        "CONTENTFN_DATABASE_URL": s.database_url.get_secret_value(),
        "CONTENTFN_DATA_DIR": str(s.data_dir),
        "CONTENTFN_MODEL_DIR": str(s.resolved_model_dir),
        "CONTENTFN_HTTP_ALLOW_NETWORKS": '["127.0.0.1/32"]',
        **extra,
    }


def _load(svc: Services, n: int = 12) -> list[int]:
    rows = [
        TrackIn(artist=r["artist"], title=r["title"], lyrics=r["lyrics"], source_id=r["id"]) for r in sample_rows(n)
    ]
    with svc.db.connection() as conn:
        ids = sorted(c.id for c in upsert_tracks(conn, rows).content_changed)
        TrackStore(conn).index_text(ids)
        conn.commit()
    return ids


def _run(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.output)
    return doc


def test_eval_analyzers_reports_the_hand_computed_llm_figures_and_renders_its_chart(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    # GIVEN the sample tracks and a label file that agrees with the test LLM except: track 1's
    # quality (10 against 8), track 2's sentiment (positive against neutral), track 3's themes
    # ({harbor, sea} against {harbor, lights}); one label names a track the store lacks
    svc = intel_services()
    _load(svc)
    env = _env(
        svc,
        CONTENTFN_LLM_BASE_URL=llm_server.url,
        CONTENTFN_LLM_API_KEY="test-key",
        CONTENTFN_LLM_MODEL="test-model",
    )
    chart = tmp_path / "analyzers.svg"
    # WHEN every analyzer is evaluated
    doc = _run(["eval", "analyzers", "--labels", str(LABELS), "--json", "--chart", str(chart)], env)
    # THEN the LLM's figures are those computed by hand over the six tracks in the store
    rows = {row["analyzer"]: row for row in doc["analyzers"]}
    llm = rows["llm"]
    assert doc["labels"] == 6 and doc["notes"] == ["1 labelled tracks are not in the store (left out)"]
    assert (llm["answered"], llm["coverage"]) == (6, 1.0)
    assert llm["quality_mae"] == pytest.approx(round(2 / 6, 4))
    assert llm["quality_rmse"] == pytest.approx(round(math.sqrt(4 / 6), 4))
    assert llm["sentiment_accuracy"] == pytest.approx(round(5 / 6, 4))
    # neutral: tp 1 fp 1 -> 2/3; positive: tp 0 -> 0; negative: tp 4 -> 1
    assert llm["sentiment_macro_f1"] == pytest.approx(round((2 / 3 + 0 + 1) / 3, 4))
    assert llm["themes_jaccard"] == pytest.approx(round((5 + 1 / 3) / 6, 4))
    # its cost is what the ledger recorded for these calls, spread over the six tracks
    with svc.db.connection() as conn:
        spent, calls = conn.execute(
            "SELECT sum(cost_usd), count(*) FROM llm_calls WHERE subject LIKE 'eval:track:%%'"
        ).fetchone()
        conn.commit()
    assert calls == 6 == llm_server.completions()
    assert llm["cost_per_1k_usd"] == pytest.approx(float(spent) / 6 * 1000, abs=1e-6) and llm["cost_per_1k_usd"] > 0
    # the rules answer every track for free; no distilled predictor is fitted, so it covers none
    assert (rows["rules"]["coverage"], rows["rules"]["cost_per_1k_usd"]) == (1.0, 0.0)
    assert (rows["distilled"]["answered"], rows["distilled"]["quality_mae"]) == (0, None)
    assert doc["config"]["analysis_min_confidence"] == svc.settings.analysis_min_confidence
    # AND the chart is an SVG with a bar per analyzer and metric that has a value
    # (6 panels x 4 analyzers, less the distilled's 4 metrics it has no value for)
    bars = [r for r in ET.parse(chart).getroot().iter("{http://www.w3.org/2000/svg}rect") if r.get("height") == "16"]
    assert len(bars) == 6 * 4 - 4


def test_eval_sweep_moves_cost_and_error_with_the_escalation_threshold(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    svc = intel_services()
    _load(svc)
    env = _env(svc, CONTENTFN_LLM_BASE_URL=llm_server.url, CONTENTFN_LLM_API_KEY="test-key")
    doc = _run(["eval", "sweep", "--labels", str(LABELS), "--thresholds", "0,1.01", "--json"], env)
    never, always = doc["sweep"]
    # threshold 0: the rules always suffice, free; above 1: every track goes to the LLM
    assert (never["share_rules"], never["cost_per_1k_usd"]) == (1.0, 0.0)
    assert (always["share_llm"], always["quality_mae"]) == (1.0, pytest.approx(round(2 / 6, 4)))
    assert always["cost_per_1k_usd"] > 0


def test_eval_search_reports_recall_and_ndcg_per_model_and_mode(services: Services, tmp_path: Path) -> None:
    # GIVEN 12 sample tracks embedded by the real model, and vectors of a model no local file makes
    ids = _load(services)
    key = services.embedder.model_key
    with services.db.connection() as conn:
        rows = conn.execute(
            "SELECT id, title, lyrics, content_hash FROM tracks WHERE id = ANY(%s) ORDER BY id", (ids,)
        ).fetchall()
        hashes = [r[3] for r in rows]
        vectors = services.embedder.embed([embedding_text(r[1], r[2]) for r in rows])
        TrackStore(conn).write_embeddings(key, ids, hashes, vectors)
        TrackStore(conn).write_embeddings("elsewhere-384", ids[:1], hashes[:1], vectors[:1])
        conn.commit()
    chart = tmp_path / "search.svg"
    result = CliRunner().invoke(
        main, ["eval", "search", "--queries", str(QUERIES), "--json", "--chart", str(chart)], env=_env(services)
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    figures = {(r["model"], r["mode"]): r for r in doc["results"]}
    # THEN keyword search: "Evening Tide" finds its song first (1, 1); the nonsense word finds none (0, 0)
    assert (figures[(None, "keyword")]["recall_at_10"], figures[(None, "keyword")]["ndcg_at_10"]) == (0.5, 0.5)
    # hybrid: the exact title leads (1, 1); for the nonsense word the 10 semantic hits are all
    # relevant (every track is): recall 10/12, nDCG 1
    hybrid = figures[(key, "hybrid")]
    assert hybrid["recall_at_10"] == pytest.approx(round((1 + 10 / 12) / 2, 4))
    assert hybrid["ndcg_at_10"] == pytest.approx(1.0)
    semantic = figures[(key, "semantic")]
    assert semantic["queries"] == 2 and round(10 / 24, 4) <= semantic["recall_at_10"] <= round((1 + 10 / 12) / 2, 4)
    assert doc["skipped_models"] == ["elsewhere-384"]
    assert ET.parse(chart).getroot().tag.endswith("svg")
