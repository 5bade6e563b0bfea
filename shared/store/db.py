"""Connections: a psycopg 3 pool with pgvector types, on an external URL or the embedded server."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from shared.config import Settings
from shared.errors import ConfigError, TransientError
from shared.store.credentials import RDS_VARIABLE, DatabaseCredentials, SecretsManagerCredentials

__all__ = ["Database", "DatabaseUnavailable", "database_target", "embedded_database_url", "with_ca_cert"]

log = logging.getLogger(__name__)


class DatabaseUnavailable(TransientError):
    """The database cannot be reached or dropped the connection (restart, failover, no free
    connection in time). Transient: the API answers 503 with ``Retry-After``, a job is retried."""


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


def with_ca_cert(url: str, pem: str) -> str:
    """``url`` verifying the server against the CA ``pem`` (text): written once to a private file
    named by its digest, given as ``sslrootcert``, with ``sslmode=verify-full`` unless the URL says."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigError("CONTENTFN_DATABASE_CA_CERT: not a PEM certificate")
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"contentfn-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"database-ca-{digest}.pem"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(pem if pem.endswith("\n") else pem + "\n", encoding="ascii")
        partial.chmod(0o600)
        partial.replace(path)
    params: dict[str, Any] = {"sslrootcert": str(path)}
    try:
        given = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ConfigError("CONTENTFN_DATABASE_URL: not a valid PostgreSQL URL or connection string") from None
    if not given.get("sslmode"):
        params["sslmode"] = "verify-full"
    return psycopg.conninfo.make_conninfo(url, **params)


def database_target(settings: Settings) -> tuple[str, DatabaseCredentials | None]:
    """Where to connect and with which credentials: the URL, an RDS instance, or the embedded server.

    A URL given wins over an RDS instance's endpoint (an RDS Proxy, a tunnel); the instance then
    still supplies the credentials.
    """
    url = settings.database_url.get_secret_value() if settings.database_url is not None else None
    if url is not None and settings.database_ca_cert:
        url = with_ca_cert(url, settings.database_ca_cert)
    endpoint, region = settings.aws_endpoint_url, settings.aws_region
    if settings.database_iam_auth:
        if url is None:
            raise ConfigError("CONTENTFN_DATABASE_IAM_AUTH needs CONTENTFN_DATABASE_URL (host, database and IAM login)")
        from shared.store.credentials_gcp import CloudSqlIamCredentials  # google-auth only where asked for

        return url, CloudSqlIamCredentials()
    if settings.database_rds_instance:
        from shared.store.credentials_aws import describe_rds_instance  # boto3 only where RDS is named

        instance = describe_rds_instance(
            settings.database_rds_instance,
            variable=RDS_VARIABLE,
            endpoint_url=endpoint,
            region=region,
            ssl_root_cert=str(settings.database_ssl_root_cert or ""),
            # A function's own runtime role logs in; the master secret is the migrator's alone.
            needs_master_secret=settings.database_credentials_secret is None,
        )
        if url is None and settings.database_ssl_root_cert is None:
            raise ConfigError(
                "CONTENTFN_DATABASE_SSL_ROOT_CERT: required with CONTENTFN_DATABASE_RDS_INSTANCE (the RDS CA bundle"
                " the server certificate is verified against; the images ship it and Terraform sets the path)"
            )
        if settings.database_credentials_secret:
            secret = SecretsManagerCredentials(
                settings.database_credentials_secret, endpoint_url=endpoint, region=region
            )
        else:
            secret = SecretsManagerCredentials(
                str(instance.secret_arn), endpoint_url=endpoint, region=region, variable=RDS_VARIABLE
            )
        return url or instance.url, secret
    if settings.database_credentials_secret:
        if url is None:
            raise ConfigError("CONTENTFN_DATABASE_CREDENTIALS_SECRET needs CONTENTFN_DATABASE_URL")
        return url, SecretsManagerCredentials(
            settings.database_credentials_secret, endpoint_url=endpoint, region=region
        )
    return url or embedded_database_url(settings.pg_data_dir), None


