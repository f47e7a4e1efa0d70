"""`infercore gate`: exit codes, the stage-by-stage explanation, and bad input (missing baseline, other
format versions, malformed policy)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from gate_fixtures import flags, flip, standard

from infercore.cli.main import main


@pytest.fixture
def files(tmp_path):
    cov = flags(0.90, 500, 3)
    paths = {"base": tmp_path / "base.json", "good": tmp_path / "good.json", "worse": tmp_path / "worse.json",
             "low": tmp_path / "low.json"}  # fmt: skip
    standard(0, coverage=cov).save(str(paths["base"]))
    standard(100, coverage=flip(cov, 5, 2)).save(str(paths["good"]))  # a noisy tie
    standard(100, coverage=flip(cov, 40, 0)).save(str(paths["worse"]))  # 0.90 -> 0.82: a regression
    standard(100, coverage=flags(0.75, 500, 3)).save(str(paths["low"]))
    return {k: str(v) for k, v in paths.items()}


def run(capsys, *argv):
    rc = main(["gate", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_deploy_exit_0_with_explanation(files, capsys):
    rc, out, _ = run(capsys, "--candidate", files["good"], "--baseline", files["base"])
    assert rc == 0
    assert "gate decision: DEPLOY" in out
    assert "quality: 4/4 passed" in out and "performance: 3/3 passed" in out
    assert "PASS  citation_coverage" in out


def test_regression_exit_1_says_why(files, capsys):
    rc, out, _ = run(capsys, "--candidate", files["worse"], "--baseline", files["base"])
    assert rc == 1
    assert "gate decision: ROLL BACK" in out
    assert "FAIL  citation_coverage" in out and "non_inferiority" in out
    assert "roll back: 1 of 7 gate checks failed: quality.citation_coverage non_inferiority" in out


def test_threshold_failure_json(files, capsys):
    rc, out, _ = run(capsys, "--candidate", files["low"], "--baseline", files["base"], "--json")
    assert rc == 1
    doc = json.loads(out)
    assert doc["decision"] == "rollback" and doc["deploy"] is False
    failed = [(c["metric"], c["kind"]) for c in doc["checks"] if not c["passed"]]
    assert ("citation_coverage", "threshold") in failed


def test_decision_file(files, capsys, tmp_path):
    f = tmp_path / "decision"
    assert run(capsys, "--candidate", files["worse"], "--baseline", files["base"], "--decision-file", str(f))[0] == 1
    assert f.read_text() == "rollback\n"
    assert run(capsys, "--candidate", files["good"], "--baseline", files["base"], "--decision-file", str(f))[0] == 0
    assert f.read_text() == "deploy\n"


def test_policy_file(files, capsys, tmp_path):
    strict = tmp_path / "strict.yaml"
    strict.write_text("metrics:\n  quality.citation_coverage: {min: 0.95}\n")
    rc, out, _ = run(capsys, "--candidate", files["good"], "--baseline", files["base"], "--policy", str(strict))
    assert rc == 1 and "< min 0.95" in out and "performance: no checks in the policy" in out


def test_missing_baseline_is_an_input_error(files, capsys, tmp_path):
    rc, _, err = run(capsys, "--candidate", files["good"], "--baseline", str(tmp_path / "nope.json"))
    assert rc == 2
    assert "baseline results file not found" in err and "--no-baseline" in err
    rc, _, err = run(capsys, "--candidate", files["good"])
    assert rc == 2 and "--no-baseline" in err


def test_no_baseline_gates_on_thresholds(files, capsys):
    rc, out, _ = run(capsys, "--candidate", files["worse"], "--no-baseline")
    assert rc == 0  # 0.82 is above the 0.80 floor; without a baseline the regression is not seen
    assert "no baseline: absolute thresholds only" in out
    assert run(capsys, "--candidate", files["low"], "--no-baseline")[0] == 1


def test_other_format_version_is_an_input_error(files, capsys, tmp_path):
    doc = json.loads(open(files["good"]).read())
    doc["format"] = "infercore.eval.results/0"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    rc, _, err = run(capsys, "--candidate", str(old), "--baseline", files["base"])
    assert rc == 2 and "infercore.eval.results/0" in err and "infercore.eval.results/1" in err
    rc, _, err = run(capsys, "--candidate", files["good"], "--baseline", str(old))
    assert rc == 2 and "format is 'infercore.eval.results/0'" in err
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": ')
    rc, _, err = run(capsys, "--candidate", str(broken), "--baseline", files["base"])
    assert rc == 2 and "not valid JSON (line 1" in err
    rc, _, err = run(capsys, "--candidate", str(tmp_path / "none.json"), "--baseline", files["base"])
    assert rc == 2 and "results file not found" in err


def test_malformed_policy_is_an_input_error_with_the_line(files, capsys, tmp_path):
    bad = tmp_path / "gate.yaml"
    bad.write_text("confidence: 0.95\nmetrics:\n  quality.citation_coverage:\n    min: eighty\n")
    rc, _, err = run(capsys, "--candidate", files["good"], "--baseline", files["base"], "--policy", str(bad))
    assert rc == 2 and f"{bad}:4:" in err and "expected a number" in err
    rc, _, err = run(capsys, "--candidate", files["good"], "--baseline", files["base"], "--policy",
                     str(tmp_path / "missing.yaml"))  # fmt: skip
    assert rc == 2 and "policy file not found" in err


def test_usage_errors(files, capsys):
    rc, _, err = run(capsys, "--candidate", files["good"], "--no-baseline", "--apply")
    assert rc == 2 and "--registry" in err
    rc, _, err = run(capsys, "--candidate", files["good"], "--no-baseline", "--apply", "--registry", "r")
    assert rc == 2 and "something to move" in err
    rc, _, err = run(capsys, "--candidate", files["good"], "--no-baseline", "--prompt", "qa")
    assert rc == 2 and "only act with --apply" in err
    with pytest.raises(SystemExit) as e:
        main(["gate", "--candidate", files["good"], "--baseline", files["base"], "--no-baseline"])
    assert e.value.code == 2


def test_exit_codes_from_a_real_process(files):
    """The installed entry point: 0 deploy, 1 roll back, 2 bad input."""
    base = [sys.executable, "-m", "infercore.cli.main", "gate", "--baseline", files["base"], "--candidate"]
    codes = [subprocess.run([*base, files[k]], capture_output=True, text=True, timeout=120).returncode
             for k in ("good", "worse")]  # fmt: skip
    bad = subprocess.run([*base, files["good"] + ".missing"], capture_output=True, text=True, timeout=120)
    assert codes == [0, 1] and bad.returncode == 2
    assert "results file not found" in bad.stderr
