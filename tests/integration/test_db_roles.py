"""Least privilege on a real PostgreSQL: the migrator (not a superuser, like RDS's master user)
migrates and creates the runtime roles; each function's real operations then run logged in as its
own role, and what a role was not granted is refused by the database."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from click.testing import CliRunner
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from functions.analyze.core import run_analyze_batch
from functions.api.core import Api
from functions.embed.core import ensure_index, run_embed_batch
from functions.enrich.core import run_enrich_batch
from functions.ingest.core import handle_object_created
from functions.ingest.deletion import handle_object_deleted
from functions.scrape.core import handle_tick
from local.cli import main
from local.server import ApiServer
from shared.events import ObjectCreated, ObjectDeleted, ScheduleTick
from shared.platform.runtime import record_poison
from shared.services import Services
from shared.store import roles
from shared.store.migrations import MigrationNotPermitted
from shared.vision.capacity import report_worker
from shared.vision.detection import Detection
from shared.vision.store import ImageResult, upsert_image, write_image_results
from shared.vision.stream_registry import acquire_streams, register_stream, write_frame
from tests.emulators import moto_url  # noqa: F401
from tests.entry_fixtures import sample_jsonl
from tests.intel_fixtures import llm_server, make_intel_settings, source_server  # noqa: F401
from tests.servers.llm_server import LlmServer
from tests.servers.source_server import SourceServer

MIGRATOR = "contentfn_migrator"
API_KEY = "role-test-admin-key-0123456789abcdef0123456789"
_counter = itertools.count()


def _url(server_url: str, dbname: str, user: str) -> str:
    info = conninfo_to_dict(server_url)
    info.update(dbname=dbname, user=user)
    return make_conninfo(**info)  # type: ignore[arg-type]


class RoleDatabase:
    """One database migrated by the migrator, with the runtime roles granted; a URL per login."""

    def __init__(self, server_url: str, name: str, tmp_path: Path) -> None:
        self.server_url, self.name, self.tmp_path = server_url, name, tmp_path
        self.superuser = _url(server_url, name, str(conninfo_to_dict(server_url).get("user") or "postgres"))
        self.migrator = _url(server_url, name, MIGRATOR)
        self._made: list[Services] = []

    def url(self, function: str) -> str:
        return _url(self.server_url, self.name, roles.role_name(function))

    def cli(self, *args: str, **extra_env: str) -> Any:
        env = {"CONTENTFN_DATABASE_URL": self.migrator, "CONTENTFN_DATA_DIR": str(self.tmp_path / "cli"), **extra_env}
        result = CliRunner().invoke(main, list(args), env=env)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == 0, result.output
        return result

    def services(self, function: str, **overrides: Any) -> Services:
        """The function's services, logged in as its role; migrate=True as a cloud start does."""
        settings = make_intel_settings(self.tmp_path, self.url(function), **overrides)
        svc = Services.from_settings(settings, migrate=True)
        self._made.append(svc)
        return svc

    def as_role(self, function: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url(function))

    def close(self) -> None:
        for svc in self._made:
            svc.close()


@pytest.fixture
def role_db(pg_server_url: str, tmp_path: Path) -> Iterator[RoleDatabase]:
    name = f"contentfn_roles_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MIGRATOR,)).fetchone():
            # Like RDS's master user: may log in and create roles, is no superuser.
            conn.execute(f"CREATE ROLE {MIGRATOR} LOGIN CREATEROLE")
        conn.execute(f'CREATE DATABASE "{name}" OWNER {MIGRATOR}')
    db = RoleDatabase(pg_server_url, name, tmp_path)
    with psycopg.connect(db.superuser, autocommit=True) as conn:
        # RDS lets its master user (rds_superuser) create pgvector; here the server's superuser does.
        conn.execute("CREATE EXTENSION vector")
    db.cli("db", "migrate")
    db.cli("db", "roles")
    try:
        yield db
    finally:
        db.close()
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _count(conn_url: str, query: str) -> int:
    with psycopg.connect(conn_url) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _ingest(db: RoleDatabase) -> Services:
    ingest = db.services("ingest")
    info = ingest.blob.put(ingest.settings.bucket, "incoming/tracks.jsonl", sample_jsonl(12, tag="roles"))
    event = ObjectCreated(bucket=info.bucket, key=info.key, size=info.size, generation=info.generation)
    report = handle_object_created(event, ingest).result
    assert report.status == "ok" and report.inserted == 12  # type: ignore[union-attr]
    return ingest


