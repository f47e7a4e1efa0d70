"""CUDA silu_and_mul kernel (csrc/cuda/silu_and_mul.cu) against the float64 reference. Skipped
without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import infercore
from infercore import ops
from infercore.ops import reference as ref

torch = pytest.importorskip("torch")
if not infercore.system_info()["cuda"]["available"] or not torch.cuda.is_available():
    pytest.skip("no CUDA device (or infercore built without CUDA)", allow_module_level=True)

# expf (2 ulp) + IEEE division + the product: a few ulp of float32 before the output rounding.
RTOL = {torch.float32: 8 * 2.0**-24, torch.float16: 2.0**-10 + 8 * 2.0**-24, torch.bfloat16: 2.0**-7 + 8 * 2.0**-24}
ATOL = {torch.float32: 1e-37, torch.float16: 6e-8, torch.bfloat16: 1e-37}


def _check(y, x) -> None:
    want = ref.silu_and_mul(x.float().cpu().numpy())
    got = y.float().cpu().numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))  # every element written (poison is NaN)
    np.testing.assert_allclose(got, want, rtol=RTOL[x.dtype], atol=ATOL[x.dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "shape",
    # 16-byte vector path (I % (16 / itemsize) == 0) and the scalar one (odd I), one long row,
    # many rows (beyond the 65535 grid rows), and leading dims
    [(1, 2), (1, 14), (7, 66), (33, 2000), (3, 4098), (1, 28672), (1000, 3072), (70001, 16), (2, 3, 34)],
)
def test_cuda_matches_reference(dtype, shape):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(shape, generator=g) * 3).to(dtype).cuda()
    y = ops.silu_and_mul(x)
    assert y.is_cuda and y.dtype == dtype and y.shape == (*shape[:-1], shape[-1] // 2)
    _check(y, x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_misaligned_input_takes_the_scalar_path(dtype):
    buf = (torch.randn(1 + 5 * 64) * 3).to(dtype).cuda()
    x = buf[1:].view(5, 64)  # contiguous, but 2 or 4 bytes past a 16-byte boundary
    assert x.data_ptr() % 16 != 0
    _check(ops.silu_and_mul(x), x)


def test_cuda_specials():
    inf, nan = float("inf"), float("nan")
    g = [nan, inf, -inf, 0.0, -0.0, 200.0, -200.0, 3e38, 1.0, -inf, 2.0, -1e30]
    u = [1.0, 2.0, 3.0, 5.0, 5.0, 1.0, 1.0, 1.0, nan, inf, inf, 2.0]
    y = ops.silu_and_mul(torch.tensor(g + u, device="cuda")).cpu().numpy()
    assert np.isnan(y[0]) and y[1] == np.inf and y[5] == 200.0 and y[7] == np.float32(3e38)
    for i in (2, 4, 6, 11):
        assert y[i] == 0 and np.signbit(y[i]), i
    assert y[3] == 0 and not np.signbit(y[3])
    assert np.isnan(y[8]) and np.isnan(y[9]) and y[10] == np.inf


def test_cuda_empty_and_callers_stream():
    assert ops.silu_and_mul(torch.empty(0, 8, device="cuda")).shape == (0, 4)
    assert ops.silu_and_mul(torch.empty(3, 0, device="cuda")).shape == (3, 0)
    x = torch.randn(1024, 8192, device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        y = ops.silu_and_mul(x)
    s.synchronize()
    idx = torch.randint(0, 1024, (64,), device="cuda")
    _check(y[idx], x[idx])


def test_cuda_graph_capture_and_replay():
    x = torch.randn(16, 3072, device="cuda", dtype=torch.float16)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        ops.silu_and_mul(x)  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = ops.silu_and_mul(x)
    x.copy_(torch.randn(16, 3072, device="cuda", dtype=torch.float16))
    graph.replay()
    torch.cuda.synchronize()
    _check(y, x)


def test_cuda_errors():
    with pytest.raises(ValueError, match="out: only supported for host arrays"):
        ops.silu_and_mul(torch.ones(2, 4, device="cuda"), out=torch.empty(2, 2, device="cuda"))
    with pytest.raises(ValueError, match="backend='cpu' needs a host array"):
        ops.silu_and_mul(torch.ones(2, 4, device="cuda"), backend="cpu")
    with pytest.raises(ValueError, match=r"x: expected shape \[\.\.\., 2 \* I\]"):
        ops.silu_and_mul(torch.ones(2, 5, device="cuda"))


def test_cupy_arrays_if_installed():
    cp = pytest.importorskip("cupy")
    x = cp.random.standard_normal((7, 66), dtype=cp.float32)
    y = ops.silu_and_mul(x)
    assert isinstance(y, cp.ndarray) and y.shape == (7, 33)
    np.testing.assert_allclose(cp.asnumpy(y), ref.silu_and_mul(cp.asnumpy(x)), rtol=RTOL[torch.float32], atol=1e-37)
