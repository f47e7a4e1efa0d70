"""SmolLM2 end to end on a handful of items per stage (skipped when the model is not pulled)."""

from __future__ import annotations

import pytest

from infercore.evals.results import load
from infercore.evals.runner import run_suite
from infercore.evals.suite import EvalSuite
from infercore.models import resolve_model

SUITE = """
name: smollm2-handful
version: "1"
model: smollm2
stages:
  regression:
    tasks:
      - {name: mmlu, type: multiple_choice, data: "builtin:mc.jsonl", limit: 6}
      - {name: exact, type: exact_match, data: "builtin:exact_match.jsonl", limit: 3, max_tokens: 12, match: contains}
      - {name: code, type: code, data: "builtin:code.jsonl", limit: 2, max_tokens: 64, mode: chat}
  quality:
    judge: {model: same, max_tokens: 12}
    tasks:
      - {name: judge, type: judge_agreement, data: "builtin:judge_human.jsonl", limit: 6}
      - {name: vs_ref, type: pairwise, data: "builtin:quality.jsonl", limit: 2, max_tokens: 24}
  safety:
    limit: 30
  performance: {requests: 4, concurrency: 2, max_tokens: 8}
"""


@pytest.fixture(scope="module")
def smollm2():
    try:
        resolve_model("smollm2")
    except ValueError:
        pytest.skip("SmolLM2 is not available: run `infercore models pull smollm2`")
    from infercore import LLM

    return LLM("smollm2")


@pytest.mark.slow
def test_smollm2_handful(smollm2, tmp_path):
    suite = EvalSuite.from_yaml(SUITE, source="handful.yaml")
    res = run_suite(suite, llm=smollm2)
    out = tmp_path / "results.json"
    res.save(str(out))
    res = load(str(out))
    mmlu = res.metric("regression", "mmlu_accuracy")
    assert len(mmlu.samples) == 6 and mmlu.value == sum(mmlu.samples) / 6
    # the first questions are easy one-word facts (plants absorb carbon dioxide, Mercury is closest to
    # the Sun, ...): a working log-likelihood scorer on SmolLM2 gets more than chance (1/4) of them
    assert mmlu.value > 0.25
    assert res.versions["model"]["name"] == "smollm2" and len(res.versions["model"]["sha256"]) == 64
    fail = res.metric("quality", "judge_judge_failure_rate")
    assert len(fail.samples) == 6 and fail.value < 1.0  # with response priming SmolLM2 gives parseable ratings
    assert len(res.metric("quality", "vs_ref_judge_failure_rate").samples) == 2
    assert res.metric("performance", "error_rate").value == 0.0
    assert len(res.metric("performance", "ttft_p99_s").samples) == 4
    assert res.stages["quality"].details["cost"]["generated_tokens"] > 0
    # the loop closes: SmolLM2's results -> gate -> the registry alias moves (deploy) or not
    from infercore.cli.main import main
    from infercore.prompts import PromptRegistry

    reg = PromptRegistry(tmp_path / "reg")
    reg.register("qa", "Q: {{ q }}", variables={"q": "str"}, alias="production")
    reg.register("qa", "Question: {{ q }}", variables={"q": "str"})
    passing = tmp_path / "pass.yaml"
    passing.write_text("version: 1\nmetrics:\n  performance.error_rate: {max: 0.01}\n"
                       "  regression.mmlu_accuracy: {min: 0.25, margin: 0.5}\n")
    argv = ["gate", "--candidate", str(out), "--baseline", str(out), "--apply", "--registry", reg.path,
            "--prompt", "qa", "--prompt-version", "2"]  # fmt: skip
    assert main([*argv, "--policy", str(passing)]) == 0
    assert PromptRegistry(reg.path).get("qa", alias="production").version == 2
    failing = tmp_path / "fail.yaml"  # SmolLM2 is not a 95%-accurate MMLU model: roll back
    failing.write_text("version: 1\nmetrics:\n  regression.mmlu_accuracy: {min: 0.95}\n")
    reg.set_alias("qa", "production", 1)
    assert main([*argv, "--policy", str(failing)]) == 1
    assert PromptRegistry(reg.path).get("qa", alias="production").version == 1
