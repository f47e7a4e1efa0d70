"""CUDA gelu kernel (csrc/cuda/gelu.cu) against the float64 reference. Skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import infercore
from infercore import ops
from infercore.ops import reference as ref

torch = pytest.importorskip("torch")
if not infercore.system_info()["cuda"]["available"] or not torch.cuda.is_available():
    pytest.skip("no CUDA device (or infercore built without CUDA)", allow_module_level=True)

# erfcf / expf are within a few ulp: a few 1e-7 absolute on top of the output rounding
ABS = {torch.float32: 3e-7, torch.float16: 2e-7, torch.bfloat16: 2e-7}
RTOL = {torch.float32: 2.0**-23, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1,), (7,), (33,), (1000,), (100003,), (3, 4099), (2, 3, 17)])
def test_cuda_matches_reference(approximate, dtype, shape):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(shape, generator=g) * 3).to(dtype).cuda()
    y = ops.gelu(x, approximate=approximate)
    assert y.is_cuda and y.dtype == dtype and y.shape == x.shape
    want = ref.gelu(x.float().cpu().numpy(), approximate)
    np.testing.assert_allclose(y.float().cpu().numpy(), want, rtol=RTOL[dtype], atol=ABS[dtype])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_cuda_specials(approximate):
    x = torch.tensor([float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 3e38, -3e38, 20.0, -20.0],
                     device="cuda")
    y = ops.gelu(x, approximate=approximate).cpu().numpy()
    assert np.isnan(y[0]) and y[1] == np.inf and y[5] == np.float32(3e38) and y[7] == 20.0
    for i in (2, 4, 6, 8):
        assert y[i] == 0 and np.signbit(y[i])
    assert y[3] == 0 and not np.signbit(y[3])


def test_cuda_empty_and_callers_stream():
    assert ops.gelu(torch.empty(0, device="cuda")).shape == (0,)
    x = torch.randn(1 << 22, device="cuda")
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        y = ops.gelu(x)
    s.synchronize()
    idx = torch.randint(0, x.numel(), (20000,))
    np.testing.assert_allclose(y[idx].cpu().numpy(), ref.gelu(x[idx].cpu().numpy()), rtol=2.0**-23, atol=3e-7)


def test_cuda_out_and_cpu_backend_errors():
    with pytest.raises(ValueError, match="out: only supported for host arrays"):
        ops.gelu(torch.ones(4, device="cuda"), out=torch.empty(4, device="cuda"))
    with pytest.raises(ValueError, match="backend='cpu' needs a host array"):
        ops.gelu(torch.ones(4, device="cuda"), backend="cpu")


def test_cupy_arrays_if_installed():
    cp = pytest.importorskip("cupy")
    x = cp.random.standard_normal((7, 33), dtype=cp.float32)
    y = ops.gelu(x)
    assert isinstance(y, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(y), ref.gelu(cp.asnumpy(x)), rtol=2.0**-23, atol=3e-7)