def _acl(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT c.relname, c.relowner::regrole::text, c.relacl::text FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1"
        ).fetchall()


def test_roles_are_granted_from_the_table_and_granting_again_changes_nothing(role_db: RoleDatabase) -> None:
    # GIVEN a database the migrator migrated and granted
    before = _acl(role_db.superuser)
    # WHEN `contentfn db roles` runs again
    again = role_db.cli("db", "roles")
    # THEN it prints what it granted, the grants are the same, and every table has an owner that is no runtime role
    assert "grant    contentfn_embed: DELETE, INSERT, SELECT, UPDATE ON embeddings" in again.output
    assert "grant    contentfn_api: SELECT ON enrichments" in again.output
    assert _acl(role_db.superuser) == before
    runtime = {roles.role_name(f) for f in roles.FUNCTIONS}
    assert all(owner not in runtime for _, owner, _ in before)
    # AND no runtime role holds a privilege the table does not list
    with psycopg.connect(role_db.superuser) as conn:
        held = conn.execute(
            "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = ANY(%s)",
            (sorted(runtime),),
        ).fetchall()
    listed = {
        (roles.role_name(f), t, p)
        for f, tables in roles.GRANTS.items()
        for t, privileges in tables.items()
        for p in privileges
        if "(" not in p  # column grants (embed's UPDATE (search_tsv) on tracks) are not table grants
    }
    assert set(held) == listed


