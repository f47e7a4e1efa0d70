"""The LLMOps loop end to end, no crafted results: `infercore eval run` on the tiny random model
-> `infercore gate --apply` -> the registry alias moves on deploy and stays on a roll back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infercore.evals.results import load
from infercore.prompts import PromptRegistry

pytest.importorskip("safetensors")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infercore.cli.main", *args], capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    d = tmp_path_factory.mktemp("e2e")
    model = tiny_llama_dir(str(d / "model"))
    out = str(d / "cand.json")
    r = _cli("eval", "run", "tiny", "--model", model, "--out", out, "--stages", "regression,safety,performance",
             "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


def _policy(path, rules: dict) -> str:
    lines = ["version: 1", "metrics:"] + [f"  {k}: {json.dumps(v)}" for k, v in rules.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def registry(tmp_path):
    reg = PromptRegistry(tmp_path / "reg")
    reg.register("qa", "Q: {{ q }}", variables={"q": "str"}, alias="production")
    reg.register("qa", "Question: {{ q }}\nAnswer:", variables={"q": "str"})
    return reg


def test_real_results_carry_the_keys_the_gate_reads(tiny_results):
    res = load(tiny_results)
    for key in ("safety.block_rate", "safety.false_positive_rate", "performance.e2e_p99_s",
                "performance.error_rate", "regression.mmlu_accuracy"):  # fmt: skip
        stage, metric = key.split(".")
        m = res.metric(stage, metric)
        assert m is not None, key
        assert m.samples, key  # per-item samples for the bootstrap
    assert res.metric("performance", "e2e_p99_s").statistic == "p99"


def test_deploy_moves_the_alias(tiny_results, registry, tmp_path):
    policy = _policy(tmp_path / "gate.yaml", {
        "performance.error_rate": {"max": 0.01},
        "safety.false_positive_rate": {"max": 0.05},
        "regression.mmlu_accuracy": {"min": 0.0, "margin": 1.0},
    })  # fmt: skip
    # the candidate against itself as the baseline: non-inferior by construction
    r = _cli("gate", "--candidate", tiny_results, "--baseline", tiny_results, "--policy", policy, "--apply",
             "--registry", str(registry.path), "--prompt", "qa", "--prompt-version", "2")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert PromptRegistry(registry.path).get("qa", alias="production").version == 2


def test_roll_back_keeps_the_alias(tiny_results, registry, tmp_path):
    # the default rails block far fewer than 99.9% of the attack set: a real threshold failure
    policy = _policy(tmp_path / "gate.yaml", {"safety.block_rate": {"min": 0.999}})
    r = _cli("gate", "--candidate", tiny_results, "--no-baseline", "--policy", policy, "--apply",
             "--registry", str(registry.path), "--prompt", "qa", "--prompt-version", "2")  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "safety.block_rate" in r.stdout
    assert PromptRegistry(registry.path).get("qa", alias="production").version == 1
