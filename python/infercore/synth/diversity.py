"""Diversity metrics: distinct-n, embedding-space coverage and the Vendi score.

distinct_n: unique n-grams / total n-grams over the whole dataset (word tokens, or characters).
mean_pairwise_distance: mean cosine distance 1 - cos(x_i, x_j) over pairs i != j (O(n d) via the
  sum vector, since sum_ij cos = |sum_i x_i|^2 for unit rows).
cluster_count: connected components of the graph joining i and j when cos(x_i, x_j) >= threshold
  (default 0.8); independent of the input order. n identical items -> 1, n orthogonal -> n.
vendi_score: exp(-sum_i l_i log l_i) over the eigenvalues l_i of K / n with K the cosine-similarity
  kernel (K_ii = 1, so the eigenvalues sum to 1). n identical items -> 1, n orthogonal -> n. The
  nonzero eigenvalues of X X^T / n equal those of X^T X / n, so it costs O(min(n, d)^3).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokens(text: str, unit: str = "word") -> list[str]:
    if unit == "word":
        return _TOKEN.findall(text.lower())
    if unit == "char":
        return [c for c in text if not c.isspace()]
    raise ValueError(f"unit: expected 'word' or 'char', got {unit!r}")


def distinct_n(texts: Sequence[str], n: int = 1, unit: str = "word") -> float:
    """Unique n-grams / total n-grams across all texts (0.0 when there is no n-gram)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    if isinstance(texts, str):
        raise TypeError("texts: expected a list of strings, got a single str")
    total, seen = 0, set()
    for j, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{j}]: expected a str, got {type(t).__name__}")
        tok = tokens(t, unit)
        for i in range(len(tok) - n + 1):
            seen.add(tuple(tok[i:i + n]))
            total += 1
    return len(seen) / total if total else 0.0


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"embeddings: expected a non-empty [n, dim] array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings: contain NaN or inf")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean cosine distance over pairs i != j (0.0 for one item)."""
    u = _unit_rows(x)
    n = u.shape[0]
    if n < 2:
        return 0.0
    s = u.sum(axis=0)
    mean_sim = (float(s @ s) - float(np.sum(u * u))) / (n * (n - 1))
    return 1.0 - mean_sim


def cluster_count(x: np.ndarray, threshold: float = 0.8, block: int = 1024) -> int:
    """Connected components under cos >= threshold (union-find over similarity blocks)."""
    if not -1 <= threshold <= 1:
        raise ValueError(f"threshold: expected a cosine in [-1, 1], got {threshold!r}")
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"block: expected an int >= 1, got {block!r}")
    u = _unit_rows(x)
    n = u.shape[0]
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for s in range(0, n, block):
        sims = u[s:s + block] @ u.T
        ii, jj = np.nonzero(sims >= threshold - 1e-9)
        for i, j in zip((ii + s).tolist(), jj.tolist(), strict=True):
            if j > i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    return len({find(i) for i in range(n)})


def vendi_from_kernel(k: np.ndarray) -> float:
    """exp(entropy of the eigenvalues of K / n) for a PSD similarity kernel with unit diagonal."""
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise ValueError(f"kernel: expected a non-empty square matrix, got shape {k.shape}")
    if not np.allclose(k, k.T, atol=1e-8):
        raise ValueError("kernel: expected a symmetric matrix")
    if not np.allclose(np.diag(k), 1.0, atol=1e-6):
        raise ValueError("kernel: expected ones on the diagonal (a similarity kernel)")
    lam = np.linalg.eigvalsh(k / k.shape[0])
    return _exp_entropy(lam)


def _exp_entropy(lam: np.ndarray) -> float:
    lam = lam[lam > 1e-12]
    lam = lam / lam.sum()
    return float(np.exp(-np.sum(lam * np.log(lam))))


def vendi_score(x: np.ndarray) -> float:
    """Vendi score of embeddings under the cosine kernel."""
    u = _unit_rows(x)
    n, d = u.shape
    lam = np.linalg.eigvalsh(u.T @ u / n) if d < n else np.linalg.eigvalsh(u @ u.T / n)
    return _exp_entropy(lam)
