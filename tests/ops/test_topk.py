"""topk_inner_product / topk_cosine: every ISA level vs the float64 reference, ties, filters,
padding, bad inputs, thread-count independence.

Error budget (per returned score, vs the reference on the exact corpus the kernel sees, i.e. the
float16 or dequantised int8 values): float32/float16 corpora 1e-5 * |q| * max|c| (float32
accumulation). int8 scans with int8 queries, whose rounding (at most max|q| / 254 * max_row
sum|c|) can change which rows are returned; the returned scores themselves are re-scored with
the float query, so each matches its row's exact score within the float budget.
The j-th returned score is within the budget of the reference's j-th score (order statistics
move by at most the largest error), so score lists are compared position by position, and ids
are compared exactly wherever the reference scores are separated by more than twice the budget.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infercore as ic
from infercore import ops
from infercore.ops import reference

ISAS = ic.available_isas()


@pytest.fixture
def threads():
    before = ic.get_num_threads()
    yield ic.set_num_threads
    ic.set_num_threads(before)


def make_corpus(rng, n, d, dtype):
    """(corpus as given to the op, corpus_scale or None, exact float64 values the kernel sees)."""
    x = rng.standard_normal((n, d)).astype(np.float32)
    if dtype == "float32":
        return x, None, x.astype(np.float64)
    if dtype == "float16":
        c = x.astype(np.float16)
        return c, None, c.astype(np.float64)
    amax = np.abs(x).max(axis=1) if d else np.zeros(n)
    scale = np.where(amax > 0, amax / 127, 1).astype(np.float32)
    c = np.clip(np.rint(x / scale[:, None]), -127, 127).astype(np.int8)
    return c, scale, c.astype(np.float64) * scale[:, None].astype(np.float64)


def budget(q, exact, dtype, cosine):
    q = q.astype(np.float64)
    if cosine:  # unit vectors
        qn = np.ones(q.shape[0])
        unit_rows = np.abs(exact).sum(1) / np.maximum(np.linalg.norm(exact, axis=1), 1e-300)
        cmax, rowsum = 1.0, np.max(unit_rows, initial=0)
        qmax = np.abs(q).max(1) / np.maximum(np.linalg.norm(q, axis=1), 1e-300)
    else:
        qn = np.linalg.norm(q, axis=1)
        cmax = np.max(np.linalg.norm(exact, axis=1), initial=0)
        rowsum = np.max(np.abs(exact).sum(1), initial=0)
        qmax = np.abs(q).max(1)
    b = 1e-5 * qn * cmax + 1e-30
    if dtype == "int8":
        b = b + qmax / 254 * rowsum * 1.0001
    return b


def check(scores, ids, q, exact, k, b, *, cosine=False, allowed=None, scale=None, b_exact=None):
    """Compare a kernel result with the reference computed on `exact` (see module doc)."""
    q = np.atleast_2d(q)
    ref = reference.topk_cosine if cosine else reference.topk_inner_product
    rs, ri = ref(q, exact, k, allowed=allowed)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert scores.shape == ids.shape == (q.shape[0], k)
    np.testing.assert_array_equal(ids == -1, ri == -1)  # same number of results
    valid = ri != -1
    assert np.all(np.isneginf(scores[~valid]))
    for r in range(q.shape[0]):
        m = int(valid[r].sum())
        s, i = scores[r, :m].astype(np.float64), ids[r, :m]
        assert np.all(np.diff(s) <= 0), "scores not sorted descending"
        assert len(set(i.tolist())) == m, "duplicate ids"
        np.testing.assert_allclose(s, rs[r, :m], rtol=0, atol=b[r])
        # every returned id's exact score matches its returned score
        if cosine:
            qu = q[r] / max(np.linalg.norm(q[r]), 1e-300) if np.any(q[r]) else q[r] * 0
            cn = np.linalg.norm(exact[i], axis=1)
            exact_s = (exact[i] @ qu) / np.where(cn > 0, cn, 1)
        else:
            exact_s = exact[i] @ q[r].astype(np.float64)
        np.testing.assert_allclose(s, exact_s, rtol=0, atol=(b if b_exact is None else b_exact)[r])
        # ties in the returned scores go to the lower id
        eq = np.diff(scores[r, :m]) == 0
        assert np.all(i[1:][eq] > i[:-1][eq])
        # ids exact where the reference is well separated on both sides
        g = np.diff(rs[r, :m])
        sep = np.ones(m, bool)
        sep[:-1] &= -g > 2 * b[r]
        sep[1:] &= -g > 2 * b[r]
        np.testing.assert_array_equal(i[sep], ri[r, :m][sep])
        if allowed is not None:
            cand = set(reference._topk_candidates(exact.shape[0], allowed).tolist())
            assert set(i.tolist()) <= cand


def run(cosine, q, c, k, scale=None, **kw):
    if cosine:
        return ops.topk_cosine(q, c, k, **kw)
    return ops.topk_inner_product(q, c, k, corpus_scale=scale, **kw)


CASES = [  # (N, d, Q, k)
    (1, 3, 1, 1),
    (7, 1, 5, 10),
    (7, 384, 5, 12),
    (1000, 384, 64, 10),
    (1000, 1000, 5, 100),
    (1000, 3, 64, 1005),
    (100003, 3, 5, 10),
    (100003, 1, 1, 100),
]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
@pytest.mark.parametrize("case", CASES, ids=[f"N{n}-d{d}-Q{q}-k{k}" for n, d, q, k in CASES])
@pytest.mark.parametrize("cosine", [False, True], ids=["ip", "cos"])
def test_matches_reference(isa, dtype, case, cosine):
    n, d, nq, k = case
    rng = np.random.default_rng(n * 31 + d * 7 + nq)
    c, scale, exact = make_corpus(rng, n, d, dtype)
    q = rng.standard_normal((nq, d)).astype(np.float32)
    s, i = run(cosine, q, c, k, scale)
    # int8 shortlists are re-scored with the float query: returned scores carry float error only
    b_exact = budget(q, exact, "float32", cosine)
    check(s, i, q, exact, k, budget(q, exact, dtype, cosine), cosine=cosine, b_exact=b_exact)


def test_large_k_pads(isa):
    rng = np.random.default_rng(1)
    c = rng.standard_normal((100003, 2)).astype(np.float32)
    q = rng.standard_normal((2, 2)).astype(np.float32)
    s, i = ops.topk_inner_product(q, c, 100008)
    assert np.all(i[:, -5:] == -1) and np.all(np.isneginf(s[:, -5:]))
    assert np.all(np.sort(i[:, :-5], axis=1) == np.arange(100003))
    check(s, i, q, c.astype(np.float64), 100008, budget(q, c.astype(np.float64), "float32", False))


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_duplicate_rows_tie_to_lower_id(isa, dtype):
    rng = np.random.default_rng(2)
    c, scale, _ = make_corpus(rng, 300, 37, dtype)
    c[[5, 17, 203, 299]] = c[250]  # exact duplicates of row 250
    if scale is not None:
        scale[[5, 17, 203, 299]] = scale[250]
    q = (c[250].astype(np.float32) * (scale[250] if scale is not None else 1))[None].astype(np.float32)
    for cosine in (False, True):
        s, i = run(cosine, q, c, 5, scale)
        assert i[0].tolist() == [5, 17, 203, 250, 299]
        assert np.all(s[0] == s[0, 0])


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_all_equal_scores(isa, dtype):
    n = 5000
    c = np.ones((n, 19), dtype=np.int8 if dtype == "int8" else dtype)
    scale = np.full(n, 0.5, np.float32) if dtype == "int8" else None
    q = np.ones((3, 19), np.float32)
    s, i = run(False, q, c, 64, scale)
    assert np.all(i == np.arange(64)) and np.all(s == s[0, 0])
    s, i = ops.topk_cosine(np.zeros((2, 19), np.float32), c, 10)  # zero query: every score 0
    assert np.all(i == np.arange(10)) and np.all(s == 0)


def test_zero_vectors_cosine(isa):
    rng = np.random.default_rng(3)
    c = rng.standard_normal((50, 8)).astype(np.float32)
    c[[3, 9]] = 0
    q = -np.abs(rng.standard_normal((1, 8))).astype(np.float32)
    c[c @ q[0] > 0] *= -1  # every nonzero row scores < 0: the zero rows (score 0) come first
    s, i = ops.topk_cosine(q, c, 4)
    assert i[0, :2].tolist() == [3, 9] and np.all(s[0, :2] == 0) and np.all(s[0, 2:] < 0)


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_allowed_mask_and_ids(isa, dtype):
    rng = np.random.default_rng(4)
    n, d = 20011, 24
    c, scale, exact = make_corpus(rng, n, d, dtype)
    q = rng.standard_normal((5, d)).astype(np.float32)
    b = budget(q, exact, dtype, False)
    mask = rng.random(n) < 0.01
    s, i = run(False, q, c, 50, scale, allowed=mask)
    check(s, i, q, exact, 50, b, allowed=mask, scale=scale)
    assert mask[i[i >= 0]].all()
    ids = rng.integers(0, n, 40)  # unsorted, with duplicates possible: fewer than k candidates
    s, i = run(False, q, c, 50, scale, allowed=ids)
    check(s, i, q, exact, 50, b, allowed=ids)
    assert np.all(i[:, len(np.unique(ids)) :] == -1)
    for cosine in (False, True):
        s, i = run(cosine, q, c, 3, scale, allowed=np.zeros(0, np.int64))
        assert np.all(i == -1) and np.all(np.isneginf(s))
        s, i = run(cosine, q, c, 3, scale, allowed=np.zeros(n, bool))
        assert np.all(i == -1)
    s, i = run(True, q, c, 7, None, allowed=ids.tolist())
    check(s, i, q, exact, 7, budget(q, exact, dtype, True), cosine=True, allowed=ids)


def test_threads_do_not_change_results(threads):
    rng = np.random.default_rng(5)
    c = rng.standard_normal((100003, 16)).astype(np.float32)
    c[1000:2000] = c[0]  # many exact ties, spread over shards
    q1 = c[:1].copy()
    q64 = rng.standard_normal((64, 16)).astype(np.float32)
    c16 = c.astype(np.float16)
    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append(
            [
                ops.topk_cosine(q1, c, 500),
                ops.topk_inner_product(q64, c, 10),
                ops.topk_inner_product(q64, c16, 7),
            ]
        )
    for other in results[1:]:
        for (s0, i0), (s1, i1) in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(i0, i1)
            np.testing.assert_array_equal(s0, s1)
    assert results[0][0][1][0].tolist() == [0, *range(1000, 1499)]  # 1001 exact ties, lowest ids win


@pytest.mark.parametrize("d", [1, 63, 64, 65, 384, 1000])
def test_int8_shortlists_are_the_same_at_every_isa(d):
    # Every level sums int8 products exactly in int32 (VNNI as sum (c + 128) q - 128 sum q), so
    # the full code range, -128 included, gives the same ids and scores everywhere; ties between
    # duplicated rows stay ties.
    rng = np.random.default_rng(d)
    c = rng.integers(-128, 128, (3000, d), dtype=np.int8)
    c[::7] = -128
    c[1500:1520] = c[3]
    scale = rng.uniform(0.5, 2.0, 3000).astype(np.float32)
    scale[1500:1520] = scale[3]
    q = rng.standard_normal((5, d)).astype(np.float32)
    q[0] = c[3] * 0.01
    before = ic.get_isa()
    try:
        got = {}
        for level in ISAS:
            ic.set_isa(level)
            got[level] = [ops.topk_inner_product(q[:1], c, 40, corpus_scale=scale),
                          ops.topk_inner_product(q, c, 40, corpus_scale=scale)]
    finally:
        ic.set_isa(before)
    for level in ISAS[1:]:
        for (s0, i0), (s1, i1) in zip(got[ISAS[0]], got[level], strict=True):
            np.testing.assert_array_equal(i0, i1)
            np.testing.assert_array_equal(s0, s1)


@pytest.mark.parametrize("d", [1, 3, 7, 33, 64, 65, 385, 1100])
@pytest.mark.parametrize("metric", ["ip", "cosine"])
def test_int8_many_queries_give_each_query_its_own_result(d, metric):
    # 8+ (VNNI) or 16+ queries take the packed kernels (VNNI: int8 panels of 16 rows; others: float
    # panels over the quantised queries, exact up to d = 1032, the row-dot kernel beyond). All
    # sum the same exact int32 products, so every query gets the bits of its own Q = 1 call, at
    # every ISA level, with masks, ids, duplicated rows and k past the candidates.
    rng = np.random.default_rng(d * 7 + len(metric))
    n = 1037
    c = rng.integers(-128, 128, (n, d), dtype=np.int8)
    c[::9] = -128
    c[500:520] = c[3]
    scale = rng.uniform(0.5, 2.0, n).astype(np.float32)
    scale[500:520] = scale[3]
    q = rng.standard_normal((37, d)).astype(np.float32)
    q[5] = c[3] * 0.01
    q[6] = 0.0
    mask = rng.random(n) < 0.6
    ids = np.flatnonzero(rng.random(n) < 0.05)
    before = ic.get_isa()
    try:
        for level in ISAS:
            ic.set_isa(level)
            for k, allowed in ((10, None), (1, mask), (70, ids), (n + 5, None)):

                def call(qq, k=k, allowed=allowed):
                    if metric == "ip":
                        return ops.topk_inner_product(qq, c, k, corpus_scale=scale, allowed=allowed)
                    return ops.topk_cosine(qq, c, k, allowed=allowed)

                s_all, i_all = call(q)
                s9, i9 = call(q[:9])  # VNNI packs from 8 queries, the other levels from 16
                np.testing.assert_array_equal(i_all[:9], i9)
                np.testing.assert_array_equal(s_all[:9], s9)
                for j in (0, 5, 6, 17, 36):
                    s1, i1 = call(q[j : j + 1])
                    np.testing.assert_array_equal(i_all[j], i1[0], err_msg=f"{level} k={k} query {j}")
                    np.testing.assert_array_equal(s_all[j], s1[0], err_msg=f"{level} k={k} query {j}")
                if k == 10 and allowed is None:  # the exact answer, from the float64 reference
                    want = reference.topk_inner_product(q, c.astype(np.float64) * scale[:, None], k) if metric == "ip" \
                        else reference.topk_cosine(q, c.astype(np.float64), k)
                    np.testing.assert_array_equal(i_all[[0, 17, 36]], want[1][[0, 17, 36]])
    finally:
        ic.set_isa(before)


def test_int8_long_rows_do_not_overflow(isa):
    # d = 70000: sum (c + 128) q wraps int32 on the VNNI level; the difference is still exact.
    # 40 rows and k <= 3 keep the scan's shortlist (k + k + 16 rows) shorter than the corpus, so
    # a wrapped scan score would drop a true top row before the exact re-score.
    d, n = 70000, 40
    c = np.full((n, d), 127, np.int8)
    for i in range(n):
        c[i, d - 1500 * i :] = -128  # row i: 1500 * i bytes of -128, sums strictly decreasing
    c[n - 1, ::2] = -128
    q = np.ones((1, d), np.float32)
    want = c.astype(np.float64).sum(1)
    order = np.argsort(-want, kind="stable")
    for k in (1, 3):
        s, i = ops.topk_inner_product(q, c, k, corpus_scale=np.ones(n, np.float32))
        np.testing.assert_array_equal(i[0], order[:k])
        np.testing.assert_allclose(s[0], want[order[:k]], rtol=1e-6)
    s, i = ops.topk_inner_product(-q, c, 2, corpus_scale=np.ones(n, np.float32))
    np.testing.assert_array_equal(i[0], order[::-1][:2])


def test_non_contiguous_and_torch_and_1d(isa):
    rng = np.random.default_rng(7)
    big = rng.standard_normal((400, 64)).astype(np.float32)
    c, q = big[::2, ::2], big[1:20:3, 1::2]
    s0, i0 = ops.topk_inner_product(np.ascontiguousarray(q), np.ascontiguousarray(c), 9)
    s1, i1 = ops.topk_inner_product(q, c, 9)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_array_equal(s0, s1)
    torch = pytest.importorskip("torch")
    s2, i2 = ops.topk_inner_product(torch.from_numpy(q), torch.from_numpy(c).T.contiguous().T, 9)
    assert isinstance(s2, np.ndarray)
    np.testing.assert_array_equal(i0, i2)
    s3, i3 = ops.topk_inner_product(q[0], c, 9)
    assert s3.shape == (1, 9)
    np.testing.assert_array_equal(i3[0], i0[0])
    s4, i4 = ops.topk_inner_product(q[:0], c, 4)
    assert s4.shape == i4.shape == (0, 4)
    s5, i5 = ops.topk_cosine(q, c[:0], 2)
    assert np.all(i5 == -1) and np.all(np.isneginf(s5))


def test_reference_backend_agrees():
    rng = np.random.default_rng(8)
    c, scale, exact = make_corpus(rng, 500, 16, "int8")
    q = rng.standard_normal((4, 16)).astype(np.float32)
    s, i = ops.topk_inner_product(q, c, 5, corpus_scale=scale, backend="reference")
    _, ri = reference.topk_inner_product(q, exact, 5)
    np.testing.assert_array_equal(i, ri)
    assert s.dtype == np.float32


def test_bad_inputs():
    c = np.ones((10, 4), np.float32)
    q = np.ones((2, 4), np.float32)
    c8, s8 = np.ones((10, 4), np.int8), np.ones(10, np.float32)
    cases = [
        (ValueError, "queries", lambda: ops.topk_inner_product(q * np.nan, c, 1)),
        (ValueError, "queries", lambda: ops.topk_cosine(q * np.inf, c, 1)),
        (ValueError, "queries", lambda: ops.topk_inner_product(np.ones((2, 3), np.float32), c, 1)),
        (ValueError, "queries", lambda: ops.topk_inner_product(np.ones((1, 2, 4), np.float32), c, 1)),
        (TypeError, "queries", lambda: ops.topk_inner_product(q.astype(np.float64), c, 1)),
        (TypeError, "corpus", lambda: ops.topk_inner_product(q, c.astype(np.int32), 1)),
        (TypeError, "corpus", lambda: ops.topk_inner_product(q, c.astype(np.float64), 1)),
        (ValueError, "corpus", lambda: ops.topk_inner_product(q, c[0], 1)),
        (TypeError, "k", lambda: ops.topk_inner_product(q, c, 1.5)),
        (TypeError, "k", lambda: ops.topk_inner_product(q, c, True)),
        (ValueError, "k", lambda: ops.topk_inner_product(q, c, 0)),
        (ValueError, "k", lambda: ops.topk_inner_product(q, c, 2**31)),
        (ValueError, "k", lambda: ops.topk_cosine(q, c, 2**64, backend="reference")),
        (ValueError, "allowed", lambda: ops.topk_inner_product(q, c, 1, allowed=np.ones(9, bool))),
        (ValueError, "allowed", lambda: ops.topk_inner_product(q, c, 1, allowed=[0, 10])),
        (ValueError, "allowed", lambda: ops.topk_inner_product(q, c, 1, allowed=[-1])),
        (TypeError, "allowed", lambda: ops.topk_inner_product(q, c, 1, allowed=np.ones(3, np.float32))),
        (ValueError, "allowed", lambda: ops.topk_inner_product(q, c, 1, allowed=np.ones((2, 5), bool))),
        (ValueError, "corpus_scale", lambda: ops.topk_inner_product(q, c8, 1)),
        (ValueError, "corpus_scale", lambda: ops.topk_inner_product(q, c, 1, corpus_scale=s8)),
        (ValueError, "corpus_scale", lambda: ops.topk_inner_product(q, c8, 1, corpus_scale=s8[:5])),
        (ValueError, "corpus_scale", lambda: ops.topk_inner_product(q, c8, 1, corpus_scale=s8 * np.nan)),
        (TypeError, "corpus_scale", lambda: ops.topk_inner_product(q, c8, 1, corpus_scale=np.ones(10, int))),
        (ValueError, "backend", lambda: ops.topk_inner_product(q, c, 1, backend="gpu")),
        (ValueError, "backend='cuda' needs", lambda: ops.topk_inner_product(q, c, 1, backend="cuda")),
    ]
    for exc, word, fn in cases:
        with pytest.raises(exc, match=word):
            fn()


def test_k_whose_result_cannot_fit_is_refused_before_allocating(monkeypatch):
    """A padded [Q, k] result larger than the memory left is a ValueError naming k, on every host
    path, instead of numpy's MemoryError or (over-committed, then filled) the OOM killer. Results
    under search._CHECKED_RESULT_BYTES (64 MiB) skip the check (it reads /proc/meminfo)."""
    from infercore.ops import search

    q, c = np.ones((3, 4), np.float32), np.ones((10, 4), np.float32)
    monkeypatch.setattr(search, "available_memory_bytes", lambda: 100 << 20)  # 100 MiB left
    big = 3_000_000  # 3 x 3M x 12 bytes = 103 MiB
    for call in (lambda: ops.topk_inner_product(q, c, big),
                 lambda: ops.topk_cosine(q, c, big, backend="reference"),
                 lambda: ops.topk_inner_product(q, c, big, refine=c)):
        with pytest.raises(ValueError, match=r"k: the result \[3, 3000000\].*only adds padding"):
            call()
    s, i = ops.topk_inner_product(q, c, 20_000)  # 0.7 MiB: fits
    assert s.shape == (3, 20_000) and (i[:, 10:] == -1).all()

    def out_of_memory():
        raise MemoryError

    with pytest.raises(ValueError, match="k: the result"):  # an allocation that fails anyway
        search._result_fits(5, 3, 10, out_of_memory)


def test_native_entry_validates():
    from infercore import _C

    q = np.ones((2, 4), np.float32)
    c = np.ones((10, 4), np.float32)
    with pytest.raises(ValueError, match="allowed"):
        _C.topk(q, c, 1, None, None, np.array([3, 2], np.int64))
    with pytest.raises(ValueError, match="allowed"):
        _C.topk(q, c, 1, None, None, np.array([11], np.int64))
    with pytest.raises(ValueError, match="queries"):
        _C.topk(q * np.nan, c, 1)
    with pytest.raises(ValueError, match="corpus_scale"):
        _C.topk(q, c.astype(np.int8), 1)
    with pytest.raises(ValueError, match="contiguous"):
        _C.topk(q[:, ::2], c[:, ::2], 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 300),
    d=st.integers(1, 20),
    nq=st.one_of(st.integers(1, 9), st.integers(16, 40)),  # row-dot and packed kernels
    k=st.integers(1, 40),
    dtype=st.sampled_from(["float32", "float16"]),
    isa=st.sampled_from(ISAS),
    seed=st.integers(0, 2**32 - 1),
    use_mask=st.booleans(),
)
def test_property_exact_on_small_integers(n, d, nq, k, dtype, isa, seed, use_mask):
    """Small-integer data: every dot product is exact in float32, so the result (ties included)
    must equal the reference exactly at every ISA level."""
    rng = np.random.default_rng(seed)
    c = rng.integers(-3, 4, (n, d)).astype(dtype)
    q = rng.integers(-3, 4, (nq, d)).astype(np.float32)
    allowed = rng.random(n) < 0.5 if use_mask else None
    before = ic.get_isa()
    ic.set_isa(isa)
    try:
        s, i = ops.topk_inner_product(q, c, k, allowed=allowed)
    finally:
        ic.set_isa(before)
    rs, ri = reference.topk_inner_product(q, c, k, allowed=allowed)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(s, rs.astype(np.float32))


# ------------------------------------------------------------------------------ refine
def _int8_rows(c):
    scale = np.abs(c).max(axis=1) / 127
    scale[scale == 0] = 1
    return np.clip(np.round(c / scale[:, None]), -127, 127).astype(np.int8), scale.astype(np.float32)


def test_refine_recovers_the_recall_int8_rounding_loses():
    rng = np.random.default_rng(11)
    c = rng.standard_normal((20000, 64)).astype(np.float32)
    q = rng.standard_normal((16, 64)).astype(np.float32)
    c8, scale = _int8_rows(c)
    _, exact = reference.topk_inner_product(q, c, 10)
    _, plain = ops.topk_inner_product(q, c8, 10, corpus_scale=scale)
    _, refined = ops.topk_inner_product(q, c8, 10, corpus_scale=scale, refine=c.astype(np.float16))

    def recall(ids):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact, strict=True)])

    assert recall(refined) >= 0.99 and recall(refined) >= recall(plain), (recall(plain), recall(refined))


@pytest.mark.parametrize("cosine", [False, True])
def test_refine_with_every_row_a_candidate_is_exact_search_on_the_refine_corpus(cosine, rng):
    c = rng.standard_normal((300, 33)).astype(np.float32)
    c[7] = 0.0  # a zero row: cosine 0
    c[12] = c[40]  # duplicates: the lower id first
    q = rng.standard_normal((5, 33)).astype(np.float32)
    c8, scale = _int8_rows(c)
    fn = ops.topk_cosine if cosine else ops.topk_inner_product
    kw = {} if cosine else {"corpus_scale": scale}
    s, i = fn(q, c8, 20, refine=c, refine_factor=15, **kw)  # 300 candidates: all rows
    rs, ri = fn(q, c8, 20, refine=c, backend="reference", **kw)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_allclose(s, rs, rtol=1e-6, atol=1e-7)
    exact = (reference.topk_cosine if cosine else reference.topk_inner_product)(q, c, 20)
    np.testing.assert_array_equal(i, exact[1])


def test_refine_respects_allowed_and_pads():
    rng = np.random.default_rng(5)
    c = rng.standard_normal((50, 8)).astype(np.float32)
    c8, scale = _int8_rows(c)
    q = rng.standard_normal((2, 8)).astype(np.float32)
    s, i = ops.topk_inner_product(q, c8, 6, corpus_scale=scale, allowed=[3, 9, 44], refine=c)
    assert set(i[:, :3].ravel()) == {3, 9, 44} and (i[:, 3:] == -1).all() and np.isneginf(s[:, 3:]).all()
    want = (c[i[:, :3]].astype(np.float64) @ q.astype(np.float64)[:, :, None])[..., 0]
    np.testing.assert_allclose(s[:, :3], want.astype(np.float32), rtol=1e-7)
    assert (np.diff(s[:, :3], axis=1) <= 0).all()


def test_refine_bad_arguments():
    c = np.ones((10, 4), np.float32)
    c8, scale = _int8_rows(c)
    q = np.ones((1, 4), np.float32)
    with pytest.raises(ValueError, match=r"refine: expected the corpus' shape \(10, 4\)"):
        ops.topk_inner_product(q, c8, 2, corpus_scale=scale, refine=c[:5])
    with pytest.raises(TypeError, match="refine: expected dtype float32 or float16"):
        ops.topk_inner_product(q, c8, 2, corpus_scale=scale, refine=c8)
    with pytest.raises(ValueError, match="refine_factor: expected an int >= 1"):
        ops.topk_inner_product(q, c8, 2, corpus_scale=scale, refine=c, refine_factor=0)
    with pytest.raises(ValueError, match="refine: supported on the CPU and reference backends"):
        ops.topk_inner_product(q, c8, 2, corpus_scale=scale, refine=c, backend="triton")
