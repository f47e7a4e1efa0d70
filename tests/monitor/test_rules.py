"""deploy/prometheus/rules.yml: structure, the reference thresholds, and that every metric it
names is one the server exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules.yml"
EXPECTED = {  # alert -> (metric, comparison, threshold)
    "InfercoreCitationCoverageLow": ("infercore:citation_coverage", "<", 0.80),
    "InfercoreHallucinationRateHigh": ("infercore:hallucination_rate", ">", 0.05),
    "InfercoreP99LatencyHigh": ("infercore:e2e_request_latency_seconds_bucket", ">", 3.0),
    "InfercoreErrorRateHigh": ("infercore:request_errors_total", ">", 0.01),
    "InfercoreInputDrift": ("infercore:drift_score", ">=", 0.1),
}
_METRIC = re.compile(r"infercore:[a-zA-Z0-9_:]+")


def _rules() -> dict[str, dict]:
    doc = yaml.safe_load(RULES.read_text())
    assert set(doc) == {"groups"}
    out = {}
    for g in doc["groups"]:
        assert set(g) == {"name", "rules"} and g["rules"]
        for r in g["rules"]:
            assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}
            assert r["alert"] not in out, f"duplicate alert {r['alert']}"
            out[r["alert"]] = r
    return out


def _balanced(expr: str) -> bool:
    depth = 0
    for ch in expr:
        depth += {"(": 1, ")": -1, "{": 1, "}": -1, "[": 1, "]": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_reference_thresholds():
    rules = _rules()
    assert set(rules) == set(EXPECTED)
    for name, (metric, op, value) in EXPECTED.items():
        r = rules[name]
        expr = " ".join(r["expr"].split())
        assert metric in expr, name
        m = re.search(r"(<=|>=|<|>)\s*([0-9.]+)\s*$", expr)
        assert m is not None, f"{name}: expression must end in a comparison: {expr}"
        assert m.group(1) == op and float(m.group(2)) == value, (name, m.groups())
        assert _balanced(expr), name
        assert re.fullmatch(r"\d+[smh]", r["for"]), name
        assert r["labels"]["severity"] in ("warning", "critical")
        assert r["annotations"]["summary"]


def test_rules_name_only_exported_metrics():
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    from infercore.monitor import DriftReport, ServerMetrics

    m = ServerMetrics("x")
    m.observe_error(500)
    m.requests.labels("x", "/v1/completions").inc()
    m.set_quality(citation_coverage=0.9, hallucination_rate=0.01)
    m.set_drift("prompt_tokens", DriftReport(0.2, 0.3, 1.0, True, 10, 10))
    m.e2e.labels("x").observe(0.5)
    exported = {s.name for fam in text_string_to_metric_families(m.render().decode()) for s in fam.samples}
    for name, r in _rules().items():
        for metric in _METRIC.findall(r["expr"]):
            assert metric in exported, f"{name} uses {metric}, which the server does not export"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_check_rules():
    subprocess.run(["promtool", "check", "rules", str(RULES)], check=True)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_alerts_fire_at_the_thresholds():
    # rules_test.yml: each alert fires past its threshold and stays quiet just inside it
    subprocess.run(["promtool", "test", "rules", "rules_test.yml"], check=True, cwd=RULES.parent)
