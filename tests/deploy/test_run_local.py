"""deploy/run_local.sh: the pipeline's steps (gate -> promote or roll back -> notify) without a cluster,
on crafted results; the registry alias moves on deploy and stays on a roll back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from infercore.evals.results import EvalResults, Metric, StageResult
from infercore.prompts import PromptRegistry, Rollout

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "run_local.sh"
ENV = {**os.environ, "INFERCORE": f"{sys.executable} -m infercore.cli.main"}


def _results(path: Path, coverage: np.ndarray, prompt_version: int) -> str:
    lat = np.random.default_rng(prompt_version).lognormal(0.0, 0.4, 1000)
    r = EvalResults("smoke", "1", versions={"model": "smollm2", "prompts": {"qa": prompt_version}}, stages={
        "quality": StageResult({"citation_coverage": Metric(float(coverage.mean()), True, coverage.tolist()),
                                "hallucination_rate": Metric(0.0, False, [0.0] * len(coverage))}),
        "performance": StageResult({"e2e_p99_s": Metric(float(np.percentile(lat, 99)), False, lat.tolist(), "p99"),
                                    "error_rate": Metric(0.0, False, [0.0] * 1000)}),
    })  # fmt: skip
    r.save(str(path))
    return str(path)


@pytest.fixture
def setup(tmp_path):
    reg = PromptRegistry(tmp_path / "registry")
    reg.register("qa", "Answer: {{ q }}", alias="production")
    reg.register("qa", "Answer with citations: {{ q }}")
    cov = np.ones(400)
    cov[:40] = 0.0  # 0.90
    worse = cov.copy()
    worse[40:80] = 0.0  # 0.80: at the floor, 10 points under the baseline
    return {
        "reg": reg,
        "base": _results(tmp_path / "base.json", cov, 1),
        "good": _results(tmp_path / "good.json", cov, 2),
        "bad": _results(tmp_path / "bad.json", worse, 2),
        "tmp": tmp_path,
    }


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=ENV, cwd=cwd,
                          timeout=300)  # fmt: skip


def test_deploy_moves_the_alias(setup):
    s = setup
    work = s["tmp"] / "w1"
    p = run("--candidate", s["good"], "--baseline", s["base"], "--policy", str(ROOT / "deploy" / "gate.yaml"),
            "--registry", s["reg"].path, "--prompt", "qa", "--model-alias", "production", "--workdir", str(work),
            cwd=s["tmp"])  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "infercore gate: deploy (status 0" in p.stdout
    assert s["reg"].aliases("qa")["production"] == 2
    assert s["reg"].get("served-model", alias="production").model_config["model"] == "smollm2"
    note = json.loads((work / "notification.json").read_text())
    assert note["decision"] == "deploy" and note["exit_status"] == 0
    assert note["applied"] == ["prompt qa: alias production -> v2 (was v1)", "model smollm2: alias production -> v1"]
    assert (work / "decision").read_text() == "deploy\n"
    for step in ("=== gate", "=== apply (deploy)", "=== notify"):
        assert step in p.stderr


def test_rollback_keeps_the_alias_and_rolls_the_rollout_back(setup):
    s = setup
    Rollout(s["reg"], "qa", 2, stages=[0.1, 1.0], rollout_id="qa-v2")
    work = s["tmp"] / "w2"
    p = run("--candidate", s["bad"], "--baseline", s["base"], "--registry", s["reg"].path, "--rollout", "qa-v2",
            "--workdir", str(work), cwd=s["tmp"])  # fmt: skip
    assert p.returncode == 1, p.stderr
    assert "infercore gate: rollback (status 1" in p.stdout
    assert s["reg"].aliases("qa")["production"] == 1
    state = s["reg"].read_state("rollouts", "qa-v2")
    assert state["status"] == "rolled_back"
    assert "quality.citation_coverage (non_inferiority)" in state["events"][-1]["reason"]
    log = subprocess.run(["git", "-C", s["reg"].path, "log", "-1", "--format=%s"], capture_output=True,
                         text=True).stdout  # fmt: skip
    assert log.startswith("rollout qa-v2: rollback: infercore gate: 1 of 7 checks failed")
    note = json.loads((work / "notification.json").read_text())
    assert note["decision"] == "rollback" and "citation_coverage" in note["reason"]


def test_no_baseline_and_no_registry(setup):
    s = setup
    p = run("--candidate", s["bad"], "--no-baseline", "--workdir", str(s["tmp"] / "w3"), cwd=s["tmp"])
    assert p.returncode == 0, p.stderr  # 0.80 meets the floor; without a baseline the regression is unseen
    assert s["reg"].aliases("qa")["production"] == 1


def test_bad_input_stops_before_the_registry(setup):
    s = setup
    n = len(subprocess.run(["git", "-C", s["reg"].path, "log", "--format=%H"], capture_output=True,
                           text=True).stdout.split())  # fmt: skip
    work = s["tmp"] / "w4"
    p = run("--candidate", s["good"], "--baseline", str(s["tmp"] / "missing.json"), "--registry", s["reg"].path,
            "--prompt", "qa", "--workdir", str(work), cwd=s["tmp"])  # fmt: skip
    assert p.returncode == 2
    assert "baseline results file not found" in (work / "decision.json").read_text() + p.stderr
    assert json.loads((work / "notification.json").read_text())["decision"] == "error"
    n2 = len(subprocess.run(["git", "-C", s["reg"].path, "log", "--format=%H"], capture_output=True,
                            text=True).stdout.split())  # fmt: skip
    assert n2 == n and s["reg"].aliases("qa")["production"] == 1
    assert run("--no-baseline", cwd=s["tmp"]).returncode == 2
    assert run("--candidate", s["good"], "--no-baseline", "--prompt", "qa", cwd=s["tmp"]).returncode == 2
