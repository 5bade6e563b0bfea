"""Search benchmark: ``GET /search`` latency over real HTTP, DB-side and exact-scan latency, HNSW recall@10.

Run with ``make bench-search`` (``python -m tests.bench.bench_search [--rows N]``), never under pytest.

Setup: the synthetic tracks with real model embeddings (cached on disk per rows, seed and model key,
because embedding 57,718 texts on two cores takes the better part of an hour; ``bench_ingest`` leaves
the same cache behind), binary COPY of the vectors, the model's HNSW index built with the configured
m / ef_construction and a raised maintenance_work_mem, ``ANALYZE``, and a check that the planner
uses the HNSW index for exactly the SQL the API runs (the benchmark fails if it does not).

Measured in one run over the same queries, each written for this benchmark (not copied from tracks):

* e2e: ``GET /search?q=...&k=10`` through the local HTTP server (uvicorn on a free port) with an
  httpx client: auth, validation, query embedding, SQL, JSON. Every measured query text is distinct
  and sent once, so the query-embedding cache never answers (its hit counter is checked to be 0).
* db: the search SQL alone (``TrackStore.search`` on a dedicated connection) for the same vectors.
* exact: the same SQL with index scans disabled (``SET LOCAL enable_indexscan = off``): a full scan.
* recall@10: overlap of the HNSW top-10 with the exact top-10, by track id.
* hybrid: ``GET /search?mode=hybrid`` over the same queries, their cached vectors deleted first so
  every query is embedded again: semantic and full-text rankings fused by RRF.
* filtered: every track profiled by the real rule-based analyzer (its analyses stored), then
  ``GET /search?mode=semantic&theme=T`` for the theme ``T`` whose tracks are nearest a tenth of
  the catalogue (vectors again uncached); recall@10 of the filtered search against the exact
  filtered scan (``exact_filtered_search``) for the same vectors and filter, by track id.
* title hit@1: distinct titles of the catalogue as queries, k=1, semantic vs hybrid; a hit is a
  first result carrying that title (titles repeat across tracks; any of them counts).

``e2e`` (and ``e2e_p95_ms``) is the semantic mode's figure; hybrid and filtered have their own.

Targets: e2e p95 <= 25 ms, recall@10 >= 0.95, hybrid p95 <= 20 ms at the full catalogue,
filtered recall@10 >= 0.95, title hit@1 hybrid >= 0.95.
"""

from __future__ import annotations

import random
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import psycopg
from psycopg import sql

from functions.api.core import Api
from functions.api.tracks import query_cache_key
from local.datagen import generate_tracks
from local.server import ApiServer
from shared.intel.features import compute_features
from shared.intel.rules import analyze_rules
from shared.intel.store import save_analysis
from shared.models import TrackIn
from shared.services import Services
from shared.store.browse import TrackFilter
from shared.store.search import exact_filtered_search, filtered_search
from shared.store.tracks import TrackStore, embedding_text, hnsw_index_name, upsert_tracks
from tests.bench._common import (
    BenchDatabase,
    Timer,
    base_parser,
    bench_settings,
    console,
    copy_embeddings,
    embed_in_batches,
    percentile,
    progress,
    require_model,
    temp_workdir,
    vector_cache_path,
)

E2E_P95_TARGET_MS = 25.0
RECALL_TARGET = 0.95
HYBRID_P95_TARGET_MS = 20.0
TITLE_HIT1_TARGET = 0.95
FILTER_SHARE = 0.10
TITLE_QUERIES = 200
K = 10
WARMUP_QUERIES = 48

