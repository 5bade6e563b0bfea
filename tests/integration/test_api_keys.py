"""Named API keys over a real HTTP server and a real PostgreSQL: scopes per route, hashed storage,
revocation, rotation, quotas shared by two API instances (Postgres or Redis), the audit, and the
cloud runtime's refusal of a short key. Keys are made with the real ``contentfn keys`` CLI."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from functions.api.core import Api
from functions.api.routes import routes_for
from functions.api.routing import Route
from local.cli import main
from local.server import ApiServer
from shared.config import Settings, load_settings
from shared.errors import ConfigError
from shared.platform.runtime import Cloud, FunctionRuntime
from shared.services import Services
from tests.entry_fixtures import entry_environment
from tests.intel_fixtures import redis_session, redis_url  # noqa: F401 - fixtures

_SECRET = re.compile(r"^cfk_[A-Za-z0-9_-]{43}$", re.MULTILINE)


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    """Settings of an API that takes only the named keys of ``contentfn keys``."""
    return settings.model_copy(update={"require_api_key": True})


@pytest.fixture
def cli(keyed: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The real CLI, pointed at this test's database."""
    for name, value in entry_environment(keyed).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CONTENTFN_API_KEY")
    return CliRunner()


def keys(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(main, ["keys", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def create(runner: CliRunner, name: str, *args: str) -> str:
    """A new key's secret, as the CLI prints it once."""
    found = _SECRET.findall(keys(runner, "create", name, *args))
    assert len(found) == 1
    return str(found[0])


class Served:
    """One API instance (its own services and pool) behind a real HTTP server."""

    def __init__(self, settings: Settings) -> None:
        self.services = Services.from_settings(settings)
        self.server = ApiServer(Api(self.services), "127.0.0.1", 0)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.port}"

    def call(self, method: str, path: str, secret: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": secret} if secret is not None else {}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def close(self) -> None:
        self.server.stop()
        self.services.close()


@pytest.fixture
def api(keyed: Settings) -> Iterator[Served]:
    served = Served(keyed)
    yield served
    served.close()


def rows(services: Services, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with services.db.connection() as conn:
        found = conn.execute(sql, params).fetchall()
        conn.commit()
    return found


# -- scopes per route ------------------------------------------------------------------------------
_BELOW = {"write": "read", "admin": "write"}


def _keyed_routes() -> list[Route]:
    return [r for r in routes_for(load_settings()) if not r.public]


@pytest.mark.parametrize("route", _keyed_routes(), ids=lambda r: f"{r.method} {r.pattern}")
def test_every_keyed_route_refuses_a_key_below_its_scope_and_admits_one_with_it(
    route: Route, api: Served, cli: CliRunner
) -> None:
    # GIVEN one key per scope
    secrets = {scope: create(cli, f"k-{scope}", "--scope", scope) for scope in ("read", "write", "admin")}
    path = route.pattern.replace("{id}", "1")
    # WHEN the route is called with no key, a key below its scope and a key of its scope
    # THEN the first is 401, the second 403 (a problem naming the scope), the last passes the check
    assert api.call(route.method, path).status_code == 401
    scope = route.required_scope
    if scope in _BELOW:
        refused = api.call(route.method, path, secrets[_BELOW[scope]])
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "forbidden" and scope in refused.json()["detail"]
    admitted = api.call(route.method, path, secrets[scope])
    assert admitted.status_code not in (401, 403), admitted.text


def test_a_route_that_writes_without_a_declared_scope_cannot_be_built() -> None:
    # GIVEN a new POST route whose author forgot the scope
    # WHEN the route table would be built THEN it fails, naming the route
    with pytest.raises(ValueError, match="POST /new-thing must declare its scope"):
        Route("POST", "/new-thing", lambda call: None, "new_thing", "A new thing")


def test_writes_and_admin_routes_declare_their_scope_in_the_openapi_document(api: Served) -> None:
    doc = api.call("GET", "/openapi.json").json()
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert ops[("POST", "/analyze")]["x-required-scope"] == "write"
    assert ops[("POST", "/streams")]["x-required-scope"] == "write"
    assert ops[("DELETE", "/streams/{id}")]["x-required-scope"] == "write"
    assert ops[("GET", "/search")]["x-required-scope"] == "read"
    for op in [o for (_, p), o in ops.items() if p.startswith("/dead-jobs")]:
        assert op["x-required-scope"] == "admin" and op["security"] == [{"apiKey": []}]
        assert "403" in op["responses"] and "429" in op["responses"]
    assert ops[("GET", "/health")]["security"] == [] and "x-required-scope" not in ops[("GET", "/health")]


# -- storage, revocation, rotation -----------------------------------------------------------------
def test_a_key_is_stored_only_as_the_digest_of_its_secret(api: Served, cli: CliRunner) -> None:
    # GIVEN a key made by the CLI
    secret = create(cli, "ingest-bot", "--scope", "read", "--scope", "write")
    # WHEN the table is read whole
    table = rows(api.services, "SELECT * FROM api_keys")
    # THEN the secret is nowhere in it, only its SHA-256; and the secret works over HTTP
    assert len(table) == 1
    stored = repr(table)
    assert secret not in stored and secret[4:] not in stored and secret.encode() not in str(table).encode()
    assert rows(api.services, "SELECT secret_sha256 FROM api_keys")[0][0] == hashlib.sha256(secret.encode()).digest()
    assert api.call("GET", "/stats", secret).status_code == 200
    listed = keys(cli, "list")
    assert "ingest-bot" in listed and "read,write" in listed and secret not in listed


def test_a_revoked_key_is_refused_within_the_key_cache_bound_and_never_after(keyed: Settings, cli: CliRunner) -> None:
    # GIVEN an API that trusts a looked-up key for 2 s, and a key it has just admitted
    served = Served(keyed.model_copy(update={"api_key_cache_s": 2.0}))
    try:
        secret = create(cli, "temp", "--scope", "read")
        assert served.call("GET", "/stats", secret).status_code == 200
        # WHEN the key is revoked by another process (the CLI)
        keys(cli, "revoke", "temp")
        revoked_at = time.monotonic()
        # THEN the request right after is still answered from the cached lookup (no query per request)
        assert served.call("GET", "/stats", secret).status_code == 200
        # AND within the bound the key is refused, and stays refused
        while (answer := served.call("GET", "/stats", secret)).status_code == 200:
            assert time.monotonic() - revoked_at < 2.0, "a revoked key outlived the key cache bound"
            time.sleep(0.1)
        assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
        assert time.monotonic() - revoked_at <= 2.5
        assert [served.call("GET", "/stats", secret).status_code for _ in range(3)] == [401] * 3
        assert "revoked" in keys(cli, "list")
    finally:
        served.close()


def test_without_the_key_cache_a_revoked_key_is_refused_at_the_next_request(keyed: Settings, cli: CliRunner) -> None:
    served = Served(keyed.model_copy(update={"api_key_cache_s": 0.0}))
    try:
        secret = create(cli, "temp", "--scope", "read")
        assert served.call("GET", "/stats", secret).status_code == 200
        keys(cli, "revoke", "temp")
        refused = served.call("GET", "/stats", secret)
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    finally:
        served.close()


def test_a_new_key_works_at_once_and_an_unknown_secret_is_refused_every_time(api: Served, cli: CliRunner) -> None:
    # A refusal is never cached, so a key made right after a refused guess works on its first request.
    assert api.call("GET", "/stats", "cfk_" + "x" * 43).status_code == 401
    secret = create(cli, "fresh", "--scope", "read")
    assert api.call("GET", "/stats", secret).status_code == 200
    assert api.call("GET", "/stats", secret[:-1] + ("A" if secret[-1] != "A" else "B")).status_code == 401


def test_rotation_keeps_both_secrets_valid_until_the_grace_ends_then_only_the_new(api: Served, cli: CliRunner) -> None:
    # GIVEN a key in use
    old = create(cli, "svc", "--scope", "read")
    # WHEN it is rotated with a grace of 4 seconds (0.0011 h)
    new = _SECRET.findall(keys(cli, "rotate", "svc", "--grace", "0.0011"))[0]
    # THEN both secrets work during the grace, as the same key
    assert new != old
    assert api.call("GET", "/stats", old).status_code == 200
    assert api.call("GET", "/stats", new).status_code == 200
    # AND once the grace is over, the old one is refused and the new one still works
    deadline = time.monotonic() + 15
    while api.call("GET", "/stats", old).status_code == 200:
        assert time.monotonic() < deadline, "the old secret outlived its grace"
        time.sleep(0.5)
    assert api.call("GET", "/stats", old).status_code == 401
    assert api.call("GET", "/stats", new).status_code == 200


# -- quotas across two API instances ---------------------------------------------------------------
@pytest.mark.parametrize("store", ["postgres", "redis"])
def test_the_per_minute_quota_holds_across_two_api_instances_and_answers_429_with_retry_after(
    store: str, keyed: Settings, cli: CliRunner, request: pytest.FixtureRequest
) -> None:
    # GIVEN two API instances sharing the database (and Redis, when it is the counter) and a key of 4 rpm
    settings = keyed
    if store == "redis":
        settings = keyed.model_copy(update={"redis_url": SecretStr(request.getfixturevalue("redis_url"))})
    first, second = Served(settings), Served(settings)
    try:
        assert first.services.shared_cache is (store == "redis")
        secret = create(cli, "limited", "--scope", "read", "--rpm", "4")
        # Requests at the very end of a minute would straddle two windows.
        while time.time() % 60 > 50:
            time.sleep(1)
        # WHEN it makes 5 requests alternating between the instances
        answers = [(first if i % 2 else second).call("GET", "/stats", secret) for i in range(5)]
        # THEN 4 pass and the 5th is refused with a problem and Retry-After within the minute
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
        refused = answers[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "quota_exceeded"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # AND another key is not affected
        other = create(cli, "other", "--scope", "read")
        assert first.call("GET", "/stats", other).status_code == 200
    finally:
        first.close()
        second.close()


def test_a_postgres_counted_quota_is_reserved_in_slices_yet_two_instances_admit_exactly_the_limit(
    keyed: Settings, cli: CliRunner
) -> None:
    # GIVEN two API instances counting in Postgres and a key of 200 requests a minute (slices of 2)
    first, second = Served(keyed), Served(keyed)
    try:
        secret = create(cli, "sliced", "--scope", "read", "--rpm", "200")
        while time.time() % 60 > 40:  # all requests must fall in one window
            time.sleep(1)
        # WHEN it makes 220 requests alternating between the instances
        codes = [(first if i % 2 else second).call("GET", "/stats", secret).status_code for i in range(220)]
        # THEN exactly 200 pass and every later one is a 429 with Retry-After within the minute
        assert codes.count(200) == 200 and codes[:200] == [200] * 200
        assert set(codes[200:]) == {429}
        refused = first.call("GET", "/stats", secret)
        assert refused.status_code == 429 and refused.json()["code"] == "quota_exceeded"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # AND the shared counter was written once per slice, not once per request: 100 slices of 2
        # were granted, then one refused reservation per instance (each refuses alone afterwards)
        counted = rows(first.services, "SELECT used FROM api_quota_counters WHERE key_name = 'sliced'")
        assert counted == [(204,)]
    finally:
        first.close()
        second.close()


def test_llm_forced_analyses_have_a_daily_quota_per_key(api: Served, cli: CliRunner) -> None:
    secret = create(cli, "writer", "--scope", "write", "--llm-per-day", "1")
    body = {"text": "the ocean waves and the sails in the wind", "mode": "llm"}
    assert api.call("POST", "/analyze", secret, json=body).status_code == 200
    refused = api.call("POST", "/analyze", secret, json=body)
    assert refused.status_code == 429 and refused.json()["code"] == "quota_exceeded"
    assert 60 < int(refused.headers["retry-after"]) <= 86_400
    # Rule-based analyses are not counted against it.
    assert api.call("POST", "/analyze", secret, json={**body, "mode": "rules"}).status_code == 200


# -- audit ---------------------------------------------------------------------------------------------
def test_every_write_and_admin_action_is_audited_with_who_what_target_and_outcome(api: Served, cli: CliRunner) -> None:
    reader = create(cli, "reader", "--scope", "read")
    writer = create(cli, "writer", "--scope", "write")
    admin = create(cli, "ops", "--scope", "admin")
    # WHEN a read, a write, a refused write and admin actions are made
    assert api.call("GET", "/stats", reader).status_code == 200
    assert api.call("POST", "/analyze", writer, json={"text": "rain on the window", "mode": "rules"}).status_code == 200
    assert api.call("POST", "/analyze", reader, json={"text": "x"}).status_code == 403
    assert api.call("DELETE", "/dead-jobs/42", admin).status_code == 404
    assert api.call("GET", "/dead-jobs", admin).status_code == 200
    # THEN each write and admin action has its row; the read has none
    audit = rows(api.services, "SELECT key_name, scope, method, route, target, status FROM api_audit ORDER BY id")
    assert audit == [
        ("writer", "write", "POST", "/analyze", None, 200),
        ("reader", "write", "POST", "/analyze", None, 403),
        ("ops", "admin", "DELETE", "/dead-jobs/{id}", "42", 404),
        ("ops", "admin", "GET", "/dead-jobs", None, 200),
    ]
    assert rows(api.services, "SELECT count(*) FROM api_audit WHERE at > now() - interval '1 minute'")[0][0] == 4


# -- the legacy key and the cloud runtime ------------------------------------------------------------
def test_the_environment_key_acts_as_the_admin_key_named_env(settings: Settings) -> None:
    secret = "the-legacy-single-key-of-this-deployment"
    served = Served(settings.model_copy(update={"api_key": SecretStr(secret)}))
    try:
        assert served.call("GET", "/dead-jobs", secret).status_code == 200
        assert served.call("DELETE", "/dead-jobs/7", secret).status_code == 404
        who = rows(served.services, "SELECT key_name, scope FROM api_audit")
        assert who == [("env", "admin"), ("env", "admin")]
    finally:
        served.close()


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
@pytest.mark.parametrize("key", [None, "", "short-key-of-31-characters-xxxx"])
def test_a_cloud_api_runtime_refuses_to_start_without_a_long_key(
    cloud: Cloud, key: str | None, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the environment of a cloud API function with no key, an empty key or one under 32 characters
    env = entry_environment(settings)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if key is None:
        monkeypatch.delenv("CONTENTFN_API_KEY")
    else:
        monkeypatch.setenv("CONTENTFN_API_KEY", key)
    runtime = FunctionRuntime("api", cloud, serves_http=True)
    # WHEN it starts THEN it refuses, naming the variable
    with pytest.raises(ConfigError, match="CONTENTFN_API_KEY must be set to a random key of at least 32"):
        _ = runtime.services
    # AND a function that serves no HTTP starts without one; a key of 32 characters is accepted
    worker = FunctionRuntime("ingest", cloud)
    assert worker.settings.api_key is None or len(worker.settings.api_key.get_secret_value()) < 32
    monkeypatch.setenv("CONTENTFN_API_KEY", "k" * 32)
    accepted = FunctionRuntime("api", cloud, serves_http=True)
    assert accepted.settings.api_auth


def test_a_key_without_its_own_quota_takes_the_default_and_rpm_zero_lifts_the_limit(
    keyed: Settings, cli: CliRunner
) -> None:
    # GIVEN a default of 2 requests a minute, a key without its own quota and one with --rpm 0
    served = Served(keyed.model_copy(update={"api_requests_per_minute": 2}))
    try:
        plain = create(cli, "plain", "--scope", "read")
        unlimited = create(cli, "bulk", "--scope", "read", "--rpm", "0")
        while time.time() % 60 > 50:  # three requests must fall in one window
            time.sleep(1)
        # WHEN each makes more requests than the default allows
        plain_answers = [served.call("GET", "/stats", plain).status_code for _ in range(3)]
        bulk_answers = [served.call("GET", "/stats", unlimited).status_code for _ in range(5)]
        # THEN the first is held to the default, the second is not counted at all
        assert plain_answers == [200, 200, 429]
        assert bulk_answers == [200] * 5
        counted = rows(served.services, "SELECT key_name, used FROM api_quota_counters ORDER BY key_name")
        assert counted == [("plain", 3)]
    finally:
        served.close()


def test_the_cli_refuses_a_second_key_of_one_name_and_an_unknown_key_in_one_line(cli: CliRunner, api: Served) -> None:
    create(cli, "dup", "--scope", "read")
    again = cli.invoke(main, ["keys", "create", "dup", "--scope", "admin"])
    assert again.exit_code == 1 and "a key named 'dup' exists" in again.output
    for command in ("revoke", "rotate"):
        unknown = cli.invoke(main, ["keys", command, "nobody"])
        assert unknown.exit_code == 1 and "no live key named 'nobody'" in unknown.output
    bad = cli.invoke(main, ["keys", "create", "Bad Name", "--scope", "read"])
    assert bad.exit_code == 1 and "key name" in bad.output
    assert rows(api.services, "SELECT name, scopes FROM api_keys") == [("dup", ["read"])]


# -- streams per key -------------------------------------------------------------------------------
def test_streams_are_owned_by_the_registering_key_and_each_key_is_held_to_its_own_stream_quota(
    keyed: Settings, cli: CliRunner
) -> None:
    # GIVEN a default of 2 streams per key, a key without its own quota and one allowed a single stream
    served = Served(keyed.model_copy(update={"stream_max_per_owner": 2, "stream_allow_file_urls": True}))
    try:
        plain = create(cli, "cams", "--scope", "write")
        single = create(cli, "one-cam", "--scope", "write", "--streams", "1")
        body = {"url": "file:///srv/clips/gate.mp4", "fps": 1}
        # WHEN each registers one stream more than its quota allows
        plain_answers = [served.call("POST", "/streams", plain, json=body) for _ in range(3)]
        single_answers = [served.call("POST", "/streams", single, json=body) for _ in range(2)]
        # THEN the first is held to the default and the second to its own quota, each a 429 naming the key
        # quota with Retry-After: one key's streams never count against the other's
        assert [a.status_code for a in plain_answers] == [201, 201, 429]
        assert [a.status_code for a in single_answers] == [201, 429]
        for refused in (plain_answers[-1], single_answers[-1]):
            assert refused.json()["code"] == "stream_quota_exceeded" and "per key" in refused.json()["detail"]
            assert refused.headers["retry-after"] == "60"
        assert single_answers[-1].json()["detail"] == "at most 1 streams may be active per key"
        # AND each stream is owned by the key that registered it, as the API and the table say
        assert {a.json()["stream"]["owner"] for a in plain_answers[:2]} == {"cams"}
        assert single_answers[0].json()["stream"]["owner"] == "one-cam"
        owners = rows(served.services, "SELECT owner, count(*) FROM streams GROUP BY owner ORDER BY owner")
        assert owners == [("cams", 2), ("one-cam", 1)]
        # AND stopping one frees a place for its own key only
        stopped = plain_answers[0].json()["stream"]["id"]
        assert served.call("DELETE", f"/streams/{stopped}", plain).status_code == 200
        assert served.call("POST", "/streams", plain, json=body).status_code == 201
        assert served.call("POST", "/streams", single, json=body).status_code == 429
    finally:
        served.close()


def test_the_console_is_public_and_asks_for_a_key_when_only_named_keys_are_taken(api: Served, cli: CliRunner) -> None:
    # GIVEN an API that takes named keys only (no CONTENTFN_API_KEY)
    assert api.services.settings.api_key is None
    # WHEN the console's page and config are fetched without a key
    page, config = api.call("GET", "/"), api.call("GET", "/console/config")
    # THEN both are served, and the config tells the page that a key is needed
    assert page.status_code == 200 and config.json() == {"key_required": True}
    # AND a read key sent as the console sends it (X-API-Key) passes the read routes it calls, POST /recommend too
    secret = create(cli, "console", "--scope", "read")
    assert api.call("GET", "/tracks", secret).status_code == 200
    assert api.call("POST", "/recommend", secret, json={"liked": [1]}).status_code == 404
