"""Connections: a psycopg 3 pool with pgvector types, on an external URL or the embedded server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from shared.config import Settings
from shared.errors import ConfigError, TransientError

__all__ = ["Database", "embedded_database_url", "resolve_database_url"]

log = logging.getLogger(__name__)

_embedded_lock = threading.Lock()
_embedded_servers: dict[Path, Any] = {}


def embedded_database_url(pg_data_dir: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL 16 + pgvector that the pgserver wheel ships.

    pgserver reference-counts the processes attached to one data directory and stops the server
    when the last one exits, so the CLI, the API and the workers can all share it.
    """
    import pgserver  # lazy: only the local runtime needs it

    pg_data_dir = pg_data_dir.resolve()
    with _embedded_lock:
        server = _embedded_servers.get(pg_data_dir)
        if server is None:
            pg_data_dir.parent.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(pg_data_dir, cleanup_mode="stop")
            _embedded_servers[pg_data_dir] = server
    return str(server.get_uri())


def resolve_database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded_database_url(settings.pg_data_dir)


def _configure(conn: psycopg.Connection[Any]) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)
    conn.commit()


class Database:
    """A connection pool plus the few conventions every store module relies on."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, statement_timeout_ms: int = 30_000) -> None:
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            raise ConfigError("CONTENTFN_DATABASE_URL: not a valid PostgreSQL URL or connection string") from None
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"options": f"-c statement_timeout={statement_timeout_ms}", "autocommit": False},
            configure=_configure,
            open=False,
            name="contentfn",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            resolve_database_url(settings),
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )

    def open(self, timeout: float = 30.0) -> Database:
        try:
            self._pool.open(wait=True, timeout=timeout)
        except Exception as exc:  # pool timeouts wrap the underlying connect error
            raise TransientError(f"database unreachable: {type(exc).__name__}") from exc
        return self

    def close(self) -> None:
        self._pool.close()

    def migrate(self) -> list[str]:
        """Apply pending migrations on a connection of its own, before the pool opens.

        Done outside the pool because pooled connections register the pgvector type when they
        connect, which fails until the first migration has created the extension.
        """
        from shared.store.migrations import apply_migrations

        with psycopg.connect(self.url, autocommit=False) as conn:
            return apply_migrations(conn)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection inside a transaction: committed on success, rolled back on error."""
        with self._pool.connection() as conn:
            yield conn

    def __enter__(self) -> Database:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