# Subjects a user might search for, one handful per theme of the generated catalogue, phrased the
# way people type queries rather than the way the lyrics are written; and the framings around them.
_SUBJECTS = (
    "sailing home across the sea", "a lighthouse on a stormy coast", "fishermen heading out at dawn",
    "whales singing in deep water", "a sailor who misses the shore",
    "missing my ex after the breakup", "crying over a lost love", "a lover who never calls back",
    "moving on after a divorce", "an empty bed and a broken heart",
    "dancing in a club downtown", "a late night taxi through neon streets", "a jazz bar at three in the morning",
    "a rooftop above the city skyline",
    "soldiers marching off to war", "protesting in the streets for peace", "a veteran coming home",
    "standing up against injustice",
    "praying for salvation", "singing hymns in church on sunday", "finding grace and redemption",
    "angels watching over me",
    "working on the family farm", "harvest time in the fields", "tractors and barns in the countryside",
    "small town country living",
    "stars and galaxies far away", "an astronaut floating in orbit", "a rocket launch to the moon",
    "looking at the night sky through a telescope",
    "partying all night with friends", "a friday night celebration", "the dj drops the beat",
    "drinks and music until sunrise",
    "mourning a friend who passed away", "standing by a grave", "losing my father",
    "remembering someone who died young",
    "hustling to get rich", "grinding for cash every day", "dreams of diamonds and fame",
    "struggling to pay the rent",
    "christmas morning with the family", "snow falling on a quiet town", "sledding and hot cocoa",
    "new year's eve by the fire",
    "driving across the country", "a long highway at sunset", "a roadside motel on a road trip",
    "fast cars and open roads",
)  # fmt: skip
_FRAMINGS = (
    "{s}",
    "songs about {s}",
    "lyrics about {s}",
    "a sad song about {s}",
    "an upbeat track about {s}",
    "music for {s}",
    "something like {s}",
)


def make_queries(n: int, seed: int) -> list[str]:
    """``n`` distinct query texts (plus warm-ups after them), shuffled so themes interleave."""
    combos = [f.format(s=s) for s in _SUBJECTS for f in _FRAMINGS]
    random.Random(seed).shuffle(combos)
    if n + WARMUP_QUERIES > len(combos):
        raise SystemExit(f"at most {len(combos) - WARMUP_QUERIES} distinct queries are available")
    return combos[: n + WARMUP_QUERIES]


