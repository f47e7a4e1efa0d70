"""Triton silu_and_mul kernel against the float64 reference: on a GPU when present, else under
TRITON_INTERPRET=1 with CPU tensors (set in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from infercore import ops  # noqa: E402
from infercore.ops import reference as ref  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# Same formulation as the CPU kernel, with the platform's exp and division. On a GPU Triton's
# float32 exp is ex2.approx of g * log2(e): the rounded product makes exp(-|g|) (and so silu for
# g < 0) off by ~|g| ulp, plus ~2 ulp each for ex2 and the approximate division: ~32 ulp for the
# |g| <= ~16 these inputs reach. The interpreter (numpy) stays within a few ulp.
RTOL = {torch.float32: 32 * 2.0**-24, torch.float16: 2.0**-10 + 32 * 2.0**-24,
        torch.bfloat16: 2.0**-7 + 32 * 2.0**-24}  # fmt: skip
ATOL = {torch.float32: 1e-38, torch.float16: 6e-8, torch.bfloat16: 1e-38}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 2), (1, 14), (7, 66), (3, 2002), (2, 3, 34)])
def test_triton_matches_reference(dtype, shape):
    g = torch.Generator().manual_seed(7)
    x = (torch.randn(shape, generator=g) * 3).to(dtype).to(DEVICE)
    y = ops.silu_and_mul(x, backend="triton")
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.shape == (*shape[:-1], shape[-1] // 2)
    want = ref.silu_and_mul(x.float().cpu().numpy())
    np.testing.assert_allclose(y.float().cpu().numpy(), want, rtol=RTOL[dtype], atol=ATOL[dtype])


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the interpreter's numpy sees inf * 0
def test_triton_specials_and_numpy_round_trip():
    g = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 200.0, -200.0, 3e38, 1.0, 2.0], np.float32)
    u = np.array([1.0, 2.0, 3.0, 5.0, 5.0, 1.0, 1.0, 1.0, np.nan, np.inf], np.float32)
    x = np.concatenate([g, u])
    if DEVICE == "cuda":
        y = ops.silu_and_mul(torch.from_numpy(x).cuda(), backend="triton").cpu().numpy()
    else:
        y = ops.silu_and_mul(x, backend="triton")  # numpy in, numpy out
        assert isinstance(y, np.ndarray) and y.dtype == np.float32
    assert np.isnan(y[0]) and y[1] == np.inf and y[7] == np.float32(3e38) and y[5] == 200.0
    assert y[2] == 0 and np.signbit(y[2]) and y[4] == 0 and np.signbit(y[4]) and y[6] == 0 and np.signbit(y[6])
    assert y[3] == 0 and not np.signbit(y[3])
    assert np.isnan(y[8]) and y[9] == np.inf


def test_triton_empty_and_launcher_rejects_bad_tensors():
    from infercore.kernels import silu_and_mul as tk

    assert tk.silu_and_mul(torch.empty(0, 8)).shape == (0, 4)
    assert tk.silu_and_mul(torch.empty(3, 0)).shape == (3, 0)
    with pytest.raises(ValueError, match="contiguous 2-D"):
        tk.silu_and_mul(torch.ones(4, 4).t())
    with pytest.raises(ValueError, match="contiguous 2-D"):
        tk.silu_and_mul(torch.ones(4, 5))
    with pytest.raises(ValueError, match="contiguous 2-D"):
        tk.silu_and_mul(torch.ones(8))
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        tk.silu_and_mul(torch.ones(3, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        tk.silu_and_mul(np.ones((3, 2), np.float32))
