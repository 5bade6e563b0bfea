"""Forward-only SQL migrations: ``sql/NNNN_name.sql`` applied in order, recorded in a version table.

An advisory lock serialises concurrent starters (API, workers, CLI) so each file runs exactly once.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import psycopg

__all__ = ["apply_migrations", "available_migrations"]

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


def apply_migrations(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply every migration not yet recorded; return the names applied. Commits."""
    applied: list[str] = []
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
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