def test_the_upload_pipeline_runs_with_each_function_logged_in_as_its_own_role(
    role_db: RoleDatabase,
    llm_server: LlmServer,  # noqa: F811
) -> None:
    # GIVEN an upload ingested by ingest (tracks, object links, ledger, outbox, idempotency)
    _ingest(role_db)
    assert _count(role_db.superuser, "SELECT count(*) FROM jobs WHERE kind = 'embed'") == 12
    # WHEN embed, enrich and analyze drain their jobs, each as its own role
    embed = role_db.services("embed")
    while run_embed_batch(embed).claimed:
        pass
    ensure_index(embed)  # the HNSW build: DDL on embeddings, which embed's role may do
    enrich = role_db.services("enrich")
    while run_enrich_batch(enrich).claimed:
        pass
    llm = {"llm_base_url": llm_server.url, "llm_api_key": "test-key", "llm_model": "test-model"}
    analyze = role_db.services("analyze", **llm)
    while run_analyze_batch(analyze).claimed:
        pass
    # THEN every stage's rows are there
    assert _count(role_db.superuser, "SELECT count(*) FROM embeddings") == 12
    assert _count(role_db.superuser, "SELECT count(*) FROM enrichments") >= 12
    assert _count(role_db.superuser, "SELECT count(*) FROM analyses") >= 12
    assert _count(role_db.superuser, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'embeddings_hnsw%'") == 1
    assert _count(role_db.superuser, "SELECT count(*) FROM dead_jobs") == 0

    # AND the API, as its role, serves search, profiles, stats and deletes a track
    api_services = role_db.services("api", api_key=API_KEY, **llm)
    server = ApiServer(Api(api_services), "127.0.0.1", 0)
    server.start()
    try:
        base, headers = f"http://127.0.0.1:{server.port}", {"X-API-Key": API_KEY}
        found = httpx.get(f"{base}/search", params={"q": "verse chorus", "k": 5}, headers=headers)
        assert found.status_code == 200, found.text
        track_id = found.json()["results"][0]["id"]
        for path in (
            f"/tracks/{track_id}",
            f"/tracks/{track_id}/similar",
            "/stats",
            "/tracks",
            "/dead-jobs",
            "/health",
        ):
            answer = httpx.get(base + path, headers=headers)
            assert answer.status_code == 200, (path, answer.text)
        analysed = httpx.post(f"{base}/analyze", json={"text": "a short song about the sea"}, headers=headers)
        assert analysed.status_code == 200, analysed.text
        deleted = httpx.delete(f"{base}/tracks/{track_id}", headers=headers)
        assert deleted.status_code == 200, deleted.text
    finally:
        server.stop()
    assert _count(role_db.superuser, "SELECT count(*) FROM tracks") == 11


def test_a_removed_object_takes_its_tracks_away_as_ingest(role_db: RoleDatabase) -> None:
    ingest = _ingest(role_db)
    (ingest.settings.buckets_dir / ingest.settings.bucket / "incoming/tracks.jsonl").unlink()
    report = handle_object_deleted(ObjectDeleted(bucket=ingest.settings.bucket, key="incoming/tracks.jsonl"), ingest)
    assert report.tracks == 12
    assert _count(role_db.superuser, "SELECT count(*) FROM tracks") == 0


def test_scrape_stores_tracks_and_its_cursor_as_its_role(
    role_db: RoleDatabase,
    source_server: SourceServer,  # noqa: F811
) -> None:
    artists = sorted({s["artist"] for s in source_server.songs.values()})[:2]
    source = {"name": "genius", "kind": "genius", "url": source_server.url, "artists": artists, "token": "t"}
    scrape = role_db.services("scrape", scrape_sources=[source])
    from datetime import UTC, datetime

    report = handle_tick(ScheduleTick(schedule="scrape-hourly", fired_at=datetime(2026, 12, 1, tzinfo=UTC)), scrape)
    assert report.result.stored > 0  # type: ignore[union-attr]
    assert _count(role_db.superuser, "SELECT count(*) FROM scrape_cursors") >= 1


def test_dead_letters_are_recorded_as_deadletters(role_db: RoleDatabase) -> None:
    dead = role_db.services("deadletters")
    assert record_poison(dead.db, kind="embed", envelope={"body": "x"}, error="poison", dedup_key="roles-1")
    assert _count(role_db.superuser, "SELECT count(*) FROM dead_jobs") == 1


def test_the_gpu_worker_writes_detections_leases_streams_and_reports_capacity_as_its_role(
    role_db: RoleDatabase,
) -> None:
    with psycopg.connect(role_db.superuser) as conn:  # what ingest and the API registered
        image_id, _, _ = upsert_image(conn, content_hash="h1", bucket="b", key="images/a.jpg", size=10, fmt="jpeg")
        register_stream(conn, "rtsp://camera.example:554/live", 1.0, model=None, keyframes_only=False)
        conn.commit()
    gpu = role_db.services("gpu")
    box = Detection(class_id=0, label="FACE_FEMALE", score=0.8, box=(1.0, 2.0, 3.0, 4.0))
    with gpu.db.connection() as conn:
        assert (
            write_image_results(conn, "320n", [ImageResult(image_id=image_id, width=8, height=8, detections=(box,))])
            == 1
        )
        (lease,) = acquire_streams(conn, "worker-1", 30.0, 1)
        assert write_frame(conn, lease.id, "worker-1", "320n", [(0.5, [box])], dropped=0)
        report_worker(conn, "worker-1", host="h", provider="cpu", model="320n", max_batch=8, img_per_s=3.0, busy_s=1.0)
        conn.commit()
    assert _count(role_db.superuser, "SELECT count(*) FROM detections") == 2


@pytest.mark.parametrize(
    ("function", "statement"),
    [
        *[(f, "CREATE TABLE intruder (id int)") for f in roles.FUNCTIONS],
        *[(f, "ALTER TABLE tracks ADD COLUMN intruder int") for f in roles.FUNCTIONS],
        *[(f, "TRUNCATE jobs") for f in roles.FUNCTIONS],
        ("api", "DELETE FROM ledger"),
        ("api", "UPDATE tracks SET title = 'x'"),
        ("api", "DELETE FROM gpu_workers"),
        ("api", "DELETE FROM llm_calls"),
        ("embed", "INSERT INTO api_keys DEFAULT VALUES"),
        ("embed", "SELECT * FROM api_keys"),
        ("ingest", "SELECT * FROM api_keys"),
        ("enrich", "UPDATE tracks SET title = 'x'"),
        ("analyze", "DELETE FROM tracks"),
        ("scrape", "DELETE FROM tracks"),
        ("deadletters", "SELECT * FROM tracks"),
        ("gpu", "SELECT * FROM tracks"),
        ("embed", "ALTER TABLE tracks OWNER TO contentfn_embed"),
    ],
)
def test_what_a_role_was_not_granted_is_refused(role_db: RoleDatabase, function: str, statement: str) -> None:
    with role_db.as_role(function) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_a_runtime_role_refuses_to_start_on_a_schema_with_pending_migrations(role_db: RoleDatabase) -> None:
    # GIVEN a schema one migration behind the code
    with psycopg.connect(role_db.superuser) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
    # WHEN a function starts as its runtime role THEN it refuses, naming the migrator's step
    with pytest.raises(MigrationNotPermitted, match="contentfn db migrate"):
        Services.from_settings(make_intel_settings(role_db.tmp_path, role_db.url("api")), migrate=True)


def test_a_grants_table_missing_a_privilege_the_code_needs_fails_the_function(
    role_db: RoleDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the grants without embed's INSERT on embeddings, applied by the migrator
    without = {**roles.GRANTS, "embed": {**roles.GRANTS["embed"], "embeddings": frozenset({"SELECT", "UPDATE"})}}
    monkeypatch.setattr(roles, "GRANTS", without)
    with psycopg.connect(role_db.migrator) as conn:
        roles.apply_roles(conn)
    _ingest(role_db)
    # WHEN embed runs THEN its writes are refused and nothing is embedded
    embed = role_db.services("embed")
    run_embed_batch(embed)
    assert _count(role_db.superuser, "SELECT count(*) FROM embeddings") == 0


def test_a_new_table_no_grant_names_is_refused_until_someone_decides(role_db: RoleDatabase) -> None:
    # GIVEN a later migration's table (created by the migrator)
    with psycopg.connect(role_db.migrator) as conn:
        conn.execute("CREATE TABLE later_feature (id int)")
        conn.commit()
        # THEN granting refuses to guess, and no runtime role can read it meanwhile
        with pytest.raises(roles.UncoveredTables, match="later_feature"):
            roles.apply_roles(conn)
    with role_db.as_role("api") as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM later_feature")


def test_passwords_from_a_file_are_set_on_the_roles(role_db: RoleDatabase, tmp_path: Path) -> None:
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"api": "api-password-1"}))
    out = role_db.cli("db", "roles", "--password-file", str(passwords))
    assert "password contentfn_api" in out.output
    with psycopg.connect(role_db.superuser) as conn:
        row = conn.execute("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'contentfn_api'")
        assert row.fetchone() == (True,)


