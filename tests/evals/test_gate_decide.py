"""gate.decide on crafted candidate/baseline pairs: pass, threshold failure, regression, noisy ties,
missing metrics, and the bootstrap interval itself."""

from __future__ import annotations

import numpy as np
import pytest
from gate_fixtures import flags, flip, latencies, metric, results, standard
from hypothesis import given, settings
from hypothesis import strategies as st

from infercore.evals.gate import GatePolicy, bootstrap_ci, decide
from infercore.evals.gate_policy import MAX_RESAMPLES, MIN_RESAMPLES


def _check(decision, key, kind):
    found = [c for c in decision.checks if c.key == key and c.kind == kind]
    assert len(found) == 1, f"expected one {kind} check of {key}, got {decision.checks}"
    return found[0]


def test_clear_pass():
    cov = flags(0.90, 500, 3)
    base = standard(0, coverage=cov)
    cand = standard(100, coverage=flip(cov, 0, 15), halluc=flags(0.01, 500, 8))
    d = decide(cand, base, GatePolicy.default())
    assert d.deploy, d.explain()
    assert len(d.checks) == 7  # 4 thresholds + 3 non-inferiority checks
    assert all(c.passed for c in d.checks)
    text = d.explain()
    assert text.startswith("gate decision: DEPLOY")
    for stage in ("regression: no checks", "quality: 4/4 passed", "performance: 3/3 passed"):
        assert stage in text
    cov = _check(d, "quality.citation_coverage", "non_inferiority")
    assert cov.data["diff"] == pytest.approx(0.03)
    assert "significantly better" in cov.detail


def test_clear_fail_on_absolute_threshold():
    # coverage 0.70 in both: no regression against the baseline, but below the 0.80 floor
    base = standard(0, coverage=flags(0.70, 500, 1))
    cand = standard(100, coverage=flags(0.70, 500, 1))
    d = decide(cand, base)
    assert not d.deploy
    assert [c.key + "/" + c.kind for c in d.failed] == ["quality.citation_coverage/threshold"]
    assert "0.7 < min 0.8" in d.failed[0].detail
    assert "roll back: 1 of 7 gate checks failed: quality.citation_coverage threshold" in d.explain()


def test_threshold_on_lower_is_better_metrics():
    cand = standard(100, halluc=flags(0.08, 500, 3), errors=flags(0.02, 2000, 4))
    d = decide(cand, None)
    failed = {c.key for c in d.failed}
    assert failed == {"quality.hallucination_rate", "performance.error_rate"}
    assert "0.08 > max 0.05" in _check(d, "quality.hallucination_rate", "threshold").detail
    slow = standard(100, lat=latencies(2000, 5, scale=1.5))  # p99 ~3.7 s
    d = decide(slow, None)
    assert {c.key for c in d.failed} == {"performance.e2e_p99_s"}


def test_clear_regression_against_baseline():
    base = standard(0, coverage=flags(0.97, 500, 2))
    cand = standard(100, coverage=flip(flags(0.97, 500, 2), 40, 0))  # 0.97 -> 0.89: above the floor, 8 points worse
    d = decide(cand, base)
    assert not d.deploy
    assert _check(d, "quality.citation_coverage", "threshold").passed
    ni = _check(d, "quality.citation_coverage", "non_inferiority")
    assert not ni.passed
    assert ni.data["method"] == "paired bootstrap"
    assert ni.data["diff"] == pytest.approx(-0.08)
    assert ni.data["ci"][1] < 0 and "significantly worse" in ni.detail
    assert "inferiority not ruled out" in ni.detail


def test_latency_regression_against_baseline_is_caught_unpaired():
    base = standard(0)
    cand = standard(100, lat=latencies(2000, 9, scale=1.15))  # p99 ~2.9 s: under 3 s, but 15% slower
    policy = GatePolicy.from_yaml("metrics:\n  performance.e2e_p99_s: {max: 3.0, margin_rel: 0.05}\n")
    d = decide(cand, base, policy)
    assert _check(d, "performance.e2e_p99_s", "threshold").passed
    ni = _check(d, "performance.e2e_p99_s", "non_inferiority")
    assert ni.data["method"] == "unpaired bootstrap" and ni.data["statistic"] == "p99"
    assert not ni.passed and not d.deploy


def test_noisy_tie_a_bit_worse_deploys():
    """Candidate 0.6 points lower on a few items: within the noise, and the noise is inside the margin."""
    cov = flags(0.90, 500, 3)
    base = standard(0, coverage=cov)
    cand = standard(100, coverage=flip(cov, 5, 2))
    d = decide(cand, base)
    ni = _check(d, "quality.citation_coverage", "non_inferiority")
    assert ni.data["diff"] == pytest.approx(-0.006)
    lo, hi = ni.data["ci"]
    assert lo < 0 < hi  # a tie: the interval holds zero
    assert lo > -0.02  # ... and rules out a worsening past the margin
    assert ni.passed and d.deploy, d.explain()
    assert "no significant difference" in ni.detail


