"""``contentfn eval``: analyzers and search measured against labelled files; the threshold sweep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from shared.config import Settings, load_settings
from shared.errors import ConfigError, ContentfnError
from shared.intel.evaluation import LabelFileError, analyzer_metrics, load_labels, load_queries, sweep

__all__ = ["eval_group"]

console = Console()
_DEFAULT_THRESHOLDS = "0,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.01"
_ANALYZER_COLUMNS = (
    ("answered", "answered"),
    ("coverage", "coverage"),
    ("quality_mae", "quality MAE"),
    ("quality_rmse", "quality RMSE"),
    ("sentiment_accuracy", "sentiment acc"),
    ("sentiment_macro_f1", "sentiment F1"),
    ("themes_jaccard", "themes Jaccard"),
    ("cost_per_1k_usd", "USD / 1k tracks"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _emit(doc: dict[str, Any], as_json: bool, table: Table, chart: Path | None, svg: str) -> None:
    if chart is not None:
        chart.write_text(svg, encoding="utf-8")
        doc["chart"] = str(chart)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    console.print(table)
    for note in doc.get("notes", []):
        console.print(note, markup=False, highlight=False)
    if chart is not None:
        console.print(f"chart: {chart}", markup=False, highlight=False)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _labels(path: Path) -> Any:
    try:
        return load_labels(path)
    except LabelFileError as exc:
        raise click.ClickException(str(exc)) from None


def _intel() -> Any:
    from shared.intel.context import build_intel
    from shared.services import Services

    return build_intel(Services.from_settings(_settings()))


def _collect(labels_file: Path, use_llm: bool) -> tuple[Any, Any, Any, dict[str, Any]]:
    from local.evaluation import collect_answers

    labels = _labels(labels_file)
    intel = _intel()
    try:
        found, answers, missing = collect_answers(intel, labels, use_llm=use_llm)
        router = intel.router
        config = {
            "analysis_min_confidence": router.min_confidence,
            "distilled_max_mae": router.distilled_max_mae,
            "llm": router.llm_name,
            "prompt_version": router.prompt_version,
        }
    except ContentfnError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        intel.close()
        intel.services.close()
    notes = [f"{len(missing)} labelled tracks are not in the store (left out)"] if missing else []
    return found, answers, notes, config


@click.group("eval")
def eval_group() -> None:
    """Measure analyzers and search against labelled files."""


@eval_group.command("analyzers")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write an SVG chart")
@click.option("--llm/--no-llm", "use_llm", default=True, show_default=True, help="ask the configured LLM too")
def eval_analyzers(labels_file: Path, as_json: bool, chart: Path | None, use_llm: bool) -> None:
    """Per analyzer (rules, distilled, LLM, and the router as configured): quality MAE/RMSE,
    sentiment accuracy/macro-F1, theme Jaccard, coverage and cost per 1,000 tracks.

    LABELS is CSV (source, source_id, quality, sentiment, themes with "|" between themes) or JSONL."""
    from shared.intel.eval_chart import bars_svg

    found, answers, notes, config = _collect(labels_file, use_llm)
    rows = [
        analyzer_metrics("rules", found, [a.rules for a in answers]),
        analyzer_metrics("distilled", found, [a.distilled for a in answers]),
        analyzer_metrics("llm", found, [a.llm for a in answers]),
    ]
    routed = sweep(found, answers, [config["analysis_min_confidence"]])[0].metrics
    routed.analyzer = f"router (min confidence {config['analysis_min_confidence']:g})"
    rows.append(routed)
    table = Table("analyzer", *(title for _, title in _ANALYZER_COLUMNS), title=f"analyzers on {len(found)} labels")
    for m in rows:
        d = m.as_dict()
        table.add_row(m.analyzer, *(_cell(d[key]) for key, _ in _ANALYZER_COLUMNS))
    metrics = {
        title: [m.as_dict()[key] for m in rows]
        for key, title in _ANALYZER_COLUMNS
        if key not in ("answered", "quality_rmse")
    }
    svg = bars_svg(f"analyzers on {len(found)} labelled tracks", [m.analyzer for m in rows], metrics)
    doc = {"labels": len(found), "config": config, "analyzers": [m.as_dict() for m in rows], "notes": notes}
    _emit(doc, as_json, table, chart, svg)


def _thresholds(text: str) -> list[float]:
    try:
        values = sorted({float(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise click.BadParameter("comma-separated numbers, e.g. 0.4,0.6,0.8") from None
    if not values:
        raise click.BadParameter("at least one threshold")
    return values


@eval_group.command("sweep")
@click.option("--labels", "labels_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--thresholds", default=_DEFAULT_THRESHOLDS, show_default=True, help="escalation thresholds to try")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write an SVG chart")
def eval_sweep(labels_file: Path, thresholds: str, as_json: bool, chart: Path | None) -> None:
    """The router's cost/quality curve as the escalation threshold (analysis_min_confidence) moves:
    each analyzer is asked once per track, then the router's choice is replayed per threshold."""
    from shared.intel.eval_chart import curve_svg

    points_at = _thresholds(thresholds)
    found, answers, notes, config = _collect(labels_file, True)
    points = sweep(found, answers, points_at)
    columns = (
        "threshold",
        "share_rules",
        "share_distilled",
        "share_llm",
        "cost_per_1k_usd",
        "quality_mae",
        "sentiment_macro_f1",
    )
    table = Table(*columns, title=f"escalation sweep on {len(found)} labels")
    for p in points:
        d = p.as_dict()
        table.add_row(*(_cell(d[c]) for c in columns))
    svg = curve_svg(
        "router: cost against quality error",
        [(p.metrics.cost_per_1k_usd, p.metrics.quality_mae or 0.0, f"{p.threshold:g}") for p in points],
        x_label="USD per 1,000 tracks",
        y_label="quality MAE",
    )
    doc = {"labels": len(found), "config": config, "sweep": [p.as_dict() for p in points], "notes": notes}
    _emit(doc, as_json, table, chart, svg)


