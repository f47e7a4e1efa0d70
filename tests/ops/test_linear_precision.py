"""ops.linear(precision="high") (bf16x3 on AMX-BF16 tiles for float32 weights, else the float32
path) and ops.linear(activation="gelu") (GELU fused into the GEMM tasks): accuracy against the
float64 reference, the same bits for any thread count and row grouping, IEEE specials, the
fallbacks, and bad arguments."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import infercore as ic
from infercore import ops
from infercore import quant as Q

# bf16x3 drops the lo*lo and rounding-residue terms (each <= 2^-17 relative per product)
HIGH_BUDGET = 2e-5


def _bf16x3_active() -> bool:
    return bool(ic.system_info()["cpu"].get("amx_bf16x3_gemm")) and ic.get_isa() == "avx512"


def _rel(a, b):
    b = np.asarray(b, np.float64)
    return np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(b), 1e-300)


def _threads(n, fn):
    before = ic.get_num_threads()
    try:
        ic.set_num_threads(n)
        return fn()
    finally:
        ic.set_num_threads(before)


@pytest.mark.parametrize(("m", "n", "k"), [(16, 1, 1), (17, 33, 7), (33, 64, 32), (200, 129, 300), (385, 70, 513),
                                           (1000, 48, 96)])
def test_linear_precision_high_accuracy_threads_rows(isa, m, n, k):
    rng = np.random.default_rng(m * 7 + n)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    y1 = _threads(1, lambda: ops.linear(x, w, b, precision="high"))
    y2 = _threads(2, lambda: ops.linear(x, w, b, precision="high"))
    np.testing.assert_array_equal(y1, y2)
    assert _rel(y1, ops.linear(x, w, b, backend="reference")) <= HIGH_BUDGET
    # a row's result does not depend on which other rows share the call
    np.testing.assert_array_equal(ops.linear(x[-16:], w, b, precision="high"), y1[-16:])
    highest = ops.linear(x, w, b)
    if _bf16x3_active() and k > 1:
        assert not np.array_equal(y1, highest)  # the tiles really ran
    elif not _bf16x3_active():
        np.testing.assert_array_equal(y1, highest)  # "high" is "highest" off AMX-BF16


def test_linear_precision_high_specials_fall_back(isa):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((40, 64)).astype(np.float32)
    w = rng.standard_normal((48, 64)).astype(np.float32)
    x[3, 5] = np.inf
    x[4, 6] = -np.inf
    x[7, 2] = np.nan
    # the split cannot carry inf/NaN: such a call runs the float32 GEMM, the same bits as "highest"
    np.testing.assert_array_equal(ops.linear(x, w, precision="high"), ops.linear(x, w))
    # a weight or an activation beyond bf16's range: the call falls back to float32 (same bits)
    finite = np.nan_to_num(x[:20], nan=0.5, posinf=0.5, neginf=0.5)
    assert not np.array_equal(ops.linear(finite, w, precision="high"), ops.linear(finite, w)) or not _bf16x3_active()
    for wv, xv in ((np.inf, 1.0), (np.nan, 1.0), (3.4e38, 1.0), (1.0, 3.4e38), (1.0, -np.inf)):
        w2, x2 = w.copy(), finite.copy()
        w2[5, 9], x2[2, 1] = wv, xv
        np.testing.assert_array_equal(ops.linear(x2, w2, precision="high"), ops.linear(x2, w2))


@pytest.mark.parametrize("kind", ["f16", "bf16", "fp8"])
@pytest.mark.parametrize(("m", "n", "k"), [(64, 1, 1), (65, 33, 7), (300, 77, 700)])
def test_linear_precision_high_float_kinds(isa, kind, m, n, k):
    # float16 weights split like float32 (three products); bfloat16 and fp8 weights are exact in
    # bf16 (two products; fp8's row scale in the epilogue). fp8 takes the GEMM from 64 rows.
    rng = np.random.default_rng(m + n + k)
    x = rng.standard_normal((m, k)).astype(np.float32)
    qw = Q.quantize_weight(rng.standard_normal((n, k)).astype(np.float32), kind)
    b = rng.standard_normal(n).astype(np.float32)
    y1 = _threads(1, lambda: ops.linear(x, qw, b, precision="high"))
    np.testing.assert_array_equal(_threads(2, lambda: ops.linear(x, qw, b, precision="high")), y1)
    assert _rel(y1, ops.linear(x, qw, b, backend="reference")) <= HIGH_BUDGET
    np.testing.assert_array_equal(ops.linear(x[-64:], qw, b, precision="high"), y1[-64:])
    if not _bf16x3_active():
        np.testing.assert_array_equal(y1, ops.linear(x, qw, b))
    elif k > 1:
        assert not np.array_equal(y1, ops.linear(x, qw, b))


def test_linear_precision_high_block_kinds_unchanged(isa):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((70, 96)).astype(np.float32)
    for kind in ("q8_0", "q4_0", "q4_1", "int4"):
        qw = Q.quantize_weight(rng.standard_normal((40, 96)).astype(np.float32), kind)
        np.testing.assert_array_equal(ops.linear(x, qw, precision="high"), ops.linear(x, qw), err_msg=kind)


def _int8_case(m, n, k, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.1, 10, size=(m, 1))).astype(np.float32)
    qw = Q.quantize_weight(rng.standard_normal((n, k)).astype(np.float32), "int8")
    return x, qw, rng.standard_normal(n).astype(np.float32)


@pytest.mark.parametrize(("m", "n", "k"), [(64, 1, 1), (65, 33, 7), (300, 77, 700), (385, 70, 513), (64, 32, 256)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_int8_precision_high_is_w8a8_at_every_size(isa, m, n, k, with_bias):
    from infercore.ops.linear import int8_activation_bits

    x, qw, b = _int8_case(m, n, k, m + n)
    b = b if with_bias else None
    x[m // 2, k // 2] = np.nan
    assert int8_activation_bits(m) == 16 and int8_activation_bits(63) == 8 and int8_activation_bits(m, "high") == 8
    with pytest.raises(TypeError, match="precision"):
        int8_activation_bits(m, 700)  # the old (rows, k) form
    with pytest.raises(ValueError, match="precision"):
        int8_activation_bits(m, "medium")
    y1 = _threads(1, lambda: ops.linear(x, qw, b, precision="high"))
    y2 = _threads(2, lambda: ops.linear(x, qw, b, precision="high"))
    np.testing.assert_array_equal(y1, y2)
    assert np.isnan(y1[m // 2]).all() and np.isfinite(np.delete(y1, m // 2, axis=0)).all()
    # W8A8 (AMX tiles, or the int16 GEMM on the widened codes): every row the same bits as the
    # dot-product tiles give it below 64 rows, whatever the batch it came in
    small = np.concatenate([ops.linear(x[i:i + 10], qw, b) for i in range(0, m, 10)])
    np.testing.assert_array_equal(y1, small)
    np.testing.assert_array_equal(ops.linear(x[:1], qw, b, precision="high"), y1[:1])
    assert not np.array_equal(y1, ops.linear(x, qw, b))  # "highest" from 64 rows: W8A16, other bits
    ref = ops.linear(x, qw, b, backend="reference", precision="high")
    keep = np.delete(np.arange(m), m // 2)
    assert _rel(y1[keep], ref[keep]) <= 1e-6


@pytest.mark.parametrize("m", [10, 64, 300])
@pytest.mark.parametrize("high", [False, True])
def test_linear_int8_act_scale_is_x_times_scale(isa, m, high):
    # the native act_scale (SmoothQuant's 1/s inside the quantizer) gives the bits of quantizing x * s
    from infercore._native import _C
    from infercore.quant.weight import KIND_CODES

    x, qw, b = _int8_case(m, 40, 96, m)
    s = np.random.default_rng(1).uniform(0.05, 20, 96).astype(np.float32)
    got, want = np.empty((m, 40), np.float32), np.empty((m, 40), np.float32)
    _C.linear(x, qw.data, KIND_CODES["int8"], qw.scale, None, 0, b, got, high, False, s)
    _C.linear(np.ascontiguousarray(x * s), qw.data, KIND_CODES["int8"], qw.scale, None, 0, b, want, high, False)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="act_scale"):
        _C.linear(x, qw.data, KIND_CODES["int8"], qw.scale, None, 0, b, got, high, False, s[:-1])
    with pytest.raises(ValueError, match="act_scale"):
        _C.linear(x, np.ones((40, 96), np.float32), KIND_CODES["f32"], None, None, 0, b, got, high, False, s)


def test_linear_precision_high_amx_switch():
    # INFERCORE_AMX=0 keeps "high" off the tiles: float32 weights get the bits of "highest", int8
    # weights still run W8A8 (the int16 GEMM on 8-bit codes): the bits of the dot-product tiles
    code = (
        "import numpy as np, sys\n"
        "from infercore import ops, quant\n"
        "rng = np.random.default_rng(5)\n"
        "x = rng.standard_normal((300, 200)).astype(np.float32)\n"
        "w = rng.standard_normal((77, 200)).astype(np.float32)\n"
        "qw = quant.quantize_weight(w, 'int8')\n"
        "out = sys.stdout.buffer\n"
        "out.write(ops.linear(x, w, precision='high').tobytes() + ops.linear(x, w).tobytes())\n"
        "out.write(ops.linear(x, qw, precision='high').tobytes())\n"
        "out.write(np.concatenate([ops.linear(x[i:i + 50], qw) for i in range(0, 300, 50)]).tobytes())\n"
    )
    env = {**os.environ, "INFERCORE_AMX": "0"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr.decode()
    y = np.frombuffer(run.stdout, np.float32).reshape(4, 300, 77)
    np.testing.assert_array_equal(y[0], y[1])
    np.testing.assert_array_equal(y[2], y[3])
    info = ic.system_info()["cpu"]
    assert info["amx_bf16"] or not info["amx_bf16x3_gemm"]


@pytest.mark.parametrize("kind", ["f32", "f16", "int8", "fp8", "q8_0", "q4_1"])
@pytest.mark.parametrize("m", [1, 7, 64, 300])
def test_linear_fused_gelu_same_bits(isa, kind, m):
    rng = np.random.default_rng(m)
    x = rng.standard_normal((m, 96)).astype(np.float32)
    w = (rng.standard_normal((200, 96)) * 0.2).astype(np.float32)
    qw = Q.quantize_weight(w, kind)
    b = rng.standard_normal(200).astype(np.float32)
    for precision in ("high", "highest"):  # "highest" last: compared with the reference below
        y = ops.linear(x, qw, b, precision=precision)
        def fused_gelu(p=precision):
            return ops.linear(x, qw, b, precision=p, activation="gelu")

        fused = _threads(2, fused_gelu)
        np.testing.assert_array_equal(fused, ops.gelu(y))
        np.testing.assert_array_equal(_threads(1, fused_gelu), fused)
    ref = ops.linear(x, qw, b, backend="reference", activation="gelu")
    np.testing.assert_allclose(fused, ref, atol=5e-6 if kind == "f32" else 2e-5, rtol=1e-5)


def test_linear_fused_gelu_empty_k_and_leading_dims():
    b = np.array([-1.0, 0.0, 2.0], np.float32)
    y = ops.linear(np.zeros((4, 0), np.float32), np.zeros((3, 0), np.float32), b, activation="gelu")
    np.testing.assert_array_equal(y, np.tile(ops.gelu(b), (4, 1)))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 32)).astype(np.float32)
    w = rng.standard_normal((8, 32)).astype(np.float32)
    np.testing.assert_array_equal(ops.linear(x, w, activation="gelu"), ops.gelu(ops.linear(x, w)))


def test_linear_precision_and_activation_bad_arguments():
    x = np.ones((2, 8), np.float32)
    w = np.ones((3, 8), np.float32)
    with pytest.raises(ValueError, match="precision"):
        ops.linear(x, w, precision="medium")
    with pytest.raises(TypeError, match="precision"):
        ops.linear(x, w, precision=1)
    with pytest.raises(ValueError, match="activation"):
        ops.linear(x, w, activation="relu")
    with pytest.raises(ValueError, match="activation"):
        ops.linear(x, w, activation=True)