@dataclass
class Setup:
    tracks: int
    vectors_from_cache: bool
    embed_s: float
    load_s: float
    index_s: float
    plan: str
    text_index_s: float
    profile_s: float
    theme: str
    theme_share: float
    titles: list[str]


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "search benchmark")
    parser.add_argument("--queries", type=int, default=240, help="distinct measured queries (default 240)")
    parser.add_argument("--ef-search", type=int, default=None, help="override CONTENTFN_HNSW_EF_SEARCH for this run")
    parser.add_argument(
        "--sweep-ef", default="", help="comma-separated ef_search values to report recall and SQL latency for"
    )
    args = parser.parse_args(argv)
    if args.queries < 200:
        console.print("[yellow]fewer than 200 queries: percentiles will be rough[/yellow]")
    require_model()
    texts_all = make_queries(args.queries, args.seed)
    warmups, queries = texts_all[args.queries :], texts_all[: args.queries]

    with temp_workdir("contentfn-bench-search-") as work, BenchDatabase(work) as pg:
        url = pg.fresh("search")
        api_key = secrets.token_urlsafe(24)
        overrides: dict[str, Any] = {"api_key": api_key}
        if args.ef_search is not None:
            overrides["hnsw_ef_search"] = args.ef_search
        settings = bench_settings(work / "state", url, **overrides)
        services = Services.from_settings(settings)
        try:
            setup = prepare(services, args.rows, args.seed, url)
            e2e = measure_e2e(services, api_key, warmups, queries)
            forget_query_vectors(services, queries)
            hybrid = measure_e2e(services, api_key, warmups, queries, mode="hybrid")
            forget_query_vectors(services, queries)
            filtered = measure_e2e(services, api_key, warmups, queries, theme=setup.theme)
            title_hits = measure_title_hits(services, api_key, setup.titles)
            vectors = services.embedder.embed(queries)
            filtered_recall = measure_filtered_recall(url, services, vectors, TrackFilter(theme=setup.theme))
            sql_result = measure_sql(url, services, vectors, settings.hnsw_ef_search)
            db_ms, exact_ms = sql_result.db_ms, sql_result.exact_ms
            recall, recall_ties = sql_result.recall, sql_result.recall_ties
            sweep = [int(v) for v in args.sweep_ef.split(",") if v.strip()]
            sweep_lines = sweep_ef(url, services, vectors, sweep) if sweep else []
        finally:
            services.close()

    ef = settings.hnsw_ef_search
    e2e_ms = [m["e2e"] for m in e2e]
    embed_ms = [m["embed"] for m in e2e]
    api_db_ms = [m["db"] for m in e2e]
    hybrid_ms = [m["e2e"] for m in hybrid]
    filtered_ms = [m["e2e"] for m in filtered]
    hybrid_p95, filtered_p95 = percentile(hybrid_ms, 95), percentile(filtered_ms, 95)
    lines = [
        f"search benchmark: {setup.tracks:,} tracks, {len(queries)} distinct queries, k={K}, "
        f"hnsw m={settings.hnsw_m} ef_construction={settings.hnsw_ef_construction} ef_search={ef}",
        f"  setup: vectors {'from cache' if setup.vectors_from_cache else f'embedded in {setup.embed_s:.0f} s'}, "
        f"tracks+vectors loaded in {setup.load_s:.1f} s, HNSW built in {setup.index_s:.1f} s; plan: {setup.plan}",
        f"  e2e GET /search   p50 {percentile(e2e_ms, 50):6.2f} ms  p95 {percentile(e2e_ms, 95):6.2f} ms  "
        f"p99 {percentile(e2e_ms, 99):6.2f} ms  (query cache: every query a miss)  "
        f"target p95 <= {E2E_P95_TARGET_MS:.0f}: {_verdict(percentile(e2e_ms, 95) <= E2E_P95_TARGET_MS)}",
        f"    inside the API: query embedding p50 {percentile(embed_ms, 50):.2f} / p95 {percentile(embed_ms, 95):.2f} ms,"
        f" SQL p50 {percentile(api_db_ms, 50):.2f} / p95 {percentile(api_db_ms, 95):.2f} ms",
        f"  db (HNSW) SQL     p50 {percentile(db_ms, 50):6.2f} ms  p95 {percentile(db_ms, 95):6.2f} ms",
        f"  exact scan SQL    p50 {percentile(exact_ms, 50):6.2f} ms  p95 {percentile(exact_ms, 95):6.2f} ms",
        f"  recall@{K} HNSW vs exact {recall:.4f} by id ({recall_ties:.4f} counting equal-distance ties)  "
        f"target >= {RECALL_TARGET}: {_verdict(recall >= RECALL_TARGET)}",
        f"  setup (read side): full-text vectors filled in {setup.text_index_s:.1f} s, rule-based profiles of every"
        f" track in {setup.profile_s:.1f} s; filter theme={setup.theme!r} keeps {setup.theme_share:.1%} of tracks",
        f"  e2e hybrid        p50 {percentile(hybrid_ms, 50):6.2f} ms  p95 {hybrid_p95:6.2f} ms  "
        f"p99 {percentile(hybrid_ms, 99):6.2f} ms  target p95 <= {HYBRID_P95_TARGET_MS:.0f} (full catalogue): "
        f"{_verdict(hybrid_p95 <= HYBRID_P95_TARGET_MS)}",
        f"  e2e filtered      p50 {percentile(filtered_ms, 50):6.2f} ms  p95 {filtered_p95:6.2f} ms  "
        f"p99 {percentile(filtered_ms, 99):6.2f} ms  (semantic, theme filter)",
        f"  filtered recall@{K} vs exact filtered scan {filtered_recall:.4f}  "
        f"target >= {RECALL_TARGET}: {_verdict(filtered_recall >= RECALL_TARGET)}",
        f"  exact-title hit@1 over {len(setup.titles)} titles: semantic {title_hits['semantic']:.3f}, "
        f"hybrid {title_hits['hybrid']:.3f}  target hybrid >= {TITLE_HIT1_TARGET}: "
        f"{_verdict(title_hits['hybrid'] >= TITLE_HIT1_TARGET)}",
    ]
    print("\n".join(lines + sweep_lines))
    print(
        f"bench-search tracks={setup.tracks} e2e_p50_ms={percentile(e2e_ms, 50):.2f} "
        f"e2e_p95_ms={percentile(e2e_ms, 95):.2f} db_p95_ms={percentile(db_ms, 95):.2f} "
        f"exact_p95_ms={percentile(exact_ms, 95):.2f} recall_at_10={recall:.4f} "
        f"hybrid_p95_ms={hybrid_p95:.2f} filtered_recall_at_10={filtered_recall:.4f} "
        f"filtered_p95_ms={filtered_p95:.2f} title_hit1_semantic={title_hits['semantic']:.4f} "
        f"title_hit1_hybrid={title_hits['hybrid']:.4f}"
    )
    return 0


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# -- setup -------------------------------------------------------------------------------------------