def test_empty_role_secrets_are_filled_by_the_migrator_and_kept_on_the_next_run(
    role_db: RoleDatabase,
    moto_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("secretsmanager", endpoint_url=moto_url, region_name="eu-west-1")
    # GIVEN the empty secret Terraform creates for the api's login (no password in plan or state)
    arn = client.create_secret(Name=f"contentfn/dev/db/api-{os.getpid()}-{next(_counter)}")["ARN"]
    env = {
        "CONTENTFN_DATABASE_ROLE_SECRETS": json.dumps({"api": arn}),
        "CONTENTFN_AWS_ENDPOINT_URL": moto_url,
        "CONTENTFN_AWS_REGION": "eu-west-1",
    }
    # WHEN the migrator grants the roles, twice
    first = role_db.cli("db", "roles", **env)
    stored = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
    role_db.cli("db", "roles", **env)
    # THEN the secret holds the role's login, the role has that password, and the second run kept it
    assert "password contentfn_api" in first.output and stored["username"] == "contentfn_api"
    assert len(stored["password"]) >= 32
    assert json.loads(client.get_secret_value(SecretId=arn)["SecretString"]) == stored
    with psycopg.connect(role_db.superuser) as conn:
        row = conn.execute("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'contentfn_api'")
        assert row.fetchone() == (True,)


def test_cloud_sql_iam_logins_made_members_act_as_their_functions_roles_only(role_db: RoleDatabase) -> None:
    # GIVEN the IAM users Cloud SQL creates for two functions' service accounts: logins with nothing
    # granted (names as in Terraform's database_roles_command output)
    logins = {"api": f"{role_db.name}-api@proj.iam", "embed": f"{role_db.name}-embed@proj.iam"}
    with psycopg.connect(role_db.superuser, autocommit=True) as conn:
        for login in logins.values():
            conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN").format(psycopg.sql.Identifier(login)))
    try:
        # WHEN the migrator maps them to the runtime roles
        out = role_db.cli("db", "roles", *[f"--member={fn}={login}" for fn, login in logins.items()])
        assert f"contentfn_api → {logins['api']}" in out.output
        # THEN each logs in with its function's privileges and no more
        with psycopg.connect(_url(role_db.server_url, role_db.name, logins["api"])) as conn:
            conn.execute("SELECT count(*) FROM api_keys")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("DELETE FROM gpu_workers")
        with psycopg.connect(_url(role_db.server_url, role_db.name, logins["embed"])) as conn:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM api_keys")
            conn.rollback()
            # AND embed's login may take the index owner for index DDL, as its role does
            assert roles.take_index_owner(conn)
    finally:
        with psycopg.connect(role_db.superuser, autocommit=True) as conn:
            for login in logins.values():
                conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(login)))
                conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(login)))
