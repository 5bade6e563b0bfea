"""Tracks and their embeddings: bulk upsert, lookup, vector search."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from shared.models import SearchHit, Track, TrackIn
from shared.store.provenance import ObjectVersion

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "SNIPPET_CHARS",
    "ChangedTrack",
    "LinedTrack",
    "TrackStore",
    "UpsertResult",
    "hnsw_index_name",
    "hnsw_index_sql",
    "snippet",
    "upsert_tracks",
    "vector_expr",
]

SNIPPET_CHARS = 160
_TRACK_COLS = "id, source, source_id, artist, title, lyrics, metadata, content_hash, created_at, updated_at"


@dataclass(frozen=True)
class ChangedTrack:
    id: int
    content_hash: str
    inserted: bool


@dataclass
class UpsertResult:
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    content_changed: list[ChangedTrack] = field(default_factory=list)


class LinedTrack(Protocol):
    """A validated row and the line of its file where it starts (the ingest parser's rows are these)."""

    @property
    def line(self) -> int: ...

    @property
    def track(self) -> TrackIn: ...


# Within one batch the last row for a key wins; without a repeated key every staged row is distinct.
_STAGED_LAST_PER_KEY = sql.SQL(
    "SELECT DISTINCT ON (source, source_id) * FROM tracks_stage ORDER BY source, source_id, ord DESC"
)
_STAGED_ALL = sql.SQL("SELECT * FROM tracks_stage")


def upsert_tracks(
    conn: psycopg.Connection[Any],
    rows: Iterable[TrackIn | LinedTrack],
    *,
    origin: ObjectVersion | None = None,
) -> UpsertResult:
    """COPY rows into a staging table, then one INSERT … ON CONFLICT into ``tracks``.

    Keyed by (source, source_id); a row without source_id is keyed by its content hash. Within one
    batch the last row for a key wins. A row whose content and metadata are unchanged is not
    touched, so a redelivered file changes nothing; rows whose *content* changed are returned so
    the caller can enqueue their re-embedding in the same transaction.
    With ``origin``, every row's track (new, changed or unchanged) is linked to that object
    version and the row's line, in the same statement (see ``track_objects``).
    Runs inside the caller's transaction; does not commit.
    """
    result = UpsertResult()
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS tracks_stage ("
            " ord bigint, source text, source_id text, artist text, title text, lyrics text,"
            " metadata jsonb, content_hash text, line integer) ON COMMIT DELETE ROWS"
        )
        cur.execute("TRUNCATE tracks_stage")
        # Binary COPY: the server skips text parsing of every field. Keys are remembered so that the
        # usual batch, without a repeated key, can skip the DISTINCT ON sort of the whole staged batch.
        seen: set[tuple[str, str]] = set()
        repeated = False
        with cur.copy(
            "COPY tracks_stage (ord, source, source_id, artist, title, lyrics, metadata, content_hash, line)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "text", "text", "text", "text", "jsonb", "text", "int4"])
            for ord_, item in enumerate(rows):
                row, line = (item, None) if isinstance(item, TrackIn) else (item.track, item.line)
                key = row.key
                if not repeated:
                    repeated = key in seen
                    seen.add(key)
                copy.write_row(
                    (ord_, key[0], key[1], row.artist, row.title, row.lyrics, Jsonb(row.metadata), row.hash, line)
                )
                result.received += 1
        seen.clear()
        if result.received == 0:
            return result
        staged = _STAGED_LAST_PER_KEY if repeated else _STAGED_ALL
        cur.execute(
            sql.SQL(
                """
            WITH staged AS ({}),
            before AS (
                SELECT t.id, t.source, t.source_id, t.content_hash
                FROM tracks t JOIN staged s USING (source, source_id)),
            up AS (
                INSERT INTO tracks AS t (source, source_id, artist, title, lyrics, metadata, content_hash)
                SELECT source, source_id, artist, title, lyrics, metadata, content_hash FROM staged
                ON CONFLICT (source, source_id) DO UPDATE
                SET artist = EXCLUDED.artist, title = EXCLUDED.title, lyrics = EXCLUDED.lyrics,
                    metadata = EXCLUDED.metadata, content_hash = EXCLUDED.content_hash, updated_at = now(),
                    search_tsv = CASE WHEN t.content_hash IS DISTINCT FROM EXCLUDED.content_hash
                                      THEN NULL ELSE t.search_tsv END
                WHERE t.content_hash IS DISTINCT FROM EXCLUDED.content_hash
                   OR t.metadata IS DISTINCT FROM EXCLUDED.metadata
                   OR t.artist IS DISTINCT FROM EXCLUDED.artist
                   OR t.title IS DISTINCT FROM EXCLUDED.title
                RETURNING t.id, t.source, t.source_id, t.content_hash, (t.xmax = 0) AS inserted){}
            SELECT up.id, up.content_hash, up.inserted,
                   before.content_hash IS DISTINCT FROM up.content_hash AS content_changed,
                   (SELECT count(*) FROM staged) AS distinct_rows
            FROM up LEFT JOIN before USING (source, source_id)
            """
            ).format(staged, _object_links(origin))
        )
        returned = cur.fetchall()
        if not returned:
            cur.execute("SELECT count(*) FROM (SELECT DISTINCT source, source_id FROM tracks_stage) s")
            distinct_row = cur.fetchone()
            distinct = int(distinct_row[0]) if distinct_row else 0
        else:
            distinct = int(returned[0][4])
    for track_id, chash, inserted, changed, _ in returned:
        if inserted:
            result.inserted += 1
        else:
            result.updated += 1
        if changed:
            result.content_changed.append(ChangedTrack(int(track_id), chash, bool(inserted)))
    result.unchanged = distinct - len(returned)
    return result


def vector_expr(dims: int, column: str = "embedding") -> sql.Composed:
    """``(column::vector(dims))``: the expression each model's HNSW index is built over.

    The column has no fixed dimension (models of any size share it) and HNSW needs one, so the
    index is over this cast; a query must order by the very same expression for the planner to
    use the index.
    """
    return sql.SQL("({}::vector({}))").format(sql.SQL(column), sql.Literal(int(dims)))


def _object_links(origin: ObjectVersion | None) -> sql.Composable:
    """The CTE linking each staged row's track to ``origin``: inserted and changed tracks come from
    the upsert's RETURNING, unchanged ones from the rows read before it, so ``tracks`` is not joined
    a second time. A key another transaction inserted after this one's snapshot has neither; its
    link is skipped rather than failing the whole file."""
    if origin is None:
        return sql.SQL("")
    return sql.SQL(
        """,
            linked AS (
                INSERT INTO track_objects (track_id, bucket, object_key, version, line)
                SELECT coalesce(up.id, before.id), {}, {}, {}, staged.line
                FROM staged LEFT JOIN before USING (source, source_id) LEFT JOIN up USING (source, source_id)
                WHERE coalesce(up.id, before.id) IS NOT NULL
                ON CONFLICT DO NOTHING)"""
    ).format(sql.Literal(origin.bucket), sql.Literal(origin.key), sql.Literal(origin.version))


def hnsw_index_sql(model_key: str, *, dims: int, m: int, ef_construction: int, concurrently: bool) -> sql.Composed:
    """``CREATE INDEX`` for the model's partial HNSW cosine index (``IF NOT EXISTS``)."""
    return sql.SQL(
        "CREATE INDEX {} IF NOT EXISTS {} ON embeddings USING hnsw ({} vector_cosine_ops)"
        " WITH (m = {}, ef_construction = {}) WHERE model = {}"
    ).format(
        sql.SQL("CONCURRENTLY" if concurrently else ""),
        sql.Identifier(hnsw_index_name(model_key)),
        vector_expr(dims),
        sql.Literal(m),
        sql.Literal(ef_construction),
        sql.Literal(model_key),
    )


def hnsw_index_name(model_key: str) -> str:
    """A stable, valid identifier per model (model keys contain '@', '-', '.')."""
    import hashlib

    return "embeddings_hnsw_" + hashlib.sha256(model_key.encode()).hexdigest()[:16]


class TrackStore:
    """Reads and vector writes over one connection supplied by the caller."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def get(self, track_id: int) -> Track | None:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT {_TRACK_COLS} FROM tracks WHERE id = %s", (track_id,))
            row = cur.fetchone()
        return None if row is None else _track(row)

    def texts_for(self, track_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """track id → (content_hash, text to embed) for the ids that still exist."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT id, content_hash, title, lyrics FROM tracks WHERE id = ANY(%s)", (list(track_ids),))
            return {int(r[0]): (r[1], embedding_text(r[2], r[3])) for r in cur.fetchall()}

    def embedded_hashes(self, track_ids: Sequence[int], model_key: str) -> dict[int, str]:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT track_id, content_hash FROM embeddings WHERE model = %s AND track_id = ANY(%s)",
                (model_key, list(track_ids)),
            )
            return {int(r[0]): r[1] for r in cur.fetchall()}

    def write_embeddings(
        self, model_key: str, track_ids: Sequence[int], hashes: Sequence[str], vectors: np.ndarray
    ) -> int:
        """Insert or replace vectors; a row with the same content hash is left as it is."""
        if not track_ids:
            return 0
        with self.conn.cursor() as cur:
            cur.executemany(
                """
                INSERT INTO embeddings (track_id, model, embedding, content_hash) VALUES (%s, %s, %s, %s)
                ON CONFLICT (track_id, model) DO UPDATE
                SET embedding = EXCLUDED.embedding, content_hash = EXCLUDED.content_hash, created_at = now()
                WHERE embeddings.content_hash IS DISTINCT FROM EXCLUDED.content_hash
                """,
                [(tid, model_key, vec, h) for tid, h, vec in zip(track_ids, hashes, vectors, strict=True)],
            )
            return len(track_ids)

    def index_text(self, track_ids: Sequence[int] | None = None) -> int:
        """Fill the full-text vector of these tracks (every track when None) where it is missing.

        Returns the rows written. The embed stage calls it beside the vectors, so a track becomes
        keyword-searchable when it becomes semantically searchable, and the bulk upsert stays lean.
        """
        fill = "UPDATE tracks SET search_tsv = track_search_tsv(artist, title, lyrics) WHERE search_tsv IS NULL"
        with self.conn.cursor() as cur:
            if track_ids is None:
                cur.execute(fill)
            else:
                cur.execute(fill + " AND id = ANY(%s)", (list(track_ids),))
            return cur.rowcount

    def ensure_hnsw_index(
        self, model_key: str, *, dims: int | None = None, m: int = 16, ef_construction: int = 64
    ) -> bool:
        """Create the partial HNSW (cosine) index for one model if missing. Returns True if created.

        A plain ``CREATE INDEX`` inside the caller's transaction (it blocks vector writes while it
        runs); :mod:`functions.embed.index` builds it concurrently for live systems. ``dims``
        defaults to the dimension of the model's stored vectors.
        """
        if self.hnsw_index_state(model_key) == "valid":
            return False
        if dims is None:
            dims = self.vector_dims(model_key)
            if dims is None:
                raise ValueError(f"model {model_key!r} has no vectors: pass its dimension")
        from shared.store.roles import index_owner  # index DDL is the table owner's

        with index_owner(self.conn):
            self.conn.execute(
                hnsw_index_sql(model_key, dims=dims, m=m, ef_construction=ef_construction, concurrently=False)
            )
        return True

    def vector_dims(self, model_key: str) -> int | None:
        """The dimension of one of the model's stored vectors (None when it has none)."""
        row = self.conn.execute(
            "SELECT vector_dims(embedding) FROM embeddings WHERE model = %s LIMIT 1", (model_key,)
        ).fetchone()
        return None if row is None else int(row[0])

    def hnsw_index_state(self, model_key: str) -> str:
        """``valid``, ``invalid`` (a concurrent build that did not finish) or ``missing``."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
                (hnsw_index_name(model_key),),
            )
            row = cur.fetchone()
        if row is None:
            return "missing"
        return "valid" if row[0] else "invalid"

    def has_vectors(self, model_key: str) -> bool:
        with self.conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM embeddings WHERE model = %s)", (model_key,))
            row = cur.fetchone()
        return bool(row and row[0])

    def search(
        self, vector: np.ndarray, model_key: str, k: int, *, artist: str | None = None, ef_search: int = 64
    ) -> list[SearchHit]:
        """Top-k by cosine similarity.

        The model key and the vector's dimension are inlined as literals so the planner can match
        the per-model partial expression index (a bound parameter would hide them from a generic
        plan). With an artist filter
        the candidate set is one artist's tracks, so an exact scan over them beats post-filtering
        the approximate top-k, which could return fewer than k rows.
        """
        dims = len(vector)
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(ef_search)))
            if artist is None:
                query = sql.SQL(
                    "WITH nn AS (SELECT track_id, {col} <=> %s::vector({dims}) AS dist FROM embeddings"
                    " WHERE model = {model} ORDER BY {col} <=> %s::vector({dims}) LIMIT %s)"
                    " SELECT t.id, t.artist, t.title, 1 - nn.dist, left(t.lyrics, %s)"
                    " FROM nn JOIN tracks t ON t.id = nn.track_id ORDER BY nn.dist"
                ).format(col=vector_expr(dims), dims=sql.Literal(dims), model=sql.Literal(model_key))
                cur.execute(query, (vector, vector, k, SNIPPET_CHARS))
            else:
                query = sql.SQL(
                    "SELECT t.id, t.artist, t.title, 1 - (e.embedding <=> %s) AS score, left(t.lyrics, %s)"
                    " FROM tracks t JOIN embeddings e ON e.track_id = t.id AND e.model = {}"
                    " WHERE lower(t.artist) = lower(%s) ORDER BY e.embedding <=> %s LIMIT %s"
                ).format(sql.Literal(model_key))
                cur.execute(query, (vector, SNIPPET_CHARS, artist, vector, k))
            rows = cur.fetchall()
        return [
            SearchHit(id=r[0], artist=r[1], title=r[2], score=round(float(r[3]), 6), snippet=snippet(r[4]))
            for r in rows
        ]

    def vector_of(self, track_id: int, model_key: str) -> np.ndarray | None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT embedding FROM embeddings WHERE track_id = %s AND model = %s", (track_id, model_key))
            row = cur.fetchone()
        if row is None:
            return None
        import numpy as np  # lazy: functions that never read vectors start faster

        value = row[0]
        # pgvector's psycopg adapter returns a Vector object in newer releases, an ndarray in older ones.
        return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def embedding_text(title: str, lyrics: str) -> str:
    """What gets embedded for a track: its title, then its lyrics (truncated by the tokenizer)."""
    return f"{title}\n{lyrics}"


def snippet(text: str) -> str:
    """The lyrics on one line, cut at a word boundary: the excerpt a result list shows."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS - 20 else flat[: SNIPPET_CHARS - 21].rsplit(" ", 1)[0] + " …"


def _track(row: Sequence[Any]) -> Track:
    return Track(
        id=row[0],
        source=row[1],
        source_id=row[2],
        artist=row[3],
        title=row[4],
        lyrics=row[5],
        metadata=row[6],
        content_hash=row[7],
        created_at=row[8],
        updated_at=row[9],
    )