def load_or_embed(texts: Sequence[str], rows: int, seed: int, embedder: Any) -> tuple[np.ndarray, bool, float]:
    """The corpus vectors in generation order, from the on-disk cache or embedded now (and cached)."""
    path = vector_cache_path(rows, seed, embedder.model_key)
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape == (rows, embedder.dims) and vectors.dtype == np.float32:
            console.print(f"vectors from cache: {path.name}")
            return vectors, True, 0.0
        console.print(f"[yellow]ignoring a cache file of the wrong shape: {path.name}[/yellow]")
    console.print(f"embedding {rows:,} texts (once; cached under {path.parent.name}/ for later runs)")
    with Timer() as timer:
        # Big calls let the embedder bucket texts by length across more of the corpus: less padding.
        vectors = embed_in_batches(embedder, texts, 1024, "embedding corpus")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors, False, timer.s


def prepare(services: Services, rows: int, seed: int, url: str) -> Setup:
    raw = list(generate_tracks(rows, seed))
    texts = [embedding_text(t["title"], t["lyrics"]) for t in raw]
    embedder = services.embedder
    model_key = embedder.model_key
    vectors, cached, embed_s = load_or_embed(texts, rows, seed, embedder)
    settings = services.settings

    with Timer() as load, services.db.connection() as conn:
        meta_keys = ("genre", "year", "theme")
        tracks = (
            TrackIn(
                artist=t["artist"],
                title=t["title"],
                lyrics=t["lyrics"],
                source_id=t["id"],
                metadata={k: t[k] for k in meta_keys if k in t},
            )
            for t in raw
        )
        result = upsert_tracks(conn, tracks)
        if result.inserted != rows:
            raise SystemExit(f"expected {rows} new tracks, upsert reported {result.inserted}")
        ids_by_source = dict(conn.execute("SELECT source_id, id FROM tracks").fetchall())
        hashes = dict(conn.execute("SELECT id, content_hash FROM tracks").fetchall())
        track_ids = [int(ids_by_source[t["id"]]) for t in raw]
        copy_embeddings(conn, model_key, track_ids, [hashes[i] for i in track_ids], vectors)
        conn.commit()

    with Timer() as build, psycopg.connect(url, autocommit=True) as conn:
        # A build that fits in maintenance_work_mem runs in memory; one that does not is many times slower.
        conn.execute("SET maintenance_work_mem = '1GB'")
        TrackStore(conn).ensure_hnsw_index(
            model_key, m=settings.hnsw_m, ef_construction=settings.hnsw_ef_construction
        ) or _fail("the HNSW index already existed on a fresh database")
        conn.execute("ANALYZE tracks")
        conn.execute("ANALYZE embeddings")
        # Flush the load's dirty pages now, so background writes do not land inside the timings.
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            console.print("[yellow]no privilege to CHECKPOINT; timings may include background writes[/yellow]")

    plan = check_plan(services, vectors[0], model_key)
    with Timer() as text_index, services.db.connection() as conn:
        # The embed stage fills these beside the vectors; the benchmark COPYs vectors, so fill them here.
        TrackStore(conn).index_text()
        conn.commit()
    with Timer() as profiling:
        theme, share = profile_tracks(services)
    titles = sorted({t["title"] for t in raw})
    random.Random(seed).shuffle(titles)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE tracks")
        conn.execute("ANALYZE analyses")
    return Setup(
        tracks=rows,
        vectors_from_cache=cached,
        embed_s=embed_s,
        load_s=load.s,
        index_s=build.s,
        plan=plan,
        text_index_s=text_index.s,
        profile_s=profiling.s,
        theme=theme,
        theme_share=share,
        titles=titles[:TITLE_QUERIES],
    )


