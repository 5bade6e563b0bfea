"""The AWS adapter of secrets: boto3 clients for the few calls a process makes at start or connect
time, and reading one Secrets Manager secret. Imported only where an AWS secret is configured."""

from __future__ import annotations

from typing import Any

from shared.errors import ConfigError

__all__ = ["aws_client", "read_secret_string"]


def aws_client(service: str, endpoint_url: str | None, region: str | None) -> Any:
    """A boto3 client for the few calls a process makes at start or connect time: bounded
    timeouts and standard retries, so an unreachable API fails the start instead of hanging it."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=region,
        config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"}),
    )


def read_secret_string(client: Any, secret_id: str, *, variable: str) -> str:
    """The current string value of one Secrets Manager secret; a ConfigError naming ``variable`` and
    the secret (never its value) when it cannot be read or holds no string."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = client.get_secret_value(SecretId=secret_id).get("SecretString")
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"{variable}: secret {secret_id} could not be read ({type(exc).__name__})") from None
    if not value:
        raise ConfigError(f"{variable}: secret {secret_id} has no string value")
    return str(value)
