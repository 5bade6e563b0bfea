"""The CLI's read commands, each run twice on one real catalogue: against the database (the API core
in process) and with ``--api URL --api-key KEY`` against the real HTTP server on that database.
Both must print the same JSON; a wrong key or an API out of reach is one clear line, no traceback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from functions.analyze.core import run_analyze_batch
from functions.api.core import Api
from functions.embed.core import run_embed_batch
from functions.enrich.core import run_enrich_batch
from functions.ingest.core import handle_object_created
from local.api_client import ApiClient, ApiProblem
from local.cli import main
from local.server import ApiServer
from shared.embedder.providers import add_with_default, builtin_spec
from shared.events import ObjectCreated
from shared.services import Services
from shared.vision.detection import Detection
from shared.vision.store import ImageResult, upsert_image, write_image_results
from tests.emulators import free_port
from tests.intel_fixtures import intel_services, sample_rows  # noqa: F401

KEY = "cli-read-test-key-0123456789abcdefghijklmnop"
OBJECT = "cli/batch.jsonl"
N_TRACKS = 12


@pytest.fixture
def catalogue(intel_services: Callable[..., Services]) -> Services:  # noqa: F811
    """Twelve tracks (four from the source "feed") and one bad row, embedded, enriched and analysed;
    two dead jobs; one image with two detections; two embedding models. The API asks for a key."""
    services = intel_services(api_key=KEY)
    rows = [{**r, "source": "feed"} if i % 3 == 0 else r for i, r in enumerate(sample_rows(N_TRACKS))]
    body = "".join(json.dumps(r) + "\n" for r in rows) + '{"artist": "No Lyrics", "title": "x"}\n'
    info = services.blob.put(services.settings.bucket, OBJECT, body.encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    while any(
        (run_embed_batch(services).claimed, run_enrich_batch(services).claimed, run_analyze_batch(services).claimed)
    ):
        pass
    for n, kind in enumerate(("analyze", "embed")):
        assert services.queue.enqueue(kind, {"track_id": 10_000 + n}, dedup_key=f"poison-{n}")
        (claimed,) = services.queue.claim(kind, 1)
        assert services.queue.fail(claimed, f"poison {kind} payload", retryable=False) == "dead"
    with services.db.connection() as conn:
        image_id, _, _ = upsert_image(
            conn, content_hash="c" * 64, bucket="uploads", key="images/a.jpg", size=10, fmt="jpeg", rejected=None
        )
        found = (Detection(0, "FACE", 0.9, (1, 2, 3, 4)), Detection(1, "HAND", 0.5, (5, 6, 7, 8)))
        write_image_results(conn, "det-v1", [ImageResult(image_id, 100, 100, "jpeg", found)])
        # The built-in fp32 model registered as active, int8 beside it as a shadow not yet backfilled.
        add_with_default(conn, services.settings, builtin_spec(services.settings, "int8"))
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


@pytest.fixture
def env(catalogue: Services, tmp_path: Path) -> dict[str, str | None]:
    s = catalogue.settings
    assert s.database_url is not None
    return {
        "CONTENTFN_DATABASE_URL": s.database_url.get_secret_value(),
        "CONTENTFN_DATA_DIR": str(tmp_path / "cli"),
        "CONTENTFN_MODEL_DIR": str(s.resolved_model_dir),
        # Neither the API's URL nor a key from the shell running the tests.
        "CONTENTFN_API_URL": None,
        "CONTENTFN_API_KEY": None,
    }


def _run(env: dict[str, str | None], args: list[str]) -> Result:
    result = CliRunner().invoke(main, args, env=env, terminal_width=200)
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result


def _both(env: dict[str, str | None], api: str, args: list[str]) -> tuple[Any, Any]:
    """The command's --json document read locally, then through the HTTP API."""
    local = json.loads(_run(env, [*args, "--json"]).stdout)
    remote = json.loads(_run(env, [*args, "--json", "--api", api, "--api-key", KEY]).stdout)
    return local, remote


def _track_ids(catalogue: Services) -> list[int]:
    with catalogue.db.connection() as conn:
        ids = [int(r[0]) for r in conn.execute("SELECT id FROM tracks ORDER BY id").fetchall()]
        conn.commit()
    return ids


def test_search_prints_the_same_results_locally_and_over_the_api_in_every_mode(
    env: dict[str, str | None], api: str
) -> None:
    for mode in ("semantic", "keyword", "hybrid"):
        local, remote = _both(env, api, ["search", "sailors at sea", "-k", "5", "--mode", mode])
        # The timings are this run's own; everything else is the same answer.
        assert local.pop("timings_ms").keys() == remote.pop("timings_ms").keys() == {"embed", "db"}
        assert local == remote, mode
        assert local["mode"] == mode and local["results"], local
    # AND the browse filters narrow it alike
    local, remote = _both(env, api, ["search", "salt", "--mode", "hybrid", "--source", "feed", "-k", "20"])
    local.pop("timings_ms"), remote.pop("timings_ms")
    assert local == remote and 0 < len(local["results"]) <= 4


