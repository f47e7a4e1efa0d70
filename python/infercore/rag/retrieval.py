"""BM25 lexical scoring, reciprocal rank fusion and maximal marginal relevance."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

_TOKEN = re.compile(r"\w+", re.UNICODE)


def lexical_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25:
    """Okapi BM25 (k1=1.5, b=0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5)), as in Lucene)."""

    def __init__(self, texts: list[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs = [Counter(lexical_tokens(t)) for t in texts]
        self.lens = np.array([sum(d.values()) for d in self.docs], np.float64)
        self.avg = float(self.lens.mean()) if len(self.docs) else 0.0
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def scores(self, query: str) -> np.ndarray:
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
