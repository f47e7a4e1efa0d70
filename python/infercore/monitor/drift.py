"""Distribution drift between a reference window and a current window.

Histogram statistics (KL, PSI) bin both samples on the same edges:
  * edges: the reference's minimum, its `bins` - 1 inner quantiles and (just above) its maximum,
    deduplicated (discrete features such as token lengths give fewer, wider bins), plus one bin
    below and one above the reference range: current values the reference never saw land in bins
    where the reference has only the smoothing mass, so novelty always shows; or explicit `edges`.
  * smoothing: additive (Lidstone) smoothing with alpha = 0.5 per bin (the Jeffreys /
    Krichevsky-Trofimov estimator): p_i = (count_i + alpha) / (n + alpha * B). It keeps both
    statistics finite when a bin is empty in one window.
Sampling bias: two windows drawn from the *same* distribution still give
E[KL] ~ (B - 1) / 2 * (1/n_current + 1/n_reference) (B bins). With B = 10 and 500/500 windows
that is ~0.018, well under the 0.1 threshold; with 100/100 it is ~0.09 and noise alone crosses
0.1 - so keep windows >= ~300 (DriftMonitor's defaults are 500, with at least 200 current values).
KL is D(current || reference) = sum_i c_i ln(c_i / r_i) in nats: large when current data falls
where the reference had little mass (new kinds of input). PSI = sum_i (c_i - r_i) ln(c_i / r_i)
(= D(c||r) + D(r||c)). Wasserstein-1 is exact on the empirical samples (no binning):
W1 = integral |F_ref(x) - F_cur(x)| dx, in the feature's units.
Alert when KL >= 0.1 (the reference threshold).
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KL_THRESHOLD = 0.1
SMOOTHING = 0.5
MAX_BINS = 1_000_000  # quantile edges of a reference; far past any useful histogram (see the bias above)
MAX_WINDOW = 100_000_000  # values held in a DriftMonitor window


def _sample(x: object, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{name}: expected at least one value")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: values must be finite")
    return a


def _nonneg(v: object, name: str) -> float:
    """A finite real number >= 0 (alpha, threshold): NaN would silently disable the statistic or alert."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v < math.inf:
        raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    return float(v)


def _bins(bins: object) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise ValueError(f"bins: expected an int in [1, {MAX_BINS}], got {bins!r}")
    return bins


def _edges(edges: object) -> np.ndarray:
    try:
        e = np.asarray(edges, dtype=np.float64)
    except (TypeError, ValueError):
        e = None
    if e is None or e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):  # NaN fails `> 0`
        raise ValueError("edges: expected at least two strictly increasing values")
    return e


def _pmf(p: object, name: str) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64).ravel()
    if a.size == 0 or np.any(a < 0) or not np.all(np.isfinite(a)) or a.sum() <= 0:
        raise ValueError(f"{name}: expected non-negative finite weights with a positive sum")
    return a / a.sum()


def kl_divergence(p: object, q: object) -> float:
    """D(p || q) in nats for two probability vectors (normalized here); inf when q_i = 0 < p_i."""
    pp, qq = _pmf(p, "p"), _pmf(q, "q")
    if pp.shape != qq.shape:
        raise ValueError(f"p, q: shapes differ ({pp.shape} vs {qq.shape})")
    m = pp > 0
    if np.any(qq[m] == 0):
        return float("inf")
    return float(np.sum(pp[m] * np.log(pp[m] / qq[m])))


def psi(p: object, q: object) -> float:
    """Population stability index sum (p_i - q_i) ln(p_i / q_i); both vectors must be > 0 where used."""
    pp, qq = _pmf(p, "p"), _pmf(q, "q")
    if pp.shape != qq.shape:
        raise ValueError(f"p, q: shapes differ ({pp.shape} vs {qq.shape})")
    m = (pp > 0) | (qq > 0)
    if np.any((pp[m] == 0) | (qq[m] == 0)):
        return float("inf")
    return float(np.sum((pp[m] - qq[m]) * np.log(pp[m] / qq[m])))


def reference_edges(reference: object, bins: int = 10) -> np.ndarray:
    """[-inf, min, inner quantiles..., nextafter(max), +inf] of the reference, duplicates removed:
    bins [e_i, e_i+1) with one bin below and one above the reference range."""
    _bins(bins)
    ref = _sample(reference, "reference")
    inner = np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1])
    lo, hi = ref.min(), np.nextafter(ref.max(), np.inf)
    return np.concatenate([[-np.inf], np.unique(np.concatenate([[lo], inner, [hi]])), [np.inf]])