def test_status_prints_the_api_stats_locally_and_over_the_api(env: dict[str, str | None], api: str) -> None:
    local, remote = _both(env, api, ["status"])
    # Query cache hits and misses are counters of the process that serves (the server, or this CLI).
    local.pop("query_cache"), remote.pop("query_cache")
    assert local == remote
    assert local["tracks"] == N_TRACKS and local["dead_jobs"]["total"] == 2 and local["images"]["total"] == 1


def test_track_and_tracks_print_the_same_profile_and_pages_locally_and_over_the_api(
    catalogue: Services, env: dict[str, str | None], api: str
) -> None:
    first = _track_ids(catalogue)[0]
    local, remote = _both(env, api, ["track", str(first)])
    assert local == remote and local["id"] == first and local["analyses"] and local["embedded_models"]

    local, remote = _both(env, api, ["tracks", "--source", "feed", "--sort", "title", "--limit", "3"])
    assert local == remote
    assert len(local["items"]) == 3 and local["next_cursor"] is not None
    assert {t["source"] for t in local["items"]} == {"feed"}
    titles = [t["title"].lower() for t in local["items"]]
    assert titles == sorted(titles)


def test_trace_prints_the_whole_object_trace_locally_and_over_the_api(env: dict[str, str | None], api: str) -> None:
    local, remote = _both(env, api, ["trace", OBJECT])
    assert local == remote
    assert local["ingest"]["rows_ok"] == N_TRACKS and local["ingest"]["rows_bad"] == 1
    assert len(local["items"]) == N_TRACKS and local["next_cursor"] is None
    assert local["summary"]["embed"] == {"done": N_TRACKS}


def test_dead_list_show_and_models_list_print_the_same_locally_and_over_the_api(
    env: dict[str, str | None], api: str
) -> None:
    local, remote = _both(env, api, ["dead", "list"])
    assert local == remote and local["total"] == 2
    assert [d["kind"] for d in local["items"]] == ["embed", "analyze"]  # newest first
    local, remote = _both(env, api, ["dead", "show", str(local["items"][1]["id"])])
    assert local == remote and local["dead_job"]["last_error"] == "poison analyze payload"
    local, remote = _both(env, api, ["models", "list"])
    assert local == remote and sorted(m["state"] for m in local["items"]) == ["active", "shadow"], local


def test_export_over_the_api_writes_the_files_a_local_export_writes(
    env: dict[str, str | None], api: str, tmp_path: Path
) -> None:
    remote_args = ["--api", api, "--api-key", KEY]
    for what in ("tracks", "detections"):
        # NDJSON on stdout: the same lines, byte for byte
        local = _run(env, ["export", "--what", what, "--json"]).stdout_bytes
        remote = _run(env, ["export", "--what", what, "--json", *remote_args]).stdout_bytes
        lines = local.splitlines()
        assert local == remote and len(lines) == (N_TRACKS if what == "tracks" else 2)
        assert all(isinstance(json.loads(line), dict) for line in lines)
        for fmt in ("csv", "jsonl", "parquet"):
            here, there = tmp_path / f"local-{what}.{fmt}", tmp_path / f"api-{what}.{fmt}"
            _run(env, ["export", "--what", what, "--format", fmt, "--out", str(here)])
            done = _run(env, ["export", "--what", what, "--format", fmt, "--out", str(there), *remote_args])
            assert f"exported {len(lines)} {what}" in done.output
            if fmt == "parquet":
                assert pq.read_table(here).equals(pq.read_table(there))
            else:
                assert here.read_bytes() == there.read_bytes()
    # AND the filters travel as the API's query
    feed = _run(env, ["export", "--json", "--source", "feed", *remote_args]).stdout_bytes
    assert {json.loads(line)["source"] for line in feed.splitlines()} == {"feed"}


def test_every_read_command_prints_its_human_view_over_the_api(
    catalogue: Services, env: dict[str, str | None], api: str
) -> None:
    remote = ["--api", api, "--api-key", KEY]
    track = _track_ids(catalogue)[0]
    views = {
        ("status",): "tracks: 12",
        ("search", "dolphins", "--mode", "keyword"): "keyword search",
        ("tracks", "--limit", "2"): "raise --limit",
        ("track", str(track)): "embedded with: all-MiniLM-L6-v2",
        ("trace", OBJECT): "bad row at line 13",
        ("dead", "list"): "dead jobs (newest first, 2 in all)",
        ("models", "list"): "active",
    }
    for args, expected in views.items():
        out = _run(env, [*args, *remote]).output
        assert expected in out, (args, out)