def profile_tracks(services: Services) -> tuple[str, float]:
    """Profile every track with the real rule-based analyzer and store the analyses; return the
    theme whose tracks come nearest to a tenth of the catalogue, and its share."""
    counts: dict[str, int] = {}
    with services.db.connection() as conn:
        rows = conn.execute("SELECT id, lyrics, content_hash FROM tracks").fetchall()
        for track_id, lyrics, chash in rows:
            analysis = analyze_rules(lyrics, compute_features(lyrics), chash)
            save_analysis(conn, int(track_id), analysis)
            for theme in analysis.profile.themes:
                counts[theme] = counts.get(theme, 0) + 1
        conn.commit()
    theme = min(counts, key=lambda t: (abs(counts[t] / len(rows) - FILTER_SHARE), t))
    return theme, counts[theme] / len(rows)


def _fail(message: str) -> bool:
    raise SystemExit(message)


class _RecordingCursor:
    """Delegates to a real cursor and remembers the last statement and parameters executed."""

    def __init__(self, inner: psycopg.Cursor[Any], log: list[tuple[Any, Any]]) -> None:
        self._inner = inner
        self._log = log

    def __enter__(self) -> _RecordingCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()

    def execute(self, query: Any, params: Any = None) -> Any:
        self._log.append((query, params))
        return self._inner.execute(query, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _RecordingConnection:
    """Just enough of a connection for ``TrackStore`` that records what it runs, to EXPLAIN exactly that."""

    def __init__(self, inner: psycopg.Connection[Any]) -> None:
        self._inner = inner
        self.log: list[tuple[Any, Any]] = []

    def cursor(self) -> _RecordingCursor:
        return _RecordingCursor(self._inner.cursor(), self.log)


def explain_search(conn: psycopg.Connection[Any], vector: np.ndarray, model_key: str, ef: int, *, exact: bool) -> str:
    """The plan of exactly the statement ``TrackStore.search`` runs (recorded, then EXPLAINed).

    With ``exact`` the transaction first disables index scans, as the exact-scan measurement does.
    Rolls back; the connection must have the pgvector types registered.
    """
    recorder = _RecordingConnection(conn)
    TrackStore(recorder).search(vector, model_key, K, ef_search=ef)  # type: ignore[arg-type]
    conn.rollback()
    set_ef, (query, params) = recorder.log[0], recorder.log[-1]
    if exact:
        conn.execute("SET LOCAL enable_indexscan = off")
    conn.execute(set_ef[0], set_ef[1])
    statement = sql.SQL("EXPLAIN ") + (query if isinstance(query, sql.Composable) else sql.SQL(query))
    plan = "\n".join(r[0] for r in conn.execute(statement, params).fetchall())
    conn.rollback()
    return plan


def check_plan(services: Services, vector: np.ndarray, model_key: str) -> str:
    """Fail loudly unless the API's search SQL scans the HNSW index (and the exact variant does not)."""
    index = hnsw_index_name(model_key)
    ef = services.settings.hnsw_ef_search
    with services.db.connection() as conn:
        plan = explain_search(conn, vector, model_key, ef, exact=False)
        exact_plan = explain_search(conn, vector, model_key, ef, exact=True)
    if f"Index Scan using {index}" not in plan:
        console.print(plan)
        raise SystemExit(f"the search query does not use the HNSW index {index}: see the plan above")
    if index in exact_plan:
        console.print(exact_plan)
        raise SystemExit("the exact-scan variant still uses the HNSW index: see the plan above")
    return f"Index Scan using {index} (HNSW); exact variant: full scan, no HNSW"


# -- measurements ------------------------------------------------------------------------------------


def forget_query_vectors(services: Services, queries: Sequence[str]) -> None:
    """Drop the cached vectors of the measured queries, so the next pass embeds each one again."""
    for q in queries:
        services.cache.delete(query_cache_key(services.embedder.model_key, q))


def measure_e2e(
    services: Services,
    api_key: str,
    warmups: Sequence[str],
    queries: Sequence[str],
    *,
    mode: str = "semantic",
    theme: str | None = None,
) -> list[dict[str, float]]:
    """Time ``GET /search`` per query through the real HTTP server; returns e2e and the API's own timings."""
    extra = {"mode": mode, **({"theme": theme} if theme is not None else {})}
    server = ApiServer(Api(services), "127.0.0.1", 0)
    server.start()
    out: list[dict[str, float]] = []
    try:
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base, headers={"x-api-key": api_key}, timeout=30.0) as client:
            for q in warmups:  # connection, thread pool, model and buffer cache warm-up; not measured
                _search(client, q, extra)
            before = client.get("/stats").json()["query_cache"]
            with progress() as bar:
                task = bar.add_task(f"GET /search {' '.join(f'{k}={v}' for k, v in extra.items())}", total=len(queries))
                for q in queries:
                    with Timer() as timer:
                        body = _search(client, q, extra)
                    timings = body["timings_ms"]
                    out.append({"e2e": timer.s * 1000, "embed": float(timings["embed"]), "db": float(timings["db"])})
                    bar.advance(task)
            after = client.get("/stats").json()["query_cache"]
    finally:
        server.stop()
    hits = (after.get("hits") or 0) - (before.get("hits") or 0)
    if hits:
        raise SystemExit(f"the query-embedding cache answered {hits} measured queries; they must all be misses")
    return out


