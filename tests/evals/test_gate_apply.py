"""`infercore gate --apply`: the decision moves aliases / advances or rolls back a staged rollout in the
prompt registry, recorded as Git commits there."""

from __future__ import annotations

import json
import subprocess

import pytest
from gate_fixtures import flags, flip, standard

from infercore.cli.main import main
from infercore.evals.gate import decide
from infercore.evals.gate_apply import SERVED_MODEL, apply_decision, served_model
from infercore.prompts import PromptRegistry, Rollout


def git_log(reg: PromptRegistry) -> list[str]:
    out = subprocess.run(["git", "-C", reg.path, "log", "--format=%B%x1e"], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return [m.strip() for m in out.split("\x1e") if m.strip()]


@pytest.fixture
def reg(tmp_path):
    r = PromptRegistry(tmp_path / "registry")
    r.register("qa", "Answer: {{ q }}", message="first", alias="production")
    r.register("qa", "Answer briefly, citing sources: {{ q }}", message="second")
    return r


@pytest.fixture
def results(tmp_path):
    cov = flags(0.90, 500, 3)
    out = {}
    for name, c, model in (("base", cov, "smollm2"), ("good", flip(cov, 5, 2), "smollm2-int8"),
                           ("bad", flip(cov, 40, 0), "smollm2-int8")):  # fmt: skip
        r = standard(0 if name == "base" else 100, coverage=c)
        r.versions = {"model": model, "prompts": {"qa": 1 if name == "base" else 2}}
        p = tmp_path / f"{name}.json"
        r.save(str(p))
        out[name] = str(p)
    return out


def gate(capsys, results, cand, *extra):
    rc = main(["gate", "--candidate", results[cand], "--baseline", results["base"], "--apply", *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_deploy_moves_the_prompt_alias(reg, results, capsys):
    n = len(git_log(reg))
    rc, out, _ = gate(capsys, results, "good", "--registry", reg.path, "--prompt", "qa")
    assert rc == 0
    assert reg.aliases("qa")["production"] == 2
    assert "applied: prompt qa: alias production -> v2 (was v1)" in out
    log = git_log(reg)
    assert len(log) == n + 1 and log[0].startswith("qa: alias production -> v2")
    # deploying again changes nothing and commits nothing
    assert gate(capsys, results, "good", "--registry", reg.path, "--prompt", "qa")[0] == 0
    assert len(git_log(reg)) == n + 1


def test_rollback_keeps_or_restores_the_prompt_alias(reg, results, capsys):
    n = len(git_log(reg))
    rc, out, _ = gate(capsys, results, "bad", "--registry", reg.path, "--prompt", "qa")
    assert rc == 1
    assert reg.aliases("qa")["production"] == 1 and "alias production kept at v1" in out
    assert len(git_log(reg)) == n
    # the alias was moved to the candidate ahead of the gate: the rollback restores the previous target
    reg.set_alias("qa", "production", 2)
    rc, out, _ = gate(capsys, results, "bad", "--registry", reg.path, "--prompt", "qa")
    assert rc == 1 and reg.aliases("qa")["production"] == 1
    assert "restored to v1" in out and git_log(reg)[0].startswith("qa: alias production -> v1")


def test_deploy_advances_a_staged_rollout_to_completion(reg, results, capsys):
    Rollout(reg, "qa", 2, stages=[0.1, 0.5, 1.0], rollout_id="qa-v2")
    for stage, share in ((1, "50%"), (2, "100%")):
        rc, out, _ = gate(capsys, results, "good", "--registry", reg.path, "--rollout", "qa-v2")
        assert rc == 0 and f"advanced to stage {stage + 1}/3 ({share} of traffic on v2)" in out
        assert git_log(reg)[0].startswith("rollout qa-v2: advance (gate callable passed)")
    assert reg.aliases("qa")["production"] == 1  # not yet: the last stage has not passed
    rc, out, _ = gate(capsys, results, "good", "--registry", reg.path, "--rollout", "qa-v2")
    assert rc == 0 and "completed, alias production -> v2" in out
    assert reg.aliases("qa")["production"] == 2
    log = git_log(reg)
    assert log[0].startswith("qa: alias production -> v2") and log[1].startswith("rollout qa-v2: complete")
    state = reg.read_state("rollouts", "qa-v2")
    assert state["status"] == "completed"
    assert [e["action"] for e in state["events"]] == ["start", "advance", "advance", "complete"]
    assert state["events"][1]["metrics"]["gate"] == "deploy"
    # a completed rollout has no stage left: an input error, not a decision
    rc, _, err = gate(capsys, results, "good", "--registry", reg.path, "--rollout", "qa-v2")
    assert rc == 2 and "is completed" in err


def test_rollback_rolls_the_rollout_back_with_the_reason(reg, results, capsys):
    Rollout(reg, "qa", 2, stages=[0.1, 1.0], rollout_id="qa-v2")
    rc, out, _ = gate(capsys, results, "bad", "--registry", reg.path, "--rollout", "qa-v2")
    assert rc == 1 and "rollout qa-v2: rolled back to v1" in out
    r = Rollout(reg, "qa", 2, stages=[0.1, 1.0], rollout_id="qa-v2")
    assert r.status == "rolled_back" and r.share == 0.0
    reason = r.events[-1]["reason"]
    assert reason == "infercore gate: 1 of 7 checks failed: quality.citation_coverage (non_inferiority)"
    assert git_log(reg)[0].startswith(f"rollout qa-v2: rollback: {reason}")
    assert reg.aliases("qa")["production"] == 1
    # again: already rolled back, nothing new committed
    n = len(git_log(reg))
    rc, out, _ = gate(capsys, results, "bad", "--registry", reg.path, "--rollout", "qa-v2")
    assert rc == 1 and "already rolled back" in out and len(git_log(reg)) == n


def test_rollout_must_match_the_evaluated_version(reg, results, capsys):
    reg.register("qa", "Third: {{ q }}")
    Rollout(reg, "qa", 3, stages=[1.0], rollout_id="qa-v3")
    rc, _, err = gate(capsys, results, "good", "--registry", reg.path, "--rollout", "qa-v3")
    assert rc == 2 and "produced with v2" in err
    assert reg.read_state("rollouts", "qa-v3")["status"] == "running"
    rc, _, err = gate(capsys, results, "good", "--registry", reg.path, "--rollout", "nope")
    assert rc == 2 and "no staged rollout 'nope'" in err


def test_model_alias_pseudo_prompt(reg, results, capsys, tmp_path):
    rc, out, _ = gate(capsys, results, "good", "--registry", reg.path, "--model-alias", "production")
    assert rc == 0 and served_model(reg, "production") == "smollm2-int8"
    assert "applied: model smollm2-int8: alias production -> v1" in out
    pv = reg.get(SERVED_MODEL, alias="production")
    assert pv.model_config == {"model": "smollm2-int8"}
    assert git_log(reg)[0].startswith(f"{SERVED_MODEL}: alias production -> v1")
    # a rejected candidate on another model leaves the served model as it is
    r = standard(100, coverage=flip(flags(0.90, 500, 3), 40, 0))
    r.versions = {"model": "smollm2-fp8", "prompts": {"qa": 2}}
    r.save(str(tmp_path / "bad2.json"))
    rc = main(["gate", "--candidate", str(tmp_path / "bad2.json"), "--baseline", results["base"], "--apply",
               "--registry", reg.path, "--model-alias", "production"])  # fmt: skip
    assert rc == 1 and served_model(reg, "production") == "smollm2-int8"
    assert "never served" in capsys.readouterr().out
    # deploy another model, then a rollback of that same model restores the earlier one
    rc = main(["gate", "--candidate", results["good"], "--baseline", results["base"], "--apply", "--registry",
               reg.path, "--model-alias", "production", "--model", "smollm2-fp8"])  # fmt: skip
    assert rc == 0 and served_model(reg) == "smollm2-fp8"
    rc = main(["gate", "--candidate", str(tmp_path / "bad2.json"), "--baseline", results["base"], "--apply",
               "--registry", reg.path, "--model-alias", "production"])  # fmt: skip
    assert rc == 1 and served_model(reg) == "smollm2-int8"
    assert reg.versions(SERVED_MODEL) == [1, 2]


def test_prompt_and_model_together_json(reg, results, capsys):
    rc, out, _ = gate(capsys, results, "good", "--registry", reg.path, "--prompt", "qa", "--model-alias",
                      "production", "--json")  # fmt: skip
    doc = json.loads(out)
    assert rc == 0 and doc["decision"] == "deploy"
    assert doc["applied"] == ["prompt qa: alias production -> v2 (was v1)",
                              "model smollm2-int8: alias production -> v1"]  # fmt: skip


def test_apply_input_errors(reg, results, capsys, tmp_path):
    rc, _, err = gate(capsys, results, "good", "--registry", str(tmp_path / "nowhere"), "--prompt", "qa")
    assert rc == 2 and "not a prompt registry" in err
    rc, _, err = gate(capsys, results, "good", "--registry", reg.path, "--prompt", "qa", "--prompt-version", "9")
    assert rc == 2 and "no version 9" in err
    rc, _, err = gate(capsys, results, "good", "--registry", reg.path, "--prompt", "other")
    assert rc == 2 and "do not record a version of 'other'" in err
    with pytest.raises(ValueError, match="name what to move"):
        apply_decision(decide(standard(0), None), reg, standard(0))
