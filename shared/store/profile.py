"""The whole profile of one track, read in one transaction: the track, its enrichments, every
analysis, its embedding models, its provenance and its stage trail.

Enrichments and analyses carry ``current``: whether they were computed from the text the track has
now (a changed lyric leaves the old rows until the pipeline recomputes them). One analysis is
``chosen``: the track's current analysis (:mod:`shared.store.current_analysis`), the one browse
filters on, aggregates count and export writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from shared.intel.profile import Profile
from shared.models import Track
from shared.store.current_analysis import CURRENT_ANALYSIS
from shared.store.provenance import Provenance, provenance_of
from shared.store.tracks import TrackStore

__all__ = [
    "AnalysisRecord",
    "Enrichments",
    "FeaturesEnrichment",
    "SpotifyEnrichment",
    "StageRecord",
    "TrackProfile",
    "track_profile",
]


class _Answer(BaseModel):
    # Served by the API as they are: a key the model does not declare is refused, not published undocumented.
    model_config = ConfigDict(extra="forbid")


class _Enrichment(_Answer):
    version: str
    current: bool = Field(description="computed from the track's present text")
    updated_at: datetime


class FeaturesEnrichment(_Enrichment):
    """Algorithmic lyric features (rhyme density, sentiment lexicon, lexical diversity, structure)."""

    data: dict[str, Any]


class SpotifyEnrichment(_Enrichment):
    """The catalogue match. ``audio_features`` is null when the catalogue would not give them;
    ``audio_features_unavailable`` then says why (``forbidden``: the API refuses this app)."""

    matched: bool
    match_score: float | None = None
    best_score: float | None = None
    candidates: int | None = Field(default=None, description="catalogue results weighed when none matched")
    spotify_id: str | None = None
    name: str | None = None
    artists: list[str] = []
    popularity: int | None = None
    release_date: str | None = None
    audio_features: dict[str, float | int | None] | None = None
    audio_features_unavailable: str | None = None


class Enrichments(_Answer):
    features: FeaturesEnrichment | None = None
    metadata: SpotifyEnrichment | None = None


class AnalysisRecord(_Answer):
    analyzer: str
    prompt_version: str
    content_hash: str
    current: bool = Field(description="computed from the track's present text")
    chosen: bool = Field(
        description="the track's profile: the one analysis that browse filters, aggregates and export use"
    )
    profile: Profile
    confidence: float
    field_confidence: dict[str, float] = {}
    fallback: bool
    fallback_reason: str | None = None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    created_at: datetime


class StageRecord(_Answer):
    """One ledger row of the track (``track:<id>``) or of an object it came from (``object:<uri>``)."""

    subject: str
    stage: str
    status: str
    attempts: int
    last_error: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None


class TrackProfile(Track):
    model_config = ConfigDict(extra="forbid")

    embedded_models: list[str]
    enrichments: Enrichments
    analyses: list[AnalysisRecord]
    provenance: Provenance
    stages: list[StageRecord]


def track_profile(conn: psycopg.Connection[Any], track_id: int) -> TrackProfile | None:
    """The track's whole profile, or None when there is no such track. Does not commit."""
    track = TrackStore(conn).get(track_id)
    if track is None:
        return None
    with conn.cursor() as cur:
        cur.execute("SELECT model FROM embeddings WHERE track_id = %s ORDER BY model", (track_id,))
        models = [r[0] for r in cur.fetchall()]
        cur.execute(
            "SELECT kind, version, content_hash, data, updated_at FROM enrichments WHERE track_id = %s", (track_id,)
        )
        enrichments = _enrichments(cur.fetchall(), track.content_hash)
        cur.execute(
            "SELECT p.analyzer, p.prompt_version FROM tracks t" + CURRENT_ANALYSIS + "WHERE t.id = %s", (track_id,)
        )
        chosen = cur.fetchone()
        cur.execute(
            "SELECT analyzer, prompt_version, content_hash, result, confidence, fallback, tokens_in, tokens_out,"
            " cost_usd, created_at FROM analyses WHERE track_id = %s ORDER BY created_at, analyzer, prompt_version",
            (track_id,),
        )
        analyses = [_analysis(row, track.content_hash, chosen) for row in cur.fetchall()]
        provenance = provenance_of(conn, track_id)
        subjects = [f"track:{track_id}", *sorted({f"object:{o.bucket}/{o.key}" for o in provenance.objects})]
        cur.execute(
            "SELECT subject, stage, status, attempts, last_error, started_at, finished_at, duration_ms"
            " FROM ledger WHERE subject = ANY(%s) ORDER BY started_at, subject, stage",
            (subjects,),
        )
        stages = [
            StageRecord(
                subject=r[0],
                stage=r[1],
                status=r[2],
                attempts=r[3],
                last_error=r[4],
                started_at=r[5],
                finished_at=r[6],
                duration_ms=r[7],
            )
            for r in cur.fetchall()
        ]
    return TrackProfile(
        **track.model_dump(),
        embedded_models=models,
        enrichments=enrichments,
        analyses=analyses,
        provenance=provenance,
        stages=stages,
    )


def _enrichments(rows: list[tuple[Any, ...]], content_hash: str) -> Enrichments:
    out = Enrichments()
    for kind, version, chash, data, updated_at in rows:
        common = {"version": version, "current": chash == content_hash, "updated_at": updated_at}
        if kind == "features":
            out.features = FeaturesEnrichment(data=data, **common)
        elif kind == "metadata":
            out.metadata = SpotifyEnrichment.model_validate({**data, **common})
    return out


def _analysis(row: tuple[Any, ...], content_hash: str, chosen: tuple[Any, ...] | None) -> AnalysisRecord:
    analyzer, prompt_version, chash, result, confidence, fallback, tokens_in, tokens_out, cost, created_at = row
    current = chash == content_hash
    return AnalysisRecord(
        analyzer=analyzer,
        prompt_version=prompt_version,
        content_hash=chash,
        current=current,
        # (track, analyzer, prompt version, content hash) is unique: with the present text, it names one row.
        chosen=current and chosen is not None and (analyzer, prompt_version) == tuple(chosen),
        profile=Profile.model_validate(result["profile"]),
        confidence=confidence,
        field_confidence=result.get("field_confidence") or {},
        fallback=fallback,
        fallback_reason=result.get("fallback_reason"),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=float(cost),
        created_at=created_at,
    )
