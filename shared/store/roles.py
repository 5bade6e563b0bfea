"""Least privilege in the database: the migrator owns the schema; each function logs in as a
runtime role holding only the table privileges its code uses.

The grants are data (:data:`GRANTS`), rendered to ``GRANT`` statements by :func:`apply_roles`,
which the migrator runs after the migrations (``contentfn db roles``; ``contentfn db migrate``
re-applies them once the roles exist). Applying is idempotent and exact: each runtime role's table
privileges are revoked and granted again from the table, so a privilege taken out of the table is
taken away from the database too.

A later migration's table is covered deliberately, never by accident: the default privileges of
the migrator's new tables grant nothing to anyone, and :func:`apply_roles` refuses a schema with a
table the grants do not name (give it to the roles that use it, or to :data:`MIGRATOR_ONLY`).

One exception to "no runtime DDL": a model's HNSW index is built by embed after a bulk load
(``CREATE INDEX CONCURRENTLY``) and dropped when the API retires the model. PostgreSQL lets only
a table's owner create or drop its indexes, and only an owner who may create in the schema, so
``embeddings`` belongs to a group role without login (``<prefix>vector_index``, with CREATE on the
schema). embed and the API are members that do not inherit it: they take it with ``SET ROLE`` for
the index statement alone (:func:`index_owner`), and a plain ``CREATE TABLE`` or ``ALTER`` of
theirs is refused. A member could still take it on purpose: that is the residual right.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

__all__ = [
    "FUNCTIONS",
    "GRANTS",
    "INDEX_OWNER_MEMBERS",
    "MIGRATOR_ONLY",
    "RoleReport",
    "UncoveredTables",
    "apply_roles",
    "index_owner",
    "role_name",
    "roles_exist",
    "take_index_owner",
]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "contentfn_"
_S, _I, _U, _D = "SELECT", "INSERT", "UPDATE", "DELETE"


def _p(*privileges: str) -> frozenset[str]:
    return frozenset(privileges)


_ALL = _p(_S, _I, _U, _D)
_READ = _p(_S)
_APPEND = _p(_S, _I)
_UPSERT = _p(_S, _I, _U)

# What every function does through the platform layer, in the cloud and on a schedule:
# idempotency records, the dead-letter store (poison events, jobs out of attempts), the ledger,
# the Postgres outbox (publish, relay to the cloud queue, drain) and the schema version check.
_DELIVERY: dict[str, frozenset[str]] = {
    "schema_migrations": _READ,
    "idempotency": _ALL,
    "dead_jobs": _APPEND,
    "ledger": _UPSERT,
    "jobs": _ALL,
}

# Function → table → privileges. A function absent from a table may not touch it at all.
GRANTS: dict[str, dict[str, frozenset[str]]] = {
    # Object events: parse and upsert tracks, link them to the object, queue embed/enrich/detect
    # jobs (admission reads the GPU workers' capacity); a removed object takes its tracks away.
    "ingest": {
        **_DELIVERY,
        "tracks": _ALL,
        "track_objects": _ALL,
        "track_pages": _READ,
        "embeddings": _READ,
        "enrichments": _READ,
        "analyses": _READ,
        "images": _UPSERT,
        "gpu_workers": _READ,
    },
    # Scheduled pulls from configured sources, from a stored cursor.
    "scrape": {
        **_DELIVERY,
        "tracks": _UPSERT,
        "track_pages": _APPEND,
        "scrape_cursors": _UPSERT,
    },
    "enrich": {
        **_DELIVERY,
        "tracks": _READ,
        "enrichments": _UPSERT,
    },
    # Vectors of the active and shadow models, the backfill's progress, the HNSW index (see above).
    "embed": {
        **_DELIVERY,
        "tracks": _p(_S, "UPDATE (search_tsv)"),  # the full-text half of hybrid search, filled beside the vectors
        "embeddings": _ALL,
        "embedding_models": _UPSERT,
    },
    "analyze": {
        **_DELIVERY,
        "tracks": _READ,
        "enrichments": _READ,
        "embeddings": _READ,
        "embedding_models": _READ,
        "analyses": _APPEND,
        "llm_calls": _APPEND,
        "llm_budget": _UPSERT,
        "distilled_models": _UPSERT,
    },
    # Imports the cloud queues' dead letters into the dead-letter store.
    "deadletters": {
        **_DELIVERY,
    },
    # The read side, /analyze, streams, dead-letter replay, keys and quotas, the model registry,
    # track deletes (which take the track's queued jobs with them). It never edits the ledger's
    # past, the LLM's cost records or the GPU workers' reports.
    "api": {
        **_DELIVERY,
        "dead_jobs": _ALL,
        "tracks": _p(_S, _D),
        "track_objects": _p(_S, _D),
        "track_pages": _READ,
        "embeddings": _p(_S, _D),
        "enrichments": _READ,
        "analyses": _APPEND,
        "llm_calls": _APPEND,
        "llm_budget": _UPSERT,
        "distilled_models": _READ,
        "images": _READ,
        "detections": _p(_S, _D),
        "streams": _ALL,
        "gpu_workers": _READ,
        "api_keys": _UPSERT,
        "api_quota_counters": _ALL,
        "api_audit": _APPEND,
        "embedding_models": _UPSERT,
        "embedding_model_switches": _APPEND,
    },
    # The GPU service: detection jobs (its own queue or the outbox), images and stream leases,
    # detections, and its capacity reports.
    "gpu": {
        **_DELIVERY,
        "images": _UPSERT,
        "detections": _ALL,
        "streams": _UPSERT,
        "gpu_workers": _ALL,
    },
}

FUNCTIONS: tuple[str, ...] = tuple(GRANTS)

# Tables no runtime role may touch (only the migrator and the operator's CLI).
MIGRATOR_ONLY: frozenset[str] = frozenset()

# Members of the group role that owns ``embeddings`` (index DDL), besides the migrator.
INDEX_OWNER_MEMBERS: tuple[str, ...] = ("embed", "api")
_INDEX_OWNER = "vector_index"
_INDEX_OWNED_TABLES = ("embeddings",)


class UncoveredTables(RuntimeError):
    """The schema has tables the grants do not name: decide who may use them first."""


@dataclass(frozen=True)
class RoleReport:
    """What :func:`apply_roles` did, one line per step, for the CLI to print."""

    created: list[str]
    passwords_set: list[str]
    members_granted: list[str]
    grants: list[str]


def role_name(function: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The runtime role of ``function`` (``contentfn_api``)."""
    if function not in GRANTS:
        raise KeyError(f"no runtime role for {function!r}; known: {', '.join(FUNCTIONS)}")
    return f"{prefix}{function}"


