"""Database credentials: the secret's format, how often it is read, and the settings that need it."""

from __future__ import annotations

import json

import pytest

from shared.config import load_settings
from shared.errors import ConfigError
from shared.store.credentials import Credentials, SecretsManagerCredentials, parse_credentials


def test_the_rds_managed_secret_format_gives_user_and_password() -> None:
    creds = parse_credentials(json.dumps({"username": "contentfn", "password": "p", "engine": "postgres"}))
    assert creds.as_kwargs() == {"user": "contentfn", "password": "p"}
    assert "p'" not in repr(creds) and "***" in repr(creds)


def test_a_secret_without_username_keeps_the_urls_user() -> None:
    assert parse_credentials('{"password": "p"}').as_kwargs() == {"password": "p"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("s3cret-value", "the secret is not JSON"),
        ('["s3cret-value"]', "not a JSON object"),
        ('{"username": "u"}', "no non-empty string field 'password'"),
        ('{"username": "u", "password": ""}', "no non-empty string field 'password'"),
        ('{"username": 7, "password": "s3cret-value"}', "'username' is not a non-empty string"),
    ],
)
def test_a_malformed_secret_is_refused_naming_the_variable_not_the_value(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"CONTENTFN_DATABASE_CREDENTIALS_SECRET: .*{problem}") as refused:
        parse_credentials(text)
    assert "s3cret-value" not in str(refused.value)


def test_credentials_are_read_once_then_again_after_a_refusal_and_rested_after_a_fruitless_read() -> None:
    values = iter(['{"password": "one"}', '{"password": "two"}', '{"password": "two"}', '{"password": "three"}'])
    reads: list[str] = []

    def read(secret_id: str) -> str:
        reads.append(secret_id)
        return next(values)

    source = SecretsManagerCredentials("arn:secret", read=read, min_refresh_s=3600)
    assert source.current() == source.current() == Credentials(None, "one")
    assert len(reads) == 1  # not once per connection
    # a refusal right after start still reads: a rotation may have just happened
    assert source.refresh() is True
    assert source.current() == Credentials(None, "two")
    # a read that finds nothing new rests the source: a database that refuses everyone costs no reads
    assert source.refresh() is False
    assert len(reads) == 3
    assert source.refresh() is False
    assert len(reads) == 3

    eager = SecretsManagerCredentials("arn:other", read=read, min_refresh_s=0)
    assert eager.current() == Credentials(None, "three")


def test_an_unchanged_secret_after_a_refusal_is_not_worth_a_second_try() -> None:
    source = SecretsManagerCredentials("arn:secret", read=lambda _: '{"password": "same"}', min_refresh_s=0)
    source.current()
    assert source.refresh() is False


def test_a_credentials_secret_without_a_database_url_is_refused() -> None:
    with pytest.raises(
        ConfigError,
        match="CONTENTFN_DATABASE_CREDENTIALS_SECRET needs CONTENTFN_DATABASE_URL or CONTENTFN_DATABASE_RDS_INSTANCE",
    ):
        load_settings(database_credentials_secret="arn:aws:secretsmanager:us-east-1:1:secret:x")
    assert load_settings(database_credentials_secret="").database_credentials_secret is None


def test_a_credentials_secret_beside_an_rds_instance_is_the_login_at_its_endpoint() -> None:
    # A function's own runtime role: the instance names the host, the secret the user and password.
    settings = load_settings(
        database_credentials_secret="arn:aws:secretsmanager:us-east-1:1:secret:x",
        database_rds_instance="arn:aws:rds:us-east-1:1:db:contentfn-dev",
    )
    assert settings.database_url is None and settings.database_credentials_secret


_PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUa\n-----END CERTIFICATE-----\n"


def test_a_ca_given_as_text_becomes_a_private_file_verified_in_full() -> None:
    import os
    import stat
    from pathlib import Path

    from psycopg.conninfo import conninfo_to_dict

    from shared.store.db import database_target

    # GIVEN the URL Terraform gives a GCP function (no sslrootcert) and the instance's CA as text
    url = "postgresql://fn%40proj.iam@10.1.2.3:5432/contentfn"
    target, _ = database_target(load_settings(database_url=url, database_ca_cert=_PEM))
    params = conninfo_to_dict(target)
    # THEN the connection verifies the server's certificate and name against that CA
    assert params["sslmode"] == "verify-full"
    path = Path(str(params["sslrootcert"]))
    assert path.read_text() == _PEM
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and path.parent.stat().st_uid == os.getuid()
    assert (params["host"], params["user"], params["dbname"]) == ("10.1.2.3", "fn@proj.iam", "contentfn")
    # AND a mode the URL names is kept (verify-ca for a server known by another name)
    target, _ = database_target(load_settings(database_url=url + "?sslmode=verify-ca", database_ca_cert=_PEM))
    assert conninfo_to_dict(target)["sslmode"] == "verify-ca"


def test_a_ca_that_is_not_a_certificate_is_refused_naming_the_variable() -> None:
    from shared.store.db import database_target

    settings = load_settings(database_url="postgresql://u@h/db", database_ca_cert="not a certificate")
    with pytest.raises(ConfigError, match="CONTENTFN_DATABASE_CA_CERT"):
        database_target(settings)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({}, "DATABASE_IAM_AUTH needs CONTENTFN_DATABASE_URL"),
        ({"database_url": "postgresql://u@h/db", "database_credentials_secret": "s"}, "does not combine"),
        ({"database_url": "postgresql://u@h/db", "database_rds_instance": "db-1"}, "does not combine"),
    ],
)
def test_an_iam_login_without_a_url_or_beside_a_password_secret_is_refused(
    settings: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(database_iam_auth=True, **settings)


def test_an_iam_token_is_fetched_once_and_again_only_near_its_expiry() -> None:
    from datetime import UTC, datetime, timedelta

    from shared.store.credentials_gcp import CloudSqlIamCredentials

    clock = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]

    class Tokens:
        token: str | None = None
        expiry: datetime | None = None
        issued = 0

        def refresh(self, request: object) -> None:
            self.issued += 1
            self.token = f"t{self.issued}"
            self.expiry = (clock[0] + timedelta(hours=1)).replace(tzinfo=None)

    tokens = Tokens()
    creds = CloudSqlIamCredentials(tokens, request=object, now=lambda: clock[0])
    # GIVEN a first connection: one token
    assert creds.current() == Credentials(user=None, password="t1")
    # WHEN 54 minutes pass THEN the same token still serves
    clock[0] += timedelta(minutes=54)
    assert creds.current().password == "t1"
    # WHEN it has under five minutes left THEN the next connection gets a new one
    clock[0] += timedelta(minutes=2)
    assert creds.current().password == "t2"
    # AND a refusal always fetches again, saying whether the token changed
    assert creds.refresh() is True and creds.current().password == "t3"
    assert tokens.issued == 3


def test_an_iam_token_that_cannot_be_fetched_names_the_setting() -> None:
    from shared.store.credentials_gcp import CloudSqlIamCredentials

    class Broken:
        token = None
        expiry = None

        def refresh(self, request: object) -> None:
            raise OSError("metadata server unreachable")

    with pytest.raises(ConfigError, match="CONTENTFN_DATABASE_IAM_AUTH"):
        CloudSqlIamCredentials(Broken(), request=object).current()
