"""ingest on a real PostgreSQL: idempotent redelivery, bad rows, refused files, change detection."""

from __future__ import annotations

import json
import threading
from typing import Any

from functions.ingest.core import handle_object_created
from functions.ingest.reports import FileReport, RejectedReport
from shared.errors import IdempotencyInProgress
from shared.events import ObjectCreated
from shared.services import Services


def _track(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"t{i}",
        "artist": f"Artist {i % 7}",
        "title": f"Song {i}",
        "lyrics": f"line one {i}\nline two",
        **extra,
    }


def _put(services: Services, key: str, data: bytes) -> ObjectCreated:
    info = services.blob.put(services.settings.bucket, key, data)
    return ObjectCreated(bucket=info.bucket, key=info.key, size=info.size, generation=info.generation)


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _snapshot(services: Services) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with services.db.connection() as conn:
        tracks = conn.execute(
            "SELECT id, source, source_id, artist, title, lyrics, metadata, content_hash, updated_at FROM tracks"
            " ORDER BY id"
        ).fetchall()
        jobs = conn.execute("SELECT kind, payload, dedup_key FROM jobs WHERE kind = 'embed' ORDER BY id").fetchall()
        conn.commit()
    return tracks, jobs


def test_same_object_delivered_three_times_gives_the_rows_of_one_delivery(services: Services) -> None:
    # GIVEN one uploaded file
    event = _put(services, "tracks.jsonl", _jsonl([_track(i, genre="pop") for i in range(50)]))
    # WHEN its ObjectCreated is delivered three times
    first = handle_object_created(event, services).result
    after_first = _snapshot(services)
    second = handle_object_created(event, services)
    third = handle_object_created(event, services)
    # THEN the data is exactly that of one delivery and the redeliveries replay the report
    assert isinstance(first, FileReport)
    assert first.status == "ok" and first.inserted == 50 and first.embed_jobs == 50
    assert _snapshot(services) == after_first
    assert second.replayed and third.replayed and second.result == first
    tracks, jobs = after_first
    assert len(tracks) == 50 and len(jobs) == 50
    assert tracks[0][6] == {"genre": "pop"}  # extra column kept as metadata


def test_concurrent_duplicate_delivery_is_told_to_retry_and_causes_no_second_effect(services: Services) -> None:
    event = _put(services, "race.jsonl", _jsonl([_track(i) for i in range(2000)]))
    outcomes: list[str] = []

    def deliver() -> None:
        try:
            result = handle_object_created(event, services)
            outcomes.append("replayed" if result.replayed else "ran")
        except IdempotencyInProgress:
            outcomes.append("in_progress")

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes.count("ran") == 1, outcomes
    tracks, jobs = _snapshot(services)
    assert len(tracks) == 2000 and len(jobs) == 2000


def test_file_with_ten_percent_bad_rows_lands_the_rest_and_reports_each_bad_row(services: Services) -> None:
    lines = []
    bad_lines = []
    for i in range(100):
        if i % 10 == 3:
            bad = [
                '{"artist": "A", "title": "no lyrics"}',
                "{not json",
                '{"artist": "", "title": "T", "lyrics": "L"}',
                '["an", "array"]',
            ][len(bad_lines) % 4]
            lines.append(bad)
            bad_lines.append(i + 1)
        else:
            lines.append(json.dumps(_track(i)))
    event = _put(services, "mixed.jsonl", ("\n".join(lines) + "\n").encode())
    report = handle_object_created(event, services).result
    assert isinstance(report, FileReport) and report.status == "partial"
    assert report.rows_ok == 90 and report.rows_bad == 10
    assert [b.line for b in report.bad_rows] == bad_lines
    assert all(b.reason for b in report.bad_rows)
    tracks, _ = _snapshot(services)
    assert len(tracks) == 90
    with services.db.connection() as conn:
        row = conn.execute(
            "SELECT status, last_error FROM ledger WHERE subject = %s", (f"object:{event.uri}",)
        ).fetchone()
        conn.commit()
    assert row[0] == "partial" and "10 bad row(s)" in row[1]


def _ledger_and_dead(services: Services, event: ObjectCreated) -> tuple[Any, int]:
    with services.db.connection() as conn:
        row = conn.execute(
            "SELECT status, last_error FROM ledger WHERE subject = %s AND stage = 'ingested'", (f"object:{event.uri}",)
        ).fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_jobs WHERE dedup_key = %s", (event.idempotency_key,)).fetchone()
        conn.commit()
    return row, dead[0]


def test_oversized_non_utf8_and_unknown_files_are_refused_and_nothing_else_is_lost(services: Services) -> None:
    # GIVEN a good file already ingested
    good = handle_object_created(_put(services, "good.jsonl", _jsonl([_track(i) for i in range(5)])), services)
    assert good.result.status == "ok"
    big = _put(services, "big.jsonl", b"x" * (services.settings.max_upload_bytes + 1))
    latin1 = _put(services, "latin1.csv", "artist,title,lyrics\nBj\xf6rk,Song,words\n".encode("latin-1"))
    unknown = _put(services, "notes.txt", b"hello")
    expectations = {big: "bytes; the cap is", latin1: "UTF-8", unknown: ".txt"}
    for event, needle in expectations.items():
        # WHEN each bad file arrives (twice, as at-least-once delivery may do)
        report = handle_object_created(event, services).result
        again = handle_object_created(event, services)
        # THEN it is refused with a clear error in the ledger and one dead letter
        assert isinstance(report, RejectedReport) and needle in report.error, report
        assert again.replayed and again.result == report
        row, dead = _ledger_and_dead(services, event)
        assert row[0] == "rejected" and needle in row[1]
        assert dead == 1
    tracks, jobs = _snapshot(services)
    assert len(tracks) == 5 and len(jobs) == 5


def test_reupload_with_one_changed_track_updates_it_and_queues_only_its_embedding(services: Services) -> None:
    rows = [_track(i) for i in range(10)]
    handle_object_created(_put(services, "v1.jsonl", _jsonl(rows)), services)
    rows[4] = {**rows[4], "lyrics": "completely new words"}
    rows[5] = {**rows[5], "mood": "calm"}  # metadata-only change: no re-embedding
    report = handle_object_created(_put(services, "v2.jsonl", _jsonl(rows)), services).result
    assert isinstance(report, FileReport)
    assert report.inserted == 0 and report.updated == 2 and report.unchanged == 8
    assert report.embed_jobs == 1
    _, jobs = _snapshot(services)
    assert len(jobs) == 11


def test_csv_json_and_jsonl_of_the_same_tracks_give_identical_rows(services: Services) -> None:
    rows = [_track(i) for i in range(3)]
    handle_object_created(_put(services, "a.jsonl", _jsonl(rows)), services)
    first, _ = _snapshot(services)
    csv_body = "id,artist,title,lyrics\n" + "".join(
        f'{r["id"]},{r["artist"]},{r["title"]},"{r["lyrics"]}"\n' for r in rows
    )
    for key, body in (("b.csv", csv_body.encode("utf-8-sig")), ("c.json", json.dumps(rows).encode())):
        report = handle_object_created(_put(services, key, body), services).result
        assert isinstance(report, FileReport) and report.unchanged == 3, (key, report)
    after, _ = _snapshot(services)
    assert after == first