def roles_exist(conn: psycopg.Connection[Any], prefix: str = DEFAULT_PREFIX) -> bool:
    """Whether the runtime roles have been created in this cluster (then migrations re-grant)."""
    names = [role_name(f, prefix) for f in FUNCTIONS]
    row = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)", (names,)).fetchone()
    return bool(row and row[0] == len(names))


def _tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')"
    ).fetchall()
    return {str(r[0]) for r in rows}


def _ensure_role(conn: psycopg.Connection[Any], name: str, *, login: bool) -> bool:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    if exists:
        conn.execute(sql.SQL("ALTER ROLE {} " + ("LOGIN" if login else "NOLOGIN")).format(sql.Identifier(name)))
        return False
    conn.execute(sql.SQL("CREATE ROLE {} " + ("LOGIN" if login else "NOLOGIN")).format(sql.Identifier(name)))
    return True


def _grant_membership(conn: psycopg.Connection[Any], group: str, member: str, *, inherit: bool = True) -> None:
    conn.execute(
        sql.SQL("GRANT {} TO {} WITH INHERIT {}, SET TRUE").format(
            sql.Identifier(group), sql.Identifier(member), sql.SQL("TRUE" if inherit else "FALSE")
        )
    )


def _index_owner_to_take(conn: psycopg.Connection[Any], prefix: str) -> str | None:
    name = f"{prefix}{_INDEX_OWNER}"
    row = conn.execute(
        "SELECT pg_has_role(current_user, oid, 'SET') AND NOT pg_has_role(current_user, oid, 'USAGE')"
        " FROM pg_roles WHERE rolname = %s",
        (name,),
    ).fetchone()
    return name if row and row[0] else None


def take_index_owner(conn: psycopg.Connection[Any], prefix: str = DEFAULT_PREFIX) -> bool:
    """For a connection of its own that only does index DDL: become the owner of ``embeddings``
    for the rest of the session when this login is a runtime role that may (embed, the API)."""
    name = _index_owner_to_take(conn, prefix)
    if name is not None:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(name)))
    return name is not None


