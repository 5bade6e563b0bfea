"""The API core: ``HttpRequest`` in, ``HttpResponse`` out — served alike by the local server,
functions-framework (GCP) and the Powertools resolver (AWS)."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from functions.api.errors import ApiError, not_found
from functions.api.params import Param, validate_query
from shared.errors import ModelNotReady, TransientError
from shared.events import HttpRequest, HttpResponse
from shared.services import Services
from shared.store import ledger
from shared.store.tracks import TrackStore
from shared.vision.capacity import measured_instance_rate

__all__ = ["Api", "Route"]

log = logging.getLogger(__name__)

Handler = Callable[[HttpRequest, dict[str, Any], dict[str, str]], Any]
_JSON = {"content-type": "application/json", "cache-control": "no-store", "x-content-type-options": "nosniff"}
_ID = r"(?P<id>[0-9]{1,18})"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: str
    params: tuple[Param, ...] = ()
    summary: str = ""
    public: bool = False
    body: str = ""  # "module:Model" of the JSON body (pydantic), for the OpenAPI document

    def body_model(self) -> type[BaseModel] | None:
        if not self.body:
            return None
        module, name = self.body.split(":")
        model: type[BaseModel] = getattr(importlib.import_module(module), name)
        return model

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile("^" + self.pattern.replace("{id}", _ID) + "$")


class Api:
    """Routes, auth, validation and error mapping around the store and the embedder."""

    def __init__(self, services: Services) -> None:
        self.services = services
        s = services.settings
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
        self.routes: tuple[Route, ...] = (
            Route("GET", "/health", "health", summary="Database, queue and model health", public=True),
            Route("GET", "/search", "search", (q, k, artist), summary="Semantic search over lyrics"),
            Route("GET", "/tracks/{id}", "get_track", summary="One track"),
            Route("GET", "/tracks/{id}/similar", "similar", (k,), summary="Tracks nearest to one track"),
            Route("GET", "/stats", "stats", summary="Counts per stage, queue depth, dead jobs"),
            Route(
                "POST",
                "/analyze",
                "analyze",
                summary="Profile of ad-hoc lyrics or a stored track",
                body="functions.analyze.core:AnalyzeRequest",
            ),
            Route(
                "GET",
                "/images",
                "images_index",
                (status, before, images),
                summary="Images newest first with their detection counts; page with before=next_before",
            ),
            Route("GET", "/images/{id}/detections", "image_detections", summary="One image's status and detections"),
            Route(
                "POST",
                "/streams",
                "create_stream",
                summary="Register a video stream (url, fps, model)",
                body="functions.api.vision:StreamRequest",
            ),
            Route("GET", "/streams", "list_streams", (limit,), summary="Registered streams, newest first"),
            Route("GET", "/streams/{id}", "stream_status", summary="One stream's status, counts and last error"),
            Route(
                "GET",
                "/streams/{id}/detections",
                "stream_detections",
                (after, frames),
                summary="A stream's detections per frame, oldest first; page with after=next_after",
            ),
            Route("DELETE", "/streams/{id}", "delete_stream", summary="Stop a stream"),
            Route(
                "GET",
                "/dead-jobs",
                "dead_index",
                (dead_kind, dead_before, dead_limit),
                summary="Jobs and events that failed for good, newest first, with their errors; page with before=next_before",
            ),
            Route("GET", "/dead-jobs/{id}", "dead_detail", summary="One dead job: its error and the job it held"),
            Route(
                "POST",
                "/dead-jobs/replay",
                "dead_replay",
                summary="Queue dead jobs again once fixed ({ids: [...]} or {kind, limit}); events are refused by id",
                body="functions.api.dead:ReplayRequest",
            ),
            Route("DELETE", "/dead-jobs/{id}", "dead_delete", summary="Forget one dead job"),
            Route("GET", "/openapi.json", "openapi", summary="This API's OpenAPI document", public=True),
        )
        self._compiled = [(r, r.regex) for r in self.routes]

    # -- dispatch ----------------------------------------------------------------------------
    def handle(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        try:
            route, path_params = self._match(request)
            if not route.public:
                self._authorize(request)
            values = validate_query(request.query, route.params)
            body = getattr(self, route.handler)(request, values, path_params)
            return _json(200, body)
        except ApiError as exc:
            return _json(exc.status, {"error": {"code": exc.code, "message": exc.message}})
        except ModelNotReady:
            log.error("search model not available")
            return _json(503, {"error": {"code": "model_unavailable", "message": "the search model is not ready"}})
        except TransientError:
            log.exception("dependency unavailable")
            return _json(503, {"error": {"code": "unavailable", "message": "a dependency is unavailable; retry"}})
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return _json(500, {"error": {"code": "internal", "message": "internal error"}})
        finally:
            log.debug("%s %s %.1f ms", request.method, request.path, (time.perf_counter() - started) * 1000)

    def _match(self, request: HttpRequest) -> tuple[Route, dict[str, str]]:
        path = request.path.rstrip("/") or "/"
        methods = []
        for route, regex in self._compiled:
            m = regex.match(path)
            if m:
                if route.method == request.method or (route.method == "GET" and request.method == "HEAD"):
                    return route, m.groupdict()
                methods.append(route.method)
        if methods:
            raise ApiError(405, "method_not_allowed", f"method not allowed; use {', '.join(sorted(set(methods)))}")
        raise ApiError(404, "not_found", "no such endpoint")

    def _authorize(self, request: HttpRequest) -> None:
        key = self.services.settings.api_key
        if key is None:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
        expected = key.get_secret_value().encode()
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise ApiError(401, "unauthorized", "missing or invalid API key (send X-API-Key)")

    # -- handlers ----------------------------------------------------------------------------
    def health(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        svc = self.services
        out: dict[str, Any] = {"status": "ok"}
        try:
            out["queue_depth"] = svc.queue.depth()
            out["dead_jobs"] = svc.queue.dead_count()
            out["db"] = "ok"
        except Exception as exc:
            log.warning("health: database check failed: %s", type(exc).__name__)
            out.update(status="degraded", db="unavailable")
        model_ready = svc.has_embedder or (svc.settings.resolved_model_dir / "manifest.json").is_file()
        out["model"] = {"ready": model_ready, "key": svc.embedder.model_key if svc.has_embedder else None}
        if not model_ready:
            out["status"] = "degraded"
        if svc.has_embedder and out.get("db") == "ok":
            # "exact" while a bulk backlog is embedded before the HNSW build (functions.embed.index)
            try:
                with svc.db.connection() as conn:
                    state = TrackStore(conn).hnsw_index_state(svc.embedder.model_key)
                    conn.commit()
                out["model"]["search_index"] = "hnsw" if state == "valid" else "exact"
            except Exception as exc:
                log.warning("health: index check failed: %s", type(exc).__name__)
                out.update(status="degraded", db="unavailable")
        from functions.api.analyze import intel_health

        intel = intel_health(svc)
        if intel is not None:
            out["cache"] = intel["cache"]
            if intel["cache"]["status"] != "ok":
                out["status"] = "degraded"
        return out

    def search(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        svc = self.services
        t0 = time.perf_counter()
        embedder = svc.embedder
        # Hashed: a shared cache (Redis) keeps no readable copy of what users searched for.
        cache_key = f"qvec:{embedder.model_key}:{hashlib.sha256(values['q'].encode()).hexdigest()}"
        vector = svc.cache.get(cache_key)
        if vector is None:
            vector = embedder.embed([values["q"]])[0]
            svc.cache.set(cache_key, vector, ttl_s=3600)
        t1 = time.perf_counter()
        with svc.db.connection() as conn:
            hits = TrackStore(conn).search(
                vector, embedder.model_key, values["k"], artist=values["artist"], ef_search=svc.settings.hnsw_ef_search
            )
            conn.commit()
        t2 = time.perf_counter()
        return {
            "model": embedder.model_key,
            "results": [h.model_dump() for h in hits],
            "timings_ms": {"embed": round((t1 - t0) * 1000, 2), "db": round((t2 - t1) * 1000, 2)},
        }

    def get_track(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        with self.services.db.connection() as conn:
            track = TrackStore(conn).get(int(path["id"]))
            models = [
                r[0]
                for r in conn.execute(
                    "SELECT model FROM embeddings WHERE track_id = %s ORDER BY model", (int(path["id"]),)
                ).fetchall()
            ]
            conn.commit()
        if track is None:
            raise not_found("track")
        return {**track.model_dump(mode="json"), "embedded_models": models}

    def similar(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        svc = self.services
        model_key = svc.embedder.model_key
        track_id = int(path["id"])
        with svc.db.connection() as conn:
            store = TrackStore(conn)
            vector = store.vector_of(track_id, model_key)
            if vector is None:
                conn.commit()
                exists = store.get(track_id) is not None
                raise ApiError(409, "not_embedded", "track is not embedded yet") if exists else not_found("track")
            hits = store.search(vector, model_key, values["k"] + 1, ef_search=svc.settings.hnsw_ef_search)
            conn.commit()
        return {"model": model_key, "results": [h.model_dump() for h in hits if h.id != track_id][: values["k"]]}

    def stats(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        svc = self.services
        with svc.db.connection() as conn:
            tracks = conn.execute("SELECT count(*) FROM tracks").fetchone()
            per_model = dict(conn.execute("SELECT model, count(*) FROM embeddings GROUP BY model").fetchall())
            queue = dict(conn.execute("SELECT kind, count(*) FROM jobs GROUP BY kind").fetchall())
            dead = dict(conn.execute("SELECT kind, count(*) FROM dead_jobs GROUP BY kind").fetchall())
            stages = ledger.stage_counts(conn)
            images = dict(conn.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall())
            streams = dict(conn.execute("SELECT status, count(*) FROM streams GROUP BY status").fetchall())
            workers = conn.execute(
                "SELECT count(*) FROM gpu_workers WHERE updated_at > now() - interval '60 seconds'"
            ).fetchone()
            drain = measured_instance_rate(conn)
            llm = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE outcome = 'ok'), coalesce(sum(tokens_in + tokens_out), 0),"
                " coalesce(sum(cost_usd), 0) FROM llm_calls WHERE created_at >= date_trunc('day', now())"
            ).fetchone()
            budget = conn.execute(
                "SELECT token_limit, used, reserved, refused FROM llm_budget WHERE day = current_date"
            ).fetchone()
            conn.commit()
        cache = svc.cache
        calls, ok, tokens, cost = llm if llm else (0, 0, 0, 0)
        return {
            "tracks": int(tracks[0]) if tracks else 0,
            "embeddings": {k: int(v) for k, v in per_model.items()},
            "stages": stages,
            "queue": {"depth": sum(queue.values()), "by_kind": queue},
            "dead_jobs": {"total": sum(dead.values()), "by_kind": dead},
            "images": {"total": sum(images.values()), "by_status": images},
            "streams": {"total": sum(streams.values()), "by_status": streams},
            "gpu": {
                "workers": int(workers[0]) if workers else 0,
                "img_per_s_per_instance": None if drain is None else round(drain, 2),
            },
            "llm_today": {
                "calls": int(calls),
                "ok": int(ok),
                "tokens": int(tokens),
                "cost_usd": round(float(cost), 6),
                "budget": None
                if budget is None
                else {
                    "token_limit": int(budget[0]),
                    "used": int(budget[1]),
                    "reserved": int(budget[2]),
                    "refused": int(budget[3]),
                },
            },
            "query_cache": {"hits": getattr(cache, "hits", None), "misses": getattr(cache, "misses", None)},
        }

    def analyze(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.analyze import analyze_endpoint

        return analyze_endpoint(self.services, request)

    def images_index(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.vision import images_index

        return images_index(self.services, values["status"], values["before"], values["limit"])

    def image_detections(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.vision import image_detections

        return image_detections(self.services, int(path["id"]))

    def create_stream(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.vision import create_stream

        return create_stream(self.services, request)

    def list_streams(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.vision import streams_index

        return streams_index(self.services, values["limit"])

    def stream_status(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.vision import stream_status

        return stream_status(self.services, int(path["id"]))

    def stream_detections(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.vision import stream_frames

        return stream_frames(self.services, int(path["id"]), values["after"], values["limit"])

    def delete_stream(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.vision import delete_stream

        return delete_stream(self.services, int(path["id"]))

    def dead_index(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.dead import dead_index

        return dead_index(self.services, values["kind"], values["before"], values["limit"])

    def dead_detail(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.dead import dead_detail

        return dead_detail(self.services, int(path["id"]))

    def dead_replay(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.dead import dead_replay

        return dead_replay(self.services, request)

    def dead_delete(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.dead import dead_delete

        return dead_delete(self.services, int(path["id"]))

    def openapi(self, request: HttpRequest, values: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
        from functions.api.openapi import build_openapi

        return build_openapi(self.routes, auth=self.services.settings.api_key is not None)


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status=status, body=json.dumps(body, default=str).encode(), headers=dict(_JSON))
