"""gate.yaml: defaults, parsing, and errors that name the line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from infercore.evals import results
from infercore.evals.gate import DEFAULT_RULES, GatePolicy, PolicyError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_reference_monitoring_thresholds():
    rules = {r.key: r for r in GatePolicy.default().rules}
    assert set(rules) == {"quality.citation_coverage", "quality.hallucination_rate", "performance.e2e_p99_s",
                          "performance.error_rate"}  # fmt: skip
    assert rules["quality.citation_coverage"].min == 0.80
    assert rules["quality.hallucination_rate"].max == 0.05
    assert rules["performance.e2e_p99_s"].max == 3.0
    assert rules["performance.error_rate"].max == 0.01
    assert all(r.required for r in rules.values())
    assert [k for k, r in rules.items() if r.has_margin] == ["quality.citation_coverage", "quality.hallucination_rate",
                                                            "performance.e2e_p99_s"]


def test_defaults_match_the_prometheus_alerts():
    """The gate and the production alerts (deploy/prometheus/rules.yml) hold the same numbers."""
    rules = (ROOT / "deploy" / "prometheus" / "rules.yml").read_text()
    for alert, number in (("CitationCoverageLow", "0.80"), ("HallucinationRateHigh", "0.05"),
                          ("P99LatencyHigh", "3"), ("ErrorRateHigh", "0.01")):  # fmt: skip
        block = rules.split(f"alert: Infercore{alert}", 1)[1].split("alert:", 1)[0]
        assert re.search(rf"[<>]\s*{re.escape(number)}\b", block), alert
    assert DEFAULT_RULES["quality.citation_coverage"]["min"] == 0.80


def test_shipped_policy_is_the_defaults():
    p = GatePolicy.load(str(ROOT / "deploy" / "gate.yaml"))
    d = GatePolicy.default()
    assert {r.key: r for r in p.rules} == {r.key: r for r in d.rules}
    assert (p.confidence, p.resamples, p.seed) == (d.confidence, d.resamples, d.seed)


def test_parse_full_policy():
    p = GatePolicy.from_yaml(
        "version: 1\nconfidence: 0.9\nresamples: 500\nseed: 7\nmetrics:\n"
        "  quality.citation_coverage: {min: 0.85}\n"
        "  performance.e2e_p99_s: {max: 2, margin_rel: 0.1, higher_is_better: false}\n"
        "  regression.mmlu.accuracy: {margin: 0.03, required: false}\n")
    assert (p.confidence, p.resamples, p.seed) == (0.9, 500, 7)
    r = {r.key: r for r in p.rules}
    assert r["quality.citation_coverage"].min == 0.85 and not r["quality.citation_coverage"].has_margin
    assert r["performance.e2e_p99_s"].margin_for(2.0) == pytest.approx(0.2)
    assert r["performance.e2e_p99_s"].higher_is_better is False
    assert r["regression.mmlu.accuracy"].metric == "mmlu.accuracy" and not r["regression.mmlu.accuracy"].required
    assert GatePolicy.from_dict(p.to_json()).to_json() == p.to_json()


def test_extends_defaults_overrides_and_drops():
    p = GatePolicy.from_yaml("extends: defaults\nmetrics:\n  quality.citation_coverage: {min: 0.9, margin: 0.01}\n"
                             "  performance.error_rate: null\n")  # fmt: skip
    r = {r.key: r for r in p.rules}
    assert r["quality.citation_coverage"].min == 0.9
    assert "performance.error_rate" not in r and "quality.hallucination_rate" in r
    assert len(GatePolicy.from_yaml("extends: defaults\n").rules) == 4


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("metrics:\n  quality.citation_coverage: {min: 0.8\n", 3, "invalid YAML"),
        ("metrics:\n  quality.citation_coverage:\n    min: [0.8\n    max: 1\n", 4, "invalid YAML"),
        ("metrics:\n  quality.citation_coverage:\n    min: high\n", 3, "min: expected a number, got 'high'"),
        ("metrics:\n  quality.citation_coverage: {min: 0.8}\n  quality.cost: {mx: 3}\n", 3, "unknown key 'mx'"),
        ("metrics:\n  quality.a: {min: 1}\n  latency.p99: {max: 3}\n", 3, "unknown stage 'latency'"),
        ("metrics:\n  coverage: {min: 1}\n", 2, "must be <stage>.<metric>"),
        ("confidence: 0.95\nmetrix: {}\n", 2, "unknown key 'metrix'"),
        ("confidence: 2\nmetrics: {quality.a: {min: 1}}\n", 1, "confidence"),
        ("metrics:\n  quality.a: {min: 1}\nresamples: 5\n", 3, "resamples"),
        ("metrics:\n  quality.a:\n    margin: -0.1\n", 3, "margin: expected a number >= 0"),
        ("metrics:\n  quality.a:\n    min: 0.9\n    max: 0.1\n", 4, "min 0.9 is above max 0.1"),
        ("metrics:\n  quality.a:\n    required: yes please\n", 3, "required: expected true or false"),
        ("metrics:\n  quality.a: {}\n", 2, "needs at least one of"),
        ("metrics:\n  quality.a: {min: 1}\n  quality.a: {max: 2}\n", 3, "duplicate key"),
        ("version: 2\nmetrics: {quality.a: {min: 1}}\n", 1, "version 1"),
        ("seed: 0\n", 1, "missing key 'metrics'"),
        ("- quality.a\n", 1, "expected a mapping"),
        ("metrics:\n  quality.a: 0.8\n", 2, "expected a mapping of"),
        ("extends: defaults\nmetrics:\n  quality.nope: null\n", 3, "null removes a default rule"),
    ],
)
def test_malformed_policy_names_the_line(text, line, message):
    with pytest.raises(PolicyError) as e:
        GatePolicy.from_yaml(text, source="gate.yaml")
    assert f"gate.yaml:{line}:" in str(e.value)
    assert message in str(e.value)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="policy file not found"):
        GatePolicy.load(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PolicyError, match="UTF-8"):
        GatePolicy.load(str(bad))
    with pytest.raises(TypeError, match="text"):
        GatePolicy.from_yaml(b"metrics: {}")


@pytest.mark.parametrize("text", ["\x00", "metrics: {}\n\ud800", "metrics:\n  \x07"])
def test_characters_yaml_refuses_are_policy_errors(text):
    with pytest.raises(PolicyError, match=r"gate\.yaml: invalid YAML"):  # was a bare yaml.ReaderError
        GatePolicy.from_yaml(text, source="gate.yaml")


def test_path_arguments_are_checked(tmp_path):
    f = tmp_path / "owned.txt"
    f.write_text("metrics: {}\n")
    fd = os.open(f, os.O_RDONLY)  # an int path was opened as this descriptor, read, and closed
    try:
        with pytest.raises(TypeError, match="path"):
            GatePolicy.load(fd)
        with pytest.raises(TypeError, match="path"):
            results.load(fd)
        with pytest.raises(TypeError, match="path"):
            results.EvalResults("s", "1").save(fd)
        os.fstat(fd)  # still open
    finally:
        os.close(fd)
    for bad in ("", "a\x00b"):
        with pytest.raises(ValueError, match="path"):
            GatePolicy.load(bad)
        with pytest.raises(ValueError, match="path"):
            results.load(bad)