def _search(client: httpx.Client, q: str, extra: dict[str, str]) -> dict[str, Any]:
    response = client.get("/search", params={"q": q, "k": K, **extra})
    if response.status_code != 200:
        raise SystemExit(f"GET /search answered {response.status_code}: {response.text[:200]}")
    body: dict[str, Any] = response.json()
    if len(body["results"]) != K:
        raise SystemExit(f"GET /search returned {len(body['results'])} results, expected {K}")
    return body


def measure_title_hits(services: Services, api_key: str, titles: Sequence[str]) -> dict[str, float]:
    """Share of exact-title queries whose first result carries that title, per mode."""
    server = ApiServer(Api(services), "127.0.0.1", 0)
    server.start()
    hits = {"semantic": 0, "hybrid": 0}
    try:
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base, headers={"x-api-key": api_key}, timeout=30.0) as client:
            for mode in hits:
                for title in titles:
                    response = client.get("/search", params={"q": title, "k": 1, "mode": mode})
                    if response.status_code != 200:
                        raise SystemExit(f"GET /search answered {response.status_code}: {response.text[:200]}")
                    first = response.json()["results"]
                    hits[mode] += bool(first) and first[0]["title"].casefold() == title.casefold()
    finally:
        server.stop()
    return {mode: n / len(titles) for mode, n in hits.items()}


