"""Database credentials as values: the user and password a secret holds, and the secret's JSON
form (RDS-managed ``{"username": ..., "password": ...}``). No cloud SDK: read by the credential
sources of :mod:`shared.store.credentials` and by the cloud adapters alike."""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.errors import ConfigError

__all__ = ["VARIABLE", "Credentials", "parse_credentials"]

VARIABLE = "CONTENTFN_DATABASE_CREDENTIALS_SECRET"


@dataclass(frozen=True)
class Credentials:
    user: str | None
    password: str

    def as_kwargs(self) -> dict[str, str]:
        """libpq keywords; these override what the URL says."""
        kwargs = {"password": self.password}
        if self.user:
            kwargs["user"] = self.user
        return kwargs

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(user={self.user!r}, password=***)"


def parse_credentials(text: str, *, variable: str = VARIABLE) -> Credentials:
    """A secret string in the RDS-managed form ``{"username": ..., "password": ...}``.

    ``username`` may be left out, and then the URL's user connects. Errors name ``variable`` (the
    setting the secret came from) and the problem, never the value.
    """
    try:
        doc = json.loads(text)
    except ValueError:
        raise ConfigError(f'{variable}: the secret is not JSON (expected {{"username": …, "password": …}})') from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{variable}: the secret is not a JSON object")
    password = doc.get("password")
    if not isinstance(password, str) or not password:
        raise ConfigError(f"{variable}: the secret has no non-empty string field 'password'")
    user = doc.get("username")
    if user is not None and (not isinstance(user, str) or not user):
        raise ConfigError(f"{variable}: the secret's 'username' is not a non-empty string")
    return Credentials(user=user, password=password)
