"""Triton fused top-k (kernels/topk.py) against a float64 brute force; interpreter on CPU.

Sizes stay small: the Triton interpreter runs each tile in numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from infercore.kernels import topk as T  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _brute(scores: np.ndarray, k: int, ok: np.ndarray | None = None):
    """Exact top-k of a float64 score matrix: score descending, then lower id; pad -inf/-1."""
    q, n = scores.shape
    out_s = np.full((q, k), -np.inf)
    out_i = np.full((q, k), -1, dtype=np.int64)
    for r in range(q):
        ids = np.arange(n) if ok is None else np.flatnonzero(ok)
        order = np.lexsort((ids, -scores[r, ids]))[:k]
        out_s[r, : len(order)] = scores[r, ids[order]]
        out_i[r, : len(order)] = ids[order]
    return out_s, out_i


@pytest.mark.parametrize(("nq", "n", "d", "k"), [(1, 1, 1, 1), (1, 7, 3, 10), (3, 100, 33, 10), (2, 64, 384, 40)])
@pytest.mark.parametrize("splits", [None, 3])
def test_float32_matches_brute_force(nq, n, d, k, splits):
    g = torch.Generator().manual_seed(n + d)
    q, c = torch.randn(nq, d, generator=g), torch.randn(n, d, generator=g)
    s, i = T.topk(q.to(DEVICE), c.to(DEVICE), k, splits=splits)
    want_s, want_i = _brute(q.double().numpy() @ c.double().numpy().T, k)
    assert i.dtype == torch.int64 and s.dtype == torch.float32 and tuple(s.shape) == (nq, k)
    np.testing.assert_array_equal(i.cpu().numpy(), want_i)
    np.testing.assert_allclose(s.cpu().numpy(), want_s, rtol=1e-5, atol=1e-5)


def test_ties_prefer_lower_ids_and_mask_applies_inside():
    c = torch.ones(40, 4, device=DEVICE)
    q = torch.ones(1, 4, device=DEVICE)
    _, i = T.topk(q, c, 5, splits=3)
    assert i.tolist() == [[0, 1, 2, 3, 4]]
    m = torch.zeros(40, dtype=torch.bool, device=DEVICE)
    m[[3, 17, 39]] = True
    s, i = T.topk(q, c, 5, allowed=m)
    assert i.tolist() == [[3, 17, 39, -1, -1]]
    assert s[0, :3].tolist() == [4.0, 4.0, 4.0] and torch.isinf(s[0, 3:]).all()


def test_int8_corpus_scores_are_exact_for_the_dequantized_corpus():
    g = torch.Generator().manual_seed(5)
    c8 = torch.randint(-127, 128, (100, 16), dtype=torch.int8, generator=g)
    sc = torch.rand(100, generator=g) + 0.1
    q = torch.randn(2, 16, generator=g)
    s, i = T.topk(q.to(DEVICE), c8.to(DEVICE), 7, corpus_scale=sc.to(DEVICE))
    exact = q.double().numpy() @ (c8.double().numpy() * sc.double().numpy()[:, None]).T
    want_s, want_i = _brute(exact, 7)
    np.testing.assert_array_equal(i.cpu().numpy(), want_i)
    np.testing.assert_allclose(s.cpu().numpy(), want_s, rtol=1e-5)


def test_cosine_float16_with_zero_vectors():
    g = torch.Generator().manual_seed(9)
    c = torch.randn(50, 8, generator=g)
    c[[4, 9]] = 0.0
    q = torch.randn(3, 8, generator=g)
    s, i = T.topk(q.to(DEVICE), c.half().to(DEVICE), 50, cosine=True)
    cd = c.half().double().numpy()
    qd = q.double().numpy()
    norms = np.linalg.norm(cd, axis=1)
    cos = (qd / np.linalg.norm(qd, axis=1, keepdims=True)) @ cd.T / np.where(norms > 0, norms, 1.0)
    want_s, _ = _brute(cos, 50)
    np.testing.assert_allclose(s.cpu().numpy(), want_s, atol=1e-3)
    zero_rows = np.isin(i.cpu().numpy(), [4, 9])
    np.testing.assert_array_equal(s.cpu().numpy()[zero_rows], 0.0)  # zero vectors score exactly 0


def test_launcher_validates():
    q, c = torch.ones(1, 4), torch.ones(5, 4)
    with pytest.raises(ValueError, match="k: the Triton kernel supports"):
        T.topk(q, c, 257)
    with pytest.raises(ValueError, match="queries/corpus"):
        T.topk(q, torch.ones(5, 3), 1)
    with pytest.raises(TypeError, match="queries"):
        T.topk(q.double(), c, 1)
    with pytest.raises(TypeError, match="corpus"):
        T.topk(q, c.double(), 1)


def test_ops_backend_triton_matches_cpu_backend():
    from infercore import ops

    rng = np.random.default_rng(3)
    q = rng.standard_normal((3, 24)).astype(np.float32)
    c = rng.standard_normal((90, 24)).astype(np.float32)
    mask = rng.random(90) < 0.5
    for fn in (ops.topk_inner_product, ops.topk_cosine):
        s_cpu, i_cpu = fn(q, c, 7, allowed=mask, backend="cpu")
        s_tr, i_tr = fn(q, c, 7, allowed=mask, backend="triton")
        np.testing.assert_array_equal(i_tr, i_cpu)
        np.testing.assert_allclose(s_tr, s_cpu, rtol=1e-5, atol=1e-6)
    ids = np.array([5, 1, 88])
    _, i_tr = ops.topk_inner_product(torch.from_numpy(q), torch.from_numpy(c), 5, allowed=ids, backend="triton")
    assert isinstance(i_tr, torch.Tensor) and set(i_tr[0, :3].tolist()) == {1, 5, 88}
    assert (i_tr[:, 3:] == -1).all()
    with pytest.raises(ValueError, match="k <= 256"):
        ops.topk_inner_product(q, c, 300, backend="triton")


# --- the kernel's own (hi, lo) int32 pair sort (max/min exchange; the xor_sum exchange gave garbage on a GPU) ---


@pytest.mark.parametrize("n", [2, 4, 32, 64, 512])
def test_pair_sort_matches_torch_sort_on_int64_keys(n):
    g = torch.Generator().manual_seed(n)
    keys = torch.randint(-(2**63), 2**63 - 1, (n,), dtype=torch.int64, generator=g)
    hi, low = keys >> 32, keys & 0xFFFFFFFF
    hi[: max(2, n // 2)] = hi[0]  # half the keys share one high half: the low halves decide alone
    low[: min(4, n)] = torch.tensor([0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000])[: min(4, n)]  # int32 sign edges
    keys = (hi << 32) | low
    keys[n // 2 : n // 2 + n // 8] = keys[: n // 8].clone()  # exact duplicates
    keys[torch.arange(n) % 4 == 3] = T._EXCLUDED  # INT64_MIN, the excluded key
    if n >= 8:
        keys[n - 2 :] = torch.tensor([0xFFFFFFFF, 1 << 32])  # neighbours across the halves' boundary
    keys = keys[torch.randperm(n, generator=g)]  # interleave everything
    got = T._sort_keys_desc(keys.to(DEVICE)).cpu()
    want = torch.sort(keys, descending=True).values
    bad = (got != want).nonzero().flatten().tolist()
    assert not bad, f"first mismatch at {bad[0]}: want {int(want[bad[0]]):#x}, got {int(got[bad[0]]):#x}"


@pytest.mark.parametrize(("k", "splits"), [(1, 1), (1, 8), (5, 3), (16, 1), (17, 3), (100, 1), (100, 2)])
def test_excluded_rows_ties_and_signs_through_the_pair_sort(k, splits):
    """Integer-valued vectors make every score exact in float32, so ties (duplicate rows placed in
    different tiles and splits) and the id tie-break are checked exactly, for positive and negative
    scores, with excluded rows interleaved and with fewer allowed rows than k (padding -1 / -inf)."""
    g = torch.Generator().manual_seed(k * 10 + splits)
    n, d = 200, 6
    c = torch.randint(-3, 4, (n, d), generator=g).float()
    c[130:160] = c[0:30]  # duplicates of the first tile's rows in later tiles / splits
    c[190:200] = c[5:15]
    q = torch.randint(-2, 3, (2, d), generator=g).float()
    q[1] = -q[0]  # the same magnitudes with the sign flipped
    # each query's best possible row, over 20 times in every tile and split (rows allowed by the
    # interleaved mask): more ties than a program keeps (K_PAD = 16 for k <= 16)
    c[0::9] = 3 * q[0].sign()
    c[3::9] = 3 * q[1].sign()
    scores = q.double().numpy() @ c.double().numpy().T
    sparse = torch.zeros(n, dtype=torch.bool)
    sparse[[3, 40, 133, 199]] = True  # 4 allowed rows, scattered over tiles
    for m in (torch.arange(n) % 3 != 1, sparse):  # (no mask: test_float32_matches_brute_force)
        s, i = T.topk(q.to(DEVICE), c.to(DEVICE), k, allowed=m.to(DEVICE), splits=splits)
        want_s, want_i = _brute(scores, k, m.numpy())
        np.testing.assert_array_equal(i.cpu().numpy(), want_i)
        np.testing.assert_array_equal(s.cpu().numpy(), want_s)
