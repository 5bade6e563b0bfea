"""The embedding model registry: which models exist, which one serves search, and the switches.

A model is ``shadow`` (embedded beside the active one, not searched), ``active`` (the one model
search reads; a partial unique index allows at most one) or ``retired`` (vectors and index gone).
``activate`` and ``rollback`` change the active model in one transaction holding row locks on the
registry, so a search reads either the old model or the new one, never none. ``activate`` is
refused while the shadow model misses tracks or its HNSW index is not valid: switching earlier
would make search miss tracks or fall back to an exact scan on the whole catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.store.roles import index_owner
from shared.store.tracks import TrackStore, hnsw_index_name

__all__ = [
    "ActivationRefused",
    "Coverage",
    "EmbeddingModel",
    "ModelConflict",
    "ModelNotFound",
    "ModelProgress",
    "ModelSpec",
    "ModelState",
    "activate_model",
    "active_model",
    "add_model",
    "coverage",
    "get_model",
    "list_models",
    "model_key",
    "model_progress",
    "retire_model",
    "rollback_model",
]

_COLUMNS = (
    "key, name, version, provider, dimensions, max_tokens, manifest_hash, options, state,"
    " backfill_after, backfill_until, backfill_done, created_at, activated_at, retired_at"
)


class ModelState(StrEnum):
    SHADOW = "shadow"
    ACTIVE = "active"
    RETIRED = "retired"


class ModelNotFound(LookupError):
    """No model with that key in the registry."""


class ModelConflict(ValueError):
    """The request contradicts the model's state (retire the active model, add a key twice, …)."""


class ActivationRefused(RuntimeError):
    """The shadow model is not ready to serve search; ``missing`` says what it still lacks."""

    def __init__(self, key: str, missing: list[str]) -> None:
        super().__init__(f"model {key} cannot be activated: " + "; ".join(missing))
        self.key = key
        self.missing = missing


def model_key(name: str, version: str) -> str:
    """The key stored beside every vector: ``name@version``."""
    return f"{name}@{version}"


@dataclass(frozen=True)
class ModelSpec:
    """What ``add`` registers; the state is decided by the registry."""

    name: str
    version: str
    provider: str  # "onnx" | "openai"
    dimensions: int
    max_tokens: int
    manifest_hash: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return model_key(self.name, self.version)


@dataclass(frozen=True)
class EmbeddingModel:
    key: str
    name: str
    version: str
    provider: str
    dimensions: int
    max_tokens: int
    manifest_hash: str | None
    options: dict[str, Any]
    state: ModelState
    backfill_after: int
    backfill_until: int
    backfill_done: bool
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None


@dataclass(frozen=True)
class Coverage:
    """How much of the catalogue a model has current vectors for (same content hash as the track)."""

    tracks: int
    embedded: int
    index: str  # valid | invalid | missing

    @property
    def missing(self) -> int:
        return self.tracks - self.embedded

    @property
    def complete(self) -> bool:
        return self.embedded >= self.tracks and self.index == "valid"


def _model(row: dict[str, Any]) -> EmbeddingModel:
    return EmbeddingModel(**{**row, "state": ModelState(row["state"])})


def _select(rest: LiteralString) -> sql.Composed:
    return sql.SQL("SELECT {} FROM embedding_models {}").format(sql.SQL(_COLUMNS), sql.SQL(rest))


def list_models(conn: psycopg.Connection[Any]) -> list[EmbeddingModel]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_select("ORDER BY created_at, key"))
        return [_model(r) for r in cur.fetchall()]


def get_model(conn: psycopg.Connection[Any], key: str, *, for_update: bool = False) -> EmbeddingModel:
    query = _select("WHERE key = %s FOR UPDATE" if for_update else "WHERE key = %s")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, (key,))
        row = cur.fetchone()
    if row is None:
        raise ModelNotFound(f"no embedding model {key}")
    return _model(row)


