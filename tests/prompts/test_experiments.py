"""A/B assignment stability and significance; rollout state machine."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from infercore.prompts import ABTest, PromptRegistry, Rollout, bucket, two_proportion_z
from infercore.prompts.experiments import bootstrap_diff


@pytest.fixture
def reg(tmp_path):
    r = PromptRegistry(tmp_path / "reg")
    for i in range(4):
        r.register("summ", f"v{i + 1}: {{{{ text }}}}")
    return r


def test_assignment_is_stable_and_follows_weights(reg):
    ab = ABTest(reg, "exp1", arms={"a": 1, "b": 2, "c": 3}, prompt="summ", weights={"a": 0.5, "b": 0.3, "c": 0.2})
    keys = [f"user-{i}" for i in range(100_000)]
    arms = [ab.assign(k) for k in keys]
    counts = {a: arms.count(a) / len(keys) for a in "abc"}
    for a, w in ab.weights.items():  # 4 sigma of a binomial share at n=100k is < 0.7 percentage points
        assert abs(counts[a] - w) < 4 * np.sqrt(w * (1 - w) / len(keys)), counts
    # same test reopened -> same assignment; a fresh process -> same assignment
    again = ABTest(reg, "exp1", arms={"a": 1, "b": 2, "c": 3}, prompt="summ", weights=[5, 3, 2])
    assert [again.assign(k) for k in keys[:2000]] == arms[:2000]
    code = ("from infercore.prompts import PromptRegistry, ABTest\n"
            f"r = PromptRegistry({reg.path!r})\n"
            "ab = ABTest(r, 'exp1', arms={'a': 1, 'b': 2, 'c': 3}, prompt='summ', weights=[5, 3, 2])\n"
            "print(''.join(ab.assign(f'user-{i}') for i in range(2000)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "".join(arms[:2000])
    assert ab.prompt_for("user-1").ref == f"summ@v{ 'abc'.index(arms[1]) + 1}"
    with pytest.raises(ValueError, match="different definition"):
        ABTest(reg, "exp1", arms={"a": 1, "b": 4}, prompt="summ")
    with pytest.raises(ValueError, match="weights"):
        ABTest(reg, "exp2", arms={"a": 1, "b": 2}, prompt="summ", weights=[1, -1])
    assert 0 <= bucket("x", "y") < 1 and bucket("x", "y") == bucket("x", "y") != bucket("z", "y")


def test_z_test_matches_textbook_value():
    # 200/1000 vs 250/1000: pooled p = .225, se = sqrt(.225*.775*.002) = .018675, z = 2.6774
    z, p = two_proportion_z(200, 1000, 250, 1000)
    assert z == pytest.approx(2.6774, abs=1e-3) and p == pytest.approx(0.00742, abs=2e-4)


def _simulate(ab, rates, n, seed):
    rng = np.random.default_rng(seed)
    keys = [f"s{seed}-{i}" for i in range(n)]
    for key in keys[:20]:  # one by one, and the rest in a batch
        ab.record(key, success=bool(rng.random() < rates[ab.assign(key)]))
    ab.record_many([(k, bool(rng.random() < rates[ab.assign(k)])) for k in keys[20:]])


def test_significance_on_simulated_outcomes(reg):
    real = ABTest(reg, "real-diff", arms={"a": 1, "b": 2}, prompt="summ")
    _simulate(real, {"a": 0.30, "b": 0.40}, 3000, 1)
    r = real.results()
    assert r["method"] == "z" and r["arms"]["a"]["n"] + r["arms"]["b"]["n"] == 3000
    assert r["comparisons"][0]["p_value"] < 0.001 and r["winner"] == "b"
    # no real difference: across 20 simulated experiments, a winner appears about alpha of the time
    false_wins = 0
    for s in range(20):
        null = ABTest(reg, f"null-{s}", arms={"a": 1, "b": 2}, prompt="summ")
        _simulate(null, {"a": 0.5, "b": 0.5}, 400, 100 + s)
        false_wins += null.results()["winner"] is not None
    assert false_wins <= 4  # P(>4 | Binomial(20, .05)) < 0.3%
    # scores -> bootstrap interval
    sc = ABTest(reg, "scores", arms={"a": 3, "b": 4}, prompt="summ")
    rng = np.random.default_rng(7)
    sc.record("k0", score=0.55)
    sc.record_many([(f"k{i}", float(rng.normal(0.5 if sc.assign(f"k{i}") == "a" else 0.6, 0.2)))
                    for i in range(1, 1500)])  # fmt: skip
    rs = sc.results(method="bootstrap", n_boot=500)
    lo, hi = rs["comparisons"][0]["interval"]
    assert 0.05 < lo < 0.1 < hi < 0.15 and rs["winner"] == "b"
    with pytest.raises(ValueError, match="method"):
        sc.results(method="z")
    with pytest.raises(ValueError, match="success, score"):
        sc.record("k", success=True, score=1.0)
    # outcomes persist: a new object over the same registry sees them
    assert ABTest(reg, "real-diff", arms={"a": 1, "b": 2}, prompt="summ").results()["winner"] == "b"


def test_rollout_state_machine(reg):
    reg.set_alias("summ", "production", 2)
    ro = Rollout(reg, "summ", candidate=3, stages=[0.1, 0.5, 1.0], gate={"min_success_rate": 0.9, "min_n": 20})
    assert ro.stable.version == 2 and ro.share == 0.1 and ro.status == "running"
    keys = [f"u{i}" for i in range(20_000)]
    share = np.mean([ro.choose(k).version == 3 for k in keys])
    assert abs(share - 0.1) < 0.01
    assert not ro.advance()  # no outcomes yet: n missing -> gate fails, stays
    assert ro.stage == 0 and ro.events[-1]["action"] == "gate_failed" and "missing" in ro.events[-1]["reason"]
    for k in keys[:600]:
        ro.record(k, success=True)
    assert ro.metrics()["n"] == sum(ro.choose(k).version == 3 for k in keys[:600]) >= 20
    assert ro.advance() and ro.stage == 1 and ro.share == 0.5
    # new stage: metrics restart; a bad stage does not pass
    for k in keys[:100]:
        ro.record(k, success=ro.choose(k).version != 3)
    assert not ro.advance() and ro.stage == 1
    assert ro.advance({"success_rate": 0.95, "n": 100})  # metrics passed in win over recorded ones
    assert ro.stage == 2
    # persisted: reopening sees the same state
    same = Rollout(reg, "summ", candidate=3, stages=[0.1, 0.5, 1.0])
    assert same.stage == 2 and same.status == "running"
    assert same.advance({"success_rate": 1.0, "n": 60})  # thresholds of the reopened object: none -> passes
    assert same.status == "completed" and same.share == 1.0
    assert reg.get("summ", alias="production").version == 3
    same.rollback("latency regression in production")
    assert same.status == "rolled_back" and same.share == 0.0
    assert all(same.choose(k).version == 2 for k in keys[:500])
    assert reg.get("summ", alias="production").version == 2
    assert same.events[-1] == {**same.events[-1], "action": "rollback", "reason": "latency regression in production"}
    with pytest.raises(ValueError, match="cannot advance"):
        same.advance()
    with pytest.raises(ValueError, match="reason"):
        Rollout(reg, "summ", candidate=4).rollback("")
    log = subprocess.run(["git", "log", "--format=%s"], cwd=reg.path, capture_output=True, text=True).stdout
    assert "rollout summ-v3: rollback: latency regression in production" in log


def test_rollout_callable_gate_and_validation(reg):
    seen = []

    def gate(m):
        seen.append(m)
        return m.get("p95_ms", 1e9) < 300

    ro = Rollout(reg, "summ", candidate=4, stable=1, stages=[0.5, 1.0], gate=gate)
    assert not ro.advance({"p95_ms": 400}) and ro.advance({"p95_ms": 200}) and ro.stage == 1
    assert seen[-1]["p95_ms"] == 200 and seen[-1]["n"] == 0
    with pytest.raises(ValueError, match="stages"):
        Rollout(reg, "summ", candidate=4, stable=1, stages=[0.5, 0.2, 1.0], rollout_id="bad")
    with pytest.raises(ValueError, match="stages"):
        Rollout(reg, "summ", candidate=4, stable=1, stages=[0.5], rollout_id="bad")
    with pytest.raises(ValueError, match="gate"):
        Rollout(reg, "summ", candidate=4, stable=1, gate={"success_rate": 1}, rollout_id="bad")
    with pytest.raises(ValueError, match="stable"):
        Rollout(reg, "summ", candidate=1)


@pytest.mark.parametrize("args, exc, match", [
    ((10, 5, 1, 5), ValueError, "s1"),
    ((1, 5, 6, 5), ValueError, "s2"),
    ((-1, 5, 1, 5), ValueError, "s1"),
    ((0, 0, 1, 5), ValueError, "n1"),
    ((1, 5, 0, -3), ValueError, "n2"),
    ((float("nan"), 5, 1, 5), TypeError, "s1"),
    ((1, 5.0, 1, 5), TypeError, "n1"),
    ((1, 5, True, 5), TypeError, "s2"),
])  # fmt: skip
def test_z_test_validates_counts(args, exc, match):
    with pytest.raises(exc, match=match):
        two_proportion_z(*args)
    assert two_proportion_z(np.int64(0), np.int64(5), 5, 5)[1] < 0.05  # numpy counts are counts


def test_results_validates_n_boot_and_seed(reg):
    ab = ABTest(reg, "nb", arms={"a": 1, "b": 2}, prompt="summ")
    ab.record_many([(f"k{i}", i * 0.1) for i in range(20)])
    for bad in (0, 99, 10**12, 2.5, True):  # 0 was an IndexError, 10**12 a MemoryError
        with pytest.raises(ValueError, match="n_boot"):
            ab.results(method="bootstrap", n_boot=bad)
    with pytest.raises(ValueError, match="seed"):
        ab.results(method="bootstrap", seed="x")
    with pytest.raises(ValueError, match="alpha"):
        ab.results(alpha="0.05")
    assert ab.results(method="bootstrap", n_boot=100)["comparisons"][0]["method"] == "bootstrap"


def test_bootstrap_interval_memory_is_bounded():
    # One (n_boot x outcomes) index array per arm was 400 MB each here (and 80 GB at the largest
    # n_boot and 100k outcomes); the gate's chunked resampling keeps it to tens of MB.
    import tracemalloc

    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 1.0, 50_000), rng.normal(0.1, 1.0, 50_000)
    tracemalloc.start()
    lo, hi = bootstrap_diff(a, b, 0.05, 1000, 3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100 * 2**20, peak
    assert lo < b.mean() - a.mean() < hi and hi - lo < 0.05
    assert (lo, hi) == bootstrap_diff(a, b, 0.05, 1000, 3)  # same seed, same interval


def test_rollback_with_a_long_reason_and_gate_keys(reg):
    ro = Rollout(reg, "summ", candidate=4, stable=1, stages=[0.5, 1.0])
    reason = "slow " * 200_000  # 1 MB: went on git's argument list
    ro.rollback(reason)
    assert ro.status == "rolled_back" and ro.events[-1]["reason"] == reason
    with pytest.raises(ValueError, match="reason"):
        Rollout(reg, "summ", candidate=4, stable=1, rollout_id="nul").rollback("a\x00b")
    for gate in ({1: 0.5}, {"min_success_rate": float("nan")}):  # an int key was an AttributeError
        with pytest.raises(ValueError, match="gate"):
            Rollout(reg, "summ", candidate=4, stable=1, gate=gate, rollout_id="g")
