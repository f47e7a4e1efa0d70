"""float64 numpy definitions of every op: the specification that all backends are tested against.

Inputs may be any float dtype; they are promoted to float64 and the result is float64.
"""

from __future__ import annotations

import math

import numpy as np

_erfc = np.frompyfunc(math.erfc, 1, 1)  # numpy has no erf; math.erfc is accurate to ~1 ulp in float64


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


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """GELU, elementwise. approximate="none": x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (BERT's);
    "tanh": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2's). Limits: gelu(+inf) = +inf,
    gelu(-inf) = -0, NaN -> NaN. Evaluated as 0.5 x erfc(-x / sqrt 2) and x / (1 + exp(-2u)), the
    same values without the cancellation of 1 + erf / 1 + tanh for negative x."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if approximate == "tanh":
            u = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
            y = x / (1.0 + np.exp(-2.0 * u))
        else:
            y = 0.5 * x * np.asarray(_erfc(-x / math.sqrt(2.0)), dtype=np.float64)
    return np.where(x == -np.inf, -0.0, y)


def silu_and_mul(x: np.ndarray) -> np.ndarray:
    """silu(x[..., :I]) * x[..., I:] for x [..., 2I] (the gated MLP activation; vLLM's
    silu_and_mul), silu(g) = g * sigmoid(g). sigmoid from s = exp(-|g|): 1 / (1 + s) for g >= 0,
    s / (1 + s) below, so nothing overflows. Limits: silu(+inf) = +inf, silu(-inf) = -0, NaN
    propagates; the product with the up half follows IEEE (-0 * u, inf * 0 = NaN)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] % 2:
        raise ValueError(f"x: expected shape [..., 2 * I], got {x.shape}")
    half = x.shape[-1] // 2
    g, u = x[..., :half], x[..., half:]
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.exp(-np.abs(g))
        sig = np.where(g >= 0, 1.0 / (1.0 + s), s / (1.0 + s))
        silu = np.where(g == -np.inf, -0.0, g * sig)
        return silu * u


def rotary_embedding(x: np.ndarray, positions: np.ndarray, cos: np.ndarray, sin: np.ndarray, heads: int,
                     interleaved: bool) -> np.ndarray:  # fmt: skip
    """RoPE on packed rows: a float64 copy of x [T, W] whose heads [0, heads) (head_dim =
    2 * cos.shape[1], heads * head_dim <= W) are rotated by the table rows cos/sin[positions[t]]
    ([P, head_dim / 2]): for each pair (a, b), a' = a cos - b sin, b' = b cos + a sin. Pairs are
    (2i, 2i + 1) when interleaved (GGUF llama), else (i, i + head_dim / 2) (neox, rotate_half).
    The rest of each row is copied unchanged."""
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(cos, dtype=np.float64)[np.asarray(positions)][:, None, :]
    s = np.asarray(sin, dtype=np.float64)[np.asarray(positions)][:, None, :]
    half = c.shape[-1]
    d = 2 * half
    y = x.copy()
    v = y[:, : heads * d].reshape(x.shape[0], heads, d)
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 = NaN, as IEEE says
        if interleaved:
            a, b = v[..., 0::2].copy(), v[..., 1::2].copy()
            v[..., 0::2], v[..., 1::2] = a * c - b * s, b * c + a * s
        else:
            a, b = v[..., :half].copy(), v[..., half:].copy()
            v[..., :half], v[..., half:] = a * c - b * s, b * c + a * s
    y[:, : heads * d] = v.reshape(x.shape[0], heads * d)
    return y


