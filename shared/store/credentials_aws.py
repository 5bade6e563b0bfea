"""The AWS adapter of database credentials: what RDS says about an instance (endpoint, managed
master secret) and a reader of Secrets Manager secrets. Imported only when
``CONTENTFN_DATABASE_RDS_INSTANCE`` or ``CONTENTFN_DATABASE_CREDENTIALS_SECRET`` is set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from psycopg.conninfo import make_conninfo

from shared.errors import ConfigError
from shared.secrets.aws import aws_client, read_secret_string

__all__ = ["RdsInstance", "describe_rds_instance", "role_password", "secrets_manager_reader"]


@dataclass(frozen=True)
class RdsInstance:
    """What RDS says about an instance: where to connect, and the secret it keeps the password in."""

    url: str
    secret_arn: str | None


def describe_rds_instance(
    instance: str,
    *,
    variable: str,
    ssl_root_cert: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    needs_master_secret: bool = True,
) -> RdsInstance:
    """Endpoint, database and managed master secret of one RDS instance (ARN or identifier).

    The URL verifies the server (``sslmode=verify-full`` against ``ssl_root_cert``, the RDS CA
    bundle): a private network is no reason to trust whoever answers on the endpoint's name. The
    user and password come from a secret. Errors name ``variable`` (the setting that named the
    instance) and what is missing.
    """
    client = aws_client("rds", endpoint_url, region)
    try:
        found = client.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"]
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"{variable}: instance {instance} could not be described ({type(exc).__name__})") from None
    if not found:
        raise ConfigError(f"{variable}: no instance {instance}")
    db = found[0]
    secret = (db.get("MasterUserSecret") or {}).get("SecretArn")
    if not secret and needs_master_secret:
        raise ConfigError(
            f"{variable}: instance {instance} keeps no master secret in Secrets Manager"
            " (manage_master_user_password is off); give CONTENTFN_DATABASE_URL with its credentials instead"
        )
    endpoint = db.get("Endpoint") or {}
    if not endpoint.get("Address"):
        raise ConfigError(f"{variable}: instance {instance} has no endpoint yet ({db.get('DBInstanceStatus')})")
    url = make_conninfo(
        host=endpoint["Address"],
        port=str(endpoint.get("Port") or 5432),
        dbname=db.get("DBName") or "postgres",
        sslmode="verify-full",
        sslrootcert=ssl_root_cert,
    )
    return RdsInstance(url=url, secret_arn=str(secret) if secret else None)


def secrets_manager_reader(endpoint_url: str | None, region: str | None, variable: str) -> Callable[[str], str]:
    client = aws_client("secretsmanager", endpoint_url, region)
    return lambda secret_id: read_secret_string(client, secret_id, variable=variable)


def role_password(
    secret_id: str,
    username: str,
    *,
    variable: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    rotate: bool = False,
) -> str:
    """The password of a runtime role, kept in its Secrets Manager secret as ``{"username", "password"}``.

    Terraform creates the secret empty (no password passes through a plan or the state); the
    migrator fills it here on first use, and again with ``rotate``. A secret naming another user is
    refused: it belongs to some other login.
    """
    import json
    import secrets as random_source

    from shared.store.secret_values import parse_credentials

    client = aws_client("secretsmanager", endpoint_url, region)
    if not rotate:
        try:
            value = client.get_secret_value(SecretId=secret_id).get("SecretString")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise ConfigError(f"{variable}: secret {secret_id} could not be read (ClientError)") from None
            value = None  # created by Terraform, no value yet
        except BotoCoreError as exc:
            raise ConfigError(f"{variable}: secret {secret_id} could not be read ({type(exc).__name__})") from None
        if value:
            found = parse_credentials(value, variable=variable)
            if found.user != username:
                raise ConfigError(f"{variable}: secret {secret_id} names user {found.user!r}, not {username!r}")
            return found.password
    password = random_source.token_urlsafe(32)
    try:
        client.put_secret_value(
            SecretId=secret_id, SecretString=json.dumps({"username": username, "password": password})
        )
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"{variable}: secret {secret_id} could not be written ({type(exc).__name__})") from None
    return password
