"""monitor/playbooks.py: the quality watch's windows, thresholds and cooldown; rolling an alias back
in a real (git) prompt registry; the event log."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from infercore.monitor.playbooks import (
    AliasMovedError,
    EventLog,
    QualityWatch,
    Thresholds,
    previous_version,
    rollback_alias,
)
from infercore.prompts.registry import PromptRegistry

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_thresholds_match_the_gate_policy_and_the_alert_rules():
    t = Thresholds.from_gate_policy(DEPLOY / "gate.yaml")
    assert t == Thresholds()  # the file carries the reference values
    assert (t.citation_coverage_min, t.hallucination_rate_max, t.error_rate_max) == (0.80, 0.05, 0.01)
    rules = {r["alert"]: r["expr"] for g in yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]
             for r in g["rules"]}  # fmt: skip

    def limit(alert: str) -> float:
        return float(re.search(r"[<>]=?\s*([0-9.]+)\s*$", rules[alert].strip()).group(1))

    assert limit("InfercoreCitationCoverageLow") == t.citation_coverage_min
    assert limit("InfercoreHallucinationRateHigh") == t.hallucination_rate_max
    assert limit("InfercoreErrorRateHigh") == t.error_rate_max


def test_thresholds_from_a_custom_policy_and_bad_values(tmp_path):
    p = tmp_path / "gate.yaml"
    p.write_text("metrics:\n  quality.citation_coverage: {min: 0.9}\n  performance.error_rate: {max: 0.02}\n")
    t = Thresholds.from_gate_policy(p)
    assert (t.citation_coverage_min, t.hallucination_rate_max, t.error_rate_max) == (0.9, 0.05, 0.02)
    p.write_text("metrics:\n  quality.citation_coverage: {min: 1.5}\n")
    with pytest.raises(ValueError, match=r"citation_coverage\.min"):
        Thresholds.from_gate_policy(p)
    p.write_text("version: 1\n")
    with pytest.raises(ValueError, match="metrics"):
        Thresholds.from_gate_policy(p)
    with pytest.raises(ValueError, match="error_rate_max"):
        Thresholds(error_rate_max=-0.1)


def test_one_bad_answer_does_not_roll_back():
    w = QualityWatch(window=10, min_samples=5, cooldown_s=0)
    assert w.observe_answer(0.0, 0.0) is None  # no citation at all, alone
    for _ in range(3):
        assert w.observe_answer(1.0, 0.0) is None
    assert w.observe_answer(1.0, 0.0) is None  # 5 answers, mean coverage 0.8: not below 0.80
    assert w.snapshot()["citation_coverage"] == pytest.approx(0.8)
    d = QualityWatch()  # the defaults: window 50, at least 20 answers
    assert d.observe_answer(1.0, 1.0) is None  # wholly hallucinated, alone
    assert all(d.observe_answer(1.0, 0.0) is None for _ in range(40))  # mean 1/41 < 0.05


def test_breach_on_the_window_mean_then_cooldown_and_reset():
    clock = Clock()
    w = QualityWatch(window=4, min_samples=4, cooldown_s=60, clock=clock)
    for _ in range(3):
        assert w.observe_answer(0.5, 0.0) is None  # below min_samples
    b = w.observe_answer(0.5, 0.0)
    assert b is not None and b.reason == "citation_coverage" and b.value == pytest.approx(0.5)
    assert b.threshold == 0.80 and b.samples == 4 and "0.500 < 0.800" in b.describe()
    assert w.snapshot()["answers"] == 0 and w.snapshot()["cooling_down"]
    for _ in range(8):  # as bad again, but inside the cooldown
        assert w.observe_answer(0.5, 0.0) is None
    clock.t = 61.0
    b = w.observe_answer(1.0, 0.5)  # the window now holds 4 answers: 3 old (0.5, 0.0) + this one
    assert b is not None and b.reason == "citation_coverage"  # coverage (0.625) checked before hallucination
    clock.t = 200.0
    for _ in range(3):
        w.observe_answer(1.0, 0.1)
    b = w.observe_answer(1.0, 0.1)
    assert b is not None and b.reason == "hallucination_rate" and b.value == pytest.approx(0.1)


def test_error_rate_counts_5xx_not_429():
    w = QualityWatch(error_window=100, error_min_samples=100, cooldown_s=0)
    for i in range(100):
        assert w.observe_response(429 if i % 2 else 200) is None  # half overloaded: not a version problem
    for _ in range(2):
        assert w.observe_response(200) is None
    assert w.observe_response(500) is None  # 1 error in the last 100: 0.01, not above 0.01
    b = w.observe_response(503)
    assert b is not None and b.reason == "error_rate" and b.value == pytest.approx(0.02)
    with pytest.raises(ValueError, match="status"):
        w.observe_response(99)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_breach_exactly_when_the_mean_crosses(covs):
    n = len(covs)
    w = QualityWatch(window=n, min_samples=n, cooldown_s=0)
    results = [w.observe_answer(c, 0.0) for c in covs]
    assert all(r is None for r in results[:-1])
    mean = sum(covs) / n
    assert (results[-1] is not None) == (mean < 0.80)


def test_watch_argument_errors():
    with pytest.raises(ValueError, match="min_samples"):
        QualityWatch(window=5, min_samples=6)
    with pytest.raises(ValueError, match="window"):
        QualityWatch(window=0)
    with pytest.raises(ValueError, match="cooldown_s"):
        QualityWatch(cooldown_s=-1)
    with pytest.raises(TypeError, match="thresholds"):
        QualityWatch({"citation_coverage_min": 0.8})
    with pytest.raises(ValueError, match="citation_coverage"):
        QualityWatch().observe_answer(1.2, 0.0)


@pytest.fixture
def reg(tmp_path):
    r = PromptRegistry(tmp_path / "reg")
    r.register("qa", "Answer with citations.", message="v1", alias="production")
    r.register("qa", "Answer briefly with citations.", message="v2", alias="production")
    r.register("qa", "Answer.", message="v3", alias="production")
    return r


def _git_body(reg, rev="HEAD") -> str:
    return subprocess.run(["git", "log", "-1", "--format=%B", rev], cwd=reg.path, capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def test_rollback_moves_the_alias_back_with_the_reason_in_git(reg):
    assert previous_version(reg, "qa", "production") == (3, 2)
    assert rollback_alias(reg, "qa", "production", "citation_coverage 0.41 < 0.80") == (3, 2)
    assert reg.aliases("qa")["production"] == 2
    body = _git_body(reg)
    assert body.startswith("qa: alias production -> v2")
    assert "rollback from v3: citation_coverage 0.41 < 0.80" in body
    h = reg.history("qa")[0]
    assert h["reason"] == "rollback from v3: citation_coverage 0.41 < 0.80" and h["version"] == 2
    # v3 was rolled back from: the next rollback skips it and goes to v1, then there is nothing left
    assert rollback_alias(reg, "qa", "production", "still bad") == (2, 1)
    assert reg.aliases("qa")["production"] == 1
    with pytest.raises(ValueError, match="no earlier version"):
        rollback_alias(reg, "qa", "production", "worse")
    with pytest.raises(ValueError, match="no alias 'staging'"):
        rollback_alias(reg, "qa", "staging", "x")
    with pytest.raises(ValueError, match="reason"):
        rollback_alias(reg, "qa", "production", "  ")


def test_two_servers_that_saw_the_same_bad_version_roll_it_back_once(reg):
    assert rollback_alias(reg, "qa", "production", "replica A: bad v3", expect_from=3) == (3, 2)
    with pytest.raises(AliasMovedError, match="at v2, not v3"):
        rollback_alias(reg, "qa", "production", "replica B: bad v3", expect_from=3)
    assert reg.aliases("qa")["production"] == 2  # not pushed on to v1


def test_a_redeployed_version_can_be_restored_after_a_newer_one(reg):
    rollback_alias(reg, "qa", "production", "bad v3")  # -> v2
    reg.register("qa", "Answer with [n] citations.", message="v4", alias="production")
    assert previous_version(reg, "qa", "production") == (4, 2)  # not v3 (rejected), v2 was the last good


def test_event_log_jsonl_and_filters(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, keep=2)
    a = log.record("rollback", reason="citation_coverage", from_version=3, to_version=2)
    log.record("reload", source="registry")
    log.record("rollback", reason="manual")
    assert [e["kind"] for e in log.events()] == ["reload", "rollback"]  # keep=2 in memory
    assert [e["seq"] for e in log.events(since=2)] == [3]
    assert [e["reason"] for e in log.events("rollback")] == ["manual"]
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 3 and lines[0] == a and lines[0]["from_version"] == 3  # the file keeps everything
    with pytest.raises(ValueError, match="directory"):
        EventLog(tmp_path / "missing" / "e.jsonl")


def test_event_log_and_gate_policy_path_errors(tmp_path):
    with pytest.raises(ValueError, match="path"):
        EventLog("")  # accepted before; every record() then failed to open '' and the line was lost
    with pytest.raises(ValueError, match=r"path: .* is a directory"):
        EventLog(tmp_path)
    with pytest.raises(TypeError, match="path"):
        EventLog(2)  # an int is a file descriptor to open()
    with pytest.raises(ValueError, match="path"):
        Thresholds.from_gate_policy("")
    with pytest.raises(TypeError, match="path"):
        Thresholds.from_gate_policy(0)