def histogram(x: object, edges: np.ndarray, alpha: float = SMOOTHING) -> np.ndarray:
    """Smoothed bin probabilities of x on `edges` (bins are [e_i, e_{i+1}), the last one closed)."""
    a = _sample(x, "x")
    edges, alpha = _edges(edges), _nonneg(alpha, "alpha")
    idx = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(idx, minlength=len(edges) - 1).astype(np.float64)
    return (counts + alpha) / (counts.sum() + alpha * len(counts))


def wasserstein_1d(a: object, b: object) -> float:
    """Exact Wasserstein-1 distance between two empirical 1-D distributions."""
    x, y = np.sort(_sample(a, "a")), np.sort(_sample(b, "b"))
    allv = np.sort(np.concatenate([x, y]))
    deltas = np.diff(allv)
    fx = np.searchsorted(x, allv[:-1], side="right") / x.size
    fy = np.searchsorted(y, allv[:-1], side="right") / y.size
    return float(np.sum(np.abs(fx - fy) * deltas))


@dataclass
class DriftReport:
    kl: float
    psi: float
    wasserstein: float
    alert: bool
    n_reference: int
    n_current: int
    threshold: float = KL_THRESHOLD


def compare(reference: object, current: object, *, bins: int = 10, edges: Sequence[float] | None = None,
            alpha: float = SMOOTHING, threshold: float = KL_THRESHOLD) -> DriftReport:  # fmt: skip
    """KL(current || reference), PSI and W1 of two 1-D samples; alert when KL >= threshold."""
    ref, cur = _sample(reference, "reference"), _sample(current, "current")
    alpha, threshold = _nonneg(alpha, "alpha"), _nonneg(threshold, "threshold")
    e = reference_edges(ref, bins) if edges is None else _edges(edges)
    r, c = histogram(ref, e, alpha), histogram(cur, e, alpha)
    kl = kl_divergence(c, r)
    return DriftReport(kl, psi(c, r), wasserstein_1d(ref, cur), kl >= threshold, ref.size, cur.size, threshold)


def embedding_feature(reference_embeddings: object, embeddings: object) -> np.ndarray:
    """A 1-D drift feature for embeddings: cosine distance of each vector to the reference centroid
    (topic shift moves this distribution). Feed the result of both windows to `compare`."""
    ref = np.asarray(reference_embeddings, dtype=np.float64)
    x = np.asarray(embeddings, dtype=np.float64)
    if ref.ndim != 2 or x.ndim != 2 or ref.shape[1] != x.shape[1] or ref.shape[0] == 0:
        raise ValueError("embeddings: expected 2-D arrays [n, dim] with the same dim")
    c = ref.mean(axis=0)
    c /= max(np.linalg.norm(c), 1e-12)
    norms = np.maximum(np.linalg.norm(x, axis=1), 1e-12)
    return 1.0 - (x @ c) / norms


class DriftMonitor:
    """Streaming drift on one scalar feature: the first `reference_size` observations form the
    reference window (frozen), the last `window_size` the current one. `report()` is None until
    the current window holds `min_current` values."""

    def __init__(self, reference_size: int = 500, window_size: int = 500, *, bins: int = 10, min_current: int = 200,
                 threshold: float = KL_THRESHOLD, alpha: float = SMOOTHING) -> None:  # fmt: skip
        for name, v in (("reference_size", reference_size), ("window_size", window_size),
                        ("min_current", min_current)):  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_WINDOW:
                raise ValueError(f"{name}: expected an int in [1, {MAX_WINDOW}], got {v!r}")
        self.reference_size, self.min_current = reference_size, min(min_current, window_size)
        self.bins, self.threshold, self.alpha = _bins(bins), _nonneg(threshold, "threshold"), _nonneg(alpha, "alpha")
        self.reference: list[float] = []
        self.current: deque[float] = deque(maxlen=window_size)

    def observe(self, value: float) -> None:
        v = float(value)
        if not np.isfinite(v):
            raise ValueError(f"value: expected a finite number, got {value!r}")
        if len(self.reference) < self.reference_size:
            self.reference.append(v)
        else:
            self.current.append(v)

    def report(self) -> DriftReport | None:
        if len(self.reference) < self.reference_size or len(self.current) < self.min_current:
            return None
        return compare(self.reference, list(self.current), bins=self.bins, alpha=self.alpha,
                       threshold=self.threshold)  # fmt: skip
