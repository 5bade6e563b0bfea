"""The API's route table: every operation with the callable that answers it and the pydantic models
of its body and answer. The dispatcher (:mod:`functions.api.core`), the OpenAPI document
(:mod:`functions.api.openapi`) and every runtime's router read this one table.

Query limits come from ``Settings`` (the longest search text, the largest ``k``), so the table is
built per settings rather than once at import. Every list pages the same way (:mod:`functions.api.paging`).
"""

from __future__ import annotations

from functions.analyze.core import AnalyzeRequest
from functions.api.aggregates import AnalysisStatsView, ArtistView, get_artist, stats_analyses
from functions.api.analyze import analyze
from functions.api.browse import BROWSE_PARAMS, TrackPage, list_tracks
from functions.api.console import CONSOLE_ASSETS, ConsoleConfig, console_asset, console_config, console_page
from functions.api.dead import (
    DeadJobAnswer,
    DeadJobDeleted,
    DeadJobPage,
    ReplayAnswer,
    ReplayRequest,
    dead_delete,
    dead_detail,
    dead_index,
    dead_replay,
)
from functions.api.docs import DOCS_ASSETS, docs_asset, docs_page
from functions.api.export import NDJSON, export
from functions.api.filters import FILTER_PARAMS
from functions.api.models import (
    AddModelRequest,
    ModelAnswer,
    ModelKeyRequest,
    ModelList,
    RetireAnswer,
    activate_model_route,
    add_model_route,
    list_models_route,
    retire_model_route,
    rollback_model_route,
)
from functions.api.objects import ObjectTraceView, object_trace
from functions.api.openapi import OpenApiDocument, openapi
from functions.api.paging import CURSOR
from functions.api.params import Param
from functions.api.profile import TrackDeleted, TrackProfile, delete_track, get_track
from functions.api.recommend import Recommendations, RecommendRequest, recommend
from functions.api.routing import Route
from functions.api.status import Health, Stats, health, stats
from functions.api.tracks import SEARCH_MODES, SearchResults, SimilarTracks, search, similar
from functions.api.uploads import DIRECT_UPLOAD, UploadAnswer, UploadRequest, UploadStored, create_upload, put_upload
from functions.api.vision import (
    FramePage,
    ImageDetections,
    ImageLink,
    ImagePage,
    StreamAnswer,
    StreamPage,
    StreamRequest,
    create_stream,
    delete_stream,
    image_content,
    image_detections,
    image_link,
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
    mode = Param("mode", str, default="hybrid", maximum=16, description=f"one of {', '.join(SEARCH_MODES)}")
    limit = Param("limit", int, default=100, maximum=1000, description="number of streams per page")
    frames = Param("limit", int, default=100, maximum=1000, description="number of frames per page")
    images = Param("limit", int, default=100, maximum=1000, description="number of images per page")
    status = Param("status", str, maximum=16, description="only images with this status (pending, done, rejected)")
    dead_kind = Param("kind", str, maximum=64, description="only dead jobs of this kind")
    dead_limit = Param("limit", int, default=50, maximum=1000, description="number of dead jobs per page")
    artist_tracks = Param("limit", int, default=100, maximum=1000, description="number of the artist's tracks listed")
    near = Param("k", int, default=5, maximum=50, description="number of nearest artists")
    days = Param("days", int, default=7, maximum=366, description="days of LLM cost, today included")
    object_key = Param("key", str, required=True, maximum=1024, description="the object's key")
    object_bucket = Param("bucket", str, maximum=222, description="its bucket, when the key is in several")
    subjects = Param("limit", int, default=100, maximum=1000, description="number of tracks (or images) per page")
    what = Param("what", str, default="tracks", maximum=16, description="tracks (with profiles) or detections")
    artist = Param("artist", str, maximum=500, description="only this artist (case-insensitive)")
    source = Param("source", str, maximum=200, description="only tracks of this source")
    upload_key = Param("key", str, required=True, maximum=1200, description="the key POST /uploads answered")
    retired = Param("retired", str, maximum=5, description="true: the retired models too")
    since = Param("since", str, maximum=40, description="only rows updated (detections: created) at or after, ISO 8601")
    until = Param("until", str, maximum=40, description="only rows updated (detections: created) before, ISO 8601")
    return (
        Route("GET", "/health", health, "health", "Database, queue and model health", public=True, response=Health),
        Route(
            "GET",
            "/search",
            search,
            "search",
            "Search by meaning (semantic), by words over artist, title and lyrics (keyword), or both fused"
            " (hybrid, the default); with the browse filters",
            (q, k, mode, *FILTER_PARAMS),
            response=SearchResults,
        ),
        Route(
            "GET",
            "/tracks",
            list_tracks,
            "list_tracks",
            "Tracks filtered by artist, profile (sentiment, theme, quality, analyzer), explicit, source and time;"
            " sorted; page with cursor=next_cursor",
            BROWSE_PARAMS,
            response=TrackPage,
        ),
        Route(
            "POST",
            "/recommend",
            recommend,
            "recommend",
            "Tracks near the liked ones and away from the disliked ones, the inputs excluded; with the browse filters",
            body=RecommendRequest,
            response=Recommendations,
            errors=(404, 409),
            # A POST only because the liked/disliked lists can be long: it changes nothing, so a read key may call it.
            scope="read",
        ),
        Route(
            "GET",
            "/tracks/{id}",
            get_track,
            "get_track",
            "One track's whole profile: enrichments, analyses, embedding models, provenance, stage trail",
            response=TrackProfile,
            errors=(404,),
        ),
        Route(
            "DELETE",
            "/tracks/{id}",
            delete_track,
            "delete_track",
            "Delete one track with everything derived from it (404 when it is gone already)",
            response=TrackDeleted,
            errors=(404,),
            scope="admin",
        ),
        Route(
            "GET",
            "/tracks/{id}/similar",
            similar,
            "similar",
            "Tracks nearest to one track; with the browse filters (409 while it is not embedded yet)",
            (k, *FILTER_PARAMS),
            response=SimilarTracks,
            errors=(409,),
        ),
        Route("GET", "/stats", stats, "stats", "Counts per stage, queue depth, dead jobs", response=Stats),
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
            "One artist: tracks, quality and sentiment mix, top themes and their count per release year, feature"
            " means, nearest artists",
            (artist_tracks, near),
            response=ArtistView,
            errors=(404,),
        ),
        Route(
            "GET",
            "/objects",
            object_trace,
            "trace_object",
            "Where is my file? Its ingest and bad rows, then each track (or image) through every stage",
            (object_key, object_bucket, subjects, CURSOR),
            response=ObjectTraceView,
            errors=(404, 409),
        ),
        Route(
            "POST",
            "/uploads",
            create_upload,
            "create_upload",
            "Upload a track file: checks its name and size, picks its key under the upload prefix, and answers"
            " where to PUT its bytes (a signed bucket URL in the cloud, PUT /uploads locally) and its trace",
            body=UploadRequest,
            response=UploadAnswer,
            status=201,
            scope="write",
        ),
        Route(
            "PUT",
            "/uploads",
            put_upload,
            DIRECT_UPLOAD,
            "The bytes of an upload, as the raw body, where the store signs no URL (the local runtime);"
            " 409 where it does, or when the key was written already",
            (upload_key,),
            response=UploadStored,
            status=201,
            errors=(409, 413),
            scope="write",
        ),
        Route(
            "GET",
            "/export",
            export,
            "export",
            "Tracks with their profiles, or detections, streamed as NDJSON (application/x-ndjson)",
            (what, artist, source, since, until),
            # 413: AWS Lambda answers are buffered, so an export over the cap is refused there.
            errors=(413,),
            media_type=NDJSON,
        ),
        Route(
            "POST",
            "/analyze",
            analyze,
            "analyze",
            "Profile of ad-hoc lyrics or a stored track",
            body=AnalyzeRequest,
            response=Analysis,
            errors=(404, 429),
            scope="write",
        ),
        Route(
            "GET",
            "/images",
            images_index,
            "images_index",
            "Images newest first with their detection counts",
            (status, CURSOR, images),
            response=ImagePage,
        ),
        Route(
            "GET",
            "/images/{id}/detections",
            image_detections,
            "image_detections",
            "One image's status and detections",
            response=ImageDetections,
        ),
        Route(
            "GET",
            "/images/{id}/content",
            image_content,
            "image_content",
            "One image's bytes (409 when it was not decoded as JPEG, PNG or WebP); where the store signs"
            " URLs (the cloud), a 307 to a short-lived signed GET of the object instead",
            media_type="image/*",
            errors=(307, 409),
        ),
        Route(
            "GET",
            "/images/{id}/link",
            image_link,
            "image_link",
            "Where to read one image's bytes: a short-lived signed URL in the cloud, else its content route",
            response=ImageLink,
            errors=(409,),
        ),
        Route(
            "POST",
            "/streams",
            create_stream,
            "create_stream",
            "Register a video stream (url, fps, model)",
            body=StreamRequest,
            response=StreamAnswer,
            status=201,
            scope="write",
            errors=(429,),
        ),
        Route(
            "GET",
            "/streams",
            streams_index,
            "list_streams",
            "Registered streams, newest first",
            (CURSOR, limit),
            response=StreamPage,
        ),
        Route(
            "GET",
            "/streams/{id}",
            stream_status,
            "stream_status",
            "One stream's status, counts and last error",
            response=StreamAnswer,
        ),
        Route(
            "GET",
            "/streams/{id}/detections",
            stream_frames,
            "stream_detections",
            "A stream's detections per frame, oldest first; poll with next_cursor to follow a running stream",
            (CURSOR, frames),
            response=FramePage,
        ),
        Route(
            "DELETE",
            "/streams/{id}",
            delete_stream,
            "delete_stream",
            "Stop a stream",
            response=StreamAnswer,
            scope="write",
        ),
        Route(
            "GET",
            "/dead-jobs",
            dead_index,
            "dead_index",
            "Jobs and events that failed for good, newest first, with their errors",
            (dead_kind, CURSOR, dead_limit),
            response=DeadJobPage,
            scope="admin",
        ),
        Route(
            "GET",
            "/dead-jobs/{id}",
            dead_detail,
            "dead_detail",
            "One dead job: its error and the job it held",
            response=DeadJobAnswer,
            scope="admin",
        ),
        Route(
            "POST",
            "/dead-jobs/replay",
            dead_replay,
            "dead_replay",
            "Queue dead jobs again once fixed ({ids: [...]} or {kind, limit}); events are refused by id",
            body=ReplayRequest,
            response=ReplayAnswer,
            scope="admin",
        ),
        Route(
            "DELETE",
            "/dead-jobs/{id}",
            dead_delete,
            "dead_delete",
            "Forget one dead job",
            response=DeadJobDeleted,
            scope="admin",
        ),
        # Embedding model registry: admin operations, all under /admin/ so one scope rule covers them.
        Route(
            "GET",
            "/admin/models",
            list_models_route,
            "list_models",
            "Registered embedding models with their backfill progress and index (retired=true: retired ones too)",
            (retired,),
            response=ModelList,
            scope="admin",
        ),
        Route(
            "POST",
            "/admin/models",
            add_model_route,
            "add_model",
            "Register an embedding model as a shadow; the embed workers backfill the catalogue with it",
            body=AddModelRequest,
            response=ModelAnswer,
            errors=(409,),
            scope="admin",
        ),
        Route(
            "POST",
            "/admin/models/activate",
            activate_model_route,
            "activate_model",
            "Switch search to a model; refused, saying what is missing, until it covers every track with a valid index",
            body=ModelKeyRequest,
            response=ModelAnswer,
            errors=(404, 409),
            scope="admin",
        ),
        Route(
            "POST",
            "/admin/models/rollback",
            rollback_model_route,
            "rollback_model",
            "Switch search back to the model active before the current one",
            response=ModelAnswer,
            errors=(409,),
            scope="admin",
        ),
        Route(
            "POST",
            "/admin/models/retire",
            retire_model_route,
            "retire_model",
            "Drop a shadow model's vectors and index",
            body=ModelKeyRequest,
            response=RetireAnswer,
            errors=(404, 409),
            scope="admin",
        ),
        Route(
            "GET",
            "/openapi.json",
            openapi,
            "openapi",
            "This API's OpenAPI document",
            public=True,
            static=True,
            response=OpenApiDocument,
        ),
        Route(
            "GET",
            "/docs",
            docs_page,
            "docs",
            "Interactive reference of this API",
            public=True,
            static=True,
            media_type="text/html",
        ),
        Route(
            "GET",
            "/",
            console_page,
            "console",
            "The web console",
            public=True,
            static=True,
            media_type="text/html",
        ),
        Route(
            "GET",
            "/console/config",
            console_config,
            "console_config",
            "What the console needs before its first call: whether an API key is required",
            public=True,
            static=True,
            response=ConsoleConfig,
        ),
        *(
            Route(
                "GET",
                f"/console/{name}",
                console_asset,
                f"console_{name.replace('-', '_').replace('.', '_')}",
                f"The console's {name}",
                public=True,
                static=True,
                media_type=media_type,
                family="/console/{file}",  # one series for all of them, however many files the page grows
            )
            for name, media_type in CONSOLE_ASSETS.items()
        ),
        *(
            Route(
                "GET",
                f"/docs/{name}",
                docs_asset,
                f"docs_{name.replace('-', '_').replace('.', '_')}",
                f"The reference page's {name}",
                public=True,
                static=True,
                media_type=media_type,
                family="/docs/{file}",  # one series for all of them, however many files the page grows
            )
            for name, media_type in DOCS_ASSETS.items()
        ),
    )
