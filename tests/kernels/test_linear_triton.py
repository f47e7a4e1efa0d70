"""Triton ops.linear (kernels/linear.py) for every weight kind against the float64 reference of
the same computation (ops.linear backend="reference") and the unquantized product (the kind's
budget from tests/ops/test_linear.py). On a GPU when present, else under TRITON_INTERPRET=1 with
CPU tensors (set in tests/conftest.py). Small odd shapes: the interpreter runs tiles in numpy."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from infercore.kernels import linear as TL  # noqa: E402

from infercore import ops  # noqa: E402
from infercore import quant as Q  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BUDGET = {
    "f32": 1e-5, "f16": 2e-3, "bf16": 1e-2, "int8": 2e-2, "q8_0": 2e-2, "fp8": 6e-2,
    "int4": 0.15, "q4_0": 0.15, "q4_1": 0.15,
}  # fmt: skip
KINDS = list(BUDGET)
BLOCK_KINDS = ("int4", "q8_0", "q4_0", "q4_1")
# vs the reference of the same computation, by activation dtype: float32 math (tf32x3 dots on a
# GPU) lands near 1e-7; float16/bfloat16 outputs (and GEMM operands) are rounded to x's dtype.
OWN = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def _rel(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _k_for(kind: str) -> int:
    return 96 if kind in BLOCK_KINDS else 99  # odd K where the format allows it, else 3 blocks


def _setup(kind: str, m: int, n: int = 37, seed: int = 0, k: int | None = None):
    rng = np.random.default_rng(seed * 1000 + m)
    k = _k_for(kind) if k is None else k
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    return x, w, b, Q.quantize_weight(w, kind)


def _run(x, qw, b, dtype=torch.float32, **kw):
    xt = torch.from_numpy(x).to(dtype).to(DEVICE)
    bt = None if b is None else torch.from_numpy(b).to(DEVICE)
    return ops.linear(xt, qw.to(DEVICE), bt, backend="triton", **kw)


@pytest.mark.parametrize("m", [1, 3, 8, 9, 65])
@pytest.mark.parametrize("kind", KINDS)
def test_triton_kinds_match_reference(kind, m):
    x, w, b, qw = _setup(kind, m)
    y = _run(x, qw, b)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and tuple(y.shape) == (m, 37)
    got = y.cpu().numpy()
    assert _rel(got, ops.linear(x, qw, b, backend="reference")) <= 1e-5
    assert _rel(got, x.astype(np.float64) @ w.astype(np.float64).T + b) <= BUDGET[kind]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["f16", "bf16", "fp8", "int8", "int4", "q4_1"])
def test_triton_half_activations(kind, dtype):
    for m in (3, 17, 65):
        x, _w, b, qw = _setup(kind, m, seed=1)
        y = _run(x, qw, b, dtype)
        assert y.dtype == dtype
        xr = torch.from_numpy(x).to(dtype).float().numpy()  # the values the kernel received
        assert _rel(y.float().cpu().numpy(), ops.linear(xr, qw, b, backend="reference")) <= OWN[dtype], m


@pytest.mark.parametrize("kind", KINDS)
def test_triton_nan_rows_zero_rows_and_huge_values(kind):
    for m in (3, 9, 65):
        x, _w, b, qw = _setup(kind, m, seed=2)
        x[1, 5] = np.nan
        x[2] = 0.0
        y = _run(x, qw, b).cpu().numpy()
        assert np.isnan(y[1]).all(), m
        assert np.isfinite(np.delete(y, 1, axis=0)).all(), m
        np.testing.assert_allclose(y[2], b, rtol=1e-6, atol=1e-6)  # zero activations: the bias
    x, _w, _b, qw = _setup(kind, 2, seed=3)
    big = x * np.float32(1e30)
    y = _run(big, qw, None).cpu().numpy()
    assert np.isfinite(y).all()
    assert _rel(y, ops.linear(big, qw, backend="reference")) <= 1e-5


@pytest.mark.parametrize("kind", ["f32", "fp8", "int8", "q4_0", "q8_0"])
def test_triton_gemv_split_k_agrees(kind):
    k = 320 if kind in BLOCK_KINDS else 333
    x, _w, b, qw = _setup(kind, 5, n=11, seed=4, k=k)
    d = qw.to(DEVICE)
    xt = torch.from_numpy(x).to(DEVICE)
    bt = torch.from_numpy(b).to(DEVICE)
    want = ops.linear(x, qw, b, backend="reference")
    for split in (1, 3, 7):
        y = TL.linear(xt, d.kind, d.shape, d.data, d.scale, d.group_size, bt, split_k=split)
        assert _rel(y.cpu().numpy(), want) <= 1e-5, split


@pytest.mark.parametrize("group", [64, 128])
def test_triton_int4_group_sizes(group):
    rng = np.random.default_rng(group)
    w = rng.standard_normal((13, 256)).astype(np.float32)
    qw = Q.quantize_weight(w, "int4", group_size=group)
    for m in (2, 9, 64):
        x = rng.standard_normal((m, 256)).astype(np.float32)
        y = _run(x, qw, None).cpu().numpy()
        assert _rel(y, ops.linear(x, qw, backend="reference")) <= 1e-5, m


def test_triton_float_weights_shapes_and_host_arrays():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 40)).astype(np.float32)
    w = rng.standard_normal((7, 40)).astype(np.float32)
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    y = ops.linear(torch.from_numpy(x).to(DEVICE), torch.from_numpy(w).to(DEVICE), backend="triton")
    assert tuple(y.shape) == (2, 3, 7)
    assert _rel(y.cpu().numpy(), exact) <= 1e-5
    wh = torch.from_numpy(w).to(torch.bfloat16).to(DEVICE)
    yb = ops.linear(torch.from_numpy(x).to(DEVICE), wh, backend="triton")
    assert _rel(yb.cpu().numpy(), exact) <= 1e-2
    empty = ops.linear(torch.zeros((0, 40), device=DEVICE), torch.from_numpy(w).to(DEVICE), backend="triton")
    assert tuple(empty.shape) == (0, 7)
    if DEVICE == "cpu":  # numpy in, numpy out (interpreter only: Triton needs CUDA tensors otherwise)
        yn = ops.linear(x, Q.quantize_weight(w, "int8"), backend="triton")
        assert isinstance(yn, np.ndarray) and yn.shape == (2, 3, 7)


def test_quantized_weight_to_device_round_trip():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((5, 64)).astype(np.float32)
    for kind in KINDS:
        qw = Q.quantize_weight(w, kind)
        d = Q.to_device(qw, DEVICE)
        assert d.kind == kind and d.shape == qw.shape and d.nbytes == qw.nbytes and d.group_size == qw.group_size
        assert isinstance(d.data, torch.Tensor) and d.device.startswith(DEVICE)
        back = d.to("host")
        assert back.device == "host" and back.data.dtype == qw.data.dtype
        np.testing.assert_array_equal(back.data, qw.data)
        np.testing.assert_array_equal(d.dequantize(), qw.dequantize())
        assert d.to(DEVICE) is d
    with pytest.raises(ValueError, match="device"):
        Q.quantize_weight(w, "int8").to("nowhere")
    with pytest.raises(TypeError, match="w"):
        Q.to_device(w, DEVICE)


def test_triton_launcher_rejects_bad_weights():
    x = torch.ones((2, 64), device=DEVICE)
    qw = Q.quantize_weight(np.ones((4, 64), np.float32), "int8").to(DEVICE)
    with pytest.raises(ValueError, match="kind"):
        TL.linear(x, "int3", qw.shape, qw.data, qw.scale, None)
    with pytest.raises(TypeError, match=r"w\.data"):
        TL.linear(x, "int8", qw.shape, qw.data.view(torch.uint8), qw.scale, None)
    with pytest.raises(ValueError, match=r"w\.scale"):
        TL.linear(x, "int8", qw.shape, qw.data, None, None)
    with pytest.raises(ValueError, match=r"w\.data"):
        TL.linear(x, "int8", (3, 64), qw.data[:3].t().contiguous().t(), qw.scale[:3], None)
    with pytest.raises(ValueError, match="x"):
        TL.linear(torch.ones((2, 63), device=DEVICE), "int8", qw.shape, qw.data, qw.scale, None)
    with pytest.raises(ValueError, match="bias"):
        TL.linear(x, "int8", qw.shape, qw.data, qw.scale, None, torch.ones(5, device=DEVICE))
    with pytest.raises(ValueError, match="split_k"):
        TL.linear(x, "int8", qw.shape, qw.data, qw.scale, None, split_k=0)
    q4 = Q.quantize_weight(np.ones((4, 64), np.float32), "int4", group_size=32).to(DEVICE)
    with pytest.raises(ValueError, match="group_size"):
        TL.linear(x, "int4", q4.shape, q4.data, q4.scale, 48)
    with pytest.raises(ValueError, match="x"):
        ops.linear(torch.ones((2, 63), device=DEVICE), qw, backend="triton")


@pytest.mark.parametrize("m", [9, 65, 130])
def test_triton_int8_precision_high_is_w8a8_at_every_size(m):
    # as on the CPU: 8-bit per-token activations from 64 rows too (the LLM's int8 weights run so)
    x, _, b, qw = _setup("int8", m, n=70, k=200)
    high = _run(x, qw, b, precision="high").cpu().numpy()
    assert _rel(high, ops.linear(x, qw, b, backend="reference", precision="high")) <= 1e-6
    np.testing.assert_allclose(high, ops.linear(x, qw, b, precision="high"), rtol=0, atol=1e-4)  # the CPU's W8A8
    if m >= 64:  # "highest" keeps the int16 codes there: other numbers
        assert _rel(_run(x, qw, b).cpu().numpy(), high) > 1e-4
