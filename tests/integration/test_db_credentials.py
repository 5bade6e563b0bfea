"""Database credentials from RDS and Secrets Manager (moto server), against a PostgreSQL that checks passwords.

The session's test server trusts every local login, which would make a wrong password pass; these
tests start one of their own whose ``pg_hba.conf`` asks the application role for a SCRAM password.
moto's RDS keeps a managed master secret for an instance created with ManageMasterUserPassword, as
RDS does, tagged with the instance's ARN; its endpoint is not a server, so the tests give the URL
of the local one (a URL given wins over the endpoint) except where only the URL built is checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shared.config import load_settings
from shared.errors import ConfigError
from shared.store.credentials import Credentials, SecretsManagerCredentials
from shared.store.db import Database, database_target
from tests.conftest import _state_dir
from tests.emulators import moto_url  # noqa: F401

ROLE = "contentfn_app"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def password_server() -> Iterator[dict[str, Any]]:
    """A PostgreSQL of its own: superuser ``postgres`` by trust, ``contentfn_app`` by SCRAM password."""
    import pgserver

    with _state_dir() as path:
        server = pgserver.get_server(path / "pg", cleanup_mode="stop")
        try:
            hba = Path(server.pgdata) / "pg_hba.conf"
            hba.write_text(f"local all {ROLE} scram-sha-256\n" + hba.read_text())
            admin_url = str(server.get_uri())
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute("SELECT pg_reload_conf()")
                # The RDS master user is rds_superuser, which may create the vector extension.
                conn.execute(f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD 'first-password'")
                conn.execute(f"CREATE DATABASE contentfn_creds OWNER {ROLE}")
            params = conninfo_to_dict(admin_url)
            # What Terraform hands the processes: where to connect, no user, no password.
            url = make_conninfo(host=params["host"], port=params.get("port", 5432), dbname="contentfn_creds")
            yield {"admin_url": admin_url, "url": url}
        finally:
            server.cleanup()


@pytest.fixture
def secrets(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return boto3.client("secretsmanager", endpoint_url=moto_url, region_name=REGION)


def _rotate(admin_url: str, secrets: Any, secret_id: str, password: str) -> None:
    """What RDS rotation does: a new password on the role, then the secret's new current version."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(psycopg.sql.Identifier(ROLE), password))
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"username": ROLE, "password": password}))


def _insert_track(conn: psycopg.Connection[Any], title: str) -> None:
    conn.execute(
        "INSERT INTO tracks (source, source_id, artist, title, lyrics, content_hash) VALUES ('t', %s, 'a', %s, '', '')",
        (title, title),
    )


def _database(url: str | None, endpoint: str, **settings: Any) -> Database:
    return Database.from_settings(
        load_settings(
            database_url=url, aws_endpoint_url=endpoint, aws_region=REGION, db_pool_min=1, db_pool_max=2, **settings
        )
    )


def _rds_instance(endpoint: str, name: str, *, managed: bool = True) -> tuple[str, str | None]:
    """An RDS instance as Terraform creates it; its ARN and its managed secret's ARN."""
    rds = boto3.client("rds", endpoint_url=endpoint, region_name=REGION)
    created = rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        DBName="contentfn",
        MasterUsername="contentfn_admin",
        **({"ManageMasterUserPassword": True} if managed else {"MasterUserPassword": "not-managed-1"}),
    )["DBInstance"]
    return created["DBInstanceArn"], (created.get("MasterUserSecret") or {}).get("SecretArn")


