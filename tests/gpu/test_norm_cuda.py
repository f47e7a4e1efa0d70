"""CUDA norm kernels (csrc/cuda/norm.cu) against the float64 reference. Skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import infercore
from infercore import ops
from infercore.ops import reference as ref

torch = pytest.importorskip("torch")
if not infercore.system_info()["cuda"]["available"] or not torch.cuda.is_available():
    pytest.skip("no CUDA device (or infercore built without CUDA)", allow_module_level=True)

RTOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


@pytest.mark.parametrize("op", ["rms_norm", "l2_normalize"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (129, 1000), (3, 4099), (2, 3, 17)])
def test_cuda_matches_reference(op, dtype, shape):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=g).to(dtype).cuda()
    w = torch.randn(shape[-1], generator=g).cuda()
    if op == "rms_norm":
        y = ops.rms_norm(x, w, 1e-6)
        want = ref.rms_norm(x.float().cpu().numpy(), w.cpu().numpy(), 1e-6)
    else:
        y = ops.l2_normalize(x)
        want = ref.l2_normalize(x.float().cpu().numpy())
    assert y.is_cuda and y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y.float().cpu().numpy(), want, rtol=RTOL[dtype], atol=1e-6)


def test_cuda_runs_on_the_callers_stream():
    x = torch.randn(512, 4096, device="cuda")
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        y = ops.l2_normalize(x)
    s.synchronize()
    np.testing.assert_allclose(y.cpu().numpy(), ref.l2_normalize(x.cpu().numpy()), rtol=1e-5, atol=1e-7)


def test_cuda_device_mismatch_is_an_error():
    with pytest.raises(ValueError, match="weight"):
        ops.rms_norm(torch.ones(2, 4, device="cuda"), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="backend='cpu' needs a host array"):
        ops.l2_normalize(torch.ones(2, 4, device="cuda"), backend="cpu")


def test_cupy_arrays_if_installed():
    cp = pytest.importorskip("cupy")
    x = cp.random.standard_normal((7, 33), dtype=cp.float32)
    y = ops.l2_normalize(x)
    assert isinstance(y, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(y), ref.l2_normalize(cp.asnumpy(x)), rtol=1e-5, atol=1e-7)
