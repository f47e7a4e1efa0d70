"""The encoder's native kernels: attention (_C.packed_attention, csrc/cpu/attention.cpp,
bidirectional softmax within each packed sequence) and add & LayerNorm (_C.layer_norm,
csrc/cpu/norm_impl.h), against float64 references on every ISA level and thread count, with
their argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import infercore as ic
from infercore._native import _C


def _reference(qkv: np.ndarray, cu: np.ndarray, scale: float) -> np.ndarray:
    out = np.zeros(qkv.shape[:1] + qkv.shape[2:], np.float64)
    for a, b in zip(cu[:-1].tolist(), cu[1:].tolist(), strict=True):
        if a == b:
            continue
        q, k, v = (qkv[a:b, i].astype(np.float64).transpose(1, 0, 2) for i in range(3))  # [H, L, D]
        s = q @ k.transpose(0, 2, 1) * scale
        s -= s.max(axis=-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=-1, keepdims=True)
        out[a:b] = (p @ v).transpose(1, 0, 2)
    return out


def _run(qkv: np.ndarray, cu: np.ndarray, scale: float) -> np.ndarray:
    out = np.empty((qkv.shape[0], qkv.shape[2], qkv.shape[3]), np.float32)
    _C.packed_attention(qkv, cu, out, scale)
    return out




@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("heads", "dim"), [(12, 32), (3, 64), (1, 7), (2, 33)])
def test_packed_attention_matches_reference(isa, seed, heads, dim):
    rng = np.random.default_rng(seed * 100 + heads + dim)
    lens = [1, 7, 33, 0, 300, 16, 17, 2] if seed == 0 else rng.integers(0, 90, size=9).tolist()
    cu = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    qkv = rng.standard_normal((int(cu[-1]), 3, heads, dim)).astype(np.float32)  # unit variance, as in tests/kv
    scale = float(1 / np.sqrt(dim))
    got = _run(qkv, cu, scale)
    np.testing.assert_allclose(got, _reference(qkv, cu, scale), rtol=1e-5, atol=1e-5)


def test_packed_attention_isolates_sequences_and_threads_agree():
    # a token never sees another sequence: changing sequence 1 leaves sequence 0's rows bit-equal,
    # and one vs two threads give the same bits (every row is its own online-softmax chain)
    rng = np.random.default_rng(5)
    cu = np.array([0, 40, 90], np.int64)
    qkv = rng.standard_normal((90, 3, 4, 32)).astype(np.float32)
    base = _run(qkv, cu, 0.2)
    qkv2 = qkv.copy()
    qkv2[40:] = rng.standard_normal((50, 3, 4, 32)).astype(np.float32)
    np.testing.assert_array_equal(_run(qkv2, cu, 0.2)[:40], base[:40])
    before = ic.get_num_threads()
    try:
        ic.set_num_threads(1)
        one = _run(qkv, cu, 0.2)
    finally:
        ic.set_num_threads(before)
    np.testing.assert_array_equal(one, base)


def test_packed_attention_large_scores_and_ties():
    # huge logits (the max subtraction keeps exp finite) and identical keys (uniform weights)
    qkv = np.zeros((5, 3, 1, 8), np.float32)
    qkv[:, 0] = 1000.0
    qkv[:, 1] = 1.0
    qkv[:, 2, 0, 0] = np.arange(5, dtype=np.float32)
    got = _run(qkv, np.array([0, 5], np.int64), 1.0)
    np.testing.assert_allclose(got[:, 0, 0], np.full(5, 2.0), atol=1e-6)


def test_packed_attention_empty_batch():
    out = _run(np.zeros((0, 3, 2, 8), np.float32), np.array([0], np.int64), 1.0)
    assert out.shape == (0, 2, 8)


def test_packed_attention_bad_arguments():
    qkv = np.zeros((6, 3, 2, 8), np.float32)
    out = np.empty((6, 2, 8), np.float32)
    with pytest.raises(ValueError, match="cu_seqlens: must start at 0"):
        _C.packed_attention(qkv, np.array([1, 6], np.int64), out, 1.0)
    with pytest.raises(ValueError, match=r"cu_seqlens\[2\] = 2 is below"):
        _C.packed_attention(qkv, np.array([0, 4, 2, 6], np.int64), out, 1.0)
    with pytest.raises(ValueError, match="differs from the token count"):
        _C.packed_attention(qkv, np.array([0, 5], np.int64), out, 1.0)
    with pytest.raises(ValueError, match="qkv: expected shape"):
        _C.packed_attention(np.zeros((6, 2, 2, 8), np.float32), np.array([0, 6], np.int64), out, 1.0)
    with pytest.raises(TypeError, match="qkv"):
        _C.packed_attention(qkv.astype(np.float64), np.array([0, 6], np.int64), out, 1.0)
    with pytest.raises(TypeError, match="cu_seqlens"):
        _C.packed_attention(qkv, np.array([0, 6], np.int32), out, 1.0)
    with pytest.raises(ValueError, match="out: expected shape"):
        _C.packed_attention(qkv, np.array([0, 6], np.int64), np.empty((6, 2, 4), np.float32), 1.0)
    with pytest.raises(ValueError, match="scale"):
        _C.packed_attention(qkv, np.array([0, 6], np.int64), out, float("nan"))
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.packed_attention(np.zeros((6, 3, 2, 16), np.float32)[..., ::2], np.array([0, 6], np.int64), out, 1.0)


def _ln_reference(x, res, w, b, eps):
    v = x.astype(np.float64) + (0 if res is None else res)
    return (v - v.mean(axis=1, keepdims=True)) / np.sqrt(v.var(axis=1, keepdims=True) + eps) * w + b


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (7, 33), (130, 384), (3, 1000), (2, 7)])
@pytest.mark.parametrize("with_residual", [False, True])
def test_layer_norm_matches_reference(isa, rows, cols, with_residual):
    rng = np.random.default_rng(rows * 10 + cols)
    x = (rng.standard_normal((rows, cols)) * 3 + 1).astype(np.float32)
    res = rng.standard_normal((rows, cols)).astype(np.float32) if with_residual else None
    w = rng.standard_normal(cols).astype(np.float32)
    b = rng.standard_normal(cols).astype(np.float32)
    out = np.empty_like(x)
    _C.layer_norm(x, res, w, b, out, 1e-12)
    np.testing.assert_allclose(out, _ln_reference(x, res, w, b, 1e-12), rtol=0, atol=2e-5)


def test_layer_norm_in_place_constant_rows_and_threads():
    # out aliasing x (each row is summed into scratch first); a constant row normalizes to the
    # bias (variance 0 + eps); one vs two threads give the same bits
    rng = np.random.default_rng(9)
    x = rng.standard_normal((300, 64)).astype(np.float32)
    x[4] = 2.5
    res = rng.standard_normal((300, 64)).astype(np.float32)
    w = rng.standard_normal(64).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    want = np.empty_like(x)
    _C.layer_norm(x, res, w, b, want, 1e-5)
    res[4] = 0.0
    y = x.copy()
    _C.layer_norm(y, res, w, b, y, 1e-5)
    np.testing.assert_allclose(y[4], b, atol=1e-6)
    np.testing.assert_array_equal(np.delete(y, 4, axis=0), np.delete(want, 4, axis=0))
    before = ic.get_num_threads()
    try:
        ic.set_num_threads(1)
        one = np.empty_like(x)
        _C.layer_norm(x, res, w, b, one, 1e-5)
    finally:
        ic.set_num_threads(before)
    two = np.empty_like(x)
    _C.layer_norm(x, res, w, b, two, 1e-5)
    np.testing.assert_array_equal(one, two)


def test_layer_norm_nan_stays_in_its_row():
    x = np.ones((3, 16), np.float32)
    x[:, 0] = 0.0
    x[1, 3] = np.nan
    out = np.empty_like(x)
    _C.layer_norm(x, None, np.ones(16, np.float32), np.zeros(16, np.float32), out, 1e-6)
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()


def test_layer_norm_bad_arguments():
    x = np.zeros((4, 8), np.float32)
    w = np.ones(8, np.float32)
    out = np.empty_like(x)
    with pytest.raises(ValueError, match="weight: expected shape"):
        _C.layer_norm(x, None, np.ones(7, np.float32), w, out, 1e-6)
    with pytest.raises(ValueError, match="bias: expected shape"):
        _C.layer_norm(x, None, w, np.ones(9, np.float32), out, 1e-6)
    with pytest.raises(ValueError, match="residual: expected shape"):
        _C.layer_norm(x, np.zeros((4, 7), np.float32), w, w, out, 1e-6)
    with pytest.raises(ValueError, match="out: expected shape"):
        _C.layer_norm(x, None, w, w, np.empty((3, 8), np.float32), 1e-6)
    with pytest.raises(TypeError, match="x"):
        _C.layer_norm(x.astype(np.float64), None, w, w, out, 1e-6)
    with pytest.raises(TypeError, match="residual"):
        _C.layer_norm(x, np.zeros((4, 8), np.int32), w, w, out, 1e-6)
    with pytest.raises(ValueError, match="eps"):
        _C.layer_norm(x, None, w, w, out, -1.0)
    with pytest.raises(ValueError, match="writeable"):
        ro = np.empty_like(x)
        ro.flags.writeable = False
        _C.layer_norm(x, None, w, w, ro, 1e-6)
