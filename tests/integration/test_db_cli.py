"""``contentfn db status|migrate`` against a real, empty PostgreSQL: the deploy step before new code."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner

from local.cli import main
from shared.store.migrations import available_migrations


@pytest.fixture
def empty_database(pg_server_url: str) -> Iterator[str]:
    name = f"contentfn_empty_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(pg_server_url)
    info["dbname"] = name
    yield psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_applies_every_pending_migration_once(empty_database: str, tmp_path: object) -> None:
    runner = CliRunner()
    env = {"CONTENTFN_DATABASE_URL": empty_database, "CONTENTFN_DATA_DIR": str(tmp_path)}
    names = [name for _, name, _ in available_migrations()]
    # GIVEN an empty database: every migration pending
    before = runner.invoke(main, ["db", "status"], env=env)
    assert before.exit_code == 0, before.output
    assert [line.split()[0] for line in before.output.splitlines()] == ["pending"] * len(names)
    # WHEN migrated THEN all are applied, the tables exist, and a second run has nothing to do
    first = runner.invoke(main, ["db", "migrate"], env=env)
    assert first.exit_code == 0 and all(n in first.output for n in names), first.output
    again = runner.invoke(main, ["db", "migrate"], env=env)
    assert "schema up to date" in again.output
    after = runner.invoke(main, ["db", "status"], env=env)
    assert [line.split()[0] for line in after.output.splitlines()] == ["applied"] * len(names)
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT to_regclass('gpu_workers') IS NOT NULL").fetchone() == (True,)


def test_without_a_database_url_it_says_what_to_set(tmp_path: object) -> None:
    env = {"CONTENTFN_DATABASE_URL": "", "CONTENTFN_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["db", "migrate"], env=env)
    assert result.exit_code != 0 and "CONTENTFN_DATABASE_URL" in result.output
