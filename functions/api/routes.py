"""The API's route table: every operation with the callable that answers it and the pydantic models
of its body and answer. The dispatcher (:mod:`functions.api.core`), the OpenAPI document
(:mod:`functions.api.openapi`) and every runtime's router read this one table.

Query limits come from ``Settings`` (the longest search text, the largest ``k``), so the table is
built per settings rather than once at import.
"""

from __future__ import annotations

from functions.analyze.core import AnalyzeRequest
from functions.api.aggregates import AnalysisStatsView, ArtistView, get_artist, stats_analyses
from functions.api.analyze import analyze
from functions.api.dead import ReplayRequest, dead_delete, dead_detail, dead_index, dead_replay
from functions.api.export import export
from functions.api.objects import ObjectTraceView, object_trace
from functions.api.openapi import openapi
from functions.api.params import Param
from functions.api.routing import Route
from functions.api.status import health, stats
from functions.api.tracks import SearchResults, SimilarTracks, TrackDetail, get_track, search, similar
from functions.api.vision import (
    StreamRequest,
    create_stream,
    delete_stream,
    image_detections,
    images_index,
    stream_frames,
    stream_status,
    streams_index,
)
from shared.config import Settings
from shared.intel.profile import Analysis

__all__ = ["routes_for"]


def routes_for(settings: Settings) -> tuple[Route, ...]:
    """Every route the API serves, in match order."""
    s = settings
    q = Param("q", str, required=True, maximum=s.search_max_query_chars, description="search text")
    k = Param("k", int, default=10, maximum=s.search_max_k, description="number of results")
    artist = Param("artist", str, maximum=500, description="only this artist (case-insensitive)")
    limit = Param("limit", int, default=100, maximum=1000, description="number of streams")
    frames = Param("limit", int, default=100, maximum=1000, description="number of frames")
    images = Param("limit", int, default=100, maximum=1000, description="number of images")
    status = Param("status", str, maximum=16, description="only images with this status (pending, done, rejected)")
    before = Param("before", int, maximum=2**63 - 1, description="only images with a smaller id (paging)")
    after = Param("after", str, maximum=32, description="only frames after this frame timestamp")
    dead_kind = Param("kind", str, maximum=64, description="only dead jobs of this kind")
    dead_before = Param("before", int, maximum=2**63 - 1, description="only dead jobs with a smaller id (paging)")
    dead_limit = Param("limit", int, default=50, maximum=1000, description="number of dead jobs")
    artist_tracks = Param("limit", int, default=100, maximum=1000, description="number of the artist's tracks listed")
    near = Param("k", int, default=5, maximum=50, description="number of nearest artists")
    days = Param("days", int, default=7, maximum=366, description="days of LLM cost, today included")
    object_key = Param("key", str, required=True, maximum=1024, description="the object's key")
    object_bucket = Param("bucket", str, maximum=222, description="its bucket, when the key is in several")
    subjects = Param("limit", int, default=100, maximum=1000, description="number of tracks (or images) per page")
    cursor = Param("cursor", str, maximum=64, description="next_cursor of the previous page")
    what = Param("what", str, default="tracks", maximum=16, description="tracks (with profiles) or detections")
    source = Param("source", str, maximum=200, description="only tracks of this source")
    since = Param("since", str, maximum=40, description="only rows updated (detections: created) at or after, ISO 8601")
    until = Param("until", str, maximum=40, description="only rows updated (detections: created) before, ISO 8601")
    return (
        Route("GET", "/health", health, "health", "Database, queue and model health", public=True),
        Route(
            "GET",
            "/search",
            search,
            "search",
            "Semantic search over lyrics",
            (q, k, artist),
            response=SearchResults,
        ),
        Route("GET", "/tracks/{id}", get_track, "get_track", "One track", response=TrackDetail),
        Route(
            "GET",
            "/tracks/{id}/similar",
            similar,
            "similar",
            "Tracks nearest to one track",
            (k,),
            response=SimilarTracks,
        ),
        Route("GET", "/stats", stats, "stats", "Counts per stage, queue depth, dead jobs"),
        Route(
            "GET",
            "/stats/analyses",
            stats_analyses,
            "stats_analyses",
            "Profile distributions over the catalogue; who answered the analyses; LLM cost per day against the budget",
            (days,),
            response=AnalysisStatsView,
        ),
        Route(
            "GET",
            "/artists/{name}",
            get_artist,
            "get_artist",
            "One artist: tracks, quality and sentiment mix, top themes, feature means, nearest artists",
            (artist_tracks, near),
            response=ArtistView,
        ),
        Route(
            "GET",
            "/objects",
            object_trace,
            "trace_object",
            "Where is my file? Its ingest and bad rows, then each track (or image) through every stage",
            (object_key, object_bucket, subjects, cursor),
            response=ObjectTraceView,
        ),
        Route(
            "GET",
            "/export",
            export,
            "export",
            "Tracks with their profiles, or detections, streamed as NDJSON (application/x-ndjson)",
            (what, artist, source, since, until),
        ),
        Route(
            "POST",
            "/analyze",
            analyze,
            "analyze",
            "Profile of ad-hoc lyrics or a stored track",
            body=AnalyzeRequest,
            response=Analysis,
        ),
        Route(
            "GET",
            "/images",
            images_index,
            "images_index",
            "Images newest first with their detection counts; page with before=next_before",
            (status, before, images),
        ),
        Route(
            "GET",
            "/images/{id}/detections",
            image_detections,
            "image_detections",
            "One image's status and detections",
        ),
        Route(
            "POST",
            "/streams",
            create_stream,
            "create_stream",
            "Register a video stream (url, fps, model)",
            body=StreamRequest,
        ),
        Route("GET", "/streams", streams_index, "list_streams", "Registered streams, newest first", (limit,)),
        Route("GET", "/streams/{id}", stream_status, "stream_status", "One stream's status, counts and last error"),
        Route(
            "GET",
            "/streams/{id}/detections",
            stream_frames,
            "stream_detections",
            "A stream's detections per frame, oldest first; page with after=next_after",
            (after, frames),
        ),
        Route("DELETE", "/streams/{id}", delete_stream, "delete_stream", "Stop a stream"),
        Route(
            "GET",
            "/dead-jobs",
            dead_index,
            "dead_index",
            "Jobs and events that failed for good, newest first, with their errors; page with before=next_before",
            (dead_kind, dead_before, dead_limit),
        ),
        Route("GET", "/dead-jobs/{id}", dead_detail, "dead_detail", "One dead job: its error and the job it held"),
        Route(
            "POST",
            "/dead-jobs/replay",
            dead_replay,
            "dead_replay",
            "Queue dead jobs again once fixed ({ids: [...]} or {kind, limit}); events are refused by id",
            body=ReplayRequest,
        ),
        Route("DELETE", "/dead-jobs/{id}", dead_delete, "dead_delete", "Forget one dead job"),
        Route("GET", "/openapi.json", openapi, "openapi", "This API's OpenAPI document", public=True),
    )