def active_model(conn: psycopg.Connection[Any]) -> EmbeddingModel | None:
    """The model search reads, or None before any model is registered."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_select("WHERE state = 'active'"))
        row = cur.fetchone()
    return None if row is None else _model(row)


def add_model(conn: psycopg.Connection[Any], spec: ModelSpec, *, activate_if_first: bool = True) -> EmbeddingModel:
    """Register a model as ``shadow``; the very first model of a registry (the one whose vectors
    already serve search) becomes ``active`` at once when ``activate_if_first``.

    Adding a key that exists is a conflict unless it is the same model already there (an
    idempotent re-run of ``add``); a retired key is not revived: give the model a new version.
    """
    if not 1 <= spec.dimensions <= 2000:
        raise ModelConflict(f"dimensions must be between 1 and 2000 (pgvector's HNSW limit), not {spec.dimensions}")
    conn.execute("LOCK TABLE embedding_models IN SHARE ROW EXCLUSIVE MODE")  # one first model, however many add
    try:
        existing = get_model(conn, spec.key)
    except ModelNotFound:
        existing = None
    if existing is not None:
        same = (existing.provider, existing.dimensions, existing.manifest_hash) == (
            spec.provider,
            spec.dimensions,
            spec.manifest_hash,
        )
        if not same or existing.state is ModelState.RETIRED:
            raise ModelConflict(f"model {spec.key} is already registered ({existing.state.value})")
        return existing
    first = activate_if_first and active_model(conn) is None
    conn.execute(
        "INSERT INTO embedding_models (key, name, version, provider, dimensions, max_tokens, manifest_hash,"
        " options, state, activated_at, backfill_until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " CASE WHEN %s THEN now() END, (SELECT coalesce(max(id), 0) FROM tracks))",
        (
            spec.key,
            spec.name,
            spec.version,
            spec.provider,
            spec.dimensions,
            spec.max_tokens,
            spec.manifest_hash,
            Jsonb(spec.options),
            (ModelState.ACTIVE if first else ModelState.SHADOW).value,
            first,
        ),
    )
    if first:
        conn.execute(
            "INSERT INTO embedding_model_switches (from_key, to_key, reason) VALUES (NULL, %s, 'activate')",
            (spec.key,),
        )
    return get_model(conn, spec.key)


def coverage(conn: psycopg.Connection[Any], key: str) -> Coverage:
    """Tracks, tracks with a current vector of this model, and the state of its HNSW index."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM tracks),"
        " (SELECT count(*) FROM embeddings e JOIN tracks t ON t.id = e.track_id"
        "  WHERE e.model = %s AND e.content_hash = t.content_hash)",
        (key,),
    ).fetchone()
    tracks, embedded = (int(row[0]), int(row[1])) if row else (0, 0)
    return Coverage(tracks=tracks, embedded=embedded, index=TrackStore(conn).hnsw_index_state(key))


def activate_model(conn: psycopg.Connection[Any], key: str) -> EmbeddingModel:
    """Make ``key`` the model search reads; refused (``ActivationRefused``) unless it covers every
    track and its index is valid. The caller commits: the switch is that one commit."""
    target = get_model(conn, key, for_update=True)
    if target.state is ModelState.ACTIVE:
        return target
    if target.state is ModelState.RETIRED:
        raise ActivationRefused(key, ["the model is retired: its vectors are gone; add it again under a new version"])
    current = active_model(conn)
    if current is not None:
        get_model(conn, current.key, for_update=True)
    cov = coverage(conn, key)
    missing = []
    if cov.missing > 0:
        missing.append(f"{cov.missing} of {cov.tracks} tracks have no current vector yet (backfill running)")
    if cov.index != "valid":
        missing.append(f"its HNSW index is {cov.index}")
    if missing:
        raise ActivationRefused(key, missing)
    return _switch(conn, current, target, "activate")


