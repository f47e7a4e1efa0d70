"""Native in-place RoPE (Rope.apply_rows, csrc/cpu/rope.cpp) against the numpy form and a float64
rotation, on the model's packed q|k|v rows; bad inputs raise before memory is touched."""

from __future__ import annotations

import numpy as np
import pytest

from infercore._native import _C
from infercore.models.rope import Rope


def _rotate64(x: np.ndarray, pos: np.ndarray, inv: np.ndarray, style: str) -> np.ndarray:
    ang = pos[:, None, None].astype(np.float64) * inv[None, None, :]
    c, s = np.cos(ang), np.sin(ang)
    y = x.astype(np.float64).copy()
    if style == "neox":
        h = x.shape[-1] // 2
        a, b = y[..., :h].copy(), y[..., h:].copy()
        y[..., :h], y[..., h:] = a * c - b * s, b * c + a * s
    else:
        a, b = y[..., 0::2].copy(), y[..., 1::2].copy()
        y[..., 0::2], y[..., 1::2] = a * c - b * s, b * c + a * s
    return y


@pytest.mark.parametrize("style", ["neox", "interleaved"])
@pytest.mark.parametrize(("t", "heads", "extra", "d"), [(1, 1, 0, 2), (7, 12, 3, 64), (33, 5, 2, 128), (3, 2, 1, 6)])
@pytest.mark.parametrize("seed", [0, 1])
def test_apply_rows_matches_numpy_and_float64(style, t, heads, extra, d, seed):
    rng = np.random.default_rng(seed)
    rope = Rope(d, 10000.0, 64, style)
    rows = rng.standard_normal((t, (heads + extra) * d)).astype(np.float32)
    pos = rng.integers(0, 200, t).astype(np.int64)  # beyond the 64-row table: it grows
    want = rows.copy()
    rope.apply(want[:, : heads * d].reshape(t, heads, d), pos)
    got = rows.copy()
    rope.ensure(pos)
    rope.apply_rows(got, heads, pos)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got[:, heads * d :], rows[:, heads * d :])  # v heads untouched
    exact = _rotate64(rows[:, : heads * d].reshape(t, heads, d), pos, rope.inv, style)
    np.testing.assert_allclose(got[:, : heads * d].reshape(t, heads, d), exact, rtol=1e-4, atol=1e-4)


def test_empty_batch_is_a_no_op():
    rope = Rope(8, 10000.0, 16, "neox")
    rows = np.zeros((0, 16), np.float32)
    rope.apply_rows(rows, 2, np.zeros(0, np.int64))
    assert rows.shape == (0, 16)


def test_bad_inputs_raise_before_writing():
    rope = Rope(8, 10000.0, 16, "neox")
    rows = np.ones((2, 16), np.float32)
    pos = np.array([0, 1], np.int64)
    with pytest.raises(ValueError, match="heads"):
        _C.rope_inplace(rows, 3, 8, pos, rope.cos, rope.sin, False)  # 3 * 8 > 16
    with pytest.raises(ValueError, match="positions"):
        _C.rope_inplace(rows, 2, 8, np.array([0, 16], np.int64), rope.cos, rope.sin, False)
    with pytest.raises(ValueError, match="positions"):
        _C.rope_inplace(rows, 2, 8, np.array([-1, 0], np.int64), rope.cos, rope.sin, False)
    with pytest.raises(ValueError, match="positions"):
        _C.rope_inplace(rows, 2, 8, np.array([0], np.int64), rope.cos, rope.sin, False)
    with pytest.raises(TypeError, match="positions"):
        _C.rope_inplace(rows, 2, 8, np.array([0, 1], np.int32), rope.cos, rope.sin, False)
    with pytest.raises(ValueError, match="cos/sin"):
        _C.rope_inplace(rows, 2, 6, pos, rope.cos, rope.sin, False)  # table is for head_dim 8
    with pytest.raises(ValueError, match="head_dim"):
        _C.rope_inplace(rows, 2, 0, pos, rope.cos[:, :0], rope.sin[:, :0], False)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.rope_inplace(np.ones((16, 2), np.float32).T, 2, 8, pos, rope.cos, rope.sin, False)
    with pytest.raises(TypeError, match="x"):
        _C.rope_inplace(np.ones((2, 16), np.float64), 2, 8, pos, rope.cos, rope.sin, False)
    np.testing.assert_array_equal(rows, 1.0)