@contextmanager
def index_owner(conn: psycopg.Connection[Any], prefix: str = DEFAULT_PREFIX) -> Iterator[None]:
    """Run the statements inside as the owner of ``embeddings`` when this login is a runtime role
    that may take it (embed, the API); otherwise (the migrator, a superuser, the local runtime's
    single login) as itself. Inside a transaction the role ends with the block or the transaction."""
    name = _index_owner_to_take(conn, prefix)
    if name is None:
        yield
        return
    conn.execute(sql.SQL("SET ROLE {}" if conn.autocommit else "SET LOCAL ROLE {}").format(sql.Identifier(name)))
    yield
    conn.execute("RESET ROLE")


def apply_roles(
    conn: psycopg.Connection[Any],
    *,
    prefix: str = DEFAULT_PREFIX,
    passwords: Mapping[str, str] | None = None,
    members: Mapping[str, str] | None = None,
) -> RoleReport:
    """Create the runtime roles and grant each exactly what :data:`GRANTS` says. Commits.

    Run as the migrator: the owner of the tables, allowed to create roles (RDS's master user,
    Cloud SQL's ``postgres``, a superuser locally). ``passwords`` (function → password) sets the
    roles' login passwords; ``members`` (function → an existing login, e.g. a Cloud SQL IAM user)
    makes that login a member of the function's role.
    """
    passwords, members = passwords or {}, members or {}
    unknown = sorted((set(passwords) | set(members)) - set(GRANTS))
    if unknown:
        raise KeyError(f"no runtime role for {', '.join(unknown)}; known: {', '.join(FUNCTIONS)}")
    tables = _tables(conn)
    named = set(MIGRATOR_ONLY).union(*(set(t) for t in GRANTS.values()))
    uncovered = sorted(tables - named)
    if uncovered:
        raise UncoveredTables(
            f"tables no grant names: {', '.join(uncovered)}; add them to shared.store.roles.GRANTS"
            " (or MIGRATOR_ONLY) before granting"
        )
    report = RoleReport(created=[], passwords_set=[], members_granted=[], grants=[])
    migrator = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]

    for function, table_grants in GRANTS.items():
        role = role_name(function, prefix)
        if _ensure_role(conn, role, login=True):
            report.created.append(role)
        if function in passwords:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(passwords[function]))
            )
            report.passwords_set.append(role)
        if function in members:
            _grant_membership(conn, role, members[function])
            report.members_granted.append(f"{role} → {members[function]}")
        ident = sql.Identifier(role)
        conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(ident))
        conn.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(ident))
        for table in sorted(set(table_grants) & tables):
            privileges = sorted(table_grants[table])
            conn.execute(
                sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in privileges), sql.Identifier(table), ident
                )
            )
            report.grants.append(f"{role}: {', '.join(privileges)} ON {table}")
            if _I in table_grants[table]:  # serial columns draw from a sequence the role must use
                for (sequence,) in conn.execute(
                    "SELECT s.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid"
                    " JOIN pg_class t ON t.oid = d.refobjid"
                    " WHERE s.relkind = 'S' AND d.deptype = 'a' AND t.relname = %s",
                    (table,),
                ).fetchall():
                    conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.Identifier(sequence), ident))

    # Index DDL on embeddings (see the module docstring).
    owner = f"{prefix}{_INDEX_OWNER}"
    if _ensure_role(conn, owner, login=False):
        report.created.append(owner)
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(owner)))
    _grant_membership(conn, owner, migrator)  # the migrator keeps altering the table in migrations
    for function in INDEX_OWNER_MEMBERS:
        _grant_membership(conn, owner, role_name(function, prefix), inherit=False)
    for table in _INDEX_OWNED_TABLES:
        if table in tables:
            conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(table), sql.Identifier(owner)))
            report.grants.append(f"{owner}: owns {table} (members: {', '.join(INDEX_OWNER_MEMBERS)})")

    # New tables and sequences of later migrations: nobody but their owner until granted here.
    conn.execute(
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public REVOKE ALL ON TABLES FROM PUBLIC").format(
            sql.Identifier(migrator)
        )
    )
    conn.execute(
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public REVOKE ALL ON SEQUENCES FROM PUBLIC").format(
            sql.Identifier(migrator)
        )
    )
    conn.commit()
    return report
