"""Secrets by reference on AWS: resolved from Secrets Manager (moto server) before settings load."""

from __future__ import annotations

import boto3
import pytest

from shared.errors import ConfigError
from shared.secrets import resolve_aws_secret_ids
from tests.emulators import moto_url  # noqa: F401


@pytest.fixture
def secrets_client(moto_url: str):  # noqa: F811
    return boto3.client(
        "secretsmanager",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def test_secret_ids_are_resolved_into_the_variables_they_name(secrets_client, moto_url: str, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    secrets_client.create_secret(Name="contentfn/dev/api-key-resolve", SecretString="k-123")
    env = {
        "CONTENTFN_API_KEY_SECRET_ID": "contentfn/dev/api-key-resolve",
        "CONTENTFN_DATABASE_URL_SECRET_ID": "contentfn/dev/ignored",
        "CONTENTFN_DATABASE_URL": "postgresql://already/set",
    }
    resolved = resolve_aws_secret_ids(env, endpoint_url=moto_url, region="us-east-1")
    assert resolved == ["CONTENTFN_API_KEY"]
    assert env["CONTENTFN_API_KEY"] == "k-123"
    assert env["CONTENTFN_DATABASE_URL"] == "postgresql://already/set"  # a value present wins


def test_unreadable_secret_stops_the_start_naming_the_variable(secrets_client, moto_url: str, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    env = {"CONTENTFN_LLM_API_KEY_SECRET_ID": "contentfn/dev/does-not-exist"}
    with pytest.raises(
        ConfigError, match="CONTENTFN_LLM_API_KEY_SECRET_ID: secret contentfn/dev/does-not-exist could not be read"
    ):
        resolve_aws_secret_ids(env, endpoint_url=moto_url, region="us-east-1")
    assert "CONTENTFN_LLM_API_KEY" not in env


def test_nothing_to_resolve_does_not_touch_aws() -> None:
    env = {"CONTENTFN_API_KEY": "x"}
    assert resolve_aws_secret_ids(env, endpoint_url="http://127.0.0.1:9") == []