def _connection_class(credentials: DatabaseCredentials) -> type[psycopg.Connection[Any]]:
    """A connection class that logs in with ``credentials``, re-reading them once when refused.

    The pool builds every connection through ``connection_class.connect``, so this is where a
    rotated password is picked up: the refused attempt re-reads the secret and, if it changed,
    connects again at once instead of waiting for the pool's reconnect backoff.
    """

    class CredentialedConnection(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> CredentialedConnection:  # type: ignore[override]
            used = credentials.current()
            try:
                return super().connect(conninfo, **{**kwargs, **used.as_kwargs()})
            except psycopg.OperationalError:
                # Another connection may have re-read them meanwhile (a rotation refuses many at once).
                changed = credentials.current() != used
                if not changed:
                    try:
                        changed = credentials.refresh()
                    except ConfigError as exc:  # keep the pool's own retry going; say why
                        log.warning("could not re-read the database credentials: %s", exc)
                if not changed:
                    raise
                return super().connect(conninfo, **{**kwargs, **credentials.current().as_kwargs()})

    return CredentialedConnection


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    """Whether ``exc`` means the server is away rather than that a statement was refused.

    A pool timeout, a broken connection (no SQLSTATE: the socket closed) and the server's own
    shutdown and startup states (class 57P: admin or crash shutdown, cannot connect now) are the
    database being unavailable; a statement timeout or a lock not available (also OperationalError)
    are the caller's to handle and keep their type.
    """
    from psycopg_pool import PoolTimeout

    if isinstance(exc, PoolTimeout):
        return True
    state = exc.sqlstate
    return state is None or state.startswith(("57P", "08", "53300"))


def _configure(conn: psycopg.Connection[Any]) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)
    conn.commit()


class Database:
    """A connection pool plus the few conventions every store module relies on."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        statement_timeout_ms: int = 30_000,
        credentials: DatabaseCredentials | None = None,
        connect_timeout_s: int = 5,
        pool_timeout_s: float = 10.0,
        keepalives: tuple[int, int, int] = (30, 10, 3),
    ) -> None:
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            raise ConfigError("CONTENTFN_DATABASE_URL: not a valid PostgreSQL URL or connection string") from None
        self.url = url
        self.credentials = credentials
        idle, interval, count = keepalives
        # Bounded connects and TCP keepalives: without them a server that vanished (failover, a
        # dropped route) leaves a connect or a query waiting on the kernel's defaults, for hours.
        self._connect_kwargs: dict[str, Any] = {
            "connect_timeout": connect_timeout_s,
            "keepalives": 1,
            "keepalives_idle": idle,
            "keepalives_interval": interval,
            "keepalives_count": count,
        }
        self._connection_class = psycopg.Connection if credentials is None else _connection_class(credentials)
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={
                "options": f"-c statement_timeout={statement_timeout_ms}",
                "autocommit": False,
                **self._connect_kwargs,
            },
            connection_class=self._connection_class,
            configure=_configure,
            # A connection that died while idle in the pool (server restart, failover) is found on
            # checkout and replaced, instead of failing the request that drew it.
            check=ConnectionPool.check_connection,
            timeout=pool_timeout_s,
            open=False,
            name="contentfn",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        url, credentials = database_target(settings)
        return cls(
            url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            statement_timeout_ms=settings.db_statement_timeout_ms,
            credentials=credentials,
            connect_timeout_s=settings.db_connect_timeout_s,
            pool_timeout_s=settings.db_pool_timeout_s,
            keepalives=(settings.db_keepalives_idle_s, settings.db_keepalives_interval_s, settings.db_keepalives_count),
        )

    def open(self, timeout: float = 30.0) -> Database:
        if self.credentials is not None:
            self.credentials.current()  # an unreadable secret stops the start, naming the variable
        try:
            self._pool.open(wait=True, timeout=timeout)
        except Exception as exc:  # pool timeouts wrap the underlying connect error
            raise DatabaseUnavailable(f"database unreachable: {type(exc).__name__}") from exc
        return self

    def close(self) -> None:
        self._pool.close()

    def migrate(self) -> list[str]:
        """Apply pending migrations on a connection of its own, before the pool opens.

        Done outside the pool because pooled connections register the pgvector type when they
        connect, which fails until the first migration has created the extension.

        Where the runtime roles exist, the migrator grants them again after applying migrations
        (:mod:`shared.store.roles`), so a new migration's tables get exactly their grants.
        """
        from shared.store.migrations import apply_migrations
        from shared.store.roles import apply_roles, roles_exist

        with self.connect() as conn:
            applied = apply_migrations(conn)
            if applied and roles_exist(conn):
                apply_roles(conn)
            return applied

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A connection outside the pool (migrations, index builds), with the pool's credentials."""
        return self._connection_class.connect(self.url, autocommit=autocommit, **self._connect_kwargs)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection inside a transaction: committed on success, rolled back on error.

        A lost or refused connection leaves as :class:`DatabaseUnavailable`, whether it happens on
        checkout (the pool timed out waiting) or in the middle of the caller's statements; the pool
        itself drops the broken connection and reconnects in the background.
        """
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            if not _connection_lost(exc):
                raise
            raise DatabaseUnavailable(f"database unavailable: {type(exc).__name__}") from exc

    def __enter__(self) -> Database:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
