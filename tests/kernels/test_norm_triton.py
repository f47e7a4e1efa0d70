"""Triton norm kernels against the float64 reference: on a GPU when present, else under
TRITON_INTERPRET=1 with CPU tensors (set in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from infercore import ops  # noqa: E402
from infercore.ops import reference as ref  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
RTOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


@pytest.mark.parametrize("op", ["rms_norm", "l2_normalize"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (129, 1000), (3, 4099), (2, 3, 17)])
def test_triton_matches_reference(op, dtype, shape):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(shape, generator=g).to(dtype).to(DEVICE)
    w = torch.randn(shape[-1], generator=g).to(DEVICE)
    if op == "rms_norm":
        y = ops.rms_norm(x, w, 1e-6, backend="triton")
        want = ref.rms_norm(x.float().cpu().numpy(), w.cpu().numpy(), 1e-6)
    else:
        y = ops.l2_normalize(x, backend="triton")
        want = ref.l2_normalize(x.float().cpu().numpy())
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.shape == x.shape
    # float32 accumulation in blocks: a few ulp more than the CPU's double accumulation
    np.testing.assert_allclose(y.float().cpu().numpy(), want, rtol=RTOL[dtype], atol=1e-6)


def test_triton_nan_row_and_numpy_input():
    x = np.ones((3, 9), np.float32)
    x[1, 3] = np.nan
    y = ops.l2_normalize(x, backend="triton")  # numpy in, numpy out
    assert isinstance(y, np.ndarray)
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()
    np.testing.assert_allclose(y[0], ref.l2_normalize(x[0]), rtol=1e-6)


def test_triton_launcher_rejects_bad_tensors():
    from infercore.kernels import norm as tk

    with pytest.raises(ValueError, match="contiguous 2-D"):
        tk.l2_normalize(torch.ones(3))
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        tk.l2_normalize(torch.ones(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="weight"):
        tk.rms_norm(torch.ones(3, 3), torch.ones(4))
