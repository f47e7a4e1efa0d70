"""The native refine re-ranking (ops.search.rescore -> csrc/cpu/topk_rescore.cpp) against a
float64 numpy re-ranking, and its bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from infercore._native import _C
from infercore.ops.search import rescore


def numpy_rescore(q, cand, r, k, cosine):
    scores = np.full((q.shape[0], k), -np.inf, np.float32)
    out = np.full((q.shape[0], k), -1, np.int64)
    for row in range(q.shape[0]):
        ids = cand[row][cand[row] >= 0]
        rows = r[ids].astype(np.float64)
        qv = q[row].astype(np.float64)
        sc = (rows * qv).sum(1)
        keep = ~np.isnan(sc)  # rows with NaN are dropped, cosine too
        ids, sc, rows = ids[keep], sc[keep], rows[keep]
        if cosine:
            norms = np.sqrt((rows * rows).sum(1)) * np.sqrt((qv * qv).sum())
            sc = np.divide(sc, norms, out=np.zeros_like(sc), where=norms > 0)
        order = np.lexsort((ids, -sc))[:k]
        scores[row, : order.size] = sc[order]
        out[row, : order.size] = ids[order]
    return scores, out


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("d", [1, 7, 33])
def test_rescore_matches_numpy(dtype, cosine, d):
    rng = np.random.default_rng(d + 10 * cosine)
    n = 211
    r = rng.standard_normal((n, d)).astype(dtype)
    r[5] = r[9]  # a tie: the lower id first
    r[7] = 0.0  # a zero row: cosine 0
    r[11, 0] = np.nan  # dropped
    q = rng.standard_normal((13, d)).astype(np.float32)
    q[2] = 0.0
    cand = np.stack([rng.permutation(n)[:40] for _ in range(13)]).astype(np.int64)
    cand[:, :4] = [5, 9, 7, 11]
    cand[3, 10:] = -1  # fewer candidates than k
    for k in (1, 8, 45):
        s, i = rescore(q, cand, r, k, cosine)
        ws, wi = numpy_rescore(q, cand, r, k, cosine)
        np.testing.assert_array_equal(i, wi)
        np.testing.assert_allclose(s, ws, rtol=1e-6, atol=1e-7)
        assert not np.isin(11, i).any()


def test_rescore_bad_inputs():
    q = np.zeros((2, 4), np.float32)
    r = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match="cand: id 5 out of range"):
        _C.topk_rescore(q, np.array([[0, 5], [1, 2]], np.int64), r, 2)
    with pytest.raises(ValueError, match="cand: id -2"):
        _C.topk_rescore(q, np.array([[0, -2], [1, 2]], np.int64), r, 2)
    with pytest.raises(ValueError, match="cand: expected 2 rows"):
        _C.topk_rescore(q, np.zeros((3, 2), np.int64), r, 2)
    with pytest.raises(ValueError, match="refine: expected rows of length 4"):
        _C.topk_rescore(q, np.zeros((2, 2), np.int64), np.zeros((5, 3), np.float32), 2)
    with pytest.raises(TypeError, match="refine: expected dtype float32 or float16"):
        _C.topk_rescore(q, np.zeros((2, 2), np.int64), np.zeros((5, 4), np.float64), 2)
    with pytest.raises(TypeError, match="refine: expected dtype float32 or float16"):
        rescore(q, np.zeros((2, 2), np.int64), np.zeros((5, 4), np.int8), 2, False)
    with pytest.raises(ValueError, match="k: expected >= 1"):
        _C.topk_rescore(q, np.zeros((2, 2), np.int64), r, 0)