def linear(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """x @ w.T (+ bias): x [..., K], w [N, K] (already dequantized), bias [N]."""
    y = np.asarray(x, dtype=np.float64) @ np.asarray(w, dtype=np.float64).T
    return y if bias is None else y + np.asarray(bias, dtype=np.float64)


# ------------------------------------------------------------------------------ paged attention
# Caches are [num_blocks, block_size, Hkv, D] (NHD). A stored value dequantizes to
# stored * scale, where scale is a number (float/fp8 caches) or a float32 array
# [num_blocks, block_size, Hkv] (int8 caches: one scale per token and head).


def _dequant_cache(cache: np.ndarray, scale) -> np.ndarray:
    c = np.asarray(cache).astype(np.float64)
    s = np.asarray(scale, dtype=np.float64)
    return c * (s[..., None] if s.ndim == 3 else s)


def _gather(cache: np.ndarray, table: np.ndarray, length: int) -> np.ndarray:
    """The first `length` token rows [length, Hkv, D] of one sequence's paged cache."""
    bs = cache.shape[1]
    pos = np.arange(length)
    return cache[np.asarray(table)[pos // bs], pos % bs]


def reshape_and_cache(k, v, k_cache, v_cache, slot_mapping) -> tuple[np.ndarray, np.ndarray]:
    """Float64 copies of the caches with token t's k/v rows written at slot_mapping[t]
    (slot = block * block_size + offset; -1 skips the token)."""
    kc = np.asarray(k_cache, dtype=np.float64).copy()
    vc = np.asarray(v_cache, dtype=np.float64).copy()
    bs = kc.shape[1]
    for t, slot in enumerate(np.asarray(slot_mapping).tolist()):
        if slot < 0:
            continue
        kc[slot // bs, slot % bs] = np.asarray(k[t], dtype=np.float64)
        vc[slot // bs, slot % bs] = np.asarray(v[t], dtype=np.float64)
    return kc, vc


def _attend(q, k, v, positions, scale, sliding_window):
    """q [n, Hq, D] at absolute `positions`; k, v [L, Hkv, D]. Causal, optional window."""
    hq = q.shape[1]
    hkv = k.shape[1]
    g = hq // hkv
    kk = np.repeat(k, g, axis=1)  # [L, Hq, D]: query head h uses kv head h // g
    vv = np.repeat(v, g, axis=1)
    s = np.einsum("nhd,lhd->hnl", q, kk) * scale
    key = np.arange(k.shape[0])[None, :]
    pos = np.asarray(positions)[:, None]
    mask = key <= pos
    if sliding_window is not None:
        mask &= key > pos - int(sliding_window)
    s = np.where(mask[None], s, -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("hnl,lhd->nhd", p, vv)


def paged_attention_decode(q, k_cache, v_cache, block_tables, seq_lens, scale=None, k_scale=1.0, v_scale=1.0,
                           sliding_window=None) -> np.ndarray:
    """One query token per sequence at position seq_lens[s]-1 over its cached keys/values.
    q [S, Hq, D] -> [S, Hq, D]; scale defaults to 1/sqrt(D); sliding_window w keeps the last w keys."""
    q = np.asarray(q, dtype=np.float64)
    d = q.shape[-1]
    scale = 1.0 / np.sqrt(d) if scale is None else float(scale)
    kc = _dequant_cache(k_cache, k_scale)
    vc = _dequant_cache(v_cache, v_scale)
    out = np.zeros(q.shape, dtype=np.float64)
    for s, length in enumerate(np.asarray(seq_lens).tolist()):
        k = _gather(kc, block_tables[s], length)
        v = _gather(vc, block_tables[s], length)
        out[s] = _attend(q[s : s + 1], k, v, [length - 1], scale, sliding_window)[0]
    return out


def paged_attention_prefill(q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, scale=None, k_scale=1.0,
                            v_scale=1.0, sliding_window=None) -> np.ndarray:
    """Causal attention of packed new tokens q [T, Hq, D]: sequence s owns rows
    query_start_loc[s]:query_start_loc[s+1], which are its last positions of seq_lens[s] (earlier
    positions, e.g. a cached prefix, are read from the cache too)."""
    q = np.asarray(q, dtype=np.float64)
    d = q.shape[-1]
    scale = 1.0 / np.sqrt(d) if scale is None else float(scale)
    kc = _dequant_cache(k_cache, k_scale)
    vc = _dequant_cache(v_cache, v_scale)
    out = np.zeros(q.shape, dtype=np.float64)
    qsl = np.asarray(query_start_loc).tolist()
    for s, length in enumerate(np.asarray(seq_lens).tolist()):
        a, b = qsl[s], qsl[s + 1]
        if b == a:
            continue
        k = _gather(kc, block_tables[s], length)
        v = _gather(vc, block_tables[s], length)
        positions = np.arange(length - (b - a), length)
        out[a:b] = _attend(q[a:b], k, v, positions, scale, sliding_window)
    return out


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
