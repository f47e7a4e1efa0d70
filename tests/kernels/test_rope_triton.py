"""Triton RoPE kernel (kernels/rope.py) against the float64 reference, in place: on a GPU when
present, else under TRITON_INTERPRET=1 with CPU tensors (set in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from infercore import ops  # noqa: E402
from infercore.models.rope import Rope  # noqa: E402
from infercore.ops import reference as ref  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
F32_REL = 3.0 * 2.0**-24  # per output: a*c - b*s rounded (or fused): within ~2 ulp of |a| + |b|


def _assert_close(got: np.ndarray, want: np.ndarray, x0: np.ndarray, d: int, heads: int, interleaved: bool) -> None:
    v = np.abs(x0[:, : heads * d].astype(np.float64)).reshape(x0.shape[0], heads, d)
    if interleaved:
        pair = np.repeat(v[..., 0::2] + v[..., 1::2], 2, axis=-1)
    else:
        pair = np.concatenate([v[..., : d // 2] + v[..., d // 2 :]] * 2, axis=-1)
    err = np.abs(got[:, : heads * d].astype(np.float64) - want[:, : heads * d]).reshape(pair.shape)
    assert (err <= F32_REL * pair + 1e-44).all(), (err - F32_REL * pair).max()
    np.testing.assert_array_equal(got[:, heads * d :], x0[:, heads * d :])


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize(("t", "heads", "extra", "d"), [(1, 1, 0, 2), (7, 12, 3, 64), (33, 5, 2, 128), (3, 2, 1, 6),
                                                        (5, 40, 1, 34)])  # fmt: skip
def test_triton_matches_reference(interleaved, t, heads, extra, d):
    rng = np.random.default_rng(t * 100 + d)
    rope = Rope(d, 1e4, 100, "interleaved" if interleaved else "neox")
    x0 = (rng.standard_normal((t, (heads + extra) * d)) * 3).astype(np.float32)
    pos = rng.integers(0, 100, t)
    x = torch.from_numpy(x0.copy()).to(DEVICE)
    cos, sin = torch.from_numpy(rope.cos).to(DEVICE), torch.from_numpy(rope.sin).to(DEVICE)
    y = ops.rotary_embedding(x, torch.from_numpy(pos).to(DEVICE), cos, sin, heads=heads, interleaved=interleaved,
                             backend="triton")  # fmt: skip
    assert y is x
    want = ref.rotary_embedding(x0, pos, rope.cos, rope.sin, heads, interleaved)
    _assert_close(x.cpu().numpy(), want, x0, d, heads, interleaved)


def test_triton_numpy_in_place_and_specials():
    if DEVICE == "cuda":
        pytest.skip("numpy arrays are host memory: the Triton kernel runs on them only in the interpreter")
    rope = Rope(8, 1e4, 16, "neox")
    x = np.ones((3, 24), np.float32)
    x[0, 0], x[1, 5], x[2, 20] = np.nan, np.inf, np.nan
    x0 = x.copy()
    pos = np.array([0, 3, 15])
    assert ops.rotary_embedding(x, pos, rope.cos, rope.sin, heads=2, interleaved=False, backend="triton") is x
    want = ref.rotary_embedding(x0, pos, rope.cos, rope.sin, 2, False)
    np.testing.assert_array_equal(np.isnan(x), np.isnan(want))
    ok = np.isfinite(want)
    np.testing.assert_allclose(x[ok], want[ok], rtol=1e-6, atol=1e-6)


def test_out_of_range_positions_raise_or_are_skipped():
    rope = Rope(8, 1e4, 16, "interleaved")
    x = torch.ones(3, 16, device=DEVICE)
    cos, sin = torch.from_numpy(rope.cos).to(DEVICE), torch.from_numpy(rope.sin).to(DEVICE)
    bad = torch.tensor([0, 16, 2], device=DEVICE)
    with pytest.raises(ValueError, match=r"positions: 16 is outside the table \[0, 16\)"):
        ops.rotary_embedding(x, bad, cos, sin, heads=2, interleaved=True, backend="triton")
    assert torch.equal(x, torch.ones(3, 16, device=DEVICE))
    # with the host check switched off the kernel leaves that row alone and rotates the others
    if DEVICE == "cuda":  # check_positions only applies to device arrays
        ops.rotary_embedding(x, bad, cos, sin, heads=2, interleaved=True, backend="triton", check_positions=False)
    else:
        from infercore.kernels import rope as tk

        tk.rotary_embedding(x, bad, cos, sin, 2, True)
    assert torch.equal(x[1], torch.ones(16, device=DEVICE))
    assert not torch.equal(x[2], torch.ones(16, device=DEVICE))


def test_triton_launcher_rejects_bad_tensors():
    from infercore.kernels import rope as tk

    x, pos = torch.ones(2, 16, device=DEVICE), torch.zeros(2, dtype=torch.int64, device=DEVICE)
    cs = torch.ones(4, 4, device=DEVICE)
    empty, no_pos = torch.ones(0, 16, device=DEVICE), torch.zeros(0, dtype=torch.int64, device=DEVICE)
    assert tk.rotary_embedding(empty, no_pos, cs, cs, 2, False).shape == (0, 16)
    with pytest.raises(TypeError, match=r"x: expected torch\.float32"):
        tk.rotary_embedding(x.double(), pos, cs, cs, 2, False)
    with pytest.raises(TypeError, match=r"positions: expected torch\.int64"):
        tk.rotary_embedding(x, pos.int(), cs, cs, 2, False)
    with pytest.raises(ValueError, match="contiguous"):
        tk.rotary_embedding(torch.ones(16, 2, device=DEVICE).t(), pos, cs, cs, 2, False)
    with pytest.raises(ValueError, match="heads: 3 heads"):
        tk.rotary_embedding(x, pos, cs, cs, 3, False)
    with pytest.raises(ValueError, match="positions: expected shape"):
        tk.rotary_embedding(x, pos[:1], cs, cs, 2, False)
    with pytest.raises(ValueError, match="cos/sin"):
        tk.rotary_embedding(x, pos, cs, cs[:, :2].contiguous(), 2, False)
