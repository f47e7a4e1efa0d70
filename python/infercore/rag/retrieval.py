"""BM25 lexical scoring, reciprocal rank fusion and maximal marginal relevance."""

from __future__ import annotations

import math
import numbers
import re
import sys
from collections import Counter

import numpy as np

_TOKEN = re.compile(r"\w+", re.UNICODE)
MAX_K1 = 1e6  # BM25's term-frequency saturation (usually 1.2-2); far larger overflows idf * f * (k1 + 1)


def lexical_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25:
    """Okapi BM25 (k1=1.5, b=0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5)), as in Lucene)."""

    def __init__(self, texts: list[str], k1: float = 1.5, b: float = 0.75) -> None:
        if isinstance(k1, bool) or not isinstance(k1, numbers.Real) or not 0 <= k1 <= MAX_K1:
            raise ValueError(f"k1: expected a number in [0, {MAX_K1:g}], got {k1!r}")
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or not 0 <= b <= 1:
            raise ValueError(f"b: expected a number in [0, 1], got {b!r}")
        if not isinstance(texts, (list, tuple)):
            raise TypeError(f"texts: expected a list of str, got {type(texts).__name__}")
        self.k1, self.b = float(k1), float(b)
        try:
            self.docs = [Counter(lexical_tokens(t)) for t in texts]
        except (AttributeError, TypeError):  # no per-text check: only a failed tokenization looks for the culprit
            bad = next((t for t in texts if not isinstance(t, str)), None)
            raise TypeError(f"texts: expected a list of str, got a {type(bad).__name__} item") from None
        self.lens = np.array([sum(d.values()) for d in self.docs], np.float64)
        self.avg = float(self.lens.mean()) if len(self.docs) else 0.0
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def scores(self, query: str) -> np.ndarray:
        if not isinstance(query, str):
            raise TypeError(f"query: expected a str, got {type(query).__name__}")
        out = np.zeros(len(self.docs), np.float64)
        terms = [t for t in set(lexical_tokens(query)) if t in self.idf]
        for i, d in enumerate(self.docs):
            norm = self.k1 * (1 - self.b + self.b * self.lens[i] / max(self.avg, 1e-9))
            for t in terms:
                f = d.get(t, 0)
                if f:
                    out[i] += self.idf[t] * f * (self.k1 + 1) / (f + norm)
        return out


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = 60) -> list[tuple[int, float]]:
    """RRF (Cormack et al. 2009): score(d) = sum over rankings of 1 / (k + rank(d)), rank from 1."""
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not 0 <= k <= sys.float_info.max:
        raise ValueError(f"k: expected a finite number >= 0, got {k!r}")
    fused: dict[int, float] = {}
    for ranking in rankings:
        for r, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + r)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def mmr(query: np.ndarray, candidates: np.ndarray, k: int, lambda_mult: float = 0.5) -> list[int]:
    """Maximal marginal relevance (Carbonell & Goldstein 1998) over unit vectors: repeatedly pick
    argmax lambda * sim(q, d) - (1 - lambda) * max_{s in selected} sim(d, s). Returns row indices."""
    if not 0.0 <= lambda_mult <= 1.0:
        raise ValueError(f"lambda_mult: expected a value in [0, 1], got {lambda_mult!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k: expected an int >= 0, got {k!r}")
    candidates, query = np.asarray(candidates), np.asarray(query)
    if candidates.ndim != 2 or candidates.dtype.kind not in "fiu":
        raise ValueError(f"candidates: expected a 2-D numeric array [n, dim], got shape {candidates.shape} "
                         f"of {candidates.dtype}")
    if query.shape != (candidates.shape[1],) or query.dtype.kind not in "fiu":
        raise ValueError(f"query: expected a numeric vector of shape ({candidates.shape[1]},), got shape "
                         f"{query.shape} of {query.dtype}")
    n = candidates.shape[0]
    if n == 0:
        return []
    rel = candidates @ query
    chosen: list[int] = []
    max_sim = np.full(n, -np.inf)
    for _ in range(min(k, n)):
        score = rel if not chosen else lambda_mult * rel - (1 - lambda_mult) * max_sim
        score = np.where(np.isin(np.arange(n), chosen), -np.inf, score)
        j = int(np.argmax(score))
        chosen.append(j)
        max_sim = np.maximum(max_sim, candidates @ candidates[j]) if chosen[:-1] else candidates @ candidates[j]
    return chosen
