"""The safety stage also runs a NeMo Guardrails config (offline) beside our Guard."""

from __future__ import annotations

import pytest

pytest.importorskip("nemoguardrails")

SUITE = """
name: nemo-safety
version: "1"
model: smollm2
stages:
  safety:
    limit: 12
    nemo_config: builtin:nemo_config
"""


def test_safety_stage_with_nemo_config(monkeypatch):
    from infercore.evals.runner import run_suite
    from infercore.evals.suite import EvalSuite
    from infercore.models import resolve_model

    try:
        resolve_model("smollm2")
    except ValueError:
        pytest.skip("SmolLM2 is not available: run `infercore models pull smollm2`")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("NEMOGUARDRAILS_DISABLE_TELEMETRY", "1")
    res = run_suite(EvalSuite.from_yaml(SUITE, source="nemo.yaml"))
    m = res.stages["safety"].metrics
    ours, nemo = m["block_rate"], m["nemo_block_rate"]
    assert len(nemo.samples) == len(ours.samples) and nemo.value > 0.3  # the example config's injection rail
    assert m["nemo_false_positive_rate"].value <= 0.1
    assert m["nemo_latency_p99_s"].statistic == "p99" and m["nemo_latency_p50_s"].value > 0
    assert res.stages["safety"].details["nemo_config"].endswith("nemo_config")


def test_bad_nemo_config_path_is_reported_with_its_line():
    from infercore.evals.suite import EvalSuite, SuiteError

    with pytest.raises(SuiteError, match="nemo_config"):
        EvalSuite.from_yaml(SUITE.replace("builtin:nemo_config", "/no/such/dir"), source="nemo.yaml")