@eval_group.command("search")
@click.option("--queries", "queries_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write an SVG chart")
def eval_search(queries_file: Path, as_json: bool, chart: Path | None) -> None:
    """recall@10 and nDCG@10 per embedding model in the store and per mode (semantic, hybrid,
    keyword) on labelled queries (JSONL: query, relevant [{source, source_id, grade?}])."""
    from local.evaluation import embedders_for, search_figures, stored_models
    from shared.intel.eval_chart import bars_svg
    from shared.services import Services

    try:
        queries = load_queries(queries_file)
    except LabelFileError as exc:
        raise click.ClickException(str(exc)) from None
    # Search evaluation only reads: measuring a store does not change its schema.
    svc = Services.from_settings(_settings(), migrate=False)
    try:
        models = stored_models(svc)
        embedders = embedders_for(svc, models)
        figures = search_figures(svc, queries, embedders)
    except ContentfnError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        svc.close()
    skipped = [m for m in models if m not in embedders]
    notes = [f"no local embedder produces model {m}: not evaluated" for m in skipped]
    table = Table("model", "mode", "queries", "recall@10", "nDCG@10", title=f"search on {len(queries)} queries")
    for f in figures:
        table.add_row(f.model or "-", f.mode, str(f.queries), _cell(f.recall_at_10), _cell(f.ndcg_at_10))
    names = [f"{f.mode} {f.model or ''}".strip() for f in figures]
    svg = bars_svg(
        f"search on {len(queries)} labelled queries",
        names,
        {"recall@10": [f.recall_at_10 for f in figures], "nDCG@10": [f.ndcg_at_10 for f in figures]},
    )
    doc = {
        "queries": len(queries),
        "results": [f.as_dict() for f in figures],
        "skipped_models": skipped,
        "notes": notes,
    }
    _emit(doc, as_json, table, chart, svg)
