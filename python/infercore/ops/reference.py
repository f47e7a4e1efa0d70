"""float64 numpy definitions of every op: the specification that all backends are tested against.

Inputs may be any float dtype; they are promoted to float64 and the result is float64.
"""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """x / max(||x||_2, eps) along the last axis (torch.nn.functional.normalize semantics)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf propagate as IEEE says
        norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
        return x / np.where(norm < eps, eps, norm)


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """x / sqrt(mean(x^2) + eps) * weight along the last axis (LLaMA RMSNorm)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ms = np.mean(x * x, axis=-1, keepdims=True)
        return x / np.sqrt(ms + eps) * w


def _topk_from_scores(scores: np.ndarray, k: int, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best k of scores[:, candidates] per row: score descending, ties to the lower id, NaN
    scores never returned, missing places padded with (-inf, -1)."""
    q = scores.shape[0]
    out_s = np.full((q, k), -np.inf, dtype=np.float64)
    out_i = np.full((q, k), -1, dtype=np.int64)
    for r in range(q):
        s = scores[r, candidates]
        keep = ~np.isnan(s)
        s, ids = s[keep], candidates[keep]
        order = np.lexsort((ids, -s))[:k]  # last key is primary
        out_s[r, : order.size] = s[order]
        out_i[r, : order.size] = ids[order]
    return out_s, out_i


def _topk_candidates(n: int, allowed: np.ndarray | None) -> np.ndarray:
    if allowed is None:
        return np.arange(n, dtype=np.int64)
    allowed = np.asarray(allowed)
    if allowed.dtype == np.bool_:
        return np.flatnonzero(allowed).astype(np.int64)
    return np.unique(allowed.astype(np.int64))


def topk_inner_product(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    corpus_scale: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of <query, corpus row> (float64 scores [Q, k], int64 ids [Q, k]).

    corpus rows are multiplied by corpus_scale (per row) when it is given (int8 corpora).
    allowed: bool mask [N] or ids; only those rows are candidates.
    """
    q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    c = np.asarray(corpus, dtype=np.float64)
    if corpus_scale is not None:
        c = c * np.asarray(corpus_scale, dtype=np.float64)[:, None]
    return _topk_from_scores(q @ c.T, int(k), _topk_candidates(c.shape[0], allowed))


def topk_cosine(
    queries: np.ndarray, corpus: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k cosine similarity; a zero query or zero corpus row scores 0."""
    q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    c = np.asarray(corpus, dtype=np.float64)
    qn = np.linalg.norm(q, axis=1, keepdims=True)
    cn = np.linalg.norm(c, axis=1, keepdims=True)
    qu = np.divide(q, qn, out=np.zeros_like(q), where=qn > 0)
    cu = np.divide(c, cn, out=np.zeros_like(c), where=cn > 0)
    return _topk_from_scores(qu @ cu.T, int(k), _topk_candidates(c.shape[0], allowed))
