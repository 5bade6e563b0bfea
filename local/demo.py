"""``contentfn demo``: start the stack, upload the bundled sample, wait for embeddings, search, stop."""

from __future__ import annotations

import time
from importlib import resources

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from local.runtime import LocalStack, port_is_free
from shared.config import Settings
from shared.store import ledger

__all__ = ["DEMO_QUERIES", "SAMPLE_KEY", "run_demo"]

SAMPLE_KEY = "sample_tracks.jsonl"
DEMO_QUERIES = (
    "sailing across the stormy sea",
    "stars, planets and the silence of outer space",
    "missing someone who has died",
)


def run_demo(settings: Settings, console: Console | None = None, timeout_s: float = 600.0) -> dict[str, object]:
    console = console or Console()
    port = settings.api_port if port_is_free(settings.api_host, settings.api_port) else 0
    with LocalStack(settings, port=port) as stack:
        assert stack.services is not None
        svc = stack.services
        console.print(f"[bold]contentfn[/] local stack up: API on {stack.url}, data in {settings.data_dir}")
        sample = resources.files("local").joinpath("data", SAMPLE_KEY).read_bytes()
        svc.blob.put(settings.bucket, SAMPLE_KEY, sample, content_type="application/x-ndjson")
        console.print(f"uploaded {SAMPLE_KEY} ({len(sample):,} bytes) to bucket '{settings.bucket}'")

        report = _wait_for_ingest(stack, f"object:{settings.bucket}/{SAMPLE_KEY}", timeout_s)
        console.print(
            f"ingested: {report.get('rows_ok', 0)} rows ok, {report.get('rows_bad', 0)} bad, "
            f"{report.get('inserted', 0)} new, {report.get('updated', 0)} changed"
        )
        _wait_for_embeddings(stack, console, timeout_s)

        headers = {}
        if settings.api_key is not None:
            headers["X-API-Key"] = settings.api_key.get_secret_value()
        results: dict[str, object] = {}
        with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as client:
            for query in DEMO_QUERIES:
                resp = client.get("/search", params={"q": query, "k": 5})
                resp.raise_for_status()
                body = resp.json()
                results[query] = body["results"]
                table = Table(title=f"GET /search?q={query}", title_justify="left")
                # One line per hit at any width: names clipped, the snippet gets what is left.
                snippet_chars = max(20, console.width - 5 - 20 - 26 - 13)
                for name in ("score", "artist", "title", "snippet"):
                    table.add_column(name, justify="right" if name == "score" else "left", no_wrap=True)
                for hit in body["results"]:
                    table.add_row(
                        f"{hit['score']:.3f}",
                        _clip(hit["artist"], 20),
                        _clip(hit["title"], 26),
                        _clip(hit["snippet"], snippet_chars),
                    )
                console.print(table)
                console.print(
                    f"  embed {body['timings_ms']['embed']:.1f} ms, database {body['timings_ms']['db']:.1f} ms"
                )
            stats = client.get("/stats").json()
        waiting = ", ".join(f"{kind} {n}" for kind, n in sorted(stats["queue"]["by_kind"].items()))
        console.print(
            f"stats: {stats['tracks']} tracks, embeddings {stats['embeddings']}, "
            f"queue depth {stats['queue']['depth']}{f' ({waiting})' if waiting else ''}, "
            f"dead jobs {stats['dead_jobs']['total']}"
        )
        if stats["queue"]["depth"]:
            console.print(
                "  the jobs still queued (enrichment, analysis) wait in the database; "
                "`contentfn local up` carries on with them"
            )
    console.print("[bold]stopped cleanly[/]")
    # The demo's stack is gone now; the console needs one that stays up.
    where = f"http://{settings.api_host}:{settings.api_port}/" if settings.api_port else "the console URL it prints"
    console.print(
        f"open the web console: run `make up` (or `contentfn local up`), then {where}", markup=False, highlight=False
    )
    return {"report": report, "results": results, "stats": stats}


def _wait_for_ingest(stack: LocalStack, subject: str, timeout_s: float) -> dict[str, object]:
    assert stack.services is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with stack.services.db.connection() as conn:
            rows = [r for r in ledger.recent(conn, prefix=subject, limit=1) if r["stage"] == "ingested"]
            conn.commit()
        if rows and rows[0]["status"] != "running":
            detail: dict[str, object] = rows[0]["detail"]
            if rows[0]["status"] == "rejected":
                raise RuntimeError(f"the sample file was rejected: {rows[0]['last_error']}")
            return detail
        time.sleep(0.1)
    raise TimeoutError("the sample file was not ingested in time")


def _wait_for_embeddings(stack: LocalStack, console: Console, timeout_s: float) -> None:
    assert stack.services is not None
    svc = stack.services
    model_key = svc.embedder.model_key
    deadline = time.monotonic() + timeout_s
    with Progress(
        TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("embed", total=None)
        while True:
            with svc.db.connection() as conn:
                total = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]  # type: ignore[index]
                done = conn.execute("SELECT count(*) FROM embeddings WHERE model = %s", (model_key,)).fetchone()[0]  # type: ignore[index]
                conn.commit()
            progress.update(task, total=total, completed=done)
            if done >= total and svc.queue.depth("embed") == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {done} of {total} tracks embedded in time")
            time.sleep(0.2)


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"
