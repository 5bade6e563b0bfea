"""What every read command shares: ``--json``, ``--api URL`` / ``--api-key``, the client they pick,
and one clear error line for a refusal or an API out of reach.

Without ``--api`` a command answers from the configured database through the API core in process
(:class:`local.api_client.InProcessTransport`), so its JSON is the deployed API's, field for field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from shared.config import load_settings
from shared.errors import ConfigError

if TYPE_CHECKING:
    from local.api_client import ApiClient, Query

__all__ = [
    "API_KEY_ENV",
    "API_URL_ENV",
    "api_options",
    "filter_options",
    "filter_query",
    "read_client",
    "refuse_key_without_url",
]

API_URL_ENV = "CONTENTFN_API_URL"
API_KEY_ENV = "CONTENTFN_API_KEY"
SENTIMENTS = ("positive", "negative", "neutral", "mixed")

_F = TypeVar("_F", bound=Callable[..., Any])


def api_options(f: _F) -> _F:
    """``--json``, ``--api`` and ``--api-key`` (the last two also from the environment)."""
    f = click.option(
        "--api-key",
        envvar=API_KEY_ENV,
        default=None,
        metavar="KEY",
        help=f"the API key sent with --api (better: set {API_KEY_ENV}, which keeps it out of shell history)",
    )(f)
    f = click.option(
        "--api",
        "api_url",
        envvar=API_URL_ENV,
        default=None,
        metavar="URL",
        help=f"read through a deployed API at URL instead of the database (or set {API_URL_ENV})",
    )(f)
    f = click.option("--json", "as_json", is_flag=True, help="print the API's JSON answer (scripts: same either way)")(
        f
    )
    return f


def filter_options(f: _F) -> _F:
    """The API's browse filters (``/tracks``, ``/search``), as options."""
    for name, kind, text in reversed(
        (
            ("--artist", None, "only this artist (case-insensitive)"),
            ("--sentiment", click.Choice(SENTIMENTS), "profile sentiment"),
            ("--theme", None, "profile has this theme label"),
            ("--quality-min", click.IntRange(1, 10), "profile quality at least"),
            ("--quality-max", click.IntRange(1, 10), "profile quality at most"),
            ("--explicit", click.Choice(["true", "false"]), "explicit or not, from the lyric features"),
            ("--analyzer", None, "whose profile counts (rules, llm:<model>, distilled:<id>)"),
            ("--source", None, "only tracks from this source"),
            ("--since", click.DateTime(), "added at or after (local time)"),
            ("--until", click.DateTime(), "added before (local time)"),
        )
    ):
        f = click.option(name, type=kind, default=None, help=text)(f)
    return f


def filter_query(**values: Any) -> Query:
    """The filter options' values as the API's query parameters."""
    out: Query = {}
    for name, value in values.items():
        out[name] = _aware(value).isoformat() if isinstance(value, datetime) else value
    return out


def _aware(value: datetime) -> datetime:
    # click.DateTime gives naive times: read them as the local time zone, as a user types them.
    return value if value.tzinfo is not None else value.astimezone()


@contextmanager
def read_client(api_url: str | None, api_key: str | None) -> Iterator[ApiClient]:
    """The client a read command uses; a refusal or an unreachable API inside the block leaves as
    one error line (exit status 1), never a traceback."""
    from local.api_client import ApiAnswerUnknown, ApiClient, ApiProblem, ApiUnreachable

    refuse_key_without_url(api_url, api_key)
    try:
        if api_url is not None:
            if not api_url.startswith(("http://", "https://")):
                raise click.UsageError(f"--api takes an http:// or https:// URL, not {api_url!r}")
            with ApiClient.remote(api_url, api_key) as client:
                yield client
        else:
            with _local_client() as client:
                yield client
    except ApiProblem as exc:
        raise click.ClickException(f"{client_where(api_url)} refused GET /{exc.path}: {exc}") from None
    except (ApiUnreachable, ApiAnswerUnknown) as exc:
        raise click.ClickException(str(exc)) from None


def refuse_key_without_url(api_url: str | None, api_key: str | None) -> None:
    """A key typed on the command line without a URL is a mistake; one from the environment is not."""
    source = click.get_current_context().get_parameter_source("api_key")
    if api_url is None and api_key is not None and source is ParameterSource.COMMANDLINE:
        raise click.UsageError("--api-key goes with --api URL (without it the command reads the database)")


def client_where(api_url: str | None) -> str:
    return f"the API at {api_url}" if api_url else "the local API core"


@contextmanager
def _local_client() -> Iterator[ApiClient]:
    from functions.api.core import Api
    from local.api_client import ApiClient
    from shared.services import Services

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    # The caller reaches the database itself, which grants more than any key: the in-process core
    # asks for none. Reading a store does not change its schema (no migration).
    local = settings.model_copy(update={"api_key": None, "require_api_key": False})
    svc = Services.from_settings(local, migrate=False)
    try:
        with svc.db.connection() as conn:
            row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
            conn.commit()
        if not (row and row[0]):
            raise click.ClickException(
                "this database has no schema yet: run `contentfn db migrate` (or start `contentfn local up`)"
            )
        with ApiClient.in_process(Api(svc)) as client:
            yield client
    finally:
        svc.close()
