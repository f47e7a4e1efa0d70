"""ops.silu_and_mul on the CPU kernels (every ISA level) against the float64 reference."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import infercore
from infercore import ops
from infercore._native import _C
from infercore.ops import reference as ref

NP_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
INNER = [1, 7, 33, 1000, 1537]  # odd sizes: partial vectors at every ISA width
ROWS = [1, 3, 33]
# Budgets. float32: silu(g) is within ~3 ulp of the exact value for g > -87 (measured <= 3.1 ulp
# at every ISA level, before the product's rounding); the product with u adds half an ulp. Below
# g ~ -87 exp(-|g|) is subnormal and only absolutely accurate: < 2e-43 times |u|.
F32_ULPS = 4.0
F32_TINY = 3e-43
# 16-bit outputs: one ulp of the output type (the float32 error can move a value across a rounding
# boundary), and float16's subnormal spacing for results near zero.
RTOL16 = {"float16": 2.0**-10, "bfloat16": 2.0**-7}
ATOL16 = {"float16": 6e-8, "bfloat16": 1e-37}


def _check(got, x, dtype: str) -> None:
    x64 = np.asarray(x).astype(np.float64)
    want = ref.silu_and_mul(x64)
    half = x64.shape[-1] // 2
    got64 = np.asarray(got).astype(np.float64)
    # float32 math: where silu(g) is within the kernel's absolute error of 0 (g < ~-100: a few
    # subnormal steps at most), the kernel may give +-0, and then 0 * (+-inf) is NaN where the
    # float64 product is +-inf: accept either there.
    with np.errstate(invalid="ignore", over="ignore"):
        silu = ref.silu_and_mul(np.concatenate([x64[..., :half], np.ones_like(x64[..., :half])], -1))
    want = np.where((np.abs(silu) < F32_TINY) & np.isinf(x64[..., half:]) & np.isnan(got64), np.nan, want)
    assert got64.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got64), np.isnan(want))
    inf = np.isinf(want)
    np.testing.assert_array_equal(got64[inf], want[inf])
    ok = np.isfinite(want)
    err = np.abs(got64[ok] - want[ok])
    u = np.abs(x64[..., x64.shape[-1] // 2 :])[ok]
    if dtype == "float32":
        with np.errstate(over="ignore"):  # the spacing at FLT_MAX is inf
            ulp = np.spacing(np.abs(want[ok]).astype(np.float32)).astype(np.float64)
        bound = F32_ULPS * ulp + F32_TINY * np.maximum(u, 1.0)
    else:
        bound = RTOL16[dtype] * np.abs(want[ok]) + ATOL16[dtype] + F32_TINY * np.maximum(u, 1.0)
    assert (err <= bound).all(), (err - bound).max()


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("inner", INNER)
@pytest.mark.parametrize("rows", ROWS)
def test_matches_reference(isa, rng, dtype, inner, rows):
    x = (rng.standard_normal((rows, 2 * inner)) * 3).astype(NP_DTYPES[dtype])
    y = ops.silu_and_mul(x)
    assert isinstance(y, np.ndarray) and y.dtype == x.dtype and y.shape == (rows, inner)
    _check(y, x, dtype)


def test_large_input_runs_threaded_and_long_rows_split(isa, rng):
    # 3 x 40001 outputs: above the parallel grain, and rows longer than the 16384-column blocks
    x = (rng.standard_normal((3, 80002)) * 4).astype(np.float32)
    y = ops.silu_and_mul(x)
    _check(y, x, "float32")


def test_float32_error_over_the_gate_range(isa, rng):
    g = np.linspace(-110, 40, 300_001, dtype=np.float32)
    for u in (np.ones_like(g), (rng.standard_normal(g.size) * 3).astype(np.float32)):
        x = np.concatenate([g, u])[None, :]
        y = ops.silu_and_mul(x)[0].astype(np.float64)
        want = ref.silu_and_mul(x)[0]
        err = np.abs(y - want)
        ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
        normal = g > -87
        assert (err[normal] / ulp[normal]).max() <= F32_ULPS
        assert err[~normal].max() <= F32_TINY * np.abs(u[~normal]).max()


def test_shapes_are_kept(isa, rng):
    for shape, oshape in [((2,), (1,)), ((3, 5, 8), (3, 5, 4)), ((2, 0, 6), (2, 0, 3)), ((4, 0), (4, 0)),
                          ((0, 10), (0, 5))]:  # fmt: skip
        x = rng.standard_normal(shape).astype(np.float32)
        y = ops.silu_and_mul(x)
        assert y.shape == oshape and y.dtype == np.float32
        _check(y, x, "float32")


def test_special_values_and_limits(isa):
    inf, nan = np.inf, np.nan
    g = np.array([nan, inf, -inf, 0.0, -0.0, 200.0, -200.0, -1e30, 3e38, 1.0, -inf, inf, -inf, 2.0, nan], np.float32)
    u = np.array([1.0, 2.0, 3.0, 5.0, 5.0, 1.0, 1.0, 1.0, 1.0, nan, -2.0, 0.0, inf, inf, 0.0], np.float32)
    y = ops.silu_and_mul(np.concatenate([g, u]))
    assert np.isnan(y[0])
    assert y[1] == np.inf  # silu(+inf) * 2
    assert y[2] == 0 and np.signbit(y[2])  # silu(-inf) = -0, times 3
    assert y[3] == 0 and not np.signbit(y[3])  # +0 * 5
    assert y[4] == 0 and np.signbit(y[4])  # -0 * 5
    assert y[5] == 200.0 and y[8] == np.float32(3e38)  # large g: exactly g
    assert y[6] == 0 and np.signbit(y[6]) and y[7] == 0 and np.signbit(y[7])
    assert np.isnan(y[9])  # NaN up half
    assert y[10] == 0 and not np.signbit(y[10])  # -0 * -2 = +0
    assert np.isnan(y[11]) and np.isnan(y[12])  # inf * 0, -0 * inf: IEEE
    assert y[13] == np.inf
    assert np.isnan(y[14])  # NaN gate times 0
    _check(y, np.concatenate([g, u]), "float32")


def test_16bit_specials(isa):
    for dt in (np.float16, ml_dtypes.bfloat16):
        g = np.array([np.nan, np.inf, -np.inf, -0.0, 8.0, -30.0], dt)
        u = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 1.0], dt)
        y = ops.silu_and_mul(np.concatenate([g, u])).astype(np.float32)
        assert np.isnan(y[0]) and y[1] == np.inf and y[2] == 0 and np.signbit(y[2]) and np.signbit(y[3])
        assert y[5] <= 0


def test_out_aliasing_rules(isa, rng):
    x = (rng.standard_normal((9, 70)) * 3).astype(np.float32)
    want = ops.silu_and_mul(x)
    out = np.full((9, 35), np.nan, np.float32)
    assert ops.silu_and_mul(x, out=out) is out
    np.testing.assert_array_equal(out, want)
    # out may sit right next to x in one buffer, but must not overlap it at all
    buf = np.empty(9 * 70 + 9 * 35, np.float32)
    buf[: 9 * 70] = x.reshape(-1)
    xs, os_ = buf[: 9 * 70].reshape(9, 70), buf[9 * 70 :].reshape(9, 35)
    ops.silu_and_mul(xs, out=os_)
    np.testing.assert_array_equal(os_, want)
    big = np.empty(9 * 70 + 9 * 35 + 1, np.float32)
    big[: 9 * 70] = x.reshape(-1)
    xb = big[: 9 * 70].reshape(9, 70)
    for lo in (0, 9 * 35, 100, 9 * 70 - 1):  # out on x's own bytes (in place), inside, straddling its end
        with pytest.raises(ValueError, match="out: overlaps x"):
            ops.silu_and_mul(xb, out=big[lo : lo + 9 * 35].reshape(9, 35))
    np.testing.assert_array_equal(xb, x)  # x untouched by the refused calls


def test_out_with_reference_and_triton_backends(rng):
    x = rng.standard_normal((3, 38)).astype(np.float32)
    for backend in ("reference", "triton"):
        out = np.full((3, 19), np.nan, np.float32)
        assert ops.silu_and_mul(x, out=out, backend=backend) is out
        _check(out, x, "float32")
        with pytest.raises(ValueError, match="out: expected shape"):
            ops.silu_and_mul(x, out=np.empty((3, 38), np.float32), backend=backend)


def test_non_contiguous_and_misaligned_inputs_are_copied(isa, rng):
    base = (rng.standard_normal((40, 66)) * 3).astype(np.float32)
    for x in (base[:, ::3], base[::3, 2:], base[:33, :34].T.copy().T):
        before = x.copy()
        y = ops.silu_and_mul(x)
        assert y.flags.c_contiguous and y.shape == (*x.shape[:-1], x.shape[-1] // 2)
        _check(y, x, "float32")
        np.testing.assert_array_equal(x, before)
    raw = np.zeros(4 * 1002 + 1, np.uint8)[1:].view(np.float32)  # misaligned
    raw[...] = rng.standard_normal(1002)
    assert not raw.flags.aligned
    _check(ops.silu_and_mul(raw), raw, "float32")


def test_large_output_uses_streaming_stores_correctly(isa, rng):
    # >= 16 MiB of output switches to non-temporal stores with an alignment peel per row segment;
    # output 4 bytes off alignment, I not a multiple of the vector width. Compared with the same
    # rows run small (cached stores).
    rows, inner = 3, (6 << 20) // 4 + 5
    x = (rng.standard_normal((rows, 2 * inner)) * 3).astype(np.float32)
    buf = np.empty(rows * inner + 16, np.float32)
    out = buf[1 : rows * inner + 1].reshape(rows, inner)
    ops.silu_and_mul(x, out=out)
    for r in range(rows):
        np.testing.assert_array_equal(out[r, :4099], ops.silu_and_mul(x[r, np.r_[:4099, inner : inner + 4099]]))
        np.testing.assert_array_equal(out[r, -4099:], ops.silu_and_mul(x[r, np.r_[inner - 4099 : inner, -4099:0]]))
    idx = rng.integers(0, inner, 3000)
    _check(out[:, idx], np.concatenate([x[:, idx], x[:, inner + idx]], axis=1), "float32")
    # bfloat16: 16-byte (AVX2) / 32-byte (AVX-512) streaming stores, output 2 bytes off
    rb, ib = 2, (8 << 20) // 2 + 3
    xb = (rng.standard_normal((rb, 2 * ib), dtype=np.float32) * 3).astype(ml_dtypes.bfloat16)
    bufb = np.empty(rb * ib + 32, ml_dtypes.bfloat16)
    outb = bufb[1 : rb * ib + 1].reshape(rb, ib)
    assert outb.nbytes >= 16 << 20
    ops.silu_and_mul(xb, out=outb)
    head = ops.silu_and_mul(np.concatenate([xb[:, :999], xb[:, ib : ib + 999]], 1))
    np.testing.assert_array_equal(outb[:, :999].view(np.uint16), head.view(np.uint16))
    _check(outb[:, idx], np.concatenate([xb[:, idx], xb[:, ib + idx]], axis=1), "bfloat16")


def test_threads_do_not_change_results(rng):
    x = (rng.standard_normal((7, 60_002)) * 3).astype(np.float32)
    before = infercore.get_num_threads()
    try:
        infercore.set_num_threads(1)
        a = ops.silu_and_mul(x)
        infercore.set_num_threads(3)
        b = ops.silu_and_mul(x)
    finally:
        infercore.set_num_threads(before)
    assert np.array_equal(a, b)


def test_isa_levels_agree_closely(rng):
    x = (rng.standard_normal((5, 2 * 1001)) * 5).astype(np.float32)
    before = infercore.get_isa()
    try:
        outs = []
        for level in infercore.available_isas():
            infercore.set_isa(level)
            outs.append(ops.silu_and_mul(x).astype(np.float64))
    finally:
        infercore.set_isa(before)
    for o in outs[1:]:  # FMA vs separate rounding: a few ulp apart at most
        np.testing.assert_allclose(o, outs[0], rtol=6e-7, atol=1e-37)


@pytest.mark.parametrize("tdtype", [torch.float32, torch.float16, torch.bfloat16])
def test_torch_cpu_tensors_in_and_out(isa, tdtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(7, 66, generator=g) * 3).to(tdtype)
    name = str(tdtype).removeprefix("torch.")
    y = ops.silu_and_mul(x)
    assert isinstance(y, torch.Tensor) and y.dtype == tdtype and y.shape == (7, 33)
    _check(y.float().numpy(), x.float().numpy(), name)
    # close to torch's own F.silu(g) * u (a peer, not the reference)
    xf = x.float()
    peer = (torch.nn.functional.silu(xf[:, :33]) * xf[:, 33:]).to(tdtype)
    np.testing.assert_allclose(y.float().numpy(), peer.float().numpy(), rtol=RTOL16.get(name, 1e-6) * 2, atol=1e-6)
    out = torch.empty(7, 33, dtype=tdtype)
    assert ops.silu_and_mul(x, out=out) is out
    assert torch.equal(out, y)
    y2 = ops.silu_and_mul(x[::2])  # non-contiguous rows
    assert torch.equal(y2, y[::2].contiguous())


def test_lists_are_float32():
    y = ops.silu_and_mul([[1.0, -2.0, 3.0, 0.5]])
    assert y.dtype == np.float32 and y.shape == (1, 2)
    np.testing.assert_allclose(y, [[0.7310586 * 3.0, -0.2384058 * 0.5]], rtol=1e-6)


def test_reference_backend_keeps_type_and_dtype(rng):
    x = rng.standard_normal((4, 8)).astype(np.float16)
    y = ops.silu_and_mul(x, backend="reference")
    assert y.dtype == np.float16 and y.shape == (4, 4)
    t = ops.silu_and_mul(torch.ones(2, 4, dtype=torch.bfloat16), backend="reference")
    assert isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16 and t.shape == (2, 2)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 5), st.integers(1, 40).map(lambda n: 2 * n)),
        elements=st.one_of(
            st.floats(-(2.0**60), 2.0**60, width=32),  # products stay finite: no overflow
            st.sampled_from([np.nan, np.inf, -np.inf, -0.0, -120.0, -104.5]),
        ),
    ),
)
def test_hypothesis_matches_reference(x):
    _check(ops.silu_and_mul(x), x, "float32")


# ------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    ("x", "exc", "match"),
    [
        (np.zeros(4, np.int32), TypeError, "x: expected dtype float32, float16 or bfloat16, got int32"),
        (np.zeros(4), TypeError, "x: expected dtype .* got float64"),
        (torch.zeros(4, dtype=torch.int64), TypeError, "x: expected dtype"),
        (np.zeros((2, 3), np.float32), ValueError, r"x: expected shape \[\.\.\., 2 \* I\]"),
        (np.float32(1.0), ValueError, r"x: expected shape \[\.\.\., 2 \* I\]"),
        (["a"], TypeError, "x: expected numbers"),
        ([[1.0], [1.0, 2.0]], ValueError, "x: cannot make an array"),
        ("text", TypeError, "x: expected a numpy array"),
        (None, TypeError, "x: expected a numpy array"),
    ],
)
def test_bad_x(x, exc, match):
    with pytest.raises(exc, match=match):
        ops.silu_and_mul(x)


def test_bad_backend_and_out():
    x = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match="backend"):
        ops.silu_and_mul(x, backend="gpu")
    with pytest.raises(ValueError, match="backend='cuda' needs"):
        ops.silu_and_mul(x, backend="cuda")
    with pytest.raises(ValueError, match=r"out: expected shape \(2, 4\)"):
        ops.silu_and_mul(x, out=np.empty((2, 8), np.float32))
    with pytest.raises(TypeError, match="out: expected dtype float32, got float16"):
        ops.silu_and_mul(x, out=np.empty((2, 4), np.float16))
    with pytest.raises(TypeError, match="out: expected the same array type"):
        ops.silu_and_mul(x, out=torch.empty(2, 4))
    with pytest.raises(ValueError, match="out: expected a C-contiguous"):
        ops.silu_and_mul(x, out=np.empty((4, 2), np.float32).T)
    ro = np.empty((2, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        ops.silu_and_mul(x, out=ro)
    with pytest.raises(ValueError, match="out: overlaps x"):
        ops.silu_and_mul(x, out=x.reshape(-1)[:8].reshape(2, 4))


def test_native_entry_validates_on_its_own():
    x = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match=r"out: expected shape \(2, 4\)"):
        _C.silu_and_mul(x, np.empty((2, 5), np.float32), "float32")
    with pytest.raises(ValueError, match="x: expected 2 dimensions"):
        _C.silu_and_mul(np.ones(8, np.float32), np.empty((1, 4), np.float32), "float32")
    with pytest.raises(ValueError, match="x: expected an even last dimension"):
        _C.silu_and_mul(np.ones((2, 7), np.float32), np.empty((2, 3), np.float32), "float32")
    with pytest.raises(TypeError, match="x: expected dtype"):
        _C.silu_and_mul(x, np.empty((2, 4), np.float32), "int8")
    with pytest.raises(TypeError, match="x: expected 2-byte"):
        _C.silu_and_mul(x, np.empty((2, 4), np.float16), "float16")
    with pytest.raises(ValueError, match="x: expected a C-contiguous"):
        _C.silu_and_mul(np.ones((2, 16), np.float32)[:, ::2], np.empty((2, 4), np.float32), "float32")
    ro = np.empty((2, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: expected a writeable"):
        _C.silu_and_mul(x, ro, "float32")
    buf = np.ones(24, np.float32)
    with pytest.raises(ValueError, match="out: overlaps x"):
        _C.silu_and_mul(buf[:16].reshape(2, 8), buf[12:20].reshape(2, 4), "float32")
    y = np.empty((2, 4), np.float32)
    _C.silu_and_mul(x, y, "float32")
    np.testing.assert_allclose(y, 0.7310586, rtol=1e-6)
