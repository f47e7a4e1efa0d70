"""deploy/grafana/infercore.json: every panel has a Prometheus datasource and targets, every
metric its PromQL names is one a running server exports (scraped from /metrics of a test app
with the embeddings and RAG routes), histogram_quantile only over _bucket series by le, and every
expression parses (promtool, when installed, checks them as recording rules)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DASH = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "infercore.json"
_METRIC = re.compile(r"infercore:[a-zA-Z0-9_:]+")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("_count", "_sum", "_created"), "gauge": ("",), "unknown": ("",)}  # fmt: skip
REQUIRED = {  # what the dashboard must show -> a metric it must use
    "ttft": "infercore:time_to_first_token_seconds_bucket", "itl": "infercore:inter_token_latency_seconds_bucket",
    "e2e": "infercore:e2e_request_latency_seconds_bucket", "running": "infercore:num_requests_running",
    "waiting": "infercore:num_requests_waiting", "kv": "infercore:kv_cache_usage_perc",
    "prefix": "infercore:prefix_cache_hits_total", "tokens": "infercore:generation_tokens_total",
    "errors": "infercore:request_errors_total", "coverage": "infercore:citation_coverage",
    "hallucination": "infercore:hallucination_rate", "blocks": "infercore:guardrail_blocks_total",
    "drift": "infercore:drift_score",
}


def _panels() -> list[dict]:
    doc = json.loads(DASH.read_text())
    assert doc["title"] and doc["uid"] and isinstance(doc["schemaVersion"], int)
    names = {v["name"] for v in doc["templating"]["list"]}
    assert {"datasource", "model"} <= names
    return [p for p in doc["panels"] if p["type"] != "row"]


def _exprs() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in _panels() for t in p["targets"]]


def test_panels_have_datasource_and_targets():
    panels = _panels()
    assert len(panels) >= 15
    ids = [p["id"] for p in json.loads(DASH.read_text())["panels"]]
    assert len(ids) == len(set(ids))
    for p in panels:
        assert p["title"] and p["datasource"]["type"] == "prometheus", p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["type"] == "prometheus" and t["expr"].strip(), p["title"]
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0


def test_required_views_are_present():
    used = {m for _, e in _exprs() for m in _METRIC.findall(e)}
    for view, metric in REQUIRED.items():
        assert metric in used, f"the dashboard has no {view} panel ({metric})"


def test_histogram_quantiles_are_over_buckets_by_le():
    n = 0
    for title, e in _exprs():
        for m in re.finditer(r"histogram_quantile\(\s*([0-9.]+)\s*,\s*sum by \(([^)]*)\) \(rate\(([^\[{]+)", e):
            n += 1
            assert 0 < float(m.group(1)) < 1, title
            assert "le" in [x.strip() for x in m.group(2).split(",")], title
            assert m.group(3).endswith("_bucket"), title
        assert e.count("histogram_quantile") == len(re.findall(r"histogram_quantile\(", e))
    assert n >= 8


@pytest.fixture(scope="module")
def exported(tiny_llm, embedder, tmp_path_factory):
    """Every series name a test app with all routes exports (from its /metrics)."""
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from infercore.guardrails import Guard
    from infercore.rag import RAG
    from infercore.serve import build_app

    rag = RAG(tmp_path_factory.mktemp("dash") / "s", embedder, llm=tiny_llm, chunk_tokens=24, overlap_tokens=6)
    rag.ingest_text("Paged attention stores keys and values in fixed-size blocks.", "a")
    app = build_app(tiny_llm, model_name="tiny", embedder=embedder, rag=rag, guard=Guard.default())
    with TestClient(app) as c:
        assert c.post("/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 2}).status_code == 200
        text = c.get("/metrics").text
    names = set()
    for fam in text_string_to_metric_families(text):
        names |= {fam.name + s for s in SUFFIXES[fam.type]}
        names |= {s.name for s in fam.samples}
    return names


def test_every_metric_is_exported(exported):
    for title, e in _exprs():
        for metric in _METRIC.findall(e):
            assert metric in exported, f"panel {title!r} uses {metric}, which the server does not export"
    doc = json.loads(DASH.read_text())
    for v in doc["templating"]["list"]:
        for metric in _METRIC.findall(json.dumps(v)):
            assert metric in exported, metric


def test_labels_used_exist(exported):
    known = {"le", "model_name", "code", "route", "rail", "direction", "feature", "statistic", "outcome",
             "finished_reason"}  # fmt: skip
    for title, e in _exprs():
        for group in re.findall(r"\b(?:by|on|ignoring)\s*\(([^)]*)\)", e):
            for label in filter(None, (x.strip() for x in group.split(","))):
                assert label in known, f"{title}: unknown label {label}"
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", json.dumps([p["targets"] for p in _panels()])):
            assert label in known


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_parses_every_expression(tmp_path):
    rules = []
    for i, (_, e) in enumerate(_exprs()):
        expr = e.replace("$__rate_interval", "5m").replace("$model", ".*")
        rules.append({"record": f"infercore:dashboard_check_{i}", "expr": expr})
    f = tmp_path / "dash_rules.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = subprocess.run(["promtool", "check", "rules", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
