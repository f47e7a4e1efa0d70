"""CUDA top-k search (csrc/cuda/topk.cu) against the float64 reference and the CPU kernel.
Skipped without a GPU.

Integer-valued data makes every dot product exact in float32 on every backend, so there the CUDA
result must equal the CPU kernel's bit for bit (ids and scores, ties included: the CUDA kernel
uses the CPU's score formula, and for int8 the same float64 re-scoring; int8 ids are compared
with the exact reference instead, see below). Gaussian data is
checked against the reference with an error budget, ids exact where the reference scores are
well separated.
"""

from __future__ import annotations

import numpy as np
import pytest

import infercore
from infercore import ops
from infercore.ops import reference, search

torch = pytest.importorskip("torch")
if not infercore.system_info()["cuda"]["available"] or not torch.cuda.is_available():
    pytest.skip("no CUDA device (or infercore built without CUDA)", allow_module_level=True)

DTYPES = ["float32", "float16", "int8"]
# (N, d, Q, k): every N in {1, 7, 1000, 100003}, d in {1, 3, 384, 1000}, Q in {1, 5, 64} and k in
# {1, 10, 100, 300, 2048, 8192, N + 5} appears, each pairing of a large k with a corpus big enough
# to fill it; k > N (padding) appears for every N. Not the full product: it would take hours of
# float64 reference time for the same code paths.
CASES = [
    (1, 1, 1, 1),
    (1, 3, 5, 6),
    (7, 3, 5, 10),
    (7, 384, 64, 12),
    (1000, 1, 64, 100),
    (1000, 384, 5, 300),
    (1000, 1000, 1, 2048),
    (1000, 3, 64, 1005),
    (100003, 384, 1, 10),
    (100003, 1000, 5, 100),
    (100003, 3, 64, 8192),
    (100003, 384, 5, 300),
    (100003, 1, 1, 100008),
    (100003, 384, 64, 2048),
]
IDS = [f"N{n}-d{d}-Q{q}-k{k}" for n, d, q, k in CASES]


def cu(x):
    return torch.from_numpy(np.ascontiguousarray(x)).cuda()


def int_data(rng, n, d, nq, dtype):
    """Small integers (exact in every backend's float32 arithmetic); int8 scales are powers of 2."""
    c = rng.integers(-3, 4, size=(n, d))
    q = rng.integers(-3, 4, size=(nq, d)).astype(np.float32)
    if n > 3:
        c[n // 2] = c[1]  # exact ties: duplicated rows
        c[n - 1] = c[1]
    scale = None
    if dtype == "int8":
        scale = (2.0 ** -rng.integers(0, 3, size=n)).astype(np.float32)
        return q, c.astype(np.int8), scale
    return q, c.astype(dtype), scale


def run(cosine, q, c, k, scale=None, **kw):
    if cosine:
        return ops.topk_cosine(q, c, k, **kw)
    return ops.topk_inner_product(q, c, k, corpus_scale=scale, **kw)


def gpu(cosine, q, c, k, scale=None, **kw):
    s, i = run(cosine, cu(q), cu(c), k, None if scale is None else cu(scale), backend="cuda", **kw)
    assert s.is_cuda and i.is_cuda and s.dtype == torch.float32 and i.dtype == torch.int64
    assert tuple(s.shape) == tuple(i.shape) == (q.shape[0], k)
    return s.cpu().numpy(), i.cpu().numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("cosine", [False, True], ids=["ip", "cos"])
def test_equals_cpu_kernel_and_reference_on_exact_data(dtype, case, cosine):
    n, d, nq, k = case
    rng = np.random.default_rng(n + 7 * d + 31 * nq + k)
    q, c, scale = int_data(rng, n, d, nq, dtype)
    s, i = gpu(cosine, q, c, k, scale)
    cs, ci = run(cosine, q, c, k, scale, backend="cpu")
    if dtype == "int8":
        # The CPU int8 scan shortlists with int8-quantised queries and may pick different rows
        # among exact ties (documented in ops/search.py); both re-score in float64 the same way.
        np.testing.assert_array_equal(s, cs)
    else:
        np.testing.assert_array_equal(i, ci)
        np.testing.assert_array_equal(s, cs)
    exact = c.astype(np.float64) * (scale[:, None] if scale is not None else 1.0)
    ref = reference.topk_cosine if cosine else reference.topk_inner_product
    rs, ri = ref(q, exact, k)
    np.testing.assert_array_equal(i == -1, ri == -1)
    # The reference normalises before its float64 dot, so an exact zero cosine comes out as ~1e-17
    atol = 1e-12 if cosine else 1e-30
    np.testing.assert_allclose(s, rs.astype(np.float32), rtol=2e-6, atol=atol)
    if not cosine:  # exact scores, so the reference's tie order must come out too
        np.testing.assert_array_equal(i, ri)


def budget(q, exact, cosine):
    if cosine:
        return np.full(q.shape[0], 1e-5)
    return 1e-5 * np.linalg.norm(q.astype(np.float64), axis=1) * np.max(np.linalg.norm(exact, axis=1), initial=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(1000, 384, 5, 100), (100003, 384, 64, 300), (100003, 1000, 1, 8192)],
                         ids=["N1000-Q5-k100", "N100003-Q64-k300", "N100003-d1000-Q1-k8192"])  # fmt: skip