def measure_filtered_recall(url: str, services: Services, vectors: np.ndarray, flt: TrackFilter) -> float:
    """recall@10 of the API's filtered search against the exact filtered scan, same vectors and filter."""
    from pgvector.psycopg import register_vector

    model_key = services.embedder.model_key
    ef = services.settings.hnsw_ef_search
    overlap: list[float] = []
    with psycopg.connect(url) as conn:
        register_vector(conn)
        conn.commit()
        for vec in vectors:
            got = filtered_search(conn, vec, model_key, K, flt, ef_search=ef)
            conn.commit()
            exact = exact_filtered_search(conn, vec, model_key, K, flt)
            conn.commit()
            if len(got) != K:
                raise SystemExit(f"filtered search returned {len(got)} results, expected {K}")
            overlap.append(len({h.id for h in got} & {h.id for h in exact}) / K)
    return float(np.mean(overlap))


@dataclass
class SqlResult:
    db_ms: list[float]
    exact_ms: list[float]
    recall: float
    recall_ties: float


def measure_sql(url: str, services: Services, vectors: np.ndarray, ef: int) -> SqlResult:
    """DB-side latency of the search SQL with HNSW and as an exact scan, and recall of the former.

    Uses a dedicated connection (no pool checkout in the timing). The exact variant is the same
    statement in a transaction with ``enable_indexscan = off``, which leaves the planner a full scan
    and sort (its plan is checked in ``check_plan``). All HNSW queries run before all exact ones:
    interleaved, every exact scan would push the index out of the 128 MB of shared buffers and the
    HNSW figure would measure cache misses instead of the index.
    """
    from pgvector.psycopg import register_vector

    model_key = services.embedder.model_key
    with psycopg.connect(url) as conn:
        register_vector(conn)
        conn.commit()
        store = TrackStore(conn)

        def run(exact: bool, label: str) -> tuple[list[float], list[list[Any]]]:
            times: list[float] = []
            hits: list[list[Any]] = []
            for vec in vectors[:8]:  # warm-up
                if exact:
                    conn.execute("SET LOCAL enable_indexscan = off")
                store.search(vec, model_key, K, ef_search=ef)
                conn.commit()
            with progress() as bar:
                task = bar.add_task(label, total=len(vectors))
                for vec in vectors:
                    with Timer() as timer:
                        if exact:
                            conn.execute("SET LOCAL enable_indexscan = off")
                        hits.append(store.search(vec, model_key, K, ef_search=ef))
                        conn.commit()
                    times.append(timer.s * 1000)
                    bar.advance(task)
            return times, hits

        db_ms, ann_hits = run(False, f"SQL HNSW ef_search={ef}")
        exact_ms, exact_hits = run(True, "SQL exact scan")
    overlap: list[float] = []
    overlap_ties: list[float] = []
    for ann, exact in zip(ann_hits, exact_hits, strict=True):
        overlap.append(len({h.id for h in ann} & {h.id for h in exact}) / K)
        # A hit scoring at least the exact 10th score is as good as any exact answer (ties).
        floor = min(h.score for h in exact) - 1e-6
        overlap_ties.append(min(K, sum(1 for h in ann if h.score >= floor)) / K)
    return SqlResult(db_ms, exact_ms, float(np.mean(overlap)), float(np.mean(overlap_ties)))


def sweep_ef(url: str, services: Services, vectors: np.ndarray, values: Sequence[int]) -> list[str]:
    """recall@10 and SQL latency per ef_search: the data for choosing the default."""
    lines = ["  ef_search sweep (SQL only): ef  recall@10  p50 ms  p95 ms"]
    for ef in values:
        r = measure_sql(url, services, vectors, ef)
        lines.append(f"    {ef:>4}  {r.recall:.4f}  {percentile(r.db_ms, 50):6.2f}  {percentile(r.db_ms, 95):6.2f}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
