"""Crafted candidate/baseline results for the gate tests, built with evals.results (the real format)."""

from __future__ import annotations

import numpy as np

from infercore.evals.results import EvalResults, Metric, StageResult


def flags(rate: float, n: int, seed: int) -> np.ndarray:
    """n 0/1 values with exactly round(rate * n) ones, shuffled (so the mean is exact)."""
    ones = round(rate * n)
    x = np.zeros(n)
    x[:ones] = 1.0
    np.random.default_rng(seed).shuffle(x)
    return x


def flip(x: np.ndarray, ones_to_zero: int, zeros_to_one: int) -> np.ndarray:
    """A copy of 0/1 items with some flipped: a candidate that differs from the baseline on a few items."""
    y = x.copy()
    y[np.flatnonzero(x == 1)[:ones_to_zero]] = 0.0
    y[np.flatnonzero(x == 0)[:zeros_to_one]] = 1.0
    return y


def latencies(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(0.0, 0.4, n) * scale


def metric(samples: np.ndarray | None, higher_is_better: bool, statistic: str = "mean",
           value: float | None = None) -> Metric:  # fmt: skip
    if value is None:
        assert samples is not None
        value = float(samples.mean()) if statistic == "mean" else float(np.percentile(samples, float(statistic[1:])))
    return Metric(value, higher_is_better, None if samples is None else samples.tolist(), statistic)


def results(quality: dict[str, Metric] | None = None, performance: dict[str, Metric] | None = None, *,
            suite: str = "smoke", version: str = "1", **other: dict[str, Metric]) -> EvalResults:  # fmt: skip
    stages = {}
    for name, metrics in (("quality", quality), ("performance", performance), *other.items()):
        if metrics is not None:
            stages[name] = StageResult(metrics=dict(metrics), wall_s=1.0)
    return EvalResults(suite, version, versions={"model": "smollm2", "prompts": {"qa": 2}}, stages=stages)


def standard(seed: int, *, coverage: np.ndarray | None = None, halluc: np.ndarray | None = None,
             lat: np.ndarray | None = None, errors: np.ndarray | None = None, **kw) -> EvalResults:  # fmt: skip
    """A healthy run of the default-policy metrics (coverage 0.90, hallucination 0.02, p99 ~2.5 s, no errors).

    The per-item quality scores are the same for every seed (the same items, answered alike), the
    latencies are drawn anew (another load run)."""
    coverage = flags(0.90, 500, 0) if coverage is None else coverage
    halluc = flags(0.02, 500, 1) if halluc is None else halluc
    lat = latencies(2000, seed + 2) if lat is None else lat
    errors = np.zeros(2000) if errors is None else errors
    return results(
        quality={"citation_coverage": metric(coverage, True), "hallucination_rate": metric(halluc, False)},
        performance={"e2e_p99_s": metric(lat, False, "p99"), "error_rate": metric(errors, False)},
        **kw,
    )