@pytest.mark.parametrize("cosine", [False, True], ids=["ip", "cos"])
def test_gaussian_matches_reference(dtype, case, cosine):
    n, d, nq, k = case
    rng = np.random.default_rng(n + d + nq + k)
    x = rng.standard_normal((n, d)).astype(np.float32)
    q = rng.standard_normal((nq, d)).astype(np.float32)
    scale = None
    if dtype == "int8":
        scale = (np.abs(x).max(axis=1) / 127).astype(np.float32)
        c = np.clip(np.rint(x / scale[:, None]), -127, 127).astype(np.int8)
        exact = c.astype(np.float64) * scale[:, None].astype(np.float64)
    else:
        c = x.astype(dtype)
        exact = c.astype(np.float64)
    s, i = gpu(cosine, q, c, k, scale)
    ref = reference.topk_cosine if cosine else reference.topk_inner_product
    rs, ri = ref(q, exact, k)
    b = budget(q, exact, cosine)
    for r in range(nq):
        assert np.all(np.diff(s[r]) <= 0), "scores not sorted descending"
        assert len(set(i[r].tolist())) == k
        np.testing.assert_allclose(s[r], rs[r], rtol=0, atol=b[r])
        g = np.diff(rs[r])
        sep = np.ones(k, bool)
        sep[:-1] &= -g > 2 * b[r]
        sep[1:] &= -g > 2 * b[r]
        np.testing.assert_array_equal(i[r][sep], ri[r][sep])
        eq = np.diff(s[r]) == 0
        assert np.all(i[r][1:][eq] > i[r][:-1][eq])


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_equal_scores_give_the_lowest_ids(dtype):
    n, k = 5000, 700
    c = np.ones((n, 16), dtype=dtype)
    q = np.ones((3, 16), np.float32)
    scale = np.full(n, 0.5, np.float32) if dtype == "int8" else None
    for cosine in (False, True):
        s, i = gpu(cosine, q, c, k, scale)
        np.testing.assert_array_equal(i, np.broadcast_to(np.arange(k), (3, k)))
        assert np.all(s == s[0, 0])


