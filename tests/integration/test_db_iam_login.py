"""Cloud SQL IAM database logins: an OAuth token of the process's own account is the password.

A PostgreSQL of its own asks the IAM login for a SCRAM password, and the test sets that password to
the token Cloud SQL would accept now. The tokens come from a stand-in for the process's Google
credentials (the metadata server is not reachable here): it hands out a new token, with a new
expiry, at each refresh, as google-auth's credentials do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.sql import SQL, Identifier, Literal

from shared.config import load_settings
from shared.store import credentials_gcp
from shared.store.credentials_gcp import LOGIN_SCOPE, CloudSqlIamCredentials
from shared.store.db import Database
from tests.conftest import _state_dir

LOGIN = "contentfn-dev-api@contentfn-dev.iam"  # a service account's IAM database user


class TokenSource:
    """Google credentials as google-auth shapes them: ``token``, naive-UTC ``expiry``, ``refresh``."""

    def __init__(self, lifetime: timedelta = timedelta(hours=1)) -> None:
        self.token: str | None = None
        self.expiry: datetime | None = None
        self.lifetime = lifetime
        self.issued = 0
        self.scopes = [LOGIN_SCOPE]

    def refresh(self, request: Any) -> None:
        self.issued += 1
        self.token = f"ya29.token-{self.issued}"
        self.expiry = (datetime.now(UTC) + self.lifetime).replace(tzinfo=None)


@pytest.fixture(scope="module")
def token_server() -> Iterator[dict[str, str]]:
    """A PostgreSQL of its own: superuser ``postgres`` by trust, the IAM login by SCRAM password."""
    import pgserver

    with _state_dir() as path:
        server = pgserver.get_server(path / "pg", cleanup_mode="stop")
        try:
            hba = Path(server.pgdata) / "pg_hba.conf"
            hba.write_text(f'local all "{LOGIN}" scram-sha-256\n' + hba.read_text())
            admin_url = str(server.get_uri())
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute("SELECT pg_reload_conf()")
                conn.execute(SQL("CREATE ROLE {} LOGIN").format(Identifier(LOGIN)))
            params = conninfo_to_dict(admin_url)
            # What Terraform hands a function: host, database and its IAM login; no password.
            url = make_conninfo(host=params["host"], port=params.get("port", 5432), dbname="postgres", user=LOGIN)
            yield {"admin_url": admin_url, "url": url}
        finally:
            server.cleanup()


def _accept(admin_url: str, token: str | None) -> None:
    """What Cloud SQL does: accept the token that is valid now as the login's password."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(SQL("ALTER ROLE {} PASSWORD {}").format(Identifier(LOGIN), Literal(token)))


def _database(url: str, monkeypatch: pytest.MonkeyPatch, tokens: TokenSource) -> Database:
    monkeypatch.setattr(credentials_gcp, "_default_credentials", lambda: tokens)
    settings = load_settings(database_url=url, database_iam_auth=True, db_pool_min=1, db_pool_max=2)
    return Database.from_settings(settings)


def test_a_function_logs_in_as_its_iam_user_with_its_accounts_token(
    token_server: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a process whose settings name its IAM login and no password, and its account's token
    tokens = TokenSource()
    tokens.refresh(None)
    _accept(token_server["admin_url"], tokens.token)
    db = _database(token_server["url"], monkeypatch, tokens)
    # WHEN it connects THEN it is that login, with the token as its password
    with db.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone() == (LOGIN,)
    assert isinstance(db.credentials, CloudSqlIamCredentials)
    assert "ya29" not in repr(db.credentials)
    # AND a wrong password is refused (the server does check it)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(token_server["url"], password="not-the-token").close()


def test_a_token_near_its_expiry_is_replaced_before_a_new_connection(
    token_server: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a process whose token has two minutes left (inside the five-minute margin)
    tokens = TokenSource(lifetime=timedelta(minutes=2))
    db = _database(token_server["url"], monkeypatch, tokens)
    credentials = db.credentials
    assert isinstance(credentials, CloudSqlIamCredentials)
    first = credentials.current().password
    tokens.lifetime = timedelta(hours=1)
    # WHEN Cloud SQL accepts only a newer token and a connection opens
    _accept(token_server["admin_url"], "ya29.token-2")

    def refused(*args: Any) -> bool:
        raise AssertionError("the expiring token was tried and refused first")

    monkeypatch.setattr(credentials, "refresh", refused)
    with db.connect() as conn:
        # THEN the process fetched the next token first and logged in with it
        assert conn.execute("SELECT current_user").fetchone() == (LOGIN,)
    assert first == "ya29.token-1"
    assert credentials.current().password == "ya29.token-2"
    # AND an hour-long token is kept for the next connections
    with db.connect():
        pass
    assert tokens.issued == 2


def test_a_refused_token_is_replaced_and_the_connection_tried_once_more(
    token_server: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a process holding a token Cloud SQL no longer accepts (revoked before its expiry)
    tokens = TokenSource()
    db = _database(token_server["url"], monkeypatch, tokens)
    assert db.credentials is not None
    assert db.credentials.current().password == "ya29.token-1"
    _accept(token_server["admin_url"], "ya29.token-2")
    # WHEN it connects THEN the refusal fetches a new token and the same call succeeds with it
    with db.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone() == (LOGIN,)
    assert tokens.issued == 2
