"""ops.rotary_embedding (in place, packed q|k|v rows) on the CPU kernel and the reference backend
against the float64 reference; bad inputs raise before x is touched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from infercore import ops
from infercore.models.rope import Rope
from infercore.ops import reference as ref

# float32 rotation: each output is a*c - b*s with two products and one sum, each rounded once
# (or fused): within ~2 ulp of |a c| + |b s| <= |a| + |b|.
F32_REL = 3.0 * 2.0**-24


def _table(half: int, p: int, rng) -> tuple[np.ndarray, np.ndarray]:
    ang = rng.uniform(-10, 10, (p, half))
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def _check(got: np.ndarray, x0: np.ndarray, pos, cos, sin, heads: int, interleaved: bool) -> None:
    want = ref.rotary_embedding(x0, pos, cos, sin, heads, interleaved)
    got64 = np.asarray(got, np.float64)
    np.testing.assert_array_equal(np.isnan(got64), np.isnan(want))
    inf = np.isinf(want)
    np.testing.assert_array_equal(got64[inf], want[inf])
    d = 2 * cos.shape[1]
    # scale: |a| + |b| of the pair each element came from (the partner is the same pair)
    v = np.abs(x0[:, : heads * d].astype(np.float64)).reshape(x0.shape[0], heads, d)
    if interleaved:
        pair = np.repeat(v[..., 0::2] + v[..., 1::2], 2, axis=-1)
    else:
        pair = np.concatenate([v[..., : d // 2] + v[..., d // 2 :]] * 2, axis=-1)
    scale = np.abs(x0.astype(np.float64))
    scale[:, : heads * d] = pair.reshape(x0.shape[0], heads * d)
    ok = np.isfinite(want)
    err = np.abs(got64[ok] - want[ok])
    assert (err <= F32_REL * scale[ok] + 1e-44).all(), (err - F32_REL * scale[ok]).max()
    np.testing.assert_array_equal(got[:, heads * d :], x0[:, heads * d :])  # the rest untouched, bit for bit


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize(("t", "heads", "extra", "d"), [(1, 1, 0, 2), (7, 12, 3, 64), (33, 5, 2, 128), (3, 2, 1, 6),
                                                        (1000, 3, 1, 34), (2, 7, 0, 10)])  # fmt: skip
def test_matches_reference(rng, backend, interleaved, t, heads, extra, d):
    cos, sin = _table(d // 2, 50, rng)
    x = (rng.standard_normal((t, (heads + extra) * d)) * 4).astype(np.float32)
    pos = rng.integers(0, 50, t)
    x0 = x.copy()
    assert ops.rotary_embedding(x, pos, cos, sin, heads=heads, interleaved=interleaved, backend=backend) is x
    _check(x, x0, pos, cos, sin, heads, interleaved)


@pytest.mark.parametrize("style", ["neox", "interleaved"])
def test_model_tables_match_rope_apply(rng, style):
    # the model's own tables (models/rope.py) and its numpy form, Rope.apply, on [T, H, D]
    rope = Rope(64, 1e5, 300, style)
    x = rng.standard_normal((33, 15 * 64)).astype(np.float32)
    pos = rng.integers(0, 300, 33)
    want = x.copy()
    rope.apply(want[:, : 12 * 64].reshape(33, 12, 64), pos)
    ops.rotary_embedding(x, pos, rope.cos, rope.sin, heads=12, interleaved=style == "interleaved")
    np.testing.assert_allclose(x, want, rtol=1e-6, atol=1e-6)


def test_special_values_propagate(rng):
    cos, sin = _table(4, 8, rng)
    cos[3, 1], sin[3, 1] = 1.0, 0.0  # an exact identity pair: inf stays inf
    for interleaved in (False, True):
        x = rng.standard_normal((4, 24)).astype(np.float32)
        x[0, 0] = np.nan
        x[1, 3] = np.inf
        x[2, 5] = -np.inf
        x[3, 2 if interleaved else 1] = np.inf  # pair index 1 of head 0 at position 3
        x[3, 20] = np.nan  # beyond the rotated heads: untouched
        x0 = x.copy()
        pos = np.array([0, 1, 2, 3])
        ops.rotary_embedding(x, pos, cos, sin, heads=2, interleaved=interleaved)
        _check(x, x0, pos, cos, sin, 2, interleaved)
        assert np.isnan(x[3, 20])


def test_torch_cpu_tensors_in_place(rng):
    cos, sin = _table(8, 40, rng)
    x = torch.from_numpy((rng.standard_normal((9, 48)) * 2).astype(np.float32))
    x0 = x.numpy().copy()
    pos = torch.tensor(rng.integers(0, 40, 9))
    y = ops.rotary_embedding(x, pos, torch.from_numpy(cos), torch.from_numpy(sin), heads=2, interleaved=False)
    assert y is x
    _check(x.numpy(), x0, pos.numpy(), cos, sin, 2, False)
    # mixed host arrays are fine: numpy tables with a torch CPU tensor, int32 positions, a list
    x2 = torch.from_numpy(x0.copy())
    ops.rotary_embedding(x2, pos.numpy().astype(np.int32).tolist(), cos, sin, heads=2, interleaved=False)
    assert torch.equal(x2, x)


def test_positions_int32_and_non_contiguous_tables_are_accepted(rng):
    cos, sin = _table(4, 30, rng)
    x = rng.standard_normal((5, 16)).astype(np.float32)
    pos = rng.integers(0, 30, 5)
    want = x.copy()
    ops.rotary_embedding(want, pos, cos, sin, heads=2, interleaved=True)
    wide_c, wide_s = np.repeat(cos, 2, axis=1), np.repeat(sin, 2, axis=1)
    ops.rotary_embedding(x, pos.astype(np.int32), wide_c[:, ::2], wide_s[:, ::2], heads=2, interleaved=True)
    np.testing.assert_array_equal(x, want)


def test_empty_and_zero_heads_are_no_ops(rng):
    cos, sin = _table(4, 8, rng)
    x = np.zeros((0, 16), np.float32)
    assert ops.rotary_embedding(x, np.zeros(0, np.int64), cos, sin, heads=2, interleaved=False) is x
    y = rng.standard_normal((3, 16)).astype(np.float32)
    y0 = y.copy()
    ops.rotary_embedding(y, np.array([0, 1, 2]), cos, sin, heads=0, interleaved=False)
    np.testing.assert_array_equal(y, y0)


@settings(max_examples=40, deadline=None)
@given(t=st.integers(1, 9), heads=st.integers(0, 4), extra=st.integers(0, 2), half=st.integers(1, 9),
       interleaved=st.booleans(), seed=st.integers(0, 2**31))  # fmt: skip
def test_hypothesis_matches_reference(t, heads, extra, half, interleaved, seed):
    rng = np.random.default_rng(seed)
    cos, sin = _table(half, 11, rng)
    x = (rng.standard_normal((t, (heads + extra) * 2 * half + extra)) * 3).astype(np.float32)
    pos = rng.integers(0, 11, t)
    x0 = x.copy()
    ops.rotary_embedding(x, pos, cos, sin, heads=heads, interleaved=interleaved)
    _check(x, x0, pos, cos, sin, heads, interleaved)


# ------------------------------------------------------------------------------ bad inputs
def _args(rng):
    cos, sin = _table(4, 16, rng)
    return np.ones((2, 16), np.float32), np.array([0, 1], np.int64), cos, sin


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        (lambda a: {"positions": np.array([0, 16])}, ValueError, r"positions: 16 is outside the table \[0, 16\)"),
        (lambda a: {"positions": np.array([-1, 0])}, ValueError, "positions: -1 is outside the table"),
        (lambda a: {"positions": np.array([0])}, ValueError, "positions"),
        (lambda a: {"positions": np.array([0.0, 1.0])}, TypeError, "positions"),
        (lambda a: {"x": np.ones((2, 16))}, TypeError, "x"),
        (lambda a: {"x": np.ones((2, 16), np.float16)}, TypeError, "x"),
        (lambda a: {"x": np.ones(16, np.float32)}, ValueError, "x"),
        (lambda a: {"x": np.ones((16, 2), np.float32).T}, ValueError, "C-contiguous"),
        (lambda a: {"heads": 3}, ValueError, "heads: 3 heads of"),
        (lambda a: {"heads": -1}, ValueError, "heads"),
        (lambda a: {"cos": a[2][:, :3]}, ValueError, "cos/sin"),
        (lambda a: {"cos": a[2].astype(np.float64)}, TypeError, "cos"),
        (lambda a: {"sin": a[3][:, :0], "cos": a[2][:, :0]}, ValueError, "head_dim"),
    ],
)
def test_bad_inputs_raise_before_writing(rng, kind, change, exc, match):
    x, pos, cos, sin = _args(rng)
    kw = {"x": x, "positions": pos, "cos": cos, "sin": sin, "heads": 2, "interleaved": False}
    kw.update(change((x, pos, cos, sin)))
    if kind == "torch":
        kw = {k: torch.from_numpy(np.ascontiguousarray(v) if k != "x" else v) if isinstance(v, np.ndarray) else v
              for k, v in kw.items()}  # fmt: skip
    xin = kw.pop("x")
    before = np.asarray(xin).copy()
    with pytest.raises(exc, match=match):
        ops.rotary_embedding(xin, kw.pop("positions"), kw.pop("cos"), kw.pop("sin"), **kw)
    np.testing.assert_array_equal(np.asarray(xin), before)  # nothing written


def test_bad_scalars_backend_and_arrays(rng):
    x, pos, cos, sin = _args(rng)
    with pytest.raises(TypeError, match="heads: expected an int"):
        ops.rotary_embedding(x, pos, cos, sin, heads=True, interleaved=False)
    with pytest.raises(TypeError, match="heads: expected an int"):
        ops.rotary_embedding(x, pos, cos, sin, heads=2.0, interleaved=False)
    with pytest.raises(TypeError, match="interleaved: expected a bool"):
        ops.rotary_embedding(x, pos, cos, sin, heads=2, interleaved="neox")
    with pytest.raises(ValueError, match="backend"):
        ops.rotary_embedding(x, pos, cos, sin, heads=2, interleaved=False, backend="gpu")
    with pytest.raises(ValueError, match="backend='cuda' needs"):
        ops.rotary_embedding(x, pos, cos, sin, heads=2, interleaved=False, backend="cuda")
    with pytest.raises(TypeError, match="x: expected a numpy array, torch tensor or CuPy array"):
        ops.rotary_embedding([[1.0] * 16] * 2, pos, cos, sin, heads=2, interleaved=False)
    with pytest.raises(TypeError, match="positions: expected an integer array"):
        ops.rotary_embedding(x, "0,1", cos, sin, heads=2, interleaved=False)
    with pytest.raises(ValueError, match="cos/sin: expected equal shapes"):
        ops.rotary_embedding(x, pos, cos, sin[:8], heads=2, interleaved=False)
    with pytest.raises(ValueError, match="cos: expected a 2-D table"):
        ops.rotary_embedding(x, pos, cos[0], sin, heads=2, interleaved=False)
    ro = np.ones((2, 16), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        ops.rotary_embedding(ro, pos, cos, sin, heads=2, interleaved=False)
    with pytest.raises(ValueError, match="writeable"):  # the slow path says so too
        ops.rotary_embedding(ro, pos.astype(np.int32), cos, sin, heads=2, interleaved=False)
    np.testing.assert_array_equal(x, 1.0)
