"""ops.linear on every ISA level: vs float64 x @ W.T (format budget) and vs the exact
dequantize-then-matmul reference of each format (1e-5), odd shapes, specials, bad inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest

import infercore as ic
from infercore import ops
from infercore import quant as Q
from infercore.quant import reference as QR

# Relative Frobenius budgets vs the float64 product with the unquantized weight.
BUDGET = {
    "f32": 1e-5,
    "f16": 2e-3,
    "bf16": 1e-2,
    "int8": 2e-2,
    "q8_0": 2e-2,
    "fp8": 6e-2,
    "int4": 0.15,
    "q4_0": 0.15,
    "q4_1": 0.15,
}
KINDS = list(BUDGET)


@pytest.fixture(params=ic.available_isas())
def isa(request):
    before = ic.get_isa()
    ic.set_isa(request.param)
    yield request.param
    ic.set_isa(before)


def _on_1_and_2_threads(fn):
    """fn() computed with 1 thread, then with 2 (the thread count restored after)."""
    before = ic.get_num_threads()
    try:
        ic.set_num_threads(1)
        y1 = fn()
        ic.set_num_threads(2)
        return y1, fn()
    finally:
        ic.set_num_threads(before)


def _rel(a, b):
    b = np.asarray(b, np.float64)
    return np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("m", [1, 3, 8, 9, 513])
def test_linear_kinds(isa, kind, m):
    rng = np.random.default_rng(m)
    n, k = 37, 192
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    qw = Q.quantize_weight(w, kind)
    y = ops.linear(x, qw, bias)
    assert y.shape == (m, n) and y.dtype == np.float32
    exact = x.astype(np.float64) @ w.astype(np.float64).T + bias
    assert _rel(y, exact) <= BUDGET[kind]
    own = ops.linear(x, qw, bias, backend="reference")
    assert _rel(y, own) <= 1e-5


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16", "fp8", "int8"])
@pytest.mark.parametrize("k", [1, 7, 33, 100])
def test_linear_odd_k(isa, kind, k):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((5, k)).astype(np.float32)
    qw = Q.quantize_weight(rng.standard_normal((11, k)).astype(np.float32), kind)
    assert _rel(ops.linear(x, qw), ops.linear(x, qw, backend="reference")) <= 1e-5


def test_linear_float_weights_and_dtypes(isa):
    ml = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 64)).astype(np.float32)
    w = rng.standard_normal((10, 64)).astype(np.float32)
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    assert _rel(ops.linear(x, w), exact) <= 1e-5
    assert _rel(ops.linear(x, w.astype(np.float16)), exact) <= 2e-3
    assert _rel(ops.linear(x, w.astype(ml.bfloat16)), exact) <= 1e-2
    yh = ops.linear(x.astype(np.float16), w)
    assert yh.dtype == np.float16 and yh.shape == (2, 3, 10)
    yb = ops.linear(x.astype(ml.bfloat16), w)
    assert yb.dtype == ml.bfloat16
    assert _rel(yb.astype(np.float32), exact) <= 2e-2
    assert ops.linear(x[0, 0], w).shape == (10,)


def test_linear_torch_cpu(isa):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    w = rng.standard_normal((6, 64)).astype(np.float32)
    y = ops.linear(torch.from_numpy(x), torch.from_numpy(w))
    assert isinstance(y, torch.Tensor)
    np.testing.assert_allclose(y.numpy(), x @ w.T, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_linear_empty_and_specials(isa, kind):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((9, 64)).astype(np.float32)
    qw = Q.quantize_weight(w, kind)
    assert ops.linear(np.zeros((0, 64), np.float32), qw).shape == (0, 9)
    x = rng.standard_normal((3, 64)).astype(np.float32)
    x[1, 5] = np.nan
    y = ops.linear(x, qw)
    assert np.all(np.isnan(y[1])) and np.all(np.isfinite(y[[0, 2]]))
    # zero activations: exactly the bias
    b = np.arange(9, dtype=np.float32)
    assert np.array_equal(ops.linear(np.zeros((2, 64), np.float32), qw, b), np.tile(b, (2, 1)))
    # huge but finite activations (float16/bf16 weights keep the product in range)
    big = x[[0]] * np.float32(1e30)
    yb = ops.linear(big, qw)
    assert np.all(np.isfinite(yb))
    assert _rel(yb, ops.linear(big, qw, backend="reference")) <= 1e-5


def test_linear_threads_agree(isa):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 96)).astype(np.float32)
    qw = Q.quantize_weight(rng.standard_normal((300, 96)).astype(np.float32), "q4_1")
    y1, y2 = _on_1_and_2_threads(lambda: ops.linear(x, qw))
    assert np.array_equal(y1, y2)


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
@pytest.mark.parametrize(("m", "n", "k"), [(16, 1, 1), (17, 33, 7), (200, 129, 300), (385, 70, 513)])
def test_linear_float_gemm_tiles_and_threads(isa, kind, m, n, k):
    # the packed GEMM (M >= 16): partial 6-row and 16/32-column tiles, K across 256-blocks, and
    # bit-identical results for any thread count (each output is one FMA chain per K block)
    rng = np.random.default_rng(m * 1000 + n)
    x = rng.standard_normal((m, k)).astype(np.float32)
    qw = Q.quantize_weight(rng.standard_normal((n, k)).astype(np.float32), kind)
    b = rng.standard_normal(n).astype(np.float32)
    y1, y2 = _on_1_and_2_threads(lambda: ops.linear(x, qw, b))
    assert np.array_equal(y1, y2)
    assert _rel(y1, ops.linear(x, qw, b, backend="reference")) <= 1e-5
    # a row's result does not depend on which other rows share the call
    np.testing.assert_array_equal(ops.linear(x[-16:], qw, b), y1[-16:])


def _same_bits_on_every_isa(fn, want):
    before = ic.get_isa()
    try:
        for level in ic.available_isas():
            ic.set_isa(level)
            np.testing.assert_array_equal(fn(), want, err_msg=level)
    finally:
        ic.set_isa(before)


@pytest.mark.parametrize(("m", "n", "k"), [(64, 1, 1), (65, 33, 7), (200, 129, 300), (385, 70, 513), (64, 32, 256)])
def test_linear_int8_gemm_tiles_threads_isas(isa, m, n, k):
    # the int8 GEMM (M >= 64, int16 activation codes): partial 3-row and 32-column tiles, odd K
    # (a zero pad in the last pair), K across 256-blocks; the int32 block sums are exact, so the
    # result equals the float64 W8A16 reference to float32 rounding, is bit-identical for any
    # thread count and any ISA level, and a row's result does not depend on its neighbours
    rng = np.random.default_rng(m * 1000 + n + k)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.01, 100, size=(m, 1))).astype(np.float32)
    qw = Q.quantize_weight(rng.standard_normal((n, k)).astype(np.float32), "int8")
    b = rng.standard_normal(n).astype(np.float32)
    y1, y2 = _on_1_and_2_threads(lambda: ops.linear(x, qw, b))
    assert np.array_equal(y1, y2)
    want = QR.linear_w8a16(x, qw.data, qw.scale) + b
    assert _rel(y1, want) <= 1e-6
    assert _rel(y1, x.astype(np.float64) @ qw.dequantize().astype(np.float64).T + b) <= 1e-4
    np.testing.assert_array_equal(ops.linear(x[-64:], qw, b), y1[-64:])
    _same_bits_on_every_isa(lambda: ops.linear(x, qw, b), y1)


@pytest.mark.parametrize("kind", ["int4", "q4_0", "q4_1", "q8_0"])
@pytest.mark.parametrize(("m", "n", "k"), [(4, 1, 32), (9, 9, 64), (33, 17, 320), (70, 45, 96), (200, 130, 1024)])
def test_linear_r8_gemm_rows_threads_isas(isa, kind, m, n, k):
    # the block kinds from a few rows (4-bit: 4, q8_0: 8) run the 8-row interleaved GEMM
    # (gemm_blocks_r8_impl.h): short 8-row groups (n % 8), partial 4-row tiles, one to 32 blocks;
    # it repeats the 1-3 row tiles' arithmetic, so any row's result is the same bits in a batch
    # of 1, 3, 4 or m rows, on any thread count (the 200-row case spans both threads) and any ISA
    # level, and equals the float64 W4A8/W8A8 reference to float32 rounding
    rng = np.random.default_rng(m * 1000 + n + k)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.01, 100, size=(m, 1))).astype(np.float32)
    qw = Q.quantize_weight(rng.standard_normal((n, k)).astype(np.float32), kind)
    b = rng.standard_normal(n).astype(np.float32)
    y1, y2 = _on_1_and_2_threads(lambda: ops.linear(x, qw, b))
    np.testing.assert_array_equal(y1, y2)
    assert _rel(y1, ops.linear(x, qw, b, backend="reference")) <= 1e-5
    for rows in (slice(0, 1), slice(0, 3), slice(m - 4, m)):
        np.testing.assert_array_equal(ops.linear(x[rows], qw, b), y1[rows])
    _same_bits_on_every_isa(lambda: ops.linear(x, qw, b), y1)


@pytest.mark.parametrize("kind", ["int4", "q4_0", "q4_1", "q8_0", "q8_0 raw -128"])
def test_linear_r8_gemm_extreme_rows(isa, kind):
    # full-scale activation codes (+-127 on every element) against nibbles of 15 on 31 of each
    # block's 32 values: an int16 lane's 8 steps reach 8 * 2 * 15 * 127 = 30480 and must not
    # saturate; q8_0 codes of -128 (valid in GGUF files, never made by ggml's quantizer) must
    # count as -128 through the |w| / sign(x, w) trick; a zero row gives the bias, an inf row is
    # NaN and its neighbours stay finite
    k, n = 256, 19
    x = np.full((9, k), 3.0, np.float32)
    x[1::2] *= -1
    x[2] = 0.0
    x[5, 40] = np.inf
    w = np.full((n, k), 7.0, np.float32)
    w[:, ::32] = -8.0  # q4_0/int4: d = 1, codes 15 and 0; q4_1: d = 1, m = -8
    w[::2] *= -1
    if kind == "q8_0 raw -128":  # blocks [f16 d = 1/64][32 codes], every code -128 or 127
        blocks = np.zeros((n, k // 32, 34), np.uint8)
        blocks[:, :, :2] = np.frombuffer(np.float16(1 / 64).tobytes(), np.uint8)
        codes = np.where(np.arange(n * k).reshape(n, k // 32, 32) % 3 == 0, -128, 127).astype(np.int8)
        blocks[:, :, 2:] = codes.view(np.uint8)
        qw = Q.QuantizedWeight("q8_0", (n, k), blocks.reshape(n, -1))
        assert qw.dequantize().min() == -2.0
    else:
        qw = Q.quantize_weight(w, kind)
    b = np.arange(n, dtype=np.float32)
    y = ops.linear(x, qw, b)
    keep = np.delete(np.arange(9), 5)
    assert _rel(y[keep], ops.linear(x[keep], qw, b, backend="reference")) <= 1e-6
    for r in keep:  # the single-row dot tiles compute the same bits
        np.testing.assert_array_equal(ops.linear(x[r : r + 1], qw, b)[0], y[r])
    np.testing.assert_array_equal(y[2], b)
    assert np.isnan(y[5]).all() and np.isfinite(y[keep]).all()


def test_linear_int8_gemm_extreme_rows(isa):
    # int16 codes at full scale on every element (+-32767 against +-127 weights) keep each 256-long
    # block sum exact in int32; all-zero rows give the bias; an inf row is NaN, the others finite
    k, n = 1024, 40
    x = np.full((70, k), 3.0e4, np.float32)
    x[1::2] *= -1
    x[2] = 0.0
    x[3, 5] = np.inf
    w = np.where(np.arange(n * k).reshape(n, k) % 3 == 0, -1.0, 1.0).astype(np.float32)
    qw = Q.quantize_weight(w, "int8")
    b = np.arange(n, dtype=np.float32)
    y = ops.linear(x, qw, b)
    keep = np.delete(np.arange(70), 3)
    want = QR.linear_w8a16(x[keep], qw.data, qw.scale) + b
    assert _rel(y[keep], want) <= 1e-6
    np.testing.assert_array_equal(y[2], b)
    assert np.isnan(y[3]).all() and np.isfinite(y[keep]).all()
    codes, d = QR.quantize_rows_int16(x[:2])
    assert np.abs(codes.astype(np.int64)).max() == 32767 and np.all(d > 0)


def test_linear_bad_inputs():
    w = np.ones((4, 64), np.float32)
    x = np.ones((2, 64), np.float32)
    with pytest.raises(ValueError, match="x"):
        ops.linear(np.ones((2, 63), np.float32), w)
    with pytest.raises(TypeError, match="x"):
        ops.linear(x.astype(np.float64), w)
    with pytest.raises(TypeError, match="w"):
        ops.linear(x, np.ones((4, 64), np.int8))
    with pytest.raises(ValueError, match="w"):
        ops.linear(x, np.ones(64, np.float32))
    with pytest.raises(ValueError, match="bias"):
        ops.linear(x, w, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="backend"):
        ops.linear(x, w, backend="gpu")
    with pytest.raises(ValueError, match="backend"):
        ops.linear(x, w, backend="cuda")
    with pytest.raises(TypeError, match="w"):
        ops.linear(x, "weights")


def test_native_binding_checks():
    from infercore._native import _C

    x = np.ones((2, 64), np.float32)
    out = np.empty((2, 4), np.float32)
    with pytest.raises(ValueError, match="w"):  # wrong bytes per row for q4_0
        _C.linear(x, np.zeros((4, 35), np.uint8), 7, None, None, 0, None, out)
    with pytest.raises(ValueError, match="scale"):
        _C.linear(x, np.zeros((4, 64), np.int8), 4, None, None, 0, None, out)
    with pytest.raises(ValueError, match="scale"):
        _C.linear(x, np.zeros((4, 64), np.int8), 4, np.ones(3, np.float32), None, 0, None, out)
    with pytest.raises(TypeError, match="scale"):
        _C.linear(x, np.zeros((4, 64), np.int8), 4, np.ones(4, np.int32), None, 0, None, out)
    with pytest.raises(ValueError, match="group"):
        _C.linear(x, np.zeros((4, 32), np.uint8), 5, None, np.zeros((4, 1), np.uint16), 48, None, out)
    with pytest.raises(ValueError, match="out"):
        _C.linear(x, np.zeros((4, 64), np.float32), 0, None, None, 0, None, np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="kind"):
        _C.linear(x, np.zeros((4, 64), np.float32), 42, None, None, 0, None, out)


@pytest.mark.parametrize("kind", ["f32", "bf16", "fp8", "int4", "int8", "q4_1"])
def test_linear_long_k_gemm(isa, kind):
    # K spans several of the GEMM path's K chunks (1024) and ends in a partial one.
    rng = np.random.default_rng(7)
    k = 2304 if kind in ("int4", "q4_1") else 2311
    x = rng.standard_normal((13, k)).astype(np.float32)
    qw = Q.quantize_weight(rng.standard_normal((10, k)).astype(np.float32), kind)
    b = rng.standard_normal(10).astype(np.float32)
    y = ops.linear(x, qw, b)
    assert _rel(y, ops.linear(x, qw, b, backend="reference")) <= 1e-5
    # the dot-product tiles (3 rows: one pass over K) agree with the GEMM paths row by row
    # (bit for bit where both run the same block arithmetic: the block kinds' r8 GEMM)
    y3 = ops.linear(x[:3], qw, b)
    assert _rel(y3, y[:3]) <= 1e-5
    if kind in ("int4", "q4_1"):
        np.testing.assert_array_equal(y3, y[:3])


@pytest.mark.parametrize("kind", ["int8", "fp8", "int4", "q8_0", "q4_0", "q4_1"])
def test_linear_quantized_prefill_path(isa, kind):
    # from 64 rows int8 weights run the int16-activation GEMM and fp8/q8_0 are dequantized into
    # the float GEMM (no activation quantization); below, the integer tiles run; the 4-bit kinds
    # run W4A8 at every size (the r8 GEMM from 4 rows, the dot tiles below): each side matches its
    # own reference, the prefill paths are the more accurate ones (int16 codes: within 1e-4 of
    # float activations), threads agree, and a NaN row stays in its row
    from infercore.ops.linear import BLOCK_A8_KINDS, GEMM_MIN_ROWS_QUANT

    rng = np.random.default_rng(11)
    k, n = 320, 45
    w = rng.standard_normal((n, k)).astype(np.float32)
    qw = Q.quantize_weight(w, kind)
    b = rng.standard_normal(n).astype(np.float32)
    for m in (GEMM_MIN_ROWS_QUANT - 1, GEMM_MIN_ROWS_QUANT, 200):
        x = rng.standard_normal((m, k)).astype(np.float32)
        y = ops.linear(x, qw, b)
        assert _rel(y, ops.linear(x, qw, b, backend="reference")) <= 1e-5, m
        deq = x.astype(np.float64) @ qw.dequantize().astype(np.float64).T + b
        if kind in BLOCK_A8_KINDS:  # per-block int8 activations: ~1/254 of each block's max
            assert 1e-4 <= _rel(y, deq) <= 2e-2
        elif m >= GEMM_MIN_ROWS_QUANT:
            assert _rel(y, deq) <= (1e-4 if kind == "int8" else 1e-6)
    x[7, 3] = np.nan
    y1, y2 = _on_1_and_2_threads(lambda: ops.linear(x, qw, b))
    np.testing.assert_array_equal(y1, y2)
    assert np.isnan(y1[7]).all() and np.isfinite(np.delete(y1, 7, axis=0)).all()


def test_linear_int8_gemm_amx_switch_keeps_the_bits():
    # On AMX machines the int8 GEMM runs on int8 tiles (each int16 code split as 256 * hi + lo);
    # INFERCORE_AMX=0 turns that off. Both must give the same bits (NaN rows included).
    import subprocess
    import sys

    code = (
        "import numpy as np, sys, infercore as ic\n"
        "from infercore import ops, quant\n"
        "rng = np.random.default_rng(5)\n"
        "x = (rng.standard_normal((300, 700)) * rng.uniform(0.01, 100, size=(300, 1))).astype(np.float32)\n"
        "x[7, 3] = np.nan\n"
        "qw = quant.quantize_weight(rng.standard_normal((77, 700)).astype(np.float32), 'int8')\n"
        "sys.stdout.buffer.write(ops.linear(x, qw, np.arange(77, dtype=np.float32)).tobytes())\n"
    )
    outs = {}
    for flag in ("1", "0"):
        env = {**os.environ, "INFERCORE_AMX": flag}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, env=env)
        assert run.returncode == 0, run.stderr.decode()
        outs[flag] = np.frombuffer(run.stdout, np.float32).reshape(300, 77)
    np.testing.assert_array_equal(outs["1"], outs["0"])
    assert np.isnan(outs["1"][7]).all() and np.isfinite(np.delete(outs["1"], 7, axis=0)).all()
    info = ic.system_info()["cpu"]
    assert info["amx"] or not info["amx_int8_gemm"]  # tiles are used only where the CPU has them
