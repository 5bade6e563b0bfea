"""Cloud SQL IAM database authentication: the password is an OAuth token of the process's own account.

On GCP each function and the GPU worker log in as the IAM database user of their own service account
(``<account>@<project>.iam``, named in ``CONTENTFN_DATABASE_URL``), which the migrator made a member
of the process's runtime role (``contentfn db roles --member``). Cloud SQL checks the token given as
the password: no password exists to store, leak or rotate. A token lives about an hour; each new
connection takes the current one, fetched again some minutes before it expires (open sessions are
unaffected: PostgreSQL checks the password only when a session starts), and a refused connection
fetches a new one and tries once more (:mod:`shared.store.db`).

google-auth is imported only when ``CONTENTFN_DATABASE_IAM_AUTH`` is on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import ConfigError
from shared.store.credentials import Credentials

__all__ = ["LOGIN_SCOPE", "CloudSqlIamCredentials"]

log = logging.getLogger(__name__)

VARIABLE = "CONTENTFN_DATABASE_IAM_AUTH"
# The scope Cloud SQL asks of a token used as a database password.
LOGIN_SCOPE = "https://www.googleapis.com/auth/sqlservice.login"


def _default_credentials() -> Any:
    import google.auth

    credentials, _project = google.auth.default(scopes=[LOGIN_SCOPE])  # type: ignore[no-untyped-call]
    return credentials


def _transport_request() -> Any:
    from google.auth.transport.requests import Request

    return Request()


class CloudSqlIamCredentials:
    """A fresh OAuth access token as the password of each new connection (the URL names the user)."""

    def __init__(
        self,
        google_credentials: Any | None = None,
        *,
        request: Callable[[], Any] = _transport_request,
        margin: timedelta = timedelta(minutes=5),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._google = google_credentials
        self._request = request
        self._margin = margin
        self._now = now
        self._lock = threading.Lock()
        self.fetches = 0

    def current(self) -> Credentials:
        with self._lock:
            google = self._credentials()
            if not google.token or self._expiring(google):
                self._fetch(google)
            return Credentials(user=None, password=str(google.token))

    def refresh(self) -> bool:
        with self._lock:
            google = self._credentials()
            before = google.token
            self._fetch(google)
            changed = bool(google.token != before)
        if changed:
            log.info("database login refused: connecting again with a new IAM token")
        return changed

    def _credentials(self) -> Any:
        if self._google is None:
            try:
                self._google = _default_credentials()
            except Exception as exc:
                raise ConfigError(
                    f"{VARIABLE}: no Google credentials for an IAM database login ({type(exc).__name__})"
                ) from None
        return self._google

    def _expiring(self, google: Any) -> bool:
        expiry = getattr(google, "expiry", None)  # google-auth keeps a naive UTC datetime
        if expiry is None:
            return False
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        return bool(expiry - self._margin <= self._now())

    def _fetch(self, google: Any) -> None:
        self.fetches += 1
        try:
            google.refresh(self._request())
        except Exception as exc:
            raise ConfigError(
                f"{VARIABLE}: the service account's token for the database login could not be fetched"
                f" ({type(exc).__name__})"
            ) from None
        if not google.token:
            raise ConfigError(f"{VARIABLE}: the service account's credentials gave no token")

    def __repr__(self) -> str:  # never print the token
        return "CloudSqlIamCredentials(token=***)"
