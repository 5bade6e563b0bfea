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
