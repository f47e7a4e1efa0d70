"""Triton gelu kernel against the float64 reference: on a GPU when present, else under
TRITON_INTERPRET=1 with CPU tensors (set in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from infercore import ops  # noqa: E402
from infercore.ops import reference as ref  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# Same approximation as the CPU kernel, but without guaranteed FMA contraction and with the
# platform's exp: a little more float32 error than the CPU (~8e-8) before the output rounding.
ABS = {torch.float32: 3e-7, torch.float16: 2e-7, torch.bfloat16: 2e-7}
RTOL = {torch.float32: 2.0**-23, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1,), (7,), (33,), (1000,), (3, 4099), (2, 3, 17)])
def test_triton_matches_reference(approximate, dtype, shape):
    g = torch.Generator().manual_seed(7)
    x = (torch.randn(shape, generator=g) * 3).to(dtype).to(DEVICE)
    y = ops.gelu(x, approximate=approximate, backend="triton")
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.shape == x.shape
    want = ref.gelu(x.float().cpu().numpy(), approximate)
    np.testing.assert_allclose(y.float().cpu().numpy(), want, rtol=RTOL[dtype], atol=ABS[dtype])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_triton_specials_and_numpy_round_trip(approximate):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 3e38, -3e38, 20.0, -20.0, 1e-30], np.float32)
    y = ops.gelu(x, approximate=approximate, backend="triton")  # numpy in, numpy out
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    assert np.isnan(y[0]) and y[1] == np.inf and y[5] == x[5] and y[7] == x[7]
    for i in (2, 4, 6, 8):
        assert y[i] == 0 and np.signbit(y[i])
    assert y[3] == 0 and not np.signbit(y[3])
    np.testing.assert_allclose(y[9], 5e-31, rtol=1e-6)


def test_triton_empty_and_launcher_rejects_bad_tensors():
    from infercore.kernels import gelu as tk

    assert tk.gelu(torch.empty(0)).shape == (0,)
    with pytest.raises(ValueError, match="contiguous"):
        tk.gelu(torch.ones(4, 4).t())
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        tk.gelu(torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="approximate"):
        tk.gelu(torch.ones(3), "exact")