# Q = 1 runs the stream kernel when a row is whole 16-byte vectors (d * itemsize % 16 == 0, d <=
# 8192): 1 vector per row (8 lanes per row, 7 idle), 24/48/96 (the 384 benchmark rows), 250
# (two load chunks, the second partial), 2048 (16 chunks); 8200 falls back to the tiled kernel.
STREAM_D = {"float32": (4, 384, 1000, 8192, 8200), "float16": (8, 384, 2000, 8192), "int8": (16, 384, 4096, 8192)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cosine", [False, True], ids=["ip", "cos"])
def test_q1_stream_rows_of_every_width(dtype, cosine):
    rng = np.random.default_rng(11)
    for d in STREAM_D[dtype]:
        n = 3001 if d < 1000 else 700  # a partial last window and a partial last warp step
        q, c, scale = int_data(rng, n, d, 1, dtype)
        c[17] = c[1]  # more exact ties inside one warp step
        mask = rng.random(n) < 0.7
        for k, allowed in ((1, None), (40, None), (n + 3, None), (25, mask)):
            s, i = gpu(cosine, q, c, k, scale, allowed=allowed)
            cs, ci = run(cosine, q, c, k, scale, backend="cpu", allowed=allowed)
            np.testing.assert_array_equal(s, cs)
            if dtype != "int8":  # see test_equals_cpu_kernel_and_reference_on_exact_data
                np.testing.assert_array_equal(i, ci)
            else:
                exact = c.astype(np.float64) * (1.0 if cosine else scale[:, None])
                ref = reference.topk_cosine if cosine else reference.topk_inner_product
                rs, ri = ref(q, exact, k, allowed=allowed)
                np.testing.assert_array_equal(i == -1, ri == -1)
                np.testing.assert_allclose(s, rs.astype(np.float32), rtol=2e-6, atol=1e-12)


def test_q1_stream_misaligned_corpus_falls_back_with_the_same_result():
    rng = np.random.default_rng(12)
    n, d = 2000, 96
    q, c, _ = int_data(rng, n, d, 1, "float32")
    flat = torch.zeros(n * d + 1, dtype=torch.float32, device="cuda")
    flat[1:] = cu(c.reshape(-1))
    shifted = flat[1:].view(n, d)  # 4 bytes past a 16-byte boundary
    assert shifted.data_ptr() % 16 == 4
    for cosine in (False, True):
        want = run(cosine, q, c, 33, backend="cpu")
        got = run(cosine, cu(q), shifted, 33, backend="cuda")
        np.testing.assert_array_equal(got[1].cpu().numpy(), want[1])
        np.testing.assert_array_equal(got[0].cpu().numpy(), want[0])


def test_allowed_mask_ids_and_empty():
    rng = np.random.default_rng(5)
    n, d = 3000, 33
    q, c, _ = int_data(rng, n, d, 5, "float32")
    mask = rng.random(n) < 0.1
    ids = np.flatnonzero(rng.random(n) < 0.05)
    for k in (1, 50, 400):
        for allowed in (mask, ids, cu(mask), cu(ids), ids.tolist()):
            s, i = gpu(False, q, c, k, allowed=allowed)
            cs, ci = ops.topk_inner_product(q, c, k, allowed=allowed if isinstance(allowed, (np.ndarray, list))
                                            else allowed.cpu().numpy())  # fmt: skip
            np.testing.assert_array_equal(i, ci)
            np.testing.assert_array_equal(s, cs)
            cand = set(np.flatnonzero(mask).tolist() if len(allowed) == n else np.asarray(ids).tolist())
            assert set(i[i >= 0].tolist()) <= cand
    for empty in (np.zeros(n, bool), np.zeros(0, np.int64), cu(np.zeros(0, np.int64))):
        s, i = gpu(True, q, c, 7, allowed=empty)
        assert np.all(i == -1) and np.all(np.isneginf(s))


def test_zero_vectors_under_cosine_score_zero():
    c = np.zeros((50, 8), np.float32)
    c[10] = 1.0
    c[20] = -1.0
    q = np.array([[1.0] * 8, [0.0] * 8], np.float32)
    s, i = gpu(True, q, c, 50)
    assert i[0, 0] == 10 and s[0, 0] == pytest.approx(1.0)
    zeros = i[0, 1:49]
    np.testing.assert_array_equal(zeros, [j for j in range(50) if j not in (10, 20)])
    assert np.all(s[0, 1:49] == 0) and i[0, 49] == 20 and s[0, 49] == pytest.approx(-1.0)
    np.testing.assert_array_equal(i[1], np.arange(50))  # zero query: all 0, lower id first
    assert np.all(s[1] == 0)
    cs, ci = ops.topk_cosine(q, c, 50)
    np.testing.assert_array_equal(i, ci)
    np.testing.assert_array_equal(s, cs)


def test_nan_rows_are_never_returned():
    rng = np.random.default_rng(2)
    q, c, _ = int_data(rng, 600, 20, 4, "float32")
    c[[3, 300, 599]] = np.nan
    for cosine in (False, True):
        s, i = gpu(cosine, q, c, 600)
        assert not np.isin(i, [3, 300, 599]).any() and np.all(i[:, -3:] == -1)
        cs, ci = run(cosine, q, c, 600)
        np.testing.assert_array_equal(i, ci)
        np.testing.assert_array_equal(s, cs)


def test_query_groups_and_fewer_splits_give_the_same_result(monkeypatch):
    rng = np.random.default_rng(9)
    q, c, scale = int_data(rng, 20000, 40, 300, "int8")
    want = gpu(False, q, c, 64, scale)
    monkeypatch.setattr(search, "CUDA_MAX_WORKSPACE", 1 << 20)  # forces one split and 3 query groups
    got = gpu(False, q, c, 64, scale)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


def test_runs_on_the_callers_stream():
    rng = np.random.default_rng(4)
    q, c, _ = int_data(rng, 200000, 384, 16, "float16")
    qd, cd = cu(q), cu(c)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        big = torch.randn(4096, 4096, device="cuda")
        for _ in range(4):  # keep the side stream busy, then search on it
            big = big @ big / 64
        cd2 = cd * 1  # written on s: a kernel on another stream could read it unfinished
        scores, ids = ops.topk_inner_product(qd, cd2, 100)
    s.synchronize()
    cs, ci = ops.topk_inner_product(q, c, 100, backend="cpu")
    np.testing.assert_array_equal(ids.cpu().numpy(), ci)
    np.testing.assert_array_equal(scores.cpu().numpy(), cs)


def test_auto_picks_cuda_and_array_types():
    rng = np.random.default_rng(1)
    q, c, _ = int_data(rng, 2000, 16, 3, "float32")
    s, i = ops.topk_inner_product(cu(q), cu(c), 1000)  # k > 256: the Triton kernel would refuse
    assert s.is_cuda and s.shape == (3, 1000)
    s2, i2 = ops.topk_inner_product(q, cu(c), 1000, backend="cuda")  # host queries -> numpy back
    assert isinstance(s2, np.ndarray) and isinstance(i2, np.ndarray)
    np.testing.assert_array_equal(i2, i.cpu().numpy())
    s3, _ = ops.topk_inner_product(cu(q[0]), cu(c), 5, backend="cuda")  # 1-D query -> [1, k]
    assert tuple(s3.shape) == (1, 5)
    qt = cu(np.asfortranarray(q.T)).T  # non-contiguous
    np.testing.assert_array_equal(ops.topk_inner_product(qt, cu(c), 10)[1].cpu().numpy(), i.cpu().numpy()[:, :10])
    e_s, e_i = ops.topk_inner_product(cu(q), cu(c[:0]), 4, backend="cuda")
    assert np.all(e_i.cpu().numpy() == -1) and np.all(np.isneginf(e_s.cpu().numpy()))
    z_s, _ = ops.topk_inner_product(cu(q[:0]), cu(c), 4, backend="cuda")
    assert tuple(z_s.shape) == (0, 4)


def test_cupy_arrays_if_installed():
    cp = pytest.importorskip("cupy")
    rng = np.random.default_rng(3)
    q, c, _ = int_data(rng, 999, 12, 4, "float32")
    s, i = ops.topk_cosine(cp.asarray(q), cp.asarray(c), 17)
    assert isinstance(s, cp.ndarray) and isinstance(i, cp.ndarray)
    cs, ci = ops.topk_cosine(q, c, 17)
    np.testing.assert_array_equal(cp.asnumpy(i), ci)
    np.testing.assert_array_equal(cp.asnumpy(s), cs)


def test_bad_inputs():
    c = torch.ones((10, 4), device="cuda")
    q = torch.ones((2, 4), device="cuda")
    c8, s8 = torch.ones((10, 4), dtype=torch.int8, device="cuda"), torch.ones(10, device="cuda")
    cases = [
        (ValueError, "corpus", lambda: ops.topk_inner_product(q, np.ones((10, 4), np.float32), 1, backend="cuda")),
        (ValueError, "queries", lambda: ops.topk_inner_product(q * np.nan, c, 1, backend="cuda")),
        (ValueError, "queries", lambda: ops.topk_cosine(q * np.inf, c, 1, backend="cuda")),
        (ValueError, "queries", lambda: ops.topk_inner_product(np.full((2, 4), np.nan, np.float32), c, 1,
                                                               backend="cuda")),  # host queries, checked there
        (ValueError, "queries", lambda: ops.topk_cosine(np.full((1, 4), -np.inf, np.float16), c, 1)),
        (ValueError, "queries", lambda: ops.topk_inner_product(torch.ones((2, 3), device="cuda"), c, 1)),
        (TypeError, "queries", lambda: ops.topk_inner_product(q.double(), c, 1, backend="cuda")),
        (TypeError, "corpus", lambda: ops.topk_inner_product(q, c.int(), 1, backend="cuda")),
        (TypeError, "k", lambda: ops.topk_inner_product(q, c, 1.5, backend="cuda")),
        (ValueError, "k", lambda: ops.topk_inner_product(q, c, 0, backend="cuda")),
        (ValueError, "allowed", lambda: ops.topk_inner_product(q, c, 1, allowed=torch.ones(9, dtype=torch.bool,
                                                                                           device="cuda"))),
        (ValueError, "allowed", lambda: ops.topk_inner_product(q, c, 1, allowed=cu(np.array([0, 10])))),
        (ValueError, "allowed", lambda: ops.topk_inner_product(q, c, 1, allowed=[-1])),
        (TypeError, "allowed", lambda: ops.topk_inner_product(q, c, 1, allowed=torch.ones(3, device="cuda"))),
        (ValueError, "corpus_scale", lambda: ops.topk_inner_product(q, c8, 1)),
        (ValueError, "corpus_scale", lambda: ops.topk_inner_product(q, c, 1, corpus_scale=s8)),
        (ValueError, "corpus_scale", lambda: ops.topk_inner_product(q, c8, 1, corpus_scale=s8[:5])),
        (ValueError, "corpus_scale", lambda: ops.topk_inner_product(q, c8, 1, corpus_scale=s8 * np.nan)),
        (ValueError, "queries", lambda: ops.topk_inner_product(q * np.nan, c8, 1, corpus_scale=s8 * np.inf)),
        (ValueError, "queries", lambda: ops.topk_inner_product(q[:1] * np.nan, c8, 1, corpus_scale=s8)),
        (TypeError, "corpus_scale", lambda: ops.topk_inner_product(q, c8, 1, corpus_scale=s8.long())),
        (ValueError, "k", lambda: ops.topk_inner_product(q, c, 1 << 25, backend="cuda")),
    ]  # fmt: skip
    for exc, word, fn in cases:
        with pytest.raises(exc, match=word):
            fn()
