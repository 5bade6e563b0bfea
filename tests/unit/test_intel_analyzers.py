"""Features, rule-based analyzers, the distilled predictor and the breaker: pure logic, no I/O."""

from __future__ import annotations

import numpy as np
import pytest

from shared.intel.breaker import CircuitBreaker
from shared.intel.distilled import DistilledModel, fit_distilled
from shared.intel.features import compute_features, rhyme_key, syllables
from shared.intel.llm import _parse
from shared.intel.profile import profile_json_schema
from shared.intel.rules import analyze_rules
from tests.fake_clock import FakeClock
from tests.intel_fixtures import sample_rows

SONG = """I walk alone beneath the silver light
and every star is burning through the night
the river sings a song I used to know
it carries all my sorrow down below

Hold on, hold on, the morning will come
Hold on, hold on, the morning will come
"""


def test_syllables_and_rhymes_come_from_the_cmu_dictionary() -> None:
    assert syllables("beautiful") == 3
    assert syllables("night") == 1
    assert rhyme_key("light") == rhyme_key("night")
    assert rhyme_key("know") == rhyme_key("below")
    assert rhyme_key("light") != rhyme_key("know")
    assert syllables("zorblaxian") >= 2  # not in the dictionary: the heuristic answers


def test_features_of_a_rhymed_song_with_a_repeated_chorus() -> None:
    f = compute_features(SONG)
    assert f.lines == 6 and f.stanzas == 2
    assert f.rhyme_density >= 0.4  # light/night, know/below
    assert f.chorus_lines == 0 or f.repeated_line_ratio > 0
    assert f.repeated_line_ratio == pytest.approx(2 / 6, abs=0.01)
    assert 0 < f.type_token_ratio < 1 and 0 < f.mattr <= 1
    assert not f.explicit


def test_chorus_detection_finds_a_repeated_block() -> None:
    text = "a b c\nline two here\nverse one\nverse two\na b c\nline two here\nverse three\na b c\nline two here"
    f = compute_features(text)
    assert (f.chorus_lines, f.chorus_repeats) == (2, 3)


def test_sentiment_lexicon_sign_and_negation() -> None:
    assert compute_features("I love this happy sunny day\nwonderful joy").sentiment > 0.5
    assert compute_features("I hate this awful miserable day\npain and grief").sentiment < -0.5
    assert compute_features("this is not good").sentiment < 0


def test_explicit_words_are_counted() -> None:
    f = compute_features("what the fuck is this shit\nno more")
    assert f.explicit and f.explicit_words == 2


def test_rules_are_confident_that_a_degenerate_text_is_poor() -> None:
    text = "\n".join(["baby baby baby"] * 20)
    a = analyze_rules(text, compute_features(text), "h")
    assert a.profile.quality <= 2 and a.field_confidence["quality"] >= 0.8


def test_rules_report_low_confidence_on_quality_of_a_real_lyric() -> None:
    row = sample_rows(1)[0]
    a = analyze_rules(row["lyrics"], compute_features(row["lyrics"]), "h")
    assert a.field_confidence["quality"] < 0.6
    assert a.profile.themes[0] == "ocean"
    assert a.confidence == min(a.field_confidence.values())


def test_llm_output_parser_accepts_the_schema_and_rejects_the_rest() -> None:
    good = '{"sentiment":"positive","sentiment_score":0.5,"themes":["Sea"," sea "],"complexity":0.4,"quality":7}'
    assert _parse(good).themes == ["sea"]
    assert _parse("```json\n" + good + "\n```").quality == 7
    with pytest.raises(ValueError, match="not JSON"):
        _parse("Sure! {sentiment: positive")
    with pytest.raises(ValueError, match="schema mismatch"):
        _parse('{"sentiment":"ecstatic","quality":42}')
    schema = profile_json_schema()
    assert schema["additionalProperties"] is False and set(schema["required"]) == set(schema["properties"])


def test_distilled_predictor_learns_a_linear_label_and_reports_held_out_mae() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 20))
    quality = np.clip(np.round(5.5 + 1.5 * x[:, 0] - x[:, 1]), 1, 10)
    sentiment = ["positive" if v > 0.3 else "negative" if v < -0.3 else "neutral" for v in x[:, 2]]
    model = fit_distilled(x, quality, sentiment, seed=3)
    assert model.mae_quality < 0.6
    assert model.acc_sentiment > 0.8
    again = DistilledModel.from_bytes(model.to_bytes(), model_id=9)
    p1, p2 = model.predict(x[0]), again.predict(x[0])
    assert p1.quality == pytest.approx(p2.quality) and again.id == 9
    far = model.predict(x[0] * 50)
    assert not far.in_distribution and far.confidence < p1.confidence


def test_breaker_opens_after_threshold_then_lets_one_probe_through_and_closes_on_success() -> None:
    clock = FakeClock()
    b = CircuitBreaker("t", failure_threshold=3, reset_s=10, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open" and not b.allow()
    clock.now += 10.5
    assert b.state == "half_open"
    assert b.allow()  # the probe
    assert not b.allow()  # only one
    b.record_success()
    assert b.state == "closed" and b.allow()


def test_breaker_reopens_when_the_probe_fails_and_honours_retry_after() -> None:
    clock = FakeClock()
    b = CircuitBreaker("t", failure_threshold=5, reset_s=1, clock=clock)
    b.record_failure(cooldown_s=30)  # a 429 with Retry-After: 30
    assert b.state == "open"
    clock.now += 5
    assert not b.allow()
    clock.now += 26
    assert b.allow()
    b.record_failure()
    assert b.state == "open" and not b.allow()