def test_a_wrong_key_is_refused_with_the_401_title_and_no_traceback(env: dict[str, str | None], api: str) -> None:
    for args in (["status"], ["search", "salt"], ["export", "--json"], ["dead", "list"]):
        result = CliRunner().invoke(main, [*args, "--api", api, "--api-key", "not-the-key"], env=env)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (args, result.output)
        assert "401 Unauthorized" in result.output and "missing or invalid API key" in result.output, result.output
        assert "Traceback" not in result.output


def test_a_missing_track_or_dead_job_is_one_not_found_line_locally_and_over_the_api(
    env: dict[str, str | None], api: str
) -> None:
    missing = "999999"
    for args, line in (
        (["track", missing], f"no track {missing}"),
        (["dead", "show", missing], f"no dead job {missing}"),
    ):
        for where in ([], ["--api", api, "--api-key", KEY]):
            result = CliRunner().invoke(main, [*args, *where], env=env)
            assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (args, where, result.output)
            assert result.output == f"Error: {line}\n", (args, where, result.output)
        # AND a refusal other than 404 keeps its own line
        refused = CliRunner().invoke(main, [*args, "--api", api, "--api-key", "not-the-key"], env=env)
        assert refused.exit_code == 1 and "401 Unauthorized" in refused.output, refused.output
        assert line not in refused.output and "Traceback" not in refused.output


def test_an_unreachable_api_is_one_clear_line(env: dict[str, str | None]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = CliRunner().invoke(main, ["status", "--api", url, "--api-key", KEY], env=env)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"cannot reach the API at {url}" in result.output and "Traceback" not in result.output


def test_the_url_and_key_come_from_the_environment(env: dict[str, str | None], api: str) -> None:
    local = json.loads(_run(env, ["models", "list", "--json"]).stdout)
    remote = json.loads(
        _run({**env, "CONTENTFN_API_URL": api, "CONTENTFN_API_KEY": KEY}, ["models", "list", "--json"]).stdout
    )
    assert local == remote
    # A key typed without a URL is a mistake, refused before anything is read
    bare = CliRunner().invoke(main, ["status", "--json", "--api-key", KEY], env=env)
    assert bare.exit_code == 2 and "--api-key goes with --api URL" in bare.output


def test_the_client_follows_cursors_to_the_end_of_every_list(catalogue: Services, api: str) -> None:
    with ApiClient.remote(api, KEY) as whole, ApiClient.remote(api, KEY, page_size=5) as paged:
        assert [t.id for t in paged.tracks(filters={}, sort="oldest", limit=100).items] == _track_ids(catalogue)
        assert paged.tracks(filters={}, sort="oldest", limit=100) == whole.tracks(filters={}, sort="oldest", limit=100)
        assert paged.trace(OBJECT, None) == whole.trace(OBJECT, None)
        one_by_one = ApiClient.remote(api, KEY, page_size=1)
        assert one_by_one.dead_jobs(kind=None, limit=10).items == whole.dead_jobs(kind=None, limit=10).items
        one_by_one.close()
        # AND a refusal is a typed problem: status, title and detail
        with pytest.raises(ApiProblem) as refused:
            whole.track(999_999)
        assert (refused.value.status, refused.value.title, refused.value.code) == (404, "Not Found", "not_found")


class _Proxy(BaseHTTPRequestHandler):
    """What stands in front of an API that is down: a 502 page in HTML, not a problem document;
    and, on /stats, an answer of another version (a field of another type)."""

    def do_GET(self) -> None:
        other = self.path.startswith("/stats")
        body = b'{"tracks": "many"}' if other else b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(200 if other else 502)
        self.send_header("content-type", "application/json" if other else "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_proxys_error_page_is_named_by_its_status_and_an_unknown_answer_as_unknown(
    env: dict[str, str | None],
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = CliRunner().invoke(main, ["dead", "list", "--api", url], env={**env, "CONTENTFN_API_KEY": KEY})
        unknown = CliRunner().invoke(main, ["status", "--json", "--api", url], env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"the API at {url} refused GET /dead-jobs: 502 Bad Gateway" in result.output
    assert "Traceback" not in result.output and "<html>" not in result.output
    # AND an answer this CLI's models do not describe is named as such, nothing half-printed
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output, unknown.output
    assert "is not a Stats this CLI knows" in unknown.output and "same version" in unknown.output
