"""End to end: the shipped tiny suite on the tiny random model -> a valid results file -> report."""

from __future__ import annotations

import json
import math
import os
import sys

import pytest

from infercore.cli.main import main
from infercore.evals.report import PLOTS_MISSING, render_markdown, write_report
from infercore.evals.results import STAGES, load
from infercore.evals.runner import run_suite
from infercore.evals.suite import SUITES_DIR, EvalSuite


@pytest.fixture(scope="module")
def tiny_results(tiny_model_dir, tmp_path_factory):
    suite = EvalSuite.load(os.path.join(SUITES_DIR, "tiny.yaml"))
    res = run_suite(suite, model=tiny_model_dir)
    out = tmp_path_factory.mktemp("res") / "results.json"
    res.save(str(out))
    return str(out)


def test_tiny_suite_produces_a_valid_results_file(tiny_results, tiny_model_dir):
    res = load(tiny_results)  # the gate's reader validates the format
    assert list(res.stages) == list(STAGES)
    assert res.versions["model"]["path"] == tiny_model_dir and len(res.versions["model"]["sha256"]) == 64
    assert res.versions["suite"]["name"] == "tiny" and "builtin:mc.jsonl" in res.versions["data"]
    assert res.versions["guardrails"] == {"config": "default"}
    reg = res.stages["regression"]
    assert set(reg.metrics) == {"mmlu_accuracy", "letters_accuracy", "exact_exact_match", "code_pass_at_1"}
    assert len(reg.metrics["mmlu_accuracy"].samples) == 4 and len(reg.metrics["code_pass_at_1"].samples) == 2
    for m in reg.metrics.values():
        assert m.value == pytest.approx(sum(m.samples) / len(m.samples))
    assert reg.details["cost"]["forward_tokens"] > 0 and reg.details["checks"] == {"mmlu_accuracy": "pass"}
    q = res.stages["quality"]
    assert len(q.metrics["judge_judge_failure_rate"].samples) == 4  # a random judge: failures counted, no crash
    assert 0.0 <= q.metrics["judge_judge_failure_rate"].value <= 1.0
    assert {"helpful_score", "vs_ref_win_rate", "vs_ref_position_consistency", "judge_kappa"} <= set(q.metrics)
    s = res.stages["safety"]
    assert len(s.metrics["block_rate"].samples) == 24 and len(s.metrics["false_positive_rate"].samples) == 20
    p = res.stages["performance"]
    assert p.metrics["error_rate"].value == 0.0 and len(p.metrics["error_rate"].samples) == 6
    assert len(p.metrics["e2e_p99_s"].samples) == 6 and p.metrics["e2e_p99_s"].statistic == "p99"
    assert p.metrics["itl_p50_s"].samples and all(x >= 0 for x in p.metrics["itl_p50_s"].samples)
    assert p.metrics["throughput_tok_s"].value > 0
    assert all(st.wall_s > 0 for name, st in res.stages.items() if name != "safety")
    with open(tiny_results) as f:
        json.load(f)  # strict JSON (no NaN)


def test_report_with_baseline_and_plots(tiny_results, tmp_path):
    pytest.importorskip("matplotlib")
    res = load(tiny_results)
    base = load(tiny_results)
    base.stages["regression"].metrics["mmlu_accuracy"].value = 0.0
    out = tmp_path / "r" / "report.md"
    w = write_report(res, str(out), base)
    md = out.read_text()
    assert "# Evaluation report: tiny v1" in md and "## performance" in md and "| mmlu_accuracy |" in md
    row = next(line for line in md.splitlines() if line.startswith("| mmlu_accuracy |"))
    acc = res.metric("regression", "mmlu_accuracy").value
    assert f"| {acc:.3f} | 0.000 |" in row and ("better" in row if acc > 0 else "same" in row)
    assert len(w["images"]) == 2
    for img in w["images"]:
        with open(img, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.basename(img) in md
    html = (tmp_path / "r" / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "report-latency.png" in html


def test_report_without_matplotlib(tiny_results, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    w = write_report(load(tiny_results), str(tmp_path / "report.md"))
    assert w["images"] == [] and w["notes"] == [PLOTS_MISSING]
    assert PLOTS_MISSING in (tmp_path / "report.md").read_text()
    md = render_markdown(load(tiny_results))
    assert "| metric | value | n | threshold |" in md and "baseline" not in md


def test_cli_report_and_errors(tiny_results, tmp_path, capsys):
    out = tmp_path / "rep.md"
    assert main(["eval", "report", tiny_results, "--baseline", tiny_results, "--out", str(out), "--no-plots"]) == 0
    assert out.exists() and (tmp_path / "rep.html").exists()
    assert main(["eval", "report", str(tmp_path / "missing.json")]) == 2
    assert "not found" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "infercore.eval.results/0", "suite": {}, "stages": {}}))
    assert main(["eval", "report", str(other)]) == 2
    assert "format" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: 1\nmodel: m\nstages:\n  regression:\n    taks: []\n")
    assert main(["eval", "run", str(bad), "--out", str(tmp_path / "o.json")]) == 2
    assert "bad.yaml:6:" in capsys.readouterr().err


def test_cli_run_subset(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "o.json"
    rc = main(["eval", "run", "tiny", "--model", tiny_model_dir, "--stages", "safety,regression", "--out", str(out),
               "-q"])
    assert rc == 0
    res = load(str(out))
    assert list(res.stages) == ["regression", "safety"]
    assert "wrote" in capsys.readouterr().out
    assert main(["eval", "run", "tiny", "--stages", "nonsense", "--out", str(out)]) == 2
    assert math.isfinite(res.metric("safety", "block_rate").value)
