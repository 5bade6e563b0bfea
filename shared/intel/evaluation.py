"""Analyzers and search measured against labels: the metrics, the label files and the threshold sweep.

Pure on purpose (no database, no HTTP): the runner in ``local/evaluation.py`` collects what each
analyzer answers and what each search mode ranks, and everything here turns those answers into
figures, so every figure can be checked by hand in a unit test.

Conventions, chosen where the textbooks differ:
- macro-F1 averages over the classes seen in the labels *or* the predictions (a class that is only
  ever predicted, wrongly, scores 0 and pulls the mean down, as it should);
- theme Jaccard is the mean per track of |A and B| / |A or B| (shared over all themes), with two empty sets counted as agreement;
- nDCG@k uses linear gain (grade / log2(rank + 1)) and the ideal ordering of the query's own grades;
- cost per 1,000 tracks divides what the analyzer spent by every labelled track it was asked about,
  so an analyzer that skips tracks is not made to look cheap or dear by the tracks it skipped.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AnalyzerMetrics",
    "Label",
    "LabelFileError",
    "Prediction",
    "SearchQuery",
    "SweepPoint",
    "TrackAnswers",
    "accuracy",
    "analyzer_metrics",
    "jaccard",
    "load_labels",
    "load_queries",
    "macro_f1",
    "mae",
    "ndcg_at_k",
    "recall_at_k",
    "rmse",
    "routed",
    "sweep",
]


class LabelFileError(ValueError):
    """A label or query file that cannot be read; the message names the line."""


@dataclass(frozen=True)
class Label:
    """What a person (or a trusted reference) says about one track; any field may be missing."""

    source: str
    source_id: str
    quality: float | None = None
    sentiment: str | None = None
    themes: tuple[str, ...] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.source_id)


@dataclass(frozen=True)
class Prediction:
    """One analyzer's answer for one track, with how sure it was and what the answer cost."""

    quality: float
    sentiment: str
    themes: tuple[str, ...]
    confidence: float = 1.0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class SearchQuery:
    """A query and its relevant tracks, each with a grade (1 unless the file says more)."""

    query: str
    relevant: dict[tuple[str, str], float]


@dataclass
class AnalyzerMetrics:
    analyzer: str
    labels: int
    answered: int
    coverage: float
    quality_mae: float | None
    quality_rmse: float | None
    sentiment_accuracy: float | None
    sentiment_macro_f1: float | None
    themes_jaccard: float | None
    cost_per_1k_usd: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- metrics --------------------------------------------------------------------------------------
def mae(truth: Sequence[float], predicted: Sequence[float]) -> float | None:
    if not truth:
        return None
    return sum(abs(t - p) for t, p in zip(truth, predicted, strict=True)) / len(truth)


def rmse(truth: Sequence[float], predicted: Sequence[float]) -> float | None:
    if not truth:
        return None
    return math.sqrt(sum((t - p) ** 2 for t, p in zip(truth, predicted, strict=True)) / len(truth))


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float | None:
    if not truth:
        return None
    return sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float | None:
    if not truth:
        return None
    pairs = list(zip(truth, predicted, strict=True))
    scores = []
    for cls in sorted(set(truth) | set(predicted)):
        tp = sum(t == cls and p == cls for t, p in pairs)
        fp = sum(t != cls and p == cls for t, p in pairs)
        fn = sum(t == cls and p != cls for t, p in pairs)
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = {_theme(x) for x in a}, {_theme(x) for x in b}
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def recall_at_k(ranked: Sequence[tuple[str, str]], relevant: dict[tuple[str, str], float], k: int = 10) -> float:
    wanted = {key for key, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    return len(wanted & set(ranked[:k])) / len(wanted)


def ndcg_at_k(ranked: Sequence[tuple[str, str]], relevant: dict[tuple[str, str], float], k: int = 10) -> float:
    dcg = sum(relevant.get(key, 0.0) / math.log2(rank + 1) for rank, key in enumerate(ranked[:k], start=1))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def _theme(value: str) -> str:
    return " ".join(value.split()).lower()


def _rounded(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)


def analyzer_metrics(analyzer: str, labels: Sequence[Label], answers: Sequence[Prediction | None]) -> AnalyzerMetrics:
    """Score one analyzer: ``answers[i]`` is its answer for ``labels[i]`` (None: it gave none)."""
    q_true: list[float] = []
    q_pred: list[float] = []
    s_true: list[str] = []
    s_pred: list[str] = []
    themes: list[float] = []
    answered = 0
    cost = 0.0
    for label, answer in zip(labels, answers, strict=True):
        if answer is None:
            continue
        answered += 1
        cost += answer.cost_usd
        if label.quality is not None:
            q_true.append(label.quality)
            q_pred.append(answer.quality)
        if label.sentiment is not None:
            s_true.append(label.sentiment)
            s_pred.append(answer.sentiment)
        if label.themes is not None:
            themes.append(jaccard(label.themes, answer.themes))
    n = len(labels)
    return AnalyzerMetrics(
        analyzer=analyzer,
        labels=n,
        answered=answered,
        coverage=round(answered / n, 4) if n else 0.0,
        quality_mae=_rounded(mae(q_true, q_pred)),
        quality_rmse=_rounded(rmse(q_true, q_pred)),
        sentiment_accuracy=_rounded(accuracy(s_true, s_pred)),
        sentiment_macro_f1=_rounded(macro_f1(s_true, s_pred)),
        themes_jaccard=_rounded(sum(themes) / len(themes) if themes else None),
        cost_per_1k_usd=round(cost / n * 1000, 6) if n else 0.0,
    )


# -- the escalation sweep -------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackAnswers:
    """Every analyzer's answer for one labelled track: what the router chooses between.

    ``distilled`` carries the confidence the router would compare with its threshold (the lowest
    field confidence, as in the router); ``llm`` is None when the LLM gave no valid answer.
    """

    rules: Prediction
    distilled: Prediction | None
    llm: Prediction | None


@dataclass
class SweepPoint:
    threshold: float
    share_rules: float
    share_distilled: float
    share_llm: float
    metrics: AnalyzerMetrics = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "share_rules": self.share_rules,
            "share_distilled": self.share_distilled,
            "share_llm": self.share_llm,
            **{k: v for k, v in self.metrics.as_dict().items() if k != "analyzer"},
        }


