"""analyze: route a track (an ``analyze`` job) or ad-hoc text (the API's ``POST /analyze``) through
the router — rules first, the distilled predictor, the LLM when needed — and record the outcome.

The LLM being down, slow, over budget or wrong never fails a job or a request: the router answers
with the rule-based profile flagged ``fallback``. Only the store being down fails (and retries).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.errors import PoisonError
from shared.intel import store
from shared.intel.context import intel_for
from shared.intel.profile import Analysis
from shared.platform.jobs import JobOutcome, per_job, process_claimed, track_id_of
from shared.queue.base import ClaimedJob, JobAcks
from shared.queue.kinds import ANALYZE_JOB, analyze_job
from shared.services import Services
from shared.store import ledger
from shared.store.tracks import TrackStore

__all__ = [
    "ANALYZE_HANDLING",
    "ANALYZE_JOB",
    "STAGE",
    "AnalyzeRequest",
    "TrackNotFound",
    "analyze_claimed",
    "analyze_job",
    "analyze_text",
    "analyze_track",
    "run_analyze_batch",
]

log = logging.getLogger(__name__)

STAGE = "analyzed"


class TrackNotFound(PoisonError):
    """The job names a track that no longer exists."""


class AnalyzeRequest(BaseModel):
    """``POST /analyze``: either ``text`` (ad-hoc lyrics) or ``track_id``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str | None = Field(default=None, min_length=1)
    artist: str = Field(default="", max_length=500)
    title: str = Field(default="", max_length=1000)
    track_id: int | None = Field(default=None, ge=1)
    mode: Literal["auto", "rules", "llm"] = "auto"
    min_confidence: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_subject(self) -> AnalyzeRequest:
        if (self.text is None) == (self.track_id is None):
            raise ValueError("give exactly one of text or track_id")
        return self


def analyze_track(
    track_id: int,
    services: Services,
    *,
    mode: Literal["auto", "rules", "llm"] = "auto",
    min_confidence: float | None = None,
) -> Analysis:
    """Analyse one stored track (its embedding, when it has one, feeds the distilled predictor)."""
    started = time.perf_counter()
    with services.db.connection() as conn:
        track = TrackStore(conn).get(track_id)
        embedding = store.latest_embedding(conn, track_id) if track is not None else None
        conn.commit()
    if track is None:
        raise TrackNotFound(f"track {track_id} not found")
    analysis = intel_for(services).router.analyze(
        artist=track.artist,
        title=track.title,
        lyrics=track.lyrics,
        track_id=track_id,
        embedding=embedding,
        mode=mode,
        min_confidence=min_confidence,
    )
    with services.db.connection() as conn:
        ledger.record(
            conn,
            f"track:{track_id}",
            STAGE,
            "ok",
            # cached: answered from the cache or the analyses table, not computed (/stats/analyses counts it)
            detail={
                "analyzer": analysis.analyzer,
                "fallback": analysis.fallback,
                "confidence": analysis.confidence,
                "cached": analysis.cached,
            },
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        conn.commit()
    return analysis


def analyze_text(request: AnalyzeRequest, services: Services) -> Analysis:
    """The API's ad-hoc analysis. Text is capped by Settings; an embedder already loaded in this
    process (the API's, for search) lets the distilled predictor answer too."""
    if request.track_id is not None:
        return analyze_track(request.track_id, services, mode=request.mode, min_confidence=request.min_confidence)
    text = request.text or ""
    if len(text) > services.settings.analyze_max_text_chars:
        raise PoisonError(f"text longer than {services.settings.analyze_max_text_chars} characters")
    embedding = None
    if services.has_embedder:
        embedder = services.embedder
        embedding = (embedder.model_key, embedder.embed([f"{request.title}\n{text}"])[0])
    return intel_for(services).router.analyze(
        artist=request.artist,
        title=request.title,
        lyrics=text,
        embedding=embedding,
        mode=request.mode,
        min_confidence=request.min_confidence,
    )


def analyze_claimed(claimed: Sequence[ClaimedJob], services: Services, *, acks: JobAcks | None = None) -> JobOutcome:
    def work(c: ClaimedJob) -> None:
        analyze_track(track_id_of(c), services)

    return process_claimed(claimed, services, work, acks=acks)


def run_analyze_batch(services: Services, limit: int = 16) -> JobOutcome:
    claimed = services.queue.claim(ANALYZE_JOB, limit)
    if not claimed:
        return JobOutcome()
    return analyze_claimed(claimed, services)


# For the cloud entry points (shared.platform): pushed jobs and the outbox, each job on its own.
ANALYZE_HANDLING = per_job(ANALYZE_JOB, analyze_claimed, run_analyze_batch, report_store=True)
