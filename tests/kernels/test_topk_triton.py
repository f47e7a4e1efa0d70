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
