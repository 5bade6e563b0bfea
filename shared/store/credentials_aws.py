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

__all__ = ["RdsInstance", "describe_rds_instance", "secrets_manager_reader"]


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
