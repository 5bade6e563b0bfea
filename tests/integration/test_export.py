"""Export of tracks with their profiles, and of detections: the CLI to CSV, JSON Lines and Parquet,
and ``GET /export`` streamed as NDJSON over the real HTTP server, on real PostgreSQL."""

from __future__ import annotations

import csv
import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from functions.analyze.core import run_analyze_batch
from functions.api import aws
from functions.api.core import Api
from functions.enrich.core import run_enrich_batch
from functions.ingest.core import handle_object_created
from local.cli import main
from local.datagen import write_tracks
from local.server import ApiServer
from shared.config import Settings
from shared.events import HttpRequest, ObjectCreated
from shared.services import Services
from shared.store.export import TRACK_COLUMNS, ExportFilters, export_rows
from shared.vision.detection import Detection
from shared.vision.store import ImageResult, upsert_image, write_image_results
from tests.entry_fixtures import TEST_API_KEY, FunctionsFrameworkServer, entry_environment
from tests.intel_fixtures import intel_services, sample_rows  # noqa: F401

N_TRACKS = 12


@pytest.fixture
def catalogue(intel_services: Callable[..., Services]) -> Services:  # noqa: F811
    """Twelve tracks (four from the source "feed"), enriched and analysed; one image with two detections."""
    services = intel_services()
    rows = [{**r, "source": "feed"} if i % 3 == 0 else r for i, r in enumerate(sample_rows(N_TRACKS))]
    body = "".join(json.dumps(r) + "\n" for r in rows)
    info = services.blob.put(services.settings.bucket, "export.jsonl", body.encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    while any((run_enrich_batch(services).claimed, run_analyze_batch(services).claimed)):
        pass
    with services.db.connection() as conn:
        image_id, _, _ = upsert_image(
            conn, content_hash="c" * 64, bucket="uploads", key="images/a.jpg", size=10, fmt="jpeg", rejected=None
        )
        found = (Detection(0, "FACE", 0.9, (1, 2, 3, 4)), Detection(1, "HAND", 0.5, (5, 6, 7, 8)))
        write_image_results(conn, "det-v1", [ImageResult(image_id, 100, 100, "jpeg", found)])
        conn.commit()
    return services


@pytest.fixture
def api(catalogue: Services) -> Iterator[str]:
    srv = ApiServer(Api(catalogue), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


def _env(services: Services, database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"CONTENTFN_DATABASE_URL": database_url, "CONTENTFN_DATA_DIR": str(tmp_path / "cli")}


def _export(env: dict[str, str], out: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["export", *args, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output


def test_cli_exports_every_track_with_its_profile_alike_in_csv_jsonl_and_parquet(
    catalogue: Services, database_url: str, tmp_path: Path
) -> None:
    env = _env(catalogue, database_url, tmp_path)
    for fmt in ("csv", "jsonl", "parquet"):
        _export(env, tmp_path / f"tracks.{fmt}", "--format", fmt)
    with (tmp_path / "tracks.jsonl").open() as f:
        lines = [json.loads(line) for line in f]
    with (tmp_path / "tracks.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    parquet = pq.read_table(tmp_path / "tracks.parquet").to_pylist()
    # THEN each format holds every track once, in id order, with the same columns
    assert len(lines) == len(table) == len(parquet) == N_TRACKS
    assert [r["id"] for r in lines] == [int(r["id"]) for r in table] == [r["id"] for r in parquet]
    assert list(lines[0]) == list(table[0]) == list(parquet[0]) == list(TRACK_COLUMNS)
    # AND each track carries its current profile and lyric features, as stored
    for row in lines:
        assert row["analyzer"] == "rules" and row["sentiment"] in {"positive", "negative", "neutral", "mixed"}
        assert 1 <= row["quality"] <= 10 and isinstance(json.loads(row["themes"]), list)
        assert "rhyme_density" in json.loads(row["features"])
    stored = {
        int(tid): (result["profile"]["quality"], result["profile"]["sentiment"])
        for tid, result in _rows(catalogue, "SELECT track_id, result FROM analyses")
    }
    assert {r["id"]: (r["quality"], r["sentiment"]) for r in parquet} == stored
    assert {r["id"]: r["lyrics"] for r in lines} == {r["id"]: r["lyrics"] for r in parquet}
    assert parquet[0]["created_at"].tzinfo is not None


def test_cli_export_filters_by_artist_source_and_time(catalogue: Services, database_url: str, tmp_path: Path) -> None:
    env = _env(catalogue, database_url, tmp_path)
    artist = sample_rows(1)[0]["artist"]
    _export(env, tmp_path / "artist.jsonl", "--format", "jsonl", "--artist", artist.lower())
    _export(env, tmp_path / "feed.jsonl", "--format", "jsonl", "--source", "feed")
    later = (datetime.now() + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    _export(env, tmp_path / "none.csv", "--format", "csv", "--since", later)
    by_artist = _jsonl(tmp_path / "artist.jsonl")
    assert by_artist and {r["artist"] for r in by_artist} == {artist}
    assert len(by_artist) == sum(r["artist"] == artist for r in sample_rows(N_TRACKS))
    assert {r["source"] for r in _jsonl(tmp_path / "feed.jsonl")} == {"feed"} and len(
        _jsonl(tmp_path / "feed.jsonl")
    ) == 4
    assert (tmp_path / "none.csv").read_text().count("\n") == 1  # the header only


def test_export_rows_come_in_id_order_across_cursor_batches(catalogue: Services) -> None:
    with catalogue.db.connection() as conn:
        ids = [r["id"] for r in export_rows(conn, "tracks", ExportFilters(), batch=5)]
        conn.rollback()
    assert len(ids) == N_TRACKS and ids == sorted(ids)


def test_export_route_streams_ndjson_of_tracks_and_of_detections(catalogue: Services, api: str) -> None:
    with httpx.stream("GET", f"{api}/export", params={"source": "feed"}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/x-ndjson"
        assert "content-length" not in resp.headers  # sent as it is read, not buffered
        tracks = [json.loads(line) for line in resp.iter_lines() if line]
    assert len(tracks) == 4 and {t["source"] for t in tracks} == {"feed"} and all(t["quality"] for t in tracks)
    detections = [
        json.loads(line) for line in httpx.get(f"{api}/export", params={"what": "detections"}).text.splitlines()
    ]
    assert [(d["label"], d["key"], d["model"]) for d in detections] == [
        ("FACE", "images/a.jpg", "det-v1"),
        ("HAND", "images/a.jpg", "det-v1"),
    ]
    since = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert httpx.get(f"{api}/export", params={"what": "detections", "since": since}).text == ""


@pytest.mark.parametrize(
    "params",
    [
        {"what": "albums"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},
        {"what": "detections", "artist": "x"},
    ],
)
def test_export_route_refuses_bad_filters_before_streaming(api: str, params: dict[str, str]) -> None:
    resp = httpx.get(f"{api}/export", params=params)
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_parameter"


def test_on_aws_lambda_an_export_is_buffered_up_to_the_cap_and_refused_past_it(
    catalogue: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Api(catalogue)
    small = aws._to_powertools(api.handle(HttpRequest.from_parts("GET", "/export", "what=detections")), head=False)
    assert small.status_code == 200 and len(str(small.body).splitlines()) == 2
    monkeypatch.setattr(aws, "MAX_STREAMED_BODY_BYTES", 1000)
    big = aws._to_powertools(api.handle(HttpRequest.from_parts("GET", "/export")), head=False)
    assert big.status_code == 413 and "too_large" in str(big.body)


def _rows(services: Services, query: str) -> list[tuple[Any, ...]]:
    with services.db.connection() as conn:
        rows = conn.execute(query).fetchall()
        conn.commit()
    return rows


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_on_gcp_functions_framework_streams_the_export(catalogue: Services, settings: Settings, tmp_path: Path) -> None:
    env = entry_environment(settings)
    server = FunctionsFrameworkServer("api", "api", "http", env, tmp_path / "ff-api.log").wait_ready()
    try:
        with httpx.stream(
            "GET", f"{server.url}/export", params={"source": "feed"}, headers={"X-API-Key": TEST_API_KEY}, timeout=30
        ) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"] == "application/x-ndjson"
            assert "content-length" not in resp.headers
            lines = [json.loads(line) for line in resp.iter_lines() if line]
    finally:
        server.stop()
    assert len(lines) == 4 and {r["source"] for r in lines} == {"feed"}


def test_a_client_that_leaves_mid_export_frees_the_cursor_and_its_connection(
    catalogue: Services, api: str, tmp_path: Path
) -> None:
    # GIVEN a catalogue large enough to be sent in many chunks
    path = tmp_path / "more.jsonl"
    write_tracks(path, 15_000, seed=3)  # megabytes more than the server's socket buffer holds
    info = catalogue.blob.put(catalogue.settings.bucket, "more.jsonl", path.read_bytes())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), catalogue)
    # WHEN a client reads the start of the export and goes away (a small receive buffer, so that
    # the answer cannot all sit in socket buffers: the server is still sending when it leaves)
    host, port = api.removeprefix("http://").split(":")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect((host, int(port)))
    client.sendall(f"GET /export HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    start = client.recv(4096)
    assert start.startswith(b"HTTP/1.1 200")
    time.sleep(0.5)
    assert _open_export_cursors(catalogue) == 1
    client.close()
    # THEN the server closes the cursor and ends its transaction
    deadline = time.monotonic() + 10
    while _open_export_cursors(catalogue) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _open_export_cursors(catalogue) == 0


def _open_export_cursors(services: Services) -> int:
    with psycopg.connect(services.db.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND state <> 'idle' AND query LIKE '%export_tracks%'"
        ).fetchone()
    return int(row[0]) if row else 0
