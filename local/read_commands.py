"""``contentfn trace`` and ``contentfn export``: read what the pipeline made of a file, and take the
catalogue out (any database: local, or a cloud one from ``CONTENTFN_DATABASE_URL``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.config import load_settings
from shared.errors import ConfigError

__all__ = ["export_command", "trace_command"]

console = Console()

_STATE_STYLE = {"done": "green", "pending": "yellow", "dead": "red", "rejected": "red"}


def _services() -> Any:
    from shared.services import Services

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    # Reading a store does not change its schema.
    return Services.from_settings(settings, migrate=False)


@click.command("trace")
@click.argument("key")
@click.option("--bucket", default=None, help="the object's bucket, when the key is in several")
@click.option("--json", "as_json", is_flag=True, help="print the whole trace as JSON")
def trace_command(key: str, bucket: str | None, as_json: bool) -> None:
    """Where is my file? KEY's ingest outcome and bad rows, then every track (or the image) it
    produced through embed, enrich, analyze (or detect): done, pending, or dead with the error."""
    from shared.store.trace import find_object_uris, trace_object

    svc = _services()
    try:
        with svc.db.connection() as conn:
            uris = find_object_uris(conn, key, bucket)
            if len(uris) > 1:
                raise click.ClickException(f"{key} was ingested from {len(uris)} buckets; pass --bucket")
            trace = trace_object(conn, uris[0]) if uris else None
            conn.commit()
    finally:
        svc.close()
    if trace is None:
        raise click.ClickException(f"{key} was never ingested (is the stack running? try `contentfn status`)")
    doc = trace.as_dict()
    if as_json:
        click.echo(json.dumps(doc, default=_iso, indent=2))
        return
    ingest = doc["ingest"]
    console.print(
        f"{doc['object']}: ingest {ingest['status']} (attempt {ingest['attempts']}),"
        f" rows ok {ingest['rows_ok']}, bad {ingest['rows_bad']}",
        soft_wrap=True,
    )
    for bad in ingest["bad_rows"]:
        console.print(escape(f"  bad row at line {bad['line']}: {bad['reason']}"), soft_wrap=True)
    if ingest["error"] and not ingest["bad_rows"]:
        console.print(escape(f"  error: {ingest['error']}"), soft_wrap=True)
    kinds = list(doc["summary"])
    table = Table("id", "track" if trace.subjects and trace.subjects[0].kind == "track" else "image", *kinds)
    for subject in doc["subjects"]:
        table.add_row(str(subject["id"]), subject["label"], *(_cell(subject["stages"][k]) for k in kinds))
    console.print(table if doc["subjects"] else "no tracks found for this object")
    for kind, counts in doc["summary"].items():
        console.print(f"{kind}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))


def _cell(stage: dict[str, Any]) -> str:
    state = stage["state"]
    text = state
    if state == "pending" and stage["next_attempt_at"] is not None:
        text += f" (attempt {stage['attempts'] + 1} at {stage['next_attempt_at']:%H:%M:%S})"
    if state in ("dead", "rejected"):
        how = "replayable" if stage["replayable"] else "not replayable"
        text += f": {stage['error']}" + (f" [dead job {stage['dead_job_id']}, {how}]" if state == "dead" else "")
    return f"[{_STATE_STYLE[state]}]{escape(text)}[/]"


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@click.command("export")
@click.option("--what", type=click.Choice(["tracks", "detections"]), default="tracks", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--artist", default=None, help="only this artist (case-insensitive; tracks)")
@click.option("--source", default=None, help="only this source (tracks)")
@click.option("--since", type=click.DateTime(), default=None, help="only rows updated (detections: created) since")
@click.option("--until", type=click.DateTime(), default=None, help="only rows updated (detections: created) before")
def export_command(
    what: str,
    fmt: str,
    out: Path,
    artist: str | None,
    source: str | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Tracks with their profiles and lyric features, or detections, to CSV, JSON Lines or Parquet,
    streamed from the database in batches (memory stays flat)."""
    from local.export import ExportFormat, write_export
    from shared.store.export import ExportFilters, ExportKind, export_rows

    if what == "detections" and (artist or source):
        raise click.UsageError("--artist and --source filter tracks only")
    if fmt == "parquet":
        _require_pyarrow()  # before the query, so a missing extra costs nothing and leaves no file
    filters = ExportFilters(artist=artist, source=source, since=_aware(since), until=_aware(until))
    kind: ExportKind = "tracks" if what == "tracks" else "detections"
    formats: dict[str, ExportFormat] = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}
    svc = _services()
    try:
        with svc.db.connection() as conn:
            n = write_export(export_rows(conn, kind, filters), kind, formats[fmt], out)
            conn.rollback()
    finally:
        svc.close()
    console.print(f"exported {n:,} {what} to {out} ({fmt})")


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401  (only whether it imports)
    except ImportError:
        raise click.ClickException(
            "Parquet export needs pyarrow, which is not installed: pip install 'contentfn[export]'"
            " (make setup installs it); csv and jsonl need nothing more"
        ) from None


def _aware(value: datetime | None) -> datetime | None:
    # click.DateTime gives naive times: read them as the local time zone, as a user types them.
    return None if value is None else value.astimezone()
