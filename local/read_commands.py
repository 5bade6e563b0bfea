"""The CLI's read commands: ``search``, ``tracks``, ``track``, ``trace`` and ``export`` (``status``,
``dead list|show`` and ``models list`` live with their groups in :mod:`local.cli`).

Each reads the configured database (local, or a cloud one from ``CONTENTFN_DATABASE_URL``) through
the API core in process, or a deployed API with ``--api URL`` (:mod:`local.read_access`); ``--json``
prints the API's answer, the same document either way."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from local.read_access import api_options, filter_options, filter_query, read_client, refuse_key_without_url
from shared.config import load_settings
from shared.errors import ConfigError

# The client, the API's models and the store load when a command runs, not for `contentfn --help`.
if TYPE_CHECKING:
    from local.api_client import Query
    from local.export import ExportFormat
    from shared.store.export import ExportFilters, ExportKind

__all__ = [
    "export_command",
    "rows_of_lines",
    "search_command",
    "trace_command",
    "track_command",
    "tracks_command",
]

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


@click.command("search")
@click.argument("text")
@click.option("-k", default=10, show_default=True, type=click.IntRange(1, 100), help="number of results")
@click.option(
    "--mode",
    type=click.Choice(["semantic", "keyword", "hybrid"]),
    default="semantic",
    show_default=True,
    help="by meaning, by words over artist, title and lyrics, or both fused",
)
@filter_options
@api_options
def search_command(
    text: str, k: int, mode: str, as_json: bool, api_url: str | None, api_key: str | None, **filters: Any
) -> None:
    """Search the catalogue (no server needed: without --api it reads the database)."""
    from local.api_client import json_document

    with read_client(api_url, api_key) as client:
        found = client.search(text, k=k, mode=mode, filters=filter_query(**filters))
    if as_json:
        click.echo(json_document(found))
        return
    table = Table("score", "id", "artist", "title", "snippet", title=f"{found.mode} search, model {found.model}")
    for h in found.results:
        table.add_row(f"{h.score:.3f}", str(h.id), escape(h.artist), escape(h.title), escape(h.snippet))
    console.print(table if found.results else "no results (nothing embedded yet?)")


@click.command("tracks")
@filter_options
@click.option(
    "--sort",
    type=click.Choice(["newest", "oldest", "artist", "title", "quality"]),
    default="newest",
    show_default=True,
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="tracks listed")
@api_options
def tracks_command(
    sort: str, limit: int, as_json: bool, api_url: str | None, api_key: str | None, **filters: Any
) -> None:
    """Browse the catalogue by what was learned about each track (GET /tracks, every page up to --limit)."""
    from local.api_client import json_document

    with read_client(api_url, api_key) as client:
        page = client.tracks(filters=filter_query(**filters), sort=sort, limit=limit)
    if as_json:
        click.echo(json_document(page))
        return
    table = Table("id", "artist", "title", "source", "sentiment", "quality", "themes", "explicit", "added")
    for t in page.items:
        p = t.profile
        table.add_row(
            str(t.id),
            escape(t.artist),
            escape(t.title),
            escape(t.source),
            p.sentiment if p else "",
            str(p.quality) if p else "",
            escape(", ".join(p.themes)) if p else "",
            "" if t.explicit is None else "yes" if t.explicit else "no",
            f"{t.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table if page.items else "no tracks match")
    if page.next_cursor is not None:
        console.print(f"more than {len(page.items)}: raise --limit to see them")


@click.command("track")
@click.argument("track_id", metavar="ID", type=click.IntRange(1, 2**63 - 1))
@api_options
def track_command(track_id: int, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """One track's whole profile: enrichments, analyses, embedding models, provenance, stage trail."""
    from local.api_client import json_document, or_not_found

    with read_client(api_url, api_key) as client:
        profile = or_not_found(lambda: client.track(track_id), f"no track {track_id}")
    if as_json:
        click.echo(json_document(profile))
        return
    out = console.print
    out(escape(f"{profile.id}: {profile.artist} - {profile.title}"), soft_wrap=True, highlight=False)
    out(
        escape(
            f"source {profile.source}/{profile.source_id}, added {profile.created_at:%Y-%m-%d %H:%M},"
            f" updated {profile.updated_at:%Y-%m-%d %H:%M}"
        ),
        soft_wrap=True,
    )
    out("embedded with: " + (", ".join(profile.embedded_models) or "no model yet"), soft_wrap=True, highlight=False)
    for a in profile.analyses:
        pr = a.profile
        mark = "chosen" if a.chosen else "current" if a.current else "stale"
        out(
            escape(
                f"analysis {a.analyzer} ({mark}): {pr.sentiment} {pr.sentiment_score:+.2f}, quality {pr.quality},"
                f" complexity {pr.complexity:.2f}, themes {', '.join(pr.themes) or '-'}; confidence {a.confidence:.2f}"
            ),
            soft_wrap=True,
        )
    if not profile.analyses:
        out("not analysed yet")
    e = profile.enrichments
    if e.features is not None:
        out(f"features ({'current' if e.features.current else 'stale'}): {len(e.features.data)} values")
    if e.metadata is not None:
        matched = f"matched {escape(e.metadata.name or '')}" if e.metadata.matched else "no match"
        out(f"metadata ({'current' if e.metadata.current else 'stale'}): {matched}", soft_wrap=True)
    table = Table("subject", "stage", "status", "attempts", "error", title="stages")
    for st in profile.stages:
        table.add_row(escape(st.subject), st.stage, st.status, str(st.attempts), escape(st.last_error or ""))
    if profile.stages:
        out(table)
    out("the whole profile: --json", style="dim")


