"""The evaluation metrics, label files and sweep against figures computed by hand."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from shared.intel.eval_chart import bars_svg, curve_svg
from shared.intel.evaluation import (
    Label,
    LabelFileError,
    Prediction,
    TrackAnswers,
    accuracy,
    analyzer_metrics,
    jaccard,
    load_labels,
    load_queries,
    macro_f1,
    mae,
    ndcg_at_k,
    recall_at_k,
    rmse,
    routed,
    sweep,
)

_SVG = "{http://www.w3.org/2000/svg}"


def test_mae_and_rmse_match_hand_computed_errors() -> None:
    # errors 1, 0, 2: MAE 3/3 = 1, RMSE sqrt(5/3)
    assert mae([3, 5, 8], [4, 5, 6]) == pytest.approx(1.0)
    assert rmse([3, 5, 8], [4, 5, 6]) == pytest.approx(math.sqrt(5 / 3))
    assert mae([], []) is None and rmse([], []) is None


def test_macro_f1_counts_a_class_only_predicted_wrongly_as_zero() -> None:
    truth = ["positive", "positive", "negative", "neutral"]
    pred = ["positive", "negative", "negative", "positive"]
    # positive: tp 1 fp 1 fn 1 -> 0.5; negative: tp 1 fp 1 fn 0 -> 2/3; neutral: tp 0 -> 0
    assert macro_f1(truth, pred) == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert accuracy(truth, pred) == pytest.approx(0.5)
    assert macro_f1(["mixed"], ["mixed"]) == pytest.approx(1.0)


def test_jaccard_normalises_case_and_spaces_and_two_empty_sets_agree() -> None:
    assert jaccard(["Ocean ", "night"], ["ocean", "city"]) == pytest.approx(1 / 3)
    assert jaccard([], []) == 1.0
    assert jaccard(["sea"], []) == 0.0


def test_recall_at_k_counts_relevant_tracks_within_the_cut() -> None:
    relevant = {("s", "a"): 1.0, ("s", "b"): 1.0, ("s", "c"): 1.0}
    ranked = [("s", "a"), ("s", "x"), ("s", "b")]
    assert recall_at_k(ranked, relevant, k=10) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, relevant, k=1) == pytest.approx(1 / 3)


def test_ndcg_at_k_uses_linear_gain_and_the_ideal_order_of_the_grades() -> None:
    relevant = {("s", "a"): 2.0, ("s", "b"): 1.0}
    ranked = [("s", "x"), ("s", "a"), ("s", "b")]
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, relevant) == pytest.approx(dcg / idcg)
    assert ndcg_at_k([("s", "a"), ("s", "b")], relevant) == pytest.approx(1.0)
    assert ndcg_at_k([("s", "x")], relevant) == 0.0


def _p(
    quality: float, sentiment: str, themes: tuple[str, ...] = (), conf: float = 1.0, cost: float = 0.0
) -> Prediction:
    return Prediction(quality=quality, sentiment=sentiment, themes=themes, confidence=conf, cost_usd=cost)


def test_analyzer_metrics_skip_unanswered_tracks_but_spread_cost_over_all_of_them() -> None:
    labels = [
        Label("s", "1", quality=5, sentiment="positive", themes=("sea", "night")),
        Label("s", "2", quality=3, sentiment="negative", themes=("city",)),
        Label("s", "3", quality=8, sentiment="negative", themes=None),
    ]
    answers = [_p(6, "positive", ("sea",), cost=0.002), None, _p(5, "positive", ("x",), cost=0.001)]
    m = analyzer_metrics("llm", labels, answers)
    # answered tracks 1 and 3: errors 1 and 3 -> MAE 2, RMSE sqrt(5); sentiment 1 of 2 right
    assert (m.answered, m.coverage) == (2, pytest.approx(0.6667))
    assert m.quality_mae == pytest.approx(2.0)
    assert m.quality_rmse == pytest.approx(round(math.sqrt(5), 4))
    assert m.sentiment_accuracy == pytest.approx(0.5)
    # positive: tp 1 fp 1 fn 0 -> 2/3; negative: tp 0 -> 0
    assert m.sentiment_macro_f1 == pytest.approx(round(1 / 3, 4))
    assert m.themes_jaccard == pytest.approx(0.5)  # only track 1 has themes: {sea} / {sea, night}
    assert m.cost_per_1k_usd == pytest.approx(0.003 / 3 * 1000)


def test_sweep_replays_the_router_order_rules_then_distilled_then_llm() -> None:
    labels = [Label("s", "1", quality=5, sentiment="positive"), Label("s", "2", quality=8, sentiment="negative")]
    answers = [
        TrackAnswers(rules=_p(5, "positive", conf=0.7), distilled=None, llm=_p(5, "positive", cost=0.004)),
        TrackAnswers(
            rules=_p(2, "neutral", conf=0.3), distilled=_p(7, "negative", conf=0.5), llm=_p(8, "negative", cost=0.002)
        ),
    ]
    assert routed(answers[1], 0.4)[0] == "distilled"
    assert routed(answers[1], 0.6)[0] == "llm"
    low, mid, high = sweep(labels, answers, [0.2, 0.6, 0.8])
    # 0.2: rules everywhere, errors 0 and 6, free
    assert (low.share_rules, low.metrics.quality_mae, low.metrics.cost_per_1k_usd) == (1.0, 3.0, 0.0)
    # 0.6: track 1 rules, track 2 past the distilled (0.5) to the LLM: exact, 0.002 / 2 tracks
    assert (mid.share_rules, mid.share_llm, mid.metrics.quality_mae) == (0.5, 0.5, 0.0)
    assert mid.metrics.cost_per_1k_usd == pytest.approx(1.0)
    # 0.8: both to the LLM: 0.006 / 2 tracks
    assert (high.share_llm, high.metrics.cost_per_1k_usd) == (1.0, pytest.approx(3.0))


def test_sweep_without_an_llm_answer_falls_back_to_the_rules() -> None:
    answers = TrackAnswers(rules=_p(2, "neutral", conf=0.1), distilled=None, llm=None)
    assert routed(answers, 0.9) == ("rules", answers.rules)


def test_labels_load_from_csv_with_pipe_separated_themes_and_blank_fields(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "source,source_id,quality,sentiment,themes\nsample,a,7,Positive,sea|night sky\nsample,b,,,\n", encoding="utf-8"
    )
    a, b = load_labels(path)
    assert a == Label("sample", "a", quality=7.0, sentiment="positive", themes=("sea", "night sky"))
    assert b == Label("sample", "b")


def test_labels_load_from_jsonl_and_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"source": "s", "source_id": 1, "quality": 4, "themes": ["x"]}\n\n{"source": "s"}\n')
    with pytest.raises(LabelFileError, match=r"labels\.jsonl line 3: source and source_id"):
        load_labels(path)
    path.write_text('{"source": "s", "source_id": 1, "quality": "high"}\n')
    with pytest.raises(LabelFileError, match="line 1: quality must be a number"):
        load_labels(path)


def test_queries_load_with_default_grade_one(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"query": "sea", "relevant": [{"source": "s", "source_id": "a"}, {"source": "s", "source_id": "b", "grade": 2}]}\n'
    )
    (q,) = load_queries(path)
    assert q.relevant == {("s", "a"): 1.0, ("s", "b"): 2.0}
    path.write_text('{"query": "sea", "relevant": []}\n')
    with pytest.raises(LabelFileError, match="non-empty relevant"):
        load_queries(path)


def test_bar_chart_is_valid_svg_with_one_bar_per_known_value() -> None:
    svg = bars_svg("t <&>", ["rules", "llm"], {"MAE": [1.5, 0.5], "F1": [None, 0.9]})
    root = ET.fromstring(svg)
    bars = [r for r in root.iter(f"{_SVG}rect") if r.get("height") == "16"]
    assert len(bars) == 3
    widths = sorted(float(r.get("width", 0)) for r in bars)
    assert widths == [pytest.approx(220 / 3, abs=0.05), 220.0, 220.0]  # each panel scaled to its own maximum
    assert "n/a" in svg


def test_curve_chart_draws_one_marker_per_point_in_cost_order() -> None:
    root = ET.fromstring(curve_svg("c", [(2.0, 0.1, "0.9"), (0.0, 1.2, "0.3")], x_label="x", y_label="y"))
    assert len(list(root.iter(f"{_SVG}circle"))) == 2
    line = next(root.iter(f"{_SVG}polyline")).get("points", "").split()
    assert float(line[0].split(",")[0]) < float(line[1].split(",")[0])


def test_curve_chart_merges_points_that_coincide_into_one_labelled_marker() -> None:
    svg = curve_svg("c", [(1.0, 0.0, "0.7"), (1.0, 0.0, "0.8"), (0.0, 1.0, "0")], x_label="x", y_label="y")
    root = ET.fromstring(svg)
    assert len(list(root.iter(f"{_SVG}circle"))) == 2
    assert any(t.text == "0.7, 0.8" for t in root.iter(f"{_SVG}text"))