def test_a_rotated_password_reaches_new_connections_without_a_restart(
    password_server: dict[str, Any],
    secrets: Any,
    moto_url: str,  # noqa: F811
) -> None:
    # GIVEN an RDS instance whose master secret holds the role's current password
    instance_arn, secret_id = _rds_instance(moto_url, "contentfn-rotating")
    assert secret_id is not None
    tags = {t["Key"]: t["Value"] for t in secrets.describe_secret(SecretId=secret_id)["Tags"]}
    assert tags["aws:rds:primaryDBInstanceArn"] == instance_arn  # what the IAM grant is conditioned on
    _rotate(password_server["admin_url"], secrets, secret_id, "first-password")
    # WHEN the processes are given only the instance's ARN (and the local server's address)
    db = _database(password_server["url"], moto_url, database_rds_instance=instance_arn)
    assert db.migrate()  # a fresh database: every migration applied, as the secret's user
    db.open()
    try:
        with db.connection() as conn:
            assert conn.execute("SELECT current_user").fetchone() == (ROLE,)
            _insert_track(conn, "before rotation")

        held = db._pool.getconn()  # a session open across the rotation
        _rotate(password_server["admin_url"], secrets, secret_id, "second-password")
        # The old password is refused now: a URL that carried it would be dead from here on.
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(password_server["url"], user=ROLE, password="first-password").close()
        # An open session is unaffected (PostgreSQL checks the password when a session starts).
        assert held.execute("SELECT current_user").fetchone() == (ROLE,)
        held.rollback()
        db._pool.putconn(held)

        # A new connection outside the pool (index builds, migrations), which has no retry of its
        # own, is refused once, re-reads the secret and logs in within the same call.
        with db.connect(autocommit=True) as direct:
            assert direct.execute("SELECT current_user").fetchone() == (ROLE,)
        assert db.credentials is not None
        assert db.credentials.reads == 2  # once at start, once after the refusal: not per connection
        # Pooled connections made again log in with the new password too.
        db._pool.drain()
        with db.connection() as conn:
            assert conn.execute("SELECT current_user").fetchone() == (ROLE,)
            _insert_track(conn, "after rotation")
            assert conn.execute("SELECT count(*) FROM tracks WHERE source = 't'").fetchone() == (2,)
        assert db.credentials.reads == 2
    finally:
        db.close()