def test_noisy_tie_a_bit_better_deploys_without_a_win():
    cov = flags(0.90, 500, 3)
    base = standard(0, coverage=cov)
    cand = standard(100, coverage=flip(cov, 2, 5))
    d = decide(cand, base)
    ni = _check(d, "quality.citation_coverage", "non_inferiority")
    assert ni.data["diff"] == pytest.approx(0.006)
    assert ni.data["ci"][0] < 0 < ni.data["ci"][1]
    assert ni.passed and d.deploy
    assert "no significant difference" in ni.detail


def test_noise_alone_does_not_pass_a_change():
    """The point estimate is inside the margin, but the suite is too small to rule out a worse change."""
    base_cov = flags(0.90, 100, 3)
    cand_cov = flip(base_cov, 1, 0)  # -0.01: inside the 0.02 margin
    base = standard(0, coverage=base_cov, version="1")
    cand = standard(100, coverage=cand_cov, version="2")  # another suite version: unpaired
    d = decide(cand, base)
    ni = _check(d, "quality.citation_coverage", "non_inferiority")
    assert ni.data["diff"] == pytest.approx(-0.01)
    assert ni.data["method"] == "unpaired bootstrap"
    assert ni.data["ci"][0] < -0.02
    assert not ni.passed and not d.deploy
    assert ni.data.get("underpowered") and "more items" in ni.detail
    assert any("unpaired" in n for n in d.notes)


def test_pairing_needs_the_same_suite_and_item_count():
    cov = flags(0.90, 500, 3)
    cand_cov = flip(cov, 5, 2)
    paired = decide(standard(100, coverage=cand_cov), standard(0, coverage=cov))
    unpaired = decide(standard(100, coverage=cand_cov, version="2"), standard(0, coverage=cov))
    p = _check(paired, "quality.citation_coverage", "non_inferiority")
    u = _check(unpaired, "quality.citation_coverage", "non_inferiority")
    assert p.data["method"] == "paired bootstrap" and u.data["method"] == "unpaired bootstrap"
    assert (u.data["ci"][1] - u.data["ci"][0]) > 3 * (p.data["ci"][1] - p.data["ci"][0])


def test_no_samples_falls_back_to_values_and_says_so():
    base = results(quality={"citation_coverage": metric(None, True, value=0.90)})
    policy = GatePolicy.from_yaml("metrics:\n  quality.citation_coverage: {min: 0.8, margin: 0.02}\n")
    ok = decide(results(quality={"citation_coverage": metric(None, True, value=0.89)}), base, policy)
    bad = decide(results(quality={"citation_coverage": metric(None, True, value=0.85)}), base, policy)
    okc = _check(ok, "quality.citation_coverage", "non_inferiority")
    badc = _check(bad, "quality.citation_coverage", "non_inferiority")
    assert okc.passed and not badc.passed
    for c in (okc, badc):
        assert c.data["method"] == "values"
        assert "have no samples" in c.detail and "no confidence interval" in c.detail
    # samples on one side only: still values, naming the side
    half = decide(results(quality={"citation_coverage": metric(flags(0.9, 50, 1), True)}), base, policy)
    assert "the baseline has no samples" in _check(half, "quality.citation_coverage", "non_inferiority").detail


def test_missing_metric_fails_with_a_reason():
    cand = standard(100)
    del cand.stages["quality"].metrics["hallucination_rate"]
    d = decide(cand, standard(0))
    assert not d.deploy
    miss = _check(d, "quality.hallucination_rate", "missing")
    assert "candidate's results have no metric quality.hallucination_rate" in miss.detail
    # a whole stage missing
    cand2 = standard(100)
    del cand2.stages["performance"]
    d2 = decide(cand2, standard(0))
    assert {c.key for c in d2.failed} == {"performance.e2e_p99_s", "performance.error_rate"}
    # missing from the baseline only
    base = standard(0)
    del base.stages["quality"].metrics["citation_coverage"]
    d3 = decide(standard(100), base)
    assert "baseline's results have no metric" in _check(d3, "quality.citation_coverage", "missing").detail


def test_optional_metric_is_skipped_and_noted():
    policy = GatePolicy.from_yaml(
        "extends: defaults\nmetrics:\n  regression.mmlu_accuracy: {min: 0.3, margin: 0.03, required: false}\n")
    d = decide(standard(100), standard(0), policy)
    assert d.deploy
    assert any("regression.mmlu_accuracy" in n and "skipped" in n for n in d.notes)


