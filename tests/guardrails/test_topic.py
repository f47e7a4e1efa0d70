"""Topic rail on the labeled bank-support scenario (benchmarks/data/guardrails/topic): thresholds
calibrated on the calibration half, checked on the test half."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from infercore.guardrails import Guard, TopicRail

D = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "guardrails" / "topic"


def _rows(split: str, lang: str) -> list[dict]:
    rows = [json.loads(x) for x in (D / "labeled.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if r["split"] == split and r["lang"] == lang]


@pytest.fixture(scope="module")
def rail(minilm):
    return Guard.from_config(D / "config.yaml").input_rails[0]


def test_english_test_split_with_the_default_thresholds(rail):
    rows = _rows("test", "en")
    assert len(rows) >= 25
    blocked = {r["text"]: rail.check(r["text"]) for r in rows}
    allowed = [r for r in rows if r["label"] == "allowed"]
    others = [r for r in rows if r["label"] != "allowed"]
    fp = sum((blocked[r["text"]].status == "blocked") for r in allowed) / len(allowed)
    recall = sum((blocked[r["text"]].status == "blocked") for r in others) / len(others)
    assert fp <= 0.1 and recall >= 0.85, (fp, recall)
    denied = [r for r in rows if r["label"] == "denied"]
    named = [v.reason for r in denied for v in blocked[r["text"]].violations if v.reason.startswith("denied topic")]
    assert len(named) >= len(denied) // 2  # most denied inputs are blocked as that denied topic, not just off topic


def test_calibrate_recovers_thresholds(minilm):
    cfg = yaml.safe_load((D / "config.yaml").read_text())["input_rails"][0]
    r = TopicRail(cfg["allowed"], cfg["denied"], allowed_threshold=0.9, denied_threshold=0.9, embedder=minilm)
    cal = _rows("calib", "en")
    m = r.calibrate([x["text"] for x in cal], [x["label"] != "allowed" for x in cal])
    assert m["balanced_accuracy"] >= 0.9
    assert r.allowed_threshold < 0.9 and r.denied_threshold < 0.9
    assert r.check("How do I reset my online banking password?").status == "passed"


def test_topic_examples_and_bad_config(minilm):
    r = TopicRail(denied=[{"name": "cooking", "description": "cooking and recipes",
                           "examples": ["how long do I boil pasta"]}], embedder=minilm)
    d = r.check("How many minutes should spaghetti boil?")
    assert d.status == "blocked" and d.violations[0].reason == "denied topic: cooking"
    assert r.check("Explain quantum entanglement.").status == "passed"  # no allowed list: only denied blocks
    assert r.check("").status == "passed"
    with pytest.raises(ValueError, match="at least one topic"):
        TopicRail(embedder=minilm)
    with pytest.raises(ValueError, match="allowed"):
        TopicRail(allowed="banking", embedder=minilm)
    with pytest.raises(ValueError, match="description"):
        TopicRail(allowed=[{"name": "x"}], embedder=minilm)
    with pytest.raises(ValueError, match="allowed_threshold"):
        TopicRail(allowed=["banking"], allowed_threshold=2, embedder=minilm)
    with pytest.raises(ValueError, match="unknown option"):
        Guard.from_config({"input_rails": [{"type": "topic", "allowed": ["a"], "colour": 1}]})


def test_japanese_without_japanese_topic_texts_is_out_of_reach_for_minilm(minilm):
    """Documented limitation: with only English topic texts, MiniLM leaves Japanese far from every
    topic, so with an allowed list nearly every Japanese input is blocked as off topic, allowed ones
    included (the few that pass carry Latin letters such as "ATM")."""
    cfg = yaml.safe_load((D / "config.yaml").read_text())["input_rails"][0]
    english_only = [{"name": t["name"], "description": t["description"]} for t in cfg["allowed"]]
    r = TopicRail(english_only, embedder=minilm)
    assert not r.has_japanese
    allowed = [x["text"] for x in _rows("test", "ja") + _rows("calib", "ja") if x["label"] == "allowed"]
    blocked = [r.check(t).status == "blocked" for t in allowed]
    assert sum(blocked) / len(blocked) >= 0.8


def test_japanese_test_split_with_japanese_topic_texts(rail):
    assert rail.has_japanese
    rows = _rows("test", "ja")
    assert len(rows) >= 20
    allowed = [r for r in rows if r["label"] == "allowed"]
    others = [r for r in rows if r["label"] != "allowed"]
    fp = sum(rail.check(r["text"]).status == "blocked" for r in allowed) / len(allowed)
    recall = sum(rail.check(r["text"]).status == "blocked" for r in others) / len(others)
    assert fp <= 0.1 and recall >= 0.85, (fp, recall)


def test_japanese_and_english_take_their_own_layer(rail):
    a_ja, _ = rail.scores(["住宅ローンの金利を知りたい。"])
    assert float(a_ja.max()) >= rail.ja_allowed_threshold  # n-gram cosine against the Japanese wording
    assert rail.check("住宅ローンの金利を知りたい。").status == "passed"
    assert rail.check("週末に見る映画を選んで。").status == "blocked"
    assert rail.check("What's the interest rate on a 30-year mortgage?").status == "passed"
    # mixed batch: each text scored by its own layer, same result as one by one
    a, _ = rail.scores(["住宅ローンの金利を知りたい。", "What's the interest rate on a 30-year mortgage?"])
    a1, _ = rail.scores(["What's the interest rate on a 30-year mortgage?"])
    assert a[0].max() == pytest.approx(a_ja.max()) and np.allclose(a[1], a1[0], atol=1e-5)


def test_calibrate_japanese_layer(minilm):
    cfg = yaml.safe_load((D / "config.yaml").read_text())["input_rails"][0]
    r = TopicRail(cfg["allowed"], cfg["denied"], ja_allowed_threshold=0.9, ja_denied_threshold=0.9, embedder=minilm)
    en_before = (r.allowed_threshold, r.denied_threshold)
    cal = _rows("calib", "ja")
    m = r.calibrate([x["text"] for x in cal], [x["label"] != "allowed" for x in cal], language="ja")
    assert m["balanced_accuracy"] >= 0.85
    assert (r.ja_allowed_threshold, r.ja_denied_threshold) == (m["allowed_threshold"], m["denied_threshold"])
    assert (r.allowed_threshold, r.denied_threshold) == en_before  # the English thresholds are untouched
    with pytest.raises(ValueError, match="language"):
        r.calibrate(["a", "b"], [True, False], language="fr")
    with pytest.raises(ValueError, match="no Japanese text"):
        r.calibrate(["hello", "bye"], [True, False], language="ja")
    with pytest.raises(ValueError, match="ja_allowed_threshold"):
        TopicRail(["banking"], ja_allowed_threshold=5, embedder=minilm)
    with pytest.raises(ValueError, match="Japanese texts"):
        TopicRail(["banking"], embedder=minilm).calibrate(["口座", "映画"], [False, True], language="ja")


def test_evaluate_topic_report(minilm, tmp_path):
    from infercore.guardrails.evaluate import evaluate_topic

    rep = evaluate_topic(D.parent, embedder=minilm)
    assert set(rep) == {"topic_en_calib", "topic_en_test", "topic_ja_calib", "topic_ja_test"}
    assert rep["topic_ja_test"]["recall"] >= 0.85 and rep["topic_ja_test"]["fpr_benign"] <= 0.1
    assert rep["topic_en_test"]["recall"] >= 0.85 and rep["topic_en_test"]["fpr_benign"] <= 0.1
    with pytest.raises(ValueError, match=r"config\.yaml"):
        evaluate_topic(tmp_path)


class _FakeEmbedder:
    def encode(self, texts, show_progress_bar=False):
        return np.ones((len(texts), 4), np.float32) / 2


def test_topic_rail_input_checks_without_a_model():
    r = TopicRail(allowed=["banking"], embedder=_FakeEmbedder())
    with pytest.raises(TypeError, match="text: expected str"):
        r.check(3)
    with pytest.raises(TypeError, match="texts: expected a list of str"):
        r.scores("banking")  # would score each character
    with pytest.raises(TypeError, match="texts"):
        r.calibrate("ab", [True, False])
    with pytest.raises(ValueError, match=r"grid\[0\]"):
        r.calibrate(["a", "b"], [True, False], grid=[float("nan")])
    with pytest.raises(ValueError, match="denied_threshold"):
        TopicRail(allowed=["banking"], denied_threshold=float("nan"), embedder=_FakeEmbedder())
