"""Database credentials read at connect time, so a rotated password reaches a running process.

RDS generates the master password, keeps it in Secrets Manager as ``{"username", "password"}`` and
rotates it every seven days. A URL with the password inside goes stale at the first rotation, and a
warm Lambda or a long-lived GPU service would then fail every new connection. Instead Terraform gives
the processes the instance's ARN (``CONTENTFN_DATABASE_RDS_INSTANCE``, known before anything is
created, unlike the endpoint and the secret's generated name): each process asks RDS once for the
endpoint and the secret, and each new pooled connection takes the user and password from the secret.
``CONTENTFN_DATABASE_CREDENTIALS_SECRET`` names such a secret directly, for any PostgreSQL. Connections already open stay valid through a rotation (PostgreSQL checks the password
only when a session starts); a connection refused after one re-reads the secret and tries once more.

The AWS calls live in :mod:`shared.store.credentials_aws` (boto3), imported only when such a
secret or instance is configured.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from shared.store.secret_values import VARIABLE, Credentials, parse_credentials

__all__ = ["Credentials", "DatabaseCredentials", "SecretsManagerCredentials", "parse_credentials"]

log = logging.getLogger(__name__)

RDS_VARIABLE = "CONTENTFN_DATABASE_RDS_INSTANCE"


class DatabaseCredentials(Protocol):
    """Where a connection's user and password come from."""

    def current(self) -> Credentials:
        """The credentials to connect with now (cached; read on first use)."""

    def refresh(self) -> bool:
        """Read them again after a refused connection; True when they changed (worth one more try)."""


class SecretsManagerCredentials:
    """Credentials from one AWS Secrets Manager secret (the RDS-managed master secret by default).

    ``current`` reads the secret once and keeps it. ``refresh`` reads it again; after a read that
    found nothing new, not again for ``min_refresh_s`` (a database that is down makes every pool
    retry fail, and each of those would otherwise cost a Secrets Manager call).
    """

    def __init__(
        self,
        secret_id: str,
        *,
        read: Callable[[str], str] | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        min_refresh_s: float = 5.0,
        variable: str = VARIABLE,
    ) -> None:
        self.secret_id = secret_id
        self.variable = variable
        if read is None:
            from shared.store.credentials_aws import secrets_manager_reader

            read = secrets_manager_reader(endpoint_url, region, variable)
        self._read = read
        self._min_refresh_s = min_refresh_s
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._quiet_until = float("-inf")  # after a refresh that found the same credentials
        self.reads = 0

    def current(self) -> Credentials:
        with self._lock:
            if self._credentials is None:
                self._credentials = self._load()
            return self._credentials

    def refresh(self) -> bool:
        with self._lock:
            if time.monotonic() < self._quiet_until:
                return False
            before = self._credentials
            self._credentials = self._load()
            changed = self._credentials != before
            if not changed:
                self._quiet_until = time.monotonic() + self._min_refresh_s
        if changed:
            log.info("database credentials changed in %s (rotated): connecting with the new ones", self.secret_id)
        return changed

    def _load(self) -> Credentials:
        self.reads += 1
        return parse_credentials(self._read(self.secret_id), variable=self.variable)
