"""Provenance and deletions on a real PostgreSQL, through the real ingest, embed, enrich and analyze
functions: a deleted object takes with it exactly what it alone produced."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.analyze.core import run_analyze_batch
from functions.embed.core import run_embed_batch
from functions.enrich.core import run_enrich_batch
from functions.ingest.core import handle_object_created
from functions.ingest.deletion import NewerVersionNotIngested, handle_object_deleted
from local.workers import BucketWatcher
from shared.embedder.base import Embedder
from shared.events import ObjectCreated, ObjectDeleted
from shared.services import Services
from shared.store.provenance import link_pages
from tests.intel_fixtures import intel_services  # noqa: F401

# Every table a deletion may touch; a snapshot of them all tells "nothing changed" exactly.
TABLES = ("tracks", "embeddings", "enrichments", "analyses", "track_objects", "track_pages", "jobs")


def _row(source_id: str, title: str) -> dict[str, Any]:
    return {"id": source_id, "artist": "Harbor Lights", "title": title, "lyrics": f"{title}: the tide rolls in"}


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _put(services: Services, key: str, rows: list[dict[str, Any]]) -> ObjectCreated:
    info = services.blob.put(services.settings.bucket, key, _jsonl(rows))
    event = ObjectCreated(bucket=info.bucket, key=info.key, size=info.size, generation=info.generation)
    assert handle_object_created(event, services).result.status == "ok"
    return event


def _query(services: Services, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with services.db.connection() as conn:
        rows = conn.execute(sql, params or None).fetchall()
        conn.commit()
    return rows


def _counts(services: Services) -> dict[str, int]:
    return {t: int(_query(services, f"SELECT count(*) FROM {t}")[0][0]) for t in TABLES}


def _snapshot(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    return {t: _query(services, f"SELECT * FROM {t} ORDER BY 1, 2") for t in TABLES}


def _titles(services: Services) -> list[str]:
    return [r[0] for r in _query(services, "SELECT title FROM tracks ORDER BY title")]


def _run_pipeline(services: Services) -> None:
    while (
        run_embed_batch(services).claimed or run_enrich_batch(services).claimed or run_analyze_batch(services).claimed
    ):
        pass


@pytest.fixture
def pipeline(intel_services: Callable[..., Services], embedder: Embedder) -> Services:  # noqa: F811
    services = intel_services()
    services._embedder = embedder
    return services


@pytest.fixture(scope="module")
def embedder(model_dir: Path) -> Embedder:
    from shared.embedder.onnx import OnnxEmbedder

    return OnnxEmbedder(model_dir)


def test_ingest_links_every_row_to_its_object_version_and_line(services: Services) -> None:
    # GIVEN a file whose third line repeats the first one's key (the last row for a key wins)
    event = _put(services, "a.jsonl", [_row("s1", "One"), _row("s2", "Two"), _row("s1", "One again")])
    # THEN each track is linked once to this version, at the line its winning row starts on
    links = _query(
        services,
        "SELECT t.source_id, o.bucket, o.object_key, o.version, o.line FROM track_objects o"
        " JOIN tracks t ON t.id = o.track_id ORDER BY t.source_id",
    )
    assert links == [
        ("s1", event.bucket, "a.jsonl", event.version, 3),
        ("s2", event.bucket, "a.jsonl", event.version, 2),
    ]
    # AND a new version of the file links its tracks again, unchanged ones included
    info = services.blob.put(services.settings.bucket, "a.jsonl", _jsonl([_row("s2", "Two")]))
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation + "-2"), services)
    versions = _query(
        services,
        "SELECT count(*) FROM track_objects o JOIN tracks t ON t.id = o.track_id WHERE t.source_id = 's2'",
    )
    assert versions == [(2,)]


def test_deleting_an_object_removes_exactly_what_it_alone_produced_and_a_second_delete_changes_nothing(
    pipeline: Services,
) -> None:
    services = pipeline
    # GIVEN object A feeding Alone, Paged and Shared; object B feeding Shared and Other; a scraped
    # page also feeding Paged; every track embedded, enriched and analysed
    a = _put(services, "a.jsonl", [_row("alone", "Alone"), _row("paged", "Paged"), _row("shared", "Shared")])
    _put(services, "b.jsonl", [_row("shared", "Shared"), _row("other", "Other")])
    with services.db.connection() as conn:
        (paged_hash,) = conn.execute("SELECT content_hash FROM tracks WHERE source_id = 'paged'").fetchone()
        link_pages(conn, [("upload", "paged", paged_hash, "https://lyrics.example/paged")])
        conn.commit()
    _run_pipeline(services)
    before = _counts(services)
    assert before["tracks"] == 4 and before["embeddings"] == 4 and before["analyses"] >= 4
    assert before["enrichments"] == 4 and before["jobs"] == 0
    (alone_id,) = _query(services, "SELECT id FROM tracks WHERE source_id = 'alone'")[0]

    # WHEN object A is deleted (every version: the local bucket's files have one)
    report = handle_object_deleted(ObjectDeleted(bucket=a.bucket, key=a.key), services)

    # THEN only Alone went, with its embedding, enrichment and analyses; Paged and Shared stay
    assert _titles(services) == ["Other", "Paged", "Shared"]
    after = _counts(services)
    per_track_analyses = before["analyses"] // 4
    assert after["embeddings"] == 3 and after["enrichments"] == 3 and after["analyses"] == 3 * per_track_analyses
    assert after["track_objects"] == before["track_objects"] - 3 and after["track_pages"] == 1
    assert report.links == 3 and report.tracks == 1 and report.track_ids == [alone_id]
    assert (report.embeddings, report.enrichments, report.analyses) == (1, 1, per_track_analyses)
    # AND the ledger records the deletion, on the object and on the track it removed
    ledger = _query(services, "SELECT subject, status FROM ledger WHERE stage = 'deleted' ORDER BY subject")
    assert ledger == [(f"object:{a.uri}", "ok"), (f"track:{alone_id}", "ok")]

    # WHEN the same deletion is delivered again
    snapshot = _snapshot(services)
    again = handle_object_deleted(ObjectDeleted(bucket=a.bucket, key=a.key), services)
    # THEN nothing changes
    assert _snapshot(services) == snapshot
    assert (again.links, again.tracks) == (0, 0)


def test_deleting_one_version_keeps_the_tracks_a_newer_version_still_feeds(services: Services) -> None:
    # GIVEN version 1 of a file with X and Y, then version 2 with Y only (an overwrite), both ingested
    v1 = _put(services, "v.jsonl", [_row("x", "X"), _row("y", "Y")])
    v2 = _put(services, "v.jsonl", [_row("y", "Y")])
    assert v1.version != v2.version
    # WHEN the storage reports version 1 deleted (GCS does so for an overwritten generation)
    report = handle_object_deleted(ObjectDeleted(bucket=v1.bucket, key=v1.key, generation=v1.version), services)
    # THEN X, which only version 1 held, is gone; Y stays, linked to version 2
    assert _titles(services) == ["Y"] and report.tracks == 1
    assert _query(services, "SELECT version FROM track_objects") == [(v2.version,)]
    # AND version 1's idempotency record is gone, version 2's kept
    assert [r[0] for r in _query(services, "SELECT key FROM idempotency")] == [v2.idempotency_key]


def test_an_overwritten_versions_deletion_waits_for_the_new_versions_ingest(services: Services) -> None:
    # GIVEN version 1 ingested, then overwritten by version 2 that is not ingested yet
    v1 = _put(services, "o.jsonl", [_row("x", "X"), _row("y", "Y")])
    info = services.blob.put(services.settings.bucket, "o.jsonl", _jsonl([_row("y", "Y")]))
    v2 = ObjectCreated(bucket=info.bucket, key=info.key, size=info.size, generation=info.generation)
    gone = ObjectDeleted(bucket=v1.bucket, key=v1.key, generation=v1.version)
    # WHEN version 1's deletion arrives first THEN it is refused for a retry and changes nothing
    snapshot = _snapshot(services)
    with pytest.raises(NewerVersionNotIngested):
        handle_object_deleted(gone, services)
    assert _snapshot(services) == snapshot
    # WHEN version 2 is ingested and the deletion retried
    handle_object_created(v2, services)
    (y_id,) = _query(services, "SELECT id FROM tracks WHERE source_id = 'y'")[0]
    handle_object_deleted(gone, services)
    # THEN only X went; Y kept its id (it was never removed and created again)
    assert _query(services, "SELECT id, title FROM tracks") == [(y_id, "Y")]


def test_an_overwritten_versions_deletion_goes_ahead_once_the_new_version_is_refused(services: Services) -> None:
    # GIVEN version 1 ingested, then overwritten by a version 2 that is not UTF-8
    v1 = _put(services, "r.jsonl", [_row("x", "X")])
    info = services.blob.put(services.settings.bucket, "r.jsonl", b"\xff\xfe not text\n")
    v2 = ObjectCreated(bucket=info.bucket, key=info.key, size=info.size, generation=info.generation)
    # WHEN version 2 is refused by ingest (poison: ledger + dead-letter store)
    report = handle_object_created(v2, services).result
    assert report.status == "rejected" and report.generation == info.generation
    # THEN the deletion of version 1 does not wait for it: X, which only version 1 held, goes
    gone = handle_object_deleted(ObjectDeleted(bucket=v1.bucket, key=v1.key, generation=v1.version), services)
    assert gone.tracks == 1 and _titles(services) == []


def test_a_file_removed_from_the_local_bucket_removes_its_tracks(services: Services) -> None:
    # GIVEN the local bucket watcher has delivered a file (stable for one poll, then delivered)
    watcher = BucketWatcher(services)
    services.blob.put(services.settings.bucket, "w.jsonl", _jsonl([_row("w1", "W1"), _row("w2", "W2")]))
    watcher.tick()
    watcher.tick()
    assert _titles(services) == ["W1", "W2"]
    # WHEN the file goes from the folder
    (services.settings.buckets_dir / services.settings.bucket / "w.jsonl").unlink()
    watcher.tick()
    # THEN its tracks are removed and the deletion is in the ledger; a later poll does nothing more
    assert _titles(services) == []
    deleted = _query(
        services, "SELECT detail->>'tracks' FROM ledger WHERE stage = 'deleted' AND subject LIKE 'object:%'"
    )
    assert deleted == [("2",)]
    watcher.tick()
    assert _query(services, "SELECT attempts FROM ledger WHERE stage = 'deleted' AND subject LIKE 'object:%'") == [(1,)]


def test_a_file_rewritten_in_the_local_bucket_drops_the_tracks_only_its_old_version_held(services: Services) -> None:
    # GIVEN the watcher delivered a file with R1 and R2
    watcher = BucketWatcher(services)
    services.blob.put(services.settings.bucket, "r.jsonl", _jsonl([_row("r1", "R1"), _row("r2", "R2")]))
    watcher.tick()
    watcher.tick()
    (r2_id,) = _query(services, "SELECT id FROM tracks WHERE source_id = 'r2'")[0]
    # WHEN the file is rewritten with R2 and R3 and the watcher delivers the new version
    services.blob.put(services.settings.bucket, "r.jsonl", _jsonl([_row("r2", "R2"), _row("r3", "R3")]))
    watcher.tick()
    watcher.tick()
    # THEN R1 is gone, R2 kept its id, R3 is new; every link names the new version
    assert _titles(services) == ["R2", "R3"]
    assert _query(services, "SELECT id FROM tracks WHERE source_id = 'r2'") == [(r2_id,)]
    assert len(_query(services, "SELECT DISTINCT version FROM track_objects")) == 1
