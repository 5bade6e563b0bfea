"""Where is my file? An uploaded file traced through ingest, embed, enrich and analyze — over the real
HTTP server and the CLI, on real PostgreSQL, with a real (local) Spotify-compatible server that
refuses one song until it is fixed."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from PIL import Image

from functions.analyze.core import run_analyze_batch
from functions.api.core import Api
from functions.api.paging import IdKey, encode_cursor
from functions.embed.core import run_embed_batch
from functions.enrich.core import run_enrich_batch
from functions.ingest.core import handle_object_created
from local.cli import main
from local.server import ApiServer
from shared.events import ObjectCreated
from shared.services import Services
from shared.store.provenance import provenance_of
from tests.intel_fixtures import intel_services, sample_rows  # noqa: F401
from tests.servers import Handled, Seen
from tests.servers.spotify_server import SpotifyServer

BROKEN_TITLE = "Harbor Lights"


class RefusingSpotify(SpotifyServer):
    """Answers 400 to any search for one title while ``refusing`` is set: a permanent (poison) failure."""

    refusing = True

    def handle(self, seen: Seen, handler: Any) -> Handled | None:
        query = (seen.query.get("q") or [""])[0]
        if self.refusing and seen.path == "/v1/search" and BROKEN_TITLE.lower() in query.lower():
            return Handled.json({"error": {"status": 400, "message": "bad search"}}, 400)
        return super().handle(seen, handler)


@pytest.fixture
def spotify() -> Iterator[RefusingSpotify]:
    catalogue = [{"name": r["title"], "artists": [r["artist"]]} for r in sample_rows(8)]
    server = RefusingSpotify(catalogue)
    with server:
        yield server


def _services(make: Callable[..., Services], spotify: SpotifyServer) -> Services:
    return make(
        spotify_api_url=spotify.url,
        spotify_token_url=spotify.url + "/api/token",
        spotify_client_id="cid",
        spotify_client_secret="csecret",
    )


def _upload(services: Services, key: str, rows: list[dict[str, Any]], bad_lines: list[str]) -> None:
    body = "".join(json.dumps(r) + "\n" for r in rows) + "".join(line + "\n" for line in bad_lines)
    info = services.blob.put(services.settings.bucket, key, body.encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)


def _drain(services: Services) -> None:
    """Run every stage until no job is ready (a poison job dies at its first failure)."""
    while any(
        (run_embed_batch(services).claimed, run_enrich_batch(services).claimed, run_analyze_batch(services).claimed)
    ):
        pass


def _cli_trace(env: dict[str, str], key: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["trace", key, "--json"], env=env)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.output)
    return doc


def _states(doc: dict[str, Any], kind: str) -> dict[str, str]:
    return {s["label"].split(" - ", 1)[1]: s["stages"][kind]["state"] for s in doc["items"]}


def test_trace_shows_a_dead_enrich_with_its_error_then_done_after_replay(
    intel_services: Callable[..., Services],  # noqa: F811
    spotify: RefusingSpotify,
    database_url: str,
    tmp_path: Path,
) -> None:
    services = _services(intel_services, spotify)
    rows = sample_rows(4)
    assert BROKEN_TITLE in {r["title"] for r in rows}
    env = {
        "CONTENTFN_DATABASE_URL": database_url,
        "CONTENTFN_DATA_DIR": str(tmp_path / "cli"),
        "CONTENTFN_MODEL_DIR": str(services.settings.resolved_model_dir),
    }
    # GIVEN a file of four good rows and one bad one, uploaded and run through every stage,
    # while the metadata API refuses one of the songs for good
    _upload(services, "catalogue/batch.jsonl", rows, ['{"artist": "No Lyrics", "title": "x"}'])
    _drain(services)
    # WHEN the file is traced from the CLI
    doc = _cli_trace(env, "catalogue/batch.jsonl")
    # THEN the ingest shows the bad row with its line, and the four tracks it produced
    assert doc["object"] == f"{services.settings.bucket}/catalogue/batch.jsonl"
    assert doc["ingest"]["status"] == "partial"
    assert (doc["ingest"]["rows_ok"], doc["ingest"]["rows_bad"]) == (4, 1)
    assert [b["line"] for b in doc["ingest"]["bad_rows"]] == [5] and "lyrics" in doc["ingest"]["bad_rows"][0]["reason"]
    assert len(doc["items"]) == 4
    # AND every track is embedded; three are enriched and analysed; the refused one is dead with its error
    assert set(_states(doc, "embed").values()) == {"done"}
    enrich = _states(doc, "enrich")
    assert enrich.pop(BROKEN_TITLE) == "dead" and set(enrich.values()) == {"done"}
    analyze = _states(doc, "analyze")
    assert analyze.pop(BROKEN_TITLE) == "pending" and set(analyze.values()) == {"done"}
    (broken,) = [s for s in doc["items"] if s["label"].endswith(BROKEN_TITLE)]
    dead = broken["stages"]["enrich"]
    assert "400" in dead["error"] and dead["retryable"] is False and dead["replayable"] is True
    assert doc["summary"]["enrich"] == {"done": 3, "dead": 1}
    # AND the table view says the same
    table = CliRunner().invoke(main, ["trace", "catalogue/batch.jsonl"], env=env)
    assert table.exit_code == 0 and "replayable" in table.output and "line 5" in table.output, table.output

    # WHEN the cause is fixed and the dead job replayed from the CLI, and the workers run
    spotify.refusing = False
    replay = CliRunner().invoke(main, ["dead", "replay", str(dead["dead_job_id"])], env=env)
    assert replay.exit_code == 0 and "replayed 1" in replay.output, replay.output
    queued = _cli_trace(env, "catalogue/batch.jsonl")
    (pending,) = [s for s in queued["items"] if s["label"].endswith(BROKEN_TITLE)]
    assert pending["stages"]["enrich"]["state"] == "pending" and pending["stages"]["enrich"]["next_attempt_at"]
    _drain(services)
    # THEN the trace shows every track done through every stage
    after = _cli_trace(env, "catalogue/batch.jsonl")
    assert after["summary"] == {"embed": {"done": 4}, "enrich": {"done": 4}, "analyze": {"done": 4}}


@pytest.fixture
def api(services: Services) -> Iterator[str]:
    srv = ApiServer(Api(services), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


def test_objects_route_pages_the_tracks_of_a_file_and_shows_queued_work_with_its_next_attempt(
    services: Services, api: str
) -> None:
    # GIVEN a file ingested, its jobs queued but not run yet
    _upload(services, "drops/five.jsonl", sample_rows(5), [])
    # WHEN its trace is read over HTTP two tracks at a time
    first = httpx.get(f"{api}/objects", params={"key": "drops/five.jsonl", "limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    # THEN the ingest is ok, every stage is pending, the queued ones with the time they can run
    assert page["ingest"]["status"] == "ok" and page["ingest"]["rows_ok"] == 5 and page["ingest"]["bad_rows"] == []
    assert page["summary"] == {"embed": {"pending": 5}, "enrich": {"pending": 5}, "analyze": {"pending": 5}}
    embed = page["items"][0]["stages"]["embed"]
    assert embed["next_attempt_at"] is not None and embed["attempts"] == 0
    assert page["items"][0]["stages"]["analyze"]["next_attempt_at"] is None  # queued only after enrich
    # AND the pages cover the five tracks once each
    ids = [s["id"] for s in page["items"]]
    cursor = page["next_cursor"]
    while cursor is not None:
        nxt = httpx.get(f"{api}/objects", params={"key": "drops/five.jsonl", "limit": 2, "cursor": cursor}).json()
        ids += [s["id"] for s in nxt["items"]]
        cursor = nxt["next_cursor"]
    assert len(ids) == 5 and ids == sorted(set(ids))


def test_objects_route_answers_404_for_an_unknown_key_and_400_without_one(services: Services, api: str) -> None:
    assert httpx.get(f"{api}/objects", params={"key": "never/uploaded.csv"}).status_code == 404
    assert httpx.get(f"{api}/objects").status_code == 400
    assert httpx.get(f"{api}/objects", params={"key": "x", "cursor": "abc"}).status_code == 400


def test_an_image_is_traced_to_its_detection_job(services: Services, api: str) -> None:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG")
    info = services.blob.put(services.settings.bucket, "images/astronaut.jpg", buf.getvalue())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    doc = httpx.get(f"{api}/objects", params={"key": "images/astronaut.jpg"}).json()
    (image,) = doc["items"]
    assert image["kind"] == "image" and image["label"] == "images/astronaut.jpg"
    assert image["stages"]["detect"]["state"] == "pending" and image["stages"]["detect"]["next_attempt_at"]


def test_a_rejected_file_is_traced_with_its_error_and_no_tracks(services: Services, api: str) -> None:
    info = services.blob.put(services.settings.bucket, "notes/readme.txt", b"not a track file")
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    doc = httpx.get(f"{api}/objects", params={"key": "notes/readme.txt"}).json()
    assert doc["ingest"]["status"] == "rejected" and doc["ingest"]["error"]
    assert doc["items"] == [] and doc["summary"] == {} and doc["next_cursor"] is None


def test_a_key_in_two_buckets_needs_its_bucket_named(services: Services, api: str) -> None:
    for bucket in ("uploads-a", "uploads-b"):
        info = services.blob.put(bucket, "same.jsonl", (json.dumps(sample_rows(1)[0]) + "\n").encode())
        handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    both = httpx.get(f"{api}/objects", params={"key": "same.jsonl"})
    assert both.status_code == 409 and both.json()["code"] == "ambiguous"
    one = httpx.get(f"{api}/objects", params={"key": "same.jsonl", "bucket": "uploads-b"}).json()
    assert one["object"] == "uploads-b/same.jsonl" and one["ingest"]["rows_ok"] == 1


def test_a_reupload_that_changes_one_row_still_traces_the_rows_it_left_unchanged(services: Services, api: str) -> None:
    # GIVEN a file of three tracks ingested, then a new version of it: the same three rows and one more
    rows = sample_rows(4)
    _upload(services, "drops/growing.jsonl", rows[:3], [])
    _upload(services, "drops/growing.jsonl", rows, [])
    # WHEN the file is traced
    doc = httpx.get(f"{api}/objects", params={"key": "drops/growing.jsonl"}).json()
    # THEN the trace lists all four tracks of the latest version, the three it left unchanged included
    assert doc["ingest"]["rows_ok"] == 4
    assert sorted(s["label"].split(" - ", 1)[1] for s in doc["items"]) == sorted(r["title"] for r in rows)
    # AND the tracks of the first version are linked to both versions, the new one to the latest only
    with services.db.connection() as conn:
        versions = {s["id"]: len(provenance_of(conn, s["id"]).objects) for s in doc["items"]}
    assert sorted(versions.values()) == [1, 2, 2, 2]


def test_objects_route_refuses_a_cursor_of_another_list_naming_the_cursor(services: Services, api: str) -> None:
    # GIVEN a file ingested, and a well-formed cursor issued by another list
    _upload(services, "drops/two.jsonl", sample_rows(2), [])
    foreign = encode_cursor("images", IdKey(id=1))
    # WHEN the trace is paged with it
    resp = httpx.get(f"{api}/objects", params={"key": "drops/two.jsonl", "cursor": foreign})
    # THEN it is a 400 problem naming the cursor
    assert resp.status_code == 400 and resp.json()["errors"][0]["parameter"] == "cursor"
