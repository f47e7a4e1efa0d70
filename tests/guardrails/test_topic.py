"""Topic rail on the labeled bank-support scenario (benchmarks/data/guardrails/topic): thresholds
calibrated on the calibration half, checked on the test half."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_japanese_is_out_of_reach_for_minilm(rail):
    """Documented limitation: MiniLM's English vocabulary leaves Japanese far from every topic, so
    with an allowed list every Japanese input is blocked as off topic (allowed ones included)."""
    rows = _rows("test", "ja") + _rows("calib", "ja")
    a, _ = rail.scores([r["text"] for r in rows])
    assert float(a.max()) < rail.allowed_threshold
