"""Forward-only SQL migrations: ``sql/NNNN_name.sql`` applied in order, recorded in a version table.

An advisory lock serialises concurrent starters (API, workers, CLI) so each file runs exactly once.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import psycopg

from shared.errors import ConfigError

__all__ = ["MigrationNotPermitted", "apply_migrations", "available_migrations", "pending_migrations"]

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_ID = 0x636F6E74  # arbitrary, constant: "cont"


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration shipped in the package, ascending."""
    found = []
    for entry in resources.files("shared.store").joinpath("sql").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError("two migrations share one version number")
    return found


class MigrationNotPermitted(ConfigError):
    """Migrations are pending and this login may not apply them: a function's runtime role, which
    owns nothing. The migrator applies them (``contentfn db migrate``) before new code runs."""


def pending_migrations(conn: psycopg.Connection[Any]) -> list[str]:
    """Names of the shipped migrations this database has not recorded (all of them when new)."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")} if exists and exists[0] else set()
    return [name for version, name, _ in available_migrations() if version not in done]


def apply_migrations(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply every migration not yet recorded; return the names applied. Commits.

    Nothing pending: no DDL at all, so any login that may read ``schema_migrations`` (a runtime
    role) passes. Pending, on a login that may not create in the schema: :class:`MigrationNotPermitted`.
    """
    applied: list[str] = []
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        pending = pending_migrations(conn)
        if not pending:
            conn.commit()
            return applied
        allowed = cur.execute("SELECT has_schema_privilege('public', 'CREATE')").fetchone()
        if not (allowed and allowed[0]):
            conn.rollback()
            raise MigrationNotPermitted(
                f"{len(pending)} migration(s) pending ({', '.join(pending)}) and this login may not apply them:"
                " run `contentfn db migrate` as the migrator before this code"
            )
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cur.fetchall()}
        for version, name, sql in available_migrations():
            if version in done:
                continue
            cur.execute(sql)
            cur.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied.append(name)
    conn.commit()
    return applied