@click.command("trace")
@click.argument("key")
@click.option("--bucket", default=None, help="the object's bucket, when the key is in several")
@api_options
def trace_command(key: str, bucket: str | None, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Where is my file? KEY's ingest outcome and bad rows, then every track (or the image) it
    produced through embed, enrich, analyze (or detect): done, pending, or dead with the error."""
    from local.api_client import ApiProblem, json_document

    with read_client(api_url, api_key) as client:
        try:
            trace = client.trace(key, bucket)
        except ApiProblem as exc:
            if exc.status == 404 and exc.code == "not_found":
                raise click.ClickException(
                    f"{key} was never ingested (is the stack running? try `contentfn status`)"
                ) from None
            if exc.status == 409 and exc.code == "ambiguous":
                raise click.ClickException(f"{key} was ingested from several buckets; pass --bucket") from None
            raise
    if as_json:
        click.echo(json_document(trace))
        return
    doc = trace.model_dump()
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
    table = Table("id", "track" if trace.items and trace.items[0].kind == "track" else "image", *kinds)
    for subject in doc["items"]:
        table.add_row(str(subject["id"]), escape(subject["label"]), *(_cell(subject["stages"].get(k)) for k in kinds))
    console.print(table if doc["items"] else "no tracks found for this object")
    for kind, counts in doc["summary"].items():
        console.print(f"{kind}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))


def _cell(stage: dict[str, Any] | None) -> str:
    if stage is None:
        return ""
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
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default=None, help="the file's format")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="the file to write")
@click.option("--artist", default=None, help="only this artist (case-insensitive; tracks)")
@click.option("--source", default=None, help="only this source (tracks)")
@click.option("--since", type=click.DateTime(), default=None, help="only rows updated (detections: created) since")
@click.option("--until", type=click.DateTime(), default=None, help="only rows updated (detections: created) before")
@api_options
def export_command(
    what: str,
    fmt: str | None,
    out: Path | None,
    artist: str | None,
    source: str | None,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
    api_url: str | None,
    api_key: str | None,
) -> None:
    """Tracks with their profiles and lyric features, or detections, to CSV, JSON Lines or Parquet
    (--format, --out), or as NDJSON on stdout (--json); streamed in batches, so memory stays flat.
    With --api the rows come from the API's GET /export and the file is written here."""
    from shared.store.export import ExportFilters

    if what == "detections" and (artist or source):
        raise click.UsageError("--artist and --source filter tracks only")
    if as_json and (fmt or out):
        raise click.UsageError("--json writes NDJSON to stdout: leave out --format and --out")
    if not as_json and (fmt is None or out is None):
        raise click.UsageError("give --format and --out (or --json for NDJSON on stdout)")
    if fmt == "parquet":
        _require_pyarrow()  # before the query, so a missing extra costs nothing and leaves no file
    kind: ExportKind = "tracks" if what == "tracks" else "detections"
    formats: dict[str, ExportFormat] = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}
    target = None if as_json or fmt is None or out is None else (formats[fmt], out)
    since, until = _aware(since), _aware(until)
    if api_url is None:
        refuse_key_without_url(api_url, api_key)
        n = _export_local(kind, ExportFilters(artist=artist, source=source, since=since, until=until), target)
    else:
        query: Query = {
            "what": what,
            "artist": artist,
            "source": source,
            "since": None if since is None else since.isoformat(),
            "until": None if until is None else until.isoformat(),
        }
        with read_client(api_url, api_key) as client, client.export_lines(query) as lines:
            n = _write_lines(lines, kind, target)
    if target is not None:
        console.print(f"exported {n:,} {what} to {target[1]} ({target[0]})")


def _export_local(kind: ExportKind, filters: ExportFilters, target: tuple[ExportFormat, Path] | None) -> int:
    """Rows straight from the database's server-side cursor (no JSON round trip: a local export of
    a large catalogue is CPU-bound); the lines are the API's, both written by ``json_line``."""
    from local.export import write_export
    from shared.store.export import export_rows, json_line

    svc = _services()
    try:
        with svc.db.connection() as conn:
            rows = export_rows(conn, kind, filters)
            n = write_export(rows, kind, *target) if target else _echo_lines(json_line(r) for r in rows)
            conn.rollback()
    finally:
        svc.close()
    return n


def _write_lines(lines: Iterator[bytes], kind: ExportKind, target: tuple[ExportFormat, Path] | None) -> int:
    """The API's NDJSON to stdout as it comes, or back into typed rows for the file's writer."""
    from local.export import write_export

    if target is None:
        return _echo_lines(lines)
    return write_export(rows_of_lines(lines, kind), kind, *target)


def rows_of_lines(lines: Iterable[bytes], kind: ExportKind) -> Iterator[dict[str, Any]]:
    """Export rows as :func:`shared.store.export.export_rows` yields them, read back from NDJSON:
    timestamps become datetimes again, so CSV and Parquet come out as a local export's."""
    from shared.store.export import DETECTION_COLUMNS, TRACK_COLUMNS

    columns = TRACK_COLUMNS if kind == "tracks" else DETECTION_COLUMNS
    stamps = [name for name, t in columns.items() if t == "timestamp"]
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        for name in stamps:
            if row.get(name) is not None:
                row[name] = datetime.fromisoformat(row[name])
        yield row


def _echo_lines(lines: Iterable[bytes]) -> int:
    out = sys.stdout.buffer  # bytes as the API sent them, no re-encoding
    n = 0
    for line in lines:
        out.write(line)
        n += 1
    out.flush()
    return n


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