def routed(answers: TrackAnswers, threshold: float) -> tuple[str, Prediction]:
    """The analyzer the router's escalation order picks at ``threshold`` and its answer.

    Mirrors ``Router.analyze`` in auto mode: rules when confident enough, then the distilled
    predictor when confident enough, then the LLM; without an LLM answer, the rules (the router's
    fallback).
    """
    if answers.rules.confidence >= threshold:
        return "rules", answers.rules
    if answers.distilled is not None and answers.distilled.confidence >= threshold:
        return "distilled", answers.distilled
    if answers.llm is not None:
        return "llm", answers.llm
    return "rules", answers.rules


def sweep(labels: Sequence[Label], answers: Sequence[TrackAnswers], thresholds: Sequence[float]) -> list[SweepPoint]:
    """The cost/quality curve of the router as its escalation threshold moves."""
    points = []
    n = max(1, len(labels))
    for threshold in thresholds:
        picks = [routed(a, threshold) for a in answers]
        counts = {name: sum(1 for who, _ in picks if who == name) for name in ("rules", "distilled", "llm")}
        points.append(
            SweepPoint(
                threshold=threshold,
                share_rules=round(counts["rules"] / n, 4),
                share_distilled=round(counts["distilled"] / n, 4),
                share_llm=round(counts["llm"] / n, 4),
                metrics=analyzer_metrics(f"router@{threshold:g}", labels, [p for _, p in picks]),
            )
        )
    return points


# -- files ----------------------------------------------------------------------------------------
def _optional_float(value: Any, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LabelFileError(f"{where}: quality must be a number") from None


def _themes(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        # CSV cells list themes separated by "|" (commas and semicolons occur inside themes).
        return tuple(t.strip() for t in value.split("|") if t.strip()) if value.strip() else None
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise LabelFileError(f"{where}: themes must be a list of strings")


def _label(row: dict[str, Any], where: str) -> Label:
    source, source_id = row.get("source"), row.get("source_id")
    if not source or source_id in (None, ""):
        raise LabelFileError(f"{where}: source and source_id are required")
    sentiment = row.get("sentiment")
    return Label(
        source=str(source),
        source_id=str(source_id),
        quality=_optional_float(row.get("quality"), where),
        sentiment=str(sentiment).strip().lower() if sentiment not in (None, "") else None,
        themes=_themes(row.get("themes"), where),
    )


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        return [(f"{path.name} line {i}", dict(row)) for i, row in enumerate(reader, start=2)]
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            raise LabelFileError(f"{path.name} line {i}: not JSON") from None
        if not isinstance(doc, dict):
            raise LabelFileError(f"{path.name} line {i}: not a JSON object")
        out.append((f"{path.name} line {i}", doc))
    return out


def load_labels(path: Path) -> list[Label]:
    """Labels from CSV (header: source, source_id, quality, sentiment, themes) or JSONL."""
    labels = [_label(row, where) for where, row in _rows(path)]
    if not labels:
        raise LabelFileError(f"{path.name}: no labels")
    return labels


def load_queries(path: Path) -> list[SearchQuery]:
    """JSONL: ``{"query": ..., "relevant": [{"source", "source_id", "grade"?}, ...]}`` per line."""
    queries = []
    for where, doc in _rows(path):
        text, relevant = doc.get("query"), doc.get("relevant")
        if not isinstance(text, str) or not text.strip() or not isinstance(relevant, list) or not relevant:
            raise LabelFileError(f"{where}: needs a query and a non-empty relevant list")
        grades: dict[tuple[str, str], float] = {}
        for item in relevant:
            if not isinstance(item, dict) or not item.get("source") or item.get("source_id") in (None, ""):
                raise LabelFileError(f"{where}: each relevant track needs source and source_id")
            grade = _optional_float(item.get("grade", 1), where)
            grades[(str(item["source"]), str(item["source_id"]))] = 1.0 if grade is None else grade
        queries.append(SearchQuery(query=text, relevant=grades))
    if not queries:
        raise LabelFileError(f"{path.name}: no queries")
    return queries