def test_regression_stage_metric():
    acc_b = flags(0.45, 400, 5)
    base = standard(0, regression={"mmlu_accuracy": metric(acc_b, True)})
    cand = standard(100, regression={"mmlu_accuracy": metric(flip(acc_b, 60, 0), True)})
    policy = GatePolicy.from_yaml("extends: defaults\nmetrics:\n  regression.mmlu_accuracy: {margin: 0.03}\n")
    d = decide(cand, base, policy)
    assert [c.key for c in d.failed] == ["regression.mmlu_accuracy"]
    assert "regression: 0/1 passed" in d.explain()


def test_no_baseline_checks_thresholds_only():
    d = decide(standard(100), None)
    assert d.deploy
    assert {c.kind for c in d.checks} == {"threshold"} and len(d.checks) == 4
    assert any("no baseline" in n for n in d.notes)


def test_inconsistent_results_fail_the_check_not_the_gate():
    base = standard(0)
    cand = standard(100)
    cand.stages["performance"].metrics["e2e_p99_s"].statistic = "p95"
    cand.stages["quality"].metrics["citation_coverage"].higher_is_better = False
    cand.stages["quality"].metrics["hallucination_rate"].value = float("nan")
    d = decide(cand, base)
    assert "statistic 'p95' differs" in _check(d, "performance.e2e_p99_s", "non_inferiority").detail
    assert "disagree on whether higher is better" in _check(d, "quality.citation_coverage", "non_inferiority").detail
    assert "missing (null/NaN)" in _check(d, "quality.hallucination_rate", "threshold").detail
    assert not d.deploy


def test_decision_is_reproducible_and_serializable():
    import json

    a = decide(standard(100), standard(0)).to_json()
    b = decide(standard(100), standard(0)).to_json()
    assert a == b
    assert json.loads(json.dumps(a))["decision"] == "deploy"


def test_bad_arguments():
    with pytest.raises(TypeError, match="candidate"):
        decide({"stages": {}}, None)
    with pytest.raises(TypeError, match="policy"):
        decide(standard(0), None, {"metrics": {}})
    with pytest.raises(ValueError, match="paired"):
        bootstrap_ci([1.0, 2.0], [1.0], paired=True)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], [1.0, 2.0], confidence=1.5)
    # resamples in the range a policy allows (10**12 hung); MAX + 1 stays fast even without the check
    for bad in (0, 99, MAX_RESAMPLES + 1, 2.5, True):
        with pytest.raises(ValueError, match="resamples"):
            bootstrap_ci([1.0, 2.0], [1.0, 2.0], resamples=bad)
    with pytest.raises(TypeError, match="statistic"):  # was an IndexError
        bootstrap_ci([1.0, 2.0], [1.0, 2.0], statistic=np.array(1.0))
    for bad in ("median", "p999", "p-5", "p99\n"):
        with pytest.raises(ValueError, match="statistic"):
            bootstrap_ci([1.0, 2.0], [1.0, 2.0], statistic=bad)
    with pytest.raises(ValueError, match="seed"):
        bootstrap_ci([1.0, 2.0], [1.0, 2.0], seed=-1)
    assert bootstrap_ci([1.0, 2.0], [1.0, 2.0], statistic="p99.5", resamples=MIN_RESAMPLES)[0] == 0.0


# --------------------------------------------------------------------------------------------- bootstrap
def test_bootstrap_constant_and_identical():
    assert bootstrap_ci([2.0] * 10, [1.5] * 7) == (0.5, 0.5, 0.5)
    x = np.random.default_rng(0).random(50)
    assert bootstrap_ci(x, x, paired=True) == (0.0, 0.0, 0.0)


def test_bootstrap_interval_covers_a_known_difference():
    """Mean difference of two normal samples: the 95% interval is close to diff +- 1.96 SE."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 1.0, 4000), rng.normal(0.8, 1.0, 4000)
    obs, lo, hi = bootstrap_ci(a, b, resamples=2000, seed=3)
    se = np.sqrt(a.var() / len(a) + b.var() / len(b))
    assert obs == pytest.approx(a.mean() - b.mean())
    assert lo == pytest.approx(obs - 1.96 * se, abs=0.3 * se)
    assert hi == pytest.approx(obs + 1.96 * se, abs=0.3 * se)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=40), st.floats(-50, 50), st.integers(0, 2**31))
def test_bootstrap_shift_and_swap(xs, shift, seed):
    x = np.array(xs)
    y = x[::-1].copy()
    o, lo, hi = bootstrap_ci(x, y, paired=True, resamples=200, seed=seed)
    assert lo <= hi
    o2, lo2, hi2 = bootstrap_ci(x + shift, y, paired=True, resamples=200, seed=seed)
    assert (o2, lo2, hi2) == pytest.approx((o + shift, lo + shift, hi + shift), abs=1e-6)
    o3, lo3, hi3 = bootstrap_ci(y, x, paired=True, resamples=200, seed=seed)
    assert (o3, lo3, hi3) == pytest.approx((-o, -hi, -lo), abs=1e-6)
