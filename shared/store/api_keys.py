"""Named API keys: created, listed, rotated and revoked (the CLI), looked up by the API (which trusts
a found key for ``api_key_cache_s``, :class:`functions.api.auth.KeyCache`).

A key's secret is 32 random bytes (256 bits), shown once when it is made; the table keeps only its
SHA-256. A slow password hash (bcrypt, argon2) exists to make guessing a *low-entropy* secret
expensive; a 256-bit random token cannot be guessed however fast the hash is, so a fast hash costs
an attacker who stole the table nothing less while letting every request be checked by one indexed
equality lookup on the digest (no per-key comparison loop, no secret-dependent timing).

Rotation issues a new secret and keeps the previous digest valid for a grace period, so clients
switch over without an outage; revocation takes effect within ``api_key_cache_s`` (5 s by default).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import psycopg

from shared.errors import ContentfnError
from shared.store.db import Database

__all__ = [
    "SCOPES",
    "ApiKey",
    "KeyExists",
    "KeyNotFound",
    "Scope",
    "audit",
    "create_key",
    "find_key",
    "list_keys",
    "revoke_key",
    "rotate_key",
    "secret_digest",
]

Scope = Literal["read", "write", "admin"]
# Each scope includes those before it: a write key may read, an admin key may do everything.
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
_PREFIX = "cfk_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class KeyExists(ContentfnError):
    """A key of that name already exists (revoked keys keep their name, so audit rows stay unambiguous)."""


class KeyNotFound(ContentfnError):
    """No live key of that name."""


@dataclass(frozen=True)
class ApiKey:
    """Who a request is: the key's name, its scopes and its quotas (None: the settings' default)."""

    name: str
    scopes: frozenset[Scope]
    requests_per_minute: int | None = None
    llm_per_day: int | None = None
    max_streams: int | None = None
    created_at: datetime | None = None
    rotated_at: datetime | None = None
    previous_expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        """Whether this key may act at ``scope`` (an admin key may write and read; a write key may read)."""
        rank = SCOPES.index(scope)
        return any(SCOPES.index(s) >= rank for s in self.scopes)


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _new_secret() -> str:
    return _PREFIX + secrets.token_urlsafe(32)


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ContentfnError(
            "a key name is 1-63 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
        )


def create_key(
    db: Database,
    name: str,
    scopes: set[Scope] | frozenset[Scope],
    *,
    requests_per_minute: int | None = None,
    llm_per_day: int | None = None,
    max_streams: int | None = None,
) -> str:
    """Store a new key; return its secret (the only time it exists outside the caller's hands)."""
    _check_name(name)
    if not scopes or not set(scopes) <= set(SCOPES):
        raise ContentfnError(f"scopes must be some of {', '.join(SCOPES)}")
    secret = _new_secret()
    try:
        with db.connection() as conn:
            conn.execute(
                "INSERT INTO api_keys (name, scopes, secret_sha256, requests_per_minute, llm_per_day, max_streams)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (name, sorted(scopes), secret_digest(secret), requests_per_minute, llm_per_day, max_streams),
            )
            conn.commit()
    except psycopg.errors.UniqueViolation:
        raise KeyExists(f"a key named {name!r} exists (revoked keys keep their name)") from None
    return secret


def rotate_key(db: Database, name: str, *, grace: timedelta) -> str:
    """Issue a new secret for ``name``; the current one stays valid for ``grace``. Returns the new secret.

    Only one previous secret is kept: rotating again within the grace ends the older secret at once.
    """
    secret = _new_secret()
    with db.connection() as conn:
        row = conn.execute(
            "UPDATE api_keys SET previous_sha256 = secret_sha256, previous_expires_at = now() + %s,"
            " secret_sha256 = %s, rotated_at = now() WHERE name = %s AND revoked_at IS NULL RETURNING name",
            (grace, secret_digest(secret), name),
        ).fetchone()
        conn.commit()
    if row is None:
        raise KeyNotFound(f"no live key named {name!r}")
    return secret


def revoke_key(db: Database, name: str) -> None:
    """Refuse the key (and any secret still in its rotation grace) from the next request on."""
    with db.connection() as conn:
        row = conn.execute(
            "UPDATE api_keys SET revoked_at = now(), previous_sha256 = NULL, previous_expires_at = NULL"
            " WHERE name = %s AND revoked_at IS NULL RETURNING name",
            (name,),
        ).fetchone()
        conn.commit()
    if row is None:
        raise KeyNotFound(f"no live key named {name!r}")


_COLUMNS = (
    "name, scopes, requests_per_minute, llm_per_day, max_streams, created_at, rotated_at, previous_expires_at,"
    " revoked_at"
)


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(
        name=row[0],
        scopes=frozenset(cast("list[Scope]", row[1])),
        requests_per_minute=row[2],
        llm_per_day=row[3],
        max_streams=row[4],
        created_at=row[5],
        rotated_at=row[6],
        previous_expires_at=row[7],
        revoked_at=row[8],
    )


def list_keys(db: Database) -> list[ApiKey]:
    """Every key, live and revoked, by name (never a secret: the table holds none)."""
    with db.connection() as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY name").fetchall()
        conn.commit()
    return [_key(r) for r in rows]


def find_key(db: Database, secret: str) -> ApiKey | None:
    """The live key whose current secret, or previous secret within its grace, is ``secret``."""
    digest = secret_digest(secret)
    with db.connection() as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE revoked_at IS NULL AND (secret_sha256 = %s"
            " OR (previous_sha256 = %s AND previous_expires_at > now()))",
            (digest, digest),
        ).fetchone()
        conn.commit()
    return None if row is None else _key(row)


def audit(
    db: Database, *, key_name: str, scope: Scope, method: str, route: str, target: str | None, status: int
) -> None:
    """Record one write or admin action and how it ended."""
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO api_audit (key_name, scope, method, route, target, status) VALUES (%s, %s, %s, %s, %s, %s)",
            (key_name, scope, method, route, target, status),
        )
        conn.commit()