def rollback_model(conn: psycopg.Connection[Any]) -> EmbeddingModel:
    """Return search to the model active before the current one, at once (it kept being embedded
    as a shadow). The caller commits."""
    current = active_model(conn)
    if current is None:
        raise ModelConflict("no active model to roll back from")
    row = conn.execute(
        "SELECT from_key FROM embedding_model_switches WHERE to_key = %s AND from_key IS NOT NULL"
        " ORDER BY id DESC LIMIT 1",
        (current.key,),
    ).fetchone()
    if row is None:
        raise ModelConflict(f"model {current.key} has no previous model to return to")
    previous = get_model(conn, row[0], for_update=True)
    get_model(conn, current.key, for_update=True)
    if previous.state is ModelState.RETIRED:
        raise ModelConflict(f"the previous model {previous.key} is retired: its vectors are gone")
    return _switch(conn, current, previous, "rollback")


def _switch(
    conn: psycopg.Connection[Any], current: EmbeddingModel | None, target: EmbeddingModel, reason: str
) -> EmbeddingModel:
    # Demote first: the partial unique index allows one active row at any moment of the statement order.
    if current is not None:
        conn.execute("UPDATE embedding_models SET state = 'shadow' WHERE key = %s", (current.key,))
    conn.execute("UPDATE embedding_models SET state = 'active', activated_at = now() WHERE key = %s", (target.key,))
    conn.execute(
        "INSERT INTO embedding_model_switches (from_key, to_key, reason) VALUES (%s, %s, %s)",
        (None if current is None else current.key, target.key, reason),
    )
    return get_model(conn, target.key)


def retire_model(conn: psycopg.Connection[Any], key: str) -> int:
    """Retire a shadow model: delete its vectors and drop its HNSW index, all or nothing; returns
    the vectors deleted. The active model cannot be retired (activate another first).

    One transaction (a savepoint inside the caller's, if it has one open): a failure midway leaves
    the model a shadow with its vectors and index, never retired with vectors left or vectors gone
    from a model still listed. That is why the index goes with a plain ``DROP INDEX``:
    ``DROP INDEX CONCURRENTLY`` cannot run in a transaction. The plain drop holds an ACCESS
    EXCLUSIVE lock on ``embeddings`` (every model's searches and writes wait) until the commit, so
    it comes last: the delete before it takes only row locks, and the drop itself is a catalogue
    change plus unlinking the index's files, quick whatever the index's size."""
    with conn.transaction():
        target = get_model(conn, key, for_update=True)
        if target.state is ModelState.ACTIVE:
            raise ModelConflict(f"model {key} is active: activate or roll back to another model first")
        deleted = conn.execute("DELETE FROM embeddings WHERE model = %s", (key,)).rowcount
        conn.execute(
            "UPDATE embedding_models SET state = 'retired', retired_at = coalesce(retired_at, now()) WHERE key = %s",
            (key,),
        )
        with index_owner(conn):  # index DDL is the table owner's (shared.store.roles)
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(hnsw_index_name(key))))
    return int(deleted or 0)


@dataclass(frozen=True)
class ModelProgress:
    """One model's backfill progress, for ``/stats``, ``/admin/models`` and ``contentfn status``."""

    key: str
    state: str
    provider: str
    dimensions: int
    tracks: int
    embedded: int
    index: str
    backfill_done: bool

    @property
    def percent(self) -> float:
        return 100.0 if self.tracks == 0 else round(100.0 * self.embedded / self.tracks, 1)


def model_progress(conn: psycopg.Connection[Any], *, retired: bool = False) -> list[ModelProgress]:
    """Every model's progress; the retired ones (their vectors deleted) only when ``retired``."""
    out = []
    for m in list_models(conn):
        if m.state is ModelState.RETIRED and not retired:
            continue
        cov = coverage(conn, m.key)
        out.append(
            ModelProgress(
                m.key, m.state.value, m.provider, m.dimensions, cov.tracks, cov.embedded, cov.index, m.backfill_done
            )
        )
    return out
