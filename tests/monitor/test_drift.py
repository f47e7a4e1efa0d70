"""Drift statistics on distributions whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infercore.monitor import (
    DriftMonitor,
    compare,
    embedding_feature,
    histogram,
    kl_divergence,
    psi,
    reference_edges,
    wasserstein_1d,
)


def test_kl_of_known_pmfs():
    p, q = [0.5, 0.5], [0.9, 0.1]
    assert kl_divergence(p, q) == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1), rel=1e-12)
    assert kl_divergence(p, p) == 0.0
    assert kl_divergence([1, 3], [2, 2]) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))  # normalized
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))


def test_psi_is_symmetric_kl():
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])
    assert psi(p, q) == pytest.approx(kl_divergence(p, q) + kl_divergence(q, p), rel=1e-12)
    assert psi(p, q) == pytest.approx(psi(q, p))


def test_histogram_smoothing_is_lidstone_half():
    edges = np.array([-np.inf, 1.0, 2.0, np.inf])
    h = histogram([0.0, 0.5, 0.9, 1.5], edges)  # counts 3, 1, 0
    assert h == pytest.approx(np.array([3.5, 1.5, 0.5]) / 5.5)
    assert histogram([0.0], edges, alpha=0.0) == pytest.approx([1, 0, 0])


def test_reference_edges_dedupe_discrete_values():
    e = reference_edges([5] * 50 + [7] * 50, bins=10)
    assert e[0] == -np.inf and e[-1] == np.inf
    assert np.all(np.diff(e) > 0)
    assert list(e[1:-1]) == [5.0, 6.0, 7.0, np.nextafter(7.0, np.inf)]  # 10 requested bins collapse


def test_values_outside_a_constant_reference_are_drift():
    # a degenerate reference (every prompt 4 tokens long) still separates what it never saw
    r = compare([4] * 200, [40] * 200)
    assert r.alert and r.kl > 3 and r.wasserstein == 36
    assert not compare([4] * 200, [4] * 200).alert
    assert compare([4] * 200, [1] * 200).alert


def test_wasserstein_exact():
    assert wasserstein_1d([0, 1], [0, 3]) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    a = rng.normal(size=1000)
    assert wasserstein_1d(a, a + 2.5) == pytest.approx(2.5)
    b = rng.normal(size=1000)
    # equal sizes: W1 is the mean absolute difference of the sorted samples
    assert wasserstein_1d(a, b) == pytest.approx(np.mean(np.abs(np.sort(a) - np.sort(b))))
    assert wasserstein_1d([1, 2, 3], [3, 2, 1]) == 0.0


def test_same_distribution_does_not_alert():
    rng = np.random.default_rng(1)
    r = compare(rng.normal(size=5000), rng.normal(size=5000), bins=10)
    assert r.kl < 0.01 and r.psi < 0.02 and r.wasserstein < 0.1
    assert not r.alert


def test_shifted_gaussian_matches_analytic_kl():
    # KL(N(1,1) || N(0,1)) = 0.5; binning can only lose information (data processing), so the
    # histogram estimate is a little below it with enough bins.
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(0, 1, 50_000), rng.normal(1, 1, 50_000)
    r = compare(ref, cur, edges=np.linspace(-6, 7, 131))
    assert 0.45 < r.kl < 0.52
    assert r.wasserstein == pytest.approx(1.0, abs=0.03)
    assert r.alert


@pytest.mark.parametrize("threshold", [0.05, 0.1, 0.5])
def test_alert_is_kl_at_or_above_threshold(threshold):
    rng = np.random.default_rng(3)
    ref = rng.normal(size=3000)
    for shift in (0.0, 0.3, 0.45, 1.0):
        r = compare(ref, rng.normal(shift, 1, 3000), threshold=threshold)
        assert r.alert == (r.kl >= threshold)
    assert compare(ref, ref).kl == 0.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="reference"):
        compare([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        compare([1.0, float("nan")], [1.0])
    with pytest.raises(ValueError, match="shapes"):
        kl_divergence([1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="bins"):
        reference_edges([1.0], bins=0)


def test_monitor_windows():
    mon = DriftMonitor(reference_size=500, window_size=500, min_current=200)
    rng = np.random.default_rng(4)
    for v in rng.poisson(40, 500):
        mon.observe(v)
    assert mon.report() is None  # no current window yet
    for v in rng.poisson(40, 500):
        mon.observe(v)
    assert not mon.report().alert
    for v in rng.poisson(60, 500):  # prompts 50% longer: the window fills with them
        mon.observe(v)
    rep = mon.report()
    assert rep.alert and rep.n_current == 500 and rep.n_reference == 500


def test_small_window_bias_is_as_documented():
    # E[KL] between two samples of one distribution ~ (B - 1) / 2 * (1/n_cur + 1/n_ref): why the
    # monitor's default windows are 500 (about 0.02 for 10 bins) and small windows false-alarm.
    rng = np.random.default_rng(6)
    for n, expected in ((100, 0.09), (500, 0.018)):
        kls = [compare(rng.normal(size=n), rng.normal(size=n), bins=10).kl for _ in range(40)]
        assert 0.5 * expected < np.mean(kls) < 1.6 * expected, (n, np.mean(kls))


def test_embedding_topic_shift():
    rng = np.random.default_rng(5)
    topic_a = rng.normal(size=32)
    topic_b = rng.normal(size=32)
    ref = topic_a + 0.5 * rng.normal(size=(400, 32))
    same = topic_a + 0.5 * rng.normal(size=(400, 32))
    shifted = topic_b + 0.5 * rng.normal(size=(400, 32))
    f_ref = embedding_feature(ref, ref)
    assert not compare(f_ref, embedding_feature(ref, same)).alert
    assert compare(f_ref, embedding_feature(ref, shifted)).alert


def test_threshold_alpha_bins_edges_are_checked_up_front():
    from infercore.monitor.drift import MAX_BINS

    ref = [1.0, 2.0, 3.0, 4.0, 5.0] * 40
    for bad in (float("nan"), -1, float("inf"), np.array([0.1, 0.2]), "0.1", True):
        with pytest.raises(ValueError, match="threshold"):
            compare(ref, ref, threshold=bad)  # nan never alerted, -1 always did, an array made `alert` one
        with pytest.raises(ValueError, match="threshold"):
            DriftMonitor(threshold=bad)
    edges = np.array([0.0, 1.5, 3.0])
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha"):
            compare(ref, ref, alpha=bad)
        with pytest.raises(ValueError, match="alpha"):
            histogram([1.0, 2.0], edges, alpha=bad)  # negative or NaN probabilities
        with pytest.raises(ValueError, match="alpha"):
            DriftMonitor(alpha=bad)
    for bad in ([3.0, 0.0, 1.5], [0.0, float("nan"), 2.0], [1.0], [[0.0, 1.0]], ["a", "b"]):
        with pytest.raises(ValueError, match="edges"):
            histogram([1.0, 2.0], bad)  # unsorted edges gave a plausible-looking pmf
        with pytest.raises(ValueError, match="edges"):
            compare(ref, ref, edges=bad)
    with pytest.raises(ValueError, match="edges"):
        histogram([1.0, 2.0], None)
    for bad in (0, 2.5, MAX_BINS + 1):
        with pytest.raises(ValueError, match="bins"):
            DriftMonitor(bins=bad)  # only failed at report()
        with pytest.raises(ValueError, match="bins"):
            reference_edges(ref, bins=bad)  # 10**12 bins tried to allocate terabytes
    with pytest.raises(ValueError, match="window_size"):
        DriftMonitor(300, 2**63)  # OverflowError from the deque
    with pytest.raises(ValueError, match="reference_size"):
        DriftMonitor(2**63, 300)
    mon = DriftMonitor(10, 10, min_current=10, threshold=0, alpha=0.5)
    assert mon.threshold == 0.0 and compare(ref, ref, threshold=0).alert  # 0 is a valid threshold
