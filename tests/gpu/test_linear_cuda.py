"""ops.linear on CUDA tensors: the CUDA GEMV (csrc/cuda/linear.cu, M <= 8) and the Triton GEMM
behind backend="cuda" above 8 rows, against the float64 reference of the same computation and the
unquantized product (each kind's budget). Skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import infercore
from infercore import ops
from infercore import quant as Q

torch = pytest.importorskip("torch")
if not infercore.system_info()["cuda"]["available"] or not torch.cuda.is_available():
    pytest.skip("no CUDA device (or infercore built without CUDA)", allow_module_level=True)

from infercore.ops._linear_gpu import cuda_linear_module  # noqa: E402

BUDGET = {
    "f32": 1e-5, "f16": 2e-3, "bf16": 1e-2, "int8": 2e-2, "q8_0": 2e-2, "fp8": 6e-2,
    "int4": 0.15, "q4_0": 0.15, "q4_1": 0.15,
}  # fmt: skip
KINDS = list(BUDGET)
BLOCK_KINDS = ("int4", "q8_0", "q4_0", "q4_1")
OWN = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def _rel(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _poison_allocator(nbytes: int) -> None:
    """Leave NaN-filled blocks in torch's caching allocator so an output element the kernel
    never writes shows up as NaN instead of a lucky zero."""
    t = torch.full((max(nbytes // 4, 1) + 1024,), float("nan"), device="cuda")
    del t


def _case(kind, m, n, k, seed, dtype=torch.float32):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    qw = Q.quantize_weight(w, kind)
    xt = torch.from_numpy(x).to(dtype).cuda()
    xr = xt.float().cpu().numpy()  # what the kernel sees
    return xr, w, b, qw, xt, torch.from_numpy(b).cuda()


def test_cuda_module_has_linear():
    assert cuda_linear_module() is not None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [1, 3, 8])
@pytest.mark.parametrize(("n", "k"), [(37, 99), (257, 4096)])
def test_cuda_gemv_kinds(kind, m, n, k):
    if kind in BLOCK_KINDS and k % 32:
        k = 96
    x, w, b, qw, xt, bt = _case(kind, m, n, k, seed=m * 7 + n)
    d = qw.to("cuda")
    _poison_allocator(m * n * 4)
    y = ops.linear(xt, d, bt, backend="cuda")
    assert y.is_cuda and y.dtype == torch.float32 and tuple(y.shape) == (m, n)
    got = y.cpu().numpy()
    assert _rel(got, ops.linear(x, qw, b, backend="reference")) <= 1e-5
    assert _rel(got, x.astype(np.float64) @ w.astype(np.float64).T + b) <= BUDGET[kind]
    # auto on CUDA tensors picks the CUDA GEMV; the Triton GEMV computes the same
    assert _rel(ops.linear(xt, d, bt).cpu().numpy(), got) <= 1e-6
    assert _rel(ops.linear(xt, d, bt, backend="triton").cpu().numpy(), got) <= 1e-5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_gemv_half_activations(kind, dtype):
    k = 96 if kind in BLOCK_KINDS else 200
    x, _w, b, qw, xt, bt = _case(kind, 5, 70, k, seed=11, dtype=dtype)
    y = ops.linear(xt, qw.to("cuda"), bt, backend="cuda")
    assert y.dtype == dtype
    assert _rel(y.float().cpu().numpy(), ops.linear(x, qw, b, backend="reference")) <= OWN[dtype]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [9, 63, 64, 300])
def test_cuda_backend_gemm_rows(kind, m):
    # above 8 rows backend="cuda" runs the Triton GEMM (int8 tensor cores below 64 rows for the
    # quantized kinds and at every size for the block kinds, dequantized float tiles from 64 for
    # int8 and fp8)
    k = 320 if kind in BLOCK_KINDS else 333
    x, w, b, qw, xt, bt = _case(kind, m, 45, k, seed=m)
    _poison_allocator(m * 45 * 4)
    got = ops.linear(xt, qw.to("cuda"), bt, backend="cuda").cpu().numpy()
    assert _rel(got, ops.linear(x, qw, b, backend="reference")) <= 1e-5
    assert _rel(got, x.astype(np.float64) @ w.astype(np.float64).T + b) <= BUDGET[kind]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["f16", "bf16", "fp8", "int8", "int4", "q4_0"])
def test_cuda_gemm_half_activations(kind, dtype):
    x, _w, b, qw, xt, bt = _case(kind, 257, 200, 512, seed=5, dtype=dtype)
    y = ops.linear(xt, qw.to("cuda"), bt)
    assert y.dtype == dtype
    assert _rel(y.float().cpu().numpy(), ops.linear(x, qw, b, backend="reference")) <= OWN[dtype]


@pytest.mark.parametrize("kind", KINDS)
def test_cuda_nan_zero_and_huge_rows(kind):
    k = 128 if kind in BLOCK_KINDS else 130
    for m in (4, 20, 70):
        x, _w, b, qw, _xt, bt = _case(kind, m, 33, k, seed=3)
        x[1, 5] = np.nan
        x[2] = 0.0
        y = ops.linear(torch.from_numpy(x).cuda(), qw.to("cuda"), bt, backend="cuda").cpu().numpy()
        assert np.isnan(y[1]).all(), m
        assert np.isfinite(np.delete(y, 1, axis=0)).all(), m
        np.testing.assert_allclose(y[2], b, rtol=1e-6, atol=1e-6)
    big = x[[0, 3]] * np.float32(1e30)  # finite rows (row 1 holds the NaN, row 2 the zeros)
    y = ops.linear(torch.from_numpy(big).cuda(), qw.to("cuda"), backend="cuda").cpu().numpy()
    assert np.isfinite(y).all()
    assert _rel(y, ops.linear(big, qw, backend="reference")) <= 1e-5


@pytest.mark.parametrize("kind", ["f32", "f16", "fp8", "int8"])
def test_cuda_gemv_unaligned_activations(kind):
    # x starting 4 bytes past an allocation: the GEMV falls back to its scalar loop
    rng = np.random.default_rng(9)
    k, n = 128, 50
    x = rng.standard_normal((3, k)).astype(np.float32)
    qw = Q.quantize_weight(rng.standard_normal((n, k)).astype(np.float32), kind)
    buf = torch.empty(3 * k + 1, device="cuda")
    xt = buf[1:].view(3, k)
    xt.copy_(torch.from_numpy(x))
    y = ops.linear(xt, qw.to("cuda"), backend="cuda").cpu().numpy()
    assert _rel(y, ops.linear(x, qw, backend="reference")) <= 1e-5


@pytest.mark.parametrize("kind", ["int8", "q4_0", "q4_1", "int4", "fp8", "f16"])
def test_cuda_gemv_decoder_shape(kind):
    x, _w, _b, qw, xt, _bt = _case(kind, 1, 4096, 4096, seed=1)
    got = ops.linear(xt, qw.to("cuda"), backend="cuda").cpu().numpy()
    assert _rel(got, ops.linear(x, qw, backend="reference")) <= 1e-5


def test_cuda_float_weights_lead_dims_and_stream():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 64)).astype(np.float32)
    w = rng.standard_normal((9, 64)).astype(np.float32)
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        y = ops.linear(torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda())
    s.synchronize()
    assert tuple(y.shape) == (2, 3, 9)
    assert _rel(y.cpu().numpy(), exact) <= 1e-5
    yb = ops.linear(torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda().bfloat16(), backend="cuda")
    assert _rel(yb.cpu().numpy(), exact) <= 1e-2


def test_cuda_device_mismatch_and_bad_launches():
    qw = Q.quantize_weight(np.ones((4, 64), np.float32), "int8")
    x = torch.ones((2, 64), device="cuda")
    with pytest.raises(ValueError, match="w"):
        ops.linear(x, qw)  # weights still on the host: move them once with .to
    with pytest.raises(ValueError, match="bias"):
        ops.linear(x, qw.to("cuda"), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="w"):
        ops.linear(np.ones((2, 64), np.float32), qw.to("cuda"))
    with pytest.raises(ValueError, match="backend='cpu'"):
        ops.linear(x, qw.to("cuda"), backend="cpu")
    mod = cuda_linear_module()
    with pytest.raises(ValueError, match="rows"):
        mod.linear_gemv_workspace_bytes(4, 9, 64, 0)
    d = qw.to("cuda")
    out = torch.empty((2, 4), device="cuda")
    stream = torch.cuda.current_stream().cuda_stream
    with pytest.raises(ValueError, match="workspace"):
        mod.linear_gemv(4, x.data_ptr(), 0, d.data.data_ptr(), d.scale.data_ptr(), 0, 0, out.data_ptr(), 0, 0, 2, 4,
                        64, stream)  # fmt: skip
    with pytest.raises(ValueError, match="scale"):
        mod.linear_gemv(3, x.data_ptr(), 0, d.data.data_ptr(), 0, 0, 0, out.data_ptr(), 0, 0, 2, 4, 64, stream)
    with pytest.raises(ValueError, match="kind"):
        mod.linear_gemv(42, x.data_ptr(), 0, d.data.data_ptr(), 0, 0, 0, out.data_ptr(), 0, 0, 2, 4, 64, stream)