def test_a_secret_named_directly_logs_in_and_a_wrong_password_in_it_is_refused(
    password_server: dict[str, Any],
    secrets: Any,
    moto_url: str,  # noqa: F811
) -> None:
    secrets.create_secret(Name="contentfn/dev/app-credentials", SecretString="{}")
    _rotate(password_server["admin_url"], secrets, "contentfn/dev/app-credentials", "direct-password")
    db = _database(password_server["url"], moto_url, database_credentials_secret="contentfn/dev/app-credentials")
    with db.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone() == (ROLE,)
    secrets.create_secret(Name="contentfn/dev/wrong", SecretString=json.dumps({"username": ROLE, "password": "not-it"}))
    db = _database(password_server["url"], moto_url, database_credentials_secret="contentfn/dev/wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.migrate()


def test_without_a_url_the_instance_endpoint_is_the_database_over_tls(moto_url: str, secrets: Any) -> None:  # noqa: F811
    instance_arn, secret_id = _rds_instance(moto_url, "contentfn-endpoint")
    bundle = "/opt/contentfn/rds-global-bundle.pem"
    url, credentials = database_target(
        load_settings(
            database_rds_instance=instance_arn,
            database_ssl_root_cert=bundle,
            aws_endpoint_url=moto_url,
            aws_region=REGION,
        )
    )
    params = conninfo_to_dict(url)
    assert params["host"].startswith("contentfn-endpoint.") and params["host"].endswith(".rds.amazonaws.com")
    # The server is verified: its certificate against the RDS CA bundle, and its name against the host.
    assert (params["port"], params["dbname"], params["sslmode"]) == ("5432", "contentfn", "verify-full")
    assert params["sslrootcert"] == bundle
    assert "password" not in params and "user" not in params
    assert isinstance(credentials, SecretsManagerCredentials) and credentials.secret_id == secret_id


def test_without_a_url_or_a_ca_bundle_the_instance_is_refused_naming_the_variable(
    moto_url: str,  # noqa: F811
    secrets: Any,
) -> None:
    instance_arn, _ = _rds_instance(moto_url, "contentfn-no-bundle")
    with pytest.raises(ConfigError, match="CONTENTFN_DATABASE_SSL_ROOT_CERT: required"):
        database_target(load_settings(database_rds_instance=instance_arn, aws_endpoint_url=moto_url, aws_region=REGION))


def test_a_function_logs_in_with_its_own_secret_at_the_instance_endpoint_without_the_master_secret(
    moto_url: str,  # noqa: F811
    secrets: Any,
) -> None:
    # GIVEN an instance and a function's own runtime-role secret (what Terraform hands each function)
    instance_arn, master = _rds_instance(moto_url, "contentfn-runtime")
    own = secrets.create_secret(
        Name="contentfn/dev/db/api", SecretString=json.dumps({"username": "contentfn_api", "password": "p"})
    )["ARN"]
    # WHEN the target is resolved
    url, credentials = database_target(
        load_settings(
            database_rds_instance=instance_arn,
            database_credentials_secret=own,
            database_ssl_root_cert="/opt/contentfn/rds-global-bundle.pem",
            aws_endpoint_url=moto_url,
            aws_region=REGION,
        )
    )
    # THEN the instance gives the endpoint (verified TLS) and the function's secret the login, not the master's
    assert conninfo_to_dict(url)["sslmode"] == "verify-full"
    assert isinstance(credentials, SecretsManagerCredentials) and credentials.secret_id == own != master
    assert credentials.current() == Credentials("contentfn_api", "p")


def test_an_instance_without_a_managed_secret_or_unknown_is_refused_naming_the_variable(
    moto_url: str,  # noqa: F811
    secrets: Any,
) -> None:
    instance_arn, _ = _rds_instance(moto_url, "contentfn-unmanaged", managed=False)
    with pytest.raises(ConfigError, match=r"CONTENTFN_DATABASE_RDS_INSTANCE: .* keeps no master secret"):
        _database(None, moto_url, database_rds_instance=instance_arn)
    with pytest.raises(ConfigError, match="CONTENTFN_DATABASE_RDS_INSTANCE: instance contentfn-nowhere could not be"):
        _database(None, moto_url, database_rds_instance="contentfn-nowhere")


def test_an_unreadable_secret_stops_the_start_naming_the_variable(
    password_server: dict[str, Any],
    secrets: Any,
    moto_url: str,  # noqa: F811
) -> None:
    db = _database(password_server["url"], moto_url, database_credentials_secret="contentfn/dev/no-such-secret")
    with pytest.raises(ConfigError, match="CONTENTFN_DATABASE_CREDENTIALS_SECRET: secret contentfn/dev/no-such-secret"):
        db.open(timeout=5)
    secrets.create_secret(Name="contentfn/dev/not-json", SecretString="hunter2")
    db = _database(password_server["url"], moto_url, database_credentials_secret="contentfn/dev/not-json")
    with pytest.raises(ConfigError, match="the secret is not JSON") as refused:
        db.migrate()
    assert "hunter2" not in str(refused.value)


class _RotatedMeanwhile:
    """Credentials another connection has just re-read: the first answer is the old password, every
    later one the new; a second read of the secret is not needed and would fail the test."""

    def __init__(self, old: str, new: str) -> None:
        self.answers = [Credentials(ROLE, old)]
        self.new = Credentials(ROLE, new)

    def current(self) -> Credentials:
        return self.answers.pop() if self.answers else self.new

    def refresh(self) -> bool:
        raise AssertionError("re-read although another connection already had the new credentials")


def test_a_refusal_after_another_connection_re_read_the_secret_retries_without_reading_it(
    password_server: dict[str, Any],
    secrets: Any,
) -> None:
    secrets.create_secret(Name="contentfn/dev/meanwhile", SecretString="{}")
    _rotate(password_server["admin_url"], secrets, "contentfn/dev/meanwhile", "third-password")
    db = Database(password_server["url"], credentials=_RotatedMeanwhile("stale-password", "third-password"))
    with db.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone() == (ROLE,)
