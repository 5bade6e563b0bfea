"""One notion of a track's current analysis across the read side: the profile's ``chosen`` analysis,
the browse filters, the artist aggregates and the export agree — over the real HTTP server and real
PostgreSQL, for a track whose newest analysis is a rule-based fallback written after an LLM answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from functions.api.core import Api
from functions.ingest.core import handle_object_created
from local.server import ApiServer
from shared.events import ObjectCreated
from shared.services import Services
from shared.store.export import ExportFilters, export_rows
from tests.intel_fixtures import sample_rows


@pytest.fixture
def api(services: Services) -> Iterator[str]:
    srv = ApiServer(Api(services), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


def _profile(sentiment: str, quality: int) -> dict[str, Any]:
    score = {"positive": 0.8, "negative": -0.8}[sentiment]
    return {
        "sentiment": sentiment,
        "sentiment_score": score,
        "themes": ["night"],
        "complexity": 0.5,
        "quality": quality,
    }


def _analysed_track(services: Services) -> tuple[int, str]:
    """One ingested track with an LLM answer (positive) and, an hour later, a rule-based fallback (negative)."""
    (row,) = sample_rows(1)
    info = services.blob.put(services.settings.bucket, "one.jsonl", (json.dumps(row) + "\n").encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    with services.db.connection() as conn:
        track_id, content_hash = conn.execute("SELECT id, content_hash FROM tracks").fetchone() or (0, "")
        for analyzer, profile, fallback, age in (
            ("llm:test-model", _profile("positive", 8), False, "2 hours"),
            ("rules", _profile("negative", 3), True, "1 hour"),
        ):
            conn.execute(
                "INSERT INTO analyses (track_id, analyzer, prompt_version, content_hash, result, confidence, fallback,"
                " created_at) VALUES (%s, %s, 'v1', %s, %s, 0.9, %s, now() - %s::interval)",
                (track_id, analyzer, content_hash, json.dumps({"profile": profile}), fallback, age),
            )
        conn.commit()
    return int(track_id), str(row["artist"])


def test_an_llm_answer_stays_the_profile_everywhere_after_a_newer_rule_based_fallback(
    services: Services, api: str
) -> None:
    # GIVEN a track answered by the LLM (positive), then by the rules as a fallback (negative)
    track_id, artist = _analysed_track(services)
    # WHEN its profile is read
    profile = httpx.get(f"{api}/tracks/{track_id}").json()
    # THEN the LLM's answer is the chosen one, the fallback is not
    chosen = {a["analyzer"]: a["chosen"] for a in profile["analyses"]}
    assert chosen == {"llm:test-model": True, "rules": False}
    # AND browse filters on that same answer
    positive = httpx.get(f"{api}/tracks", params={"sentiment": "positive"}).json()["items"]
    negative = httpx.get(f"{api}/tracks", params={"sentiment": "negative"}).json()["items"]
    assert [t["id"] for t in positive] == [track_id] and negative == []
    # AND the artist's aggregate counts it
    view = httpx.get(f"{api}/artists/{quote(artist, safe='')}").json()
    assert view["sentiment"] == {"positive": 1}
    # AND the export writes it
    with services.db.connection() as conn:
        (exported,) = list(export_rows(conn, "tracks", ExportFilters()))
        conn.commit()
    assert (exported["analyzer"], exported["sentiment"], exported["quality"]) == ("llm:test-model", "positive", 8)


def test_browse_by_analyzer_takes_that_analyzers_answer(services: Services, api: str) -> None:
    # GIVEN the same track
    track_id, _ = _analysed_track(services)
    # WHEN browse names whose profile counts
    by_rules = httpx.get(f"{api}/tracks", params={"analyzer": "rules", "sentiment": "negative"}).json()["items"]
    # THEN the rules' answer is used for that filter
    assert [t["id"] for t in by_rules] == [track_id]
