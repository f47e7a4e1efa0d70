"""ops.gelu on the CPU kernels (every ISA level) against the float64 reference."""

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

APPROX = ["none", "tanh"]
SIZES = [0, 1, 7, 33, 1000, 100003]
NP_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
# Budgets. float32: the kernel's own error (measured ~8e-8 on [-10, 10]) on top of the unavoidable
# rounding of the result to float32 (half an ulp of |gelu(x)|), and an absolute bound where the
# result is small enough that this rounding is below 6e-8.
F32_EXCESS = 1.2e-7  # |got - ref| - ulp(ref) / 2, anywhere
F32_ABS_SMALL = 1.5e-7  # |got - ref| for |x| <= 2
# 16-bit outputs: one ulp of the output type (float32 error can move a value across a rounding
# boundary), plus the float32 error for results near zero.
RTOL16 = {"float16": 2.0**-10, "bfloat16": 2.0**-7}
ATOL16 = 2e-7


def _check(got, x, approximate: str, dtype: str) -> None:
    want = ref.gelu(np.asarray(x).astype(np.float64), approximate)
    got64 = np.asarray(got).astype(np.float64)
    assert got64.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got64), np.isnan(want))
    inf = np.isinf(want)
    np.testing.assert_array_equal(got64[inf], want[inf])
    ok = np.isfinite(want)
    err = np.abs(got64[ok] - want[ok])
    if dtype == "float32":
        with np.errstate(over="ignore"):  # the spacing at FLT_MAX is inf
            half_ulp = 0.5 * np.spacing(np.abs(want[ok]).astype(np.float32)).astype(np.float64)
        assert (err - half_ulp).max(initial=0.0) <= F32_EXCESS, (err - half_ulp).max()
    else:
        bound = RTOL16[dtype] * np.abs(want[ok]) + ATOL16
        assert (err <= bound).all(), (err - bound).max()


@pytest.mark.parametrize("approximate", APPROX)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("size", SIZES)
def test_matches_reference(isa, rng, approximate, dtype, size):
    x = (rng.standard_normal(size) * 3).astype(NP_DTYPES[dtype])
    y = ops.gelu(x, approximate=approximate)
    assert isinstance(y, np.ndarray) and y.dtype == x.dtype and y.shape == x.shape
    _check(y, x, approximate, dtype)


@pytest.mark.parametrize("approximate", APPROX)
def test_float32_error_budget_over_minus10_to_10(isa, approximate):
    x = np.linspace(-10, 10, 200001, dtype=np.float32)
    y = ops.gelu(x, approximate=approximate).astype(np.float64)
    want = ref.gelu(x, approximate)
    err = np.abs(y - want)
    half_ulp = 0.5 * np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    assert (err - half_ulp).max() <= F32_EXCESS
    assert err[np.abs(x) <= 2].max() <= F32_ABS_SMALL
    assert err[x <= 0].max() <= 1e-7  # results in [-0.17, 0]: absolute error of the gate term only


@pytest.mark.parametrize("approximate", APPROX)
def test_shapes_are_kept(isa, rng, approximate):
    for shape in [(), (3, 5), (2, 3, 17), (4, 0, 2)]:
        x = rng.standard_normal(shape).astype(np.float32)
        y = ops.gelu(x, approximate=approximate)
        assert y.shape == x.shape and y.dtype == np.float32
        _check(y, x, approximate, "float32")


@pytest.mark.parametrize("approximate", APPROX)
def test_special_values_and_limits(isa, approximate):
    big = np.float32(np.finfo(np.float32).max)
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, big, -big, 3e38, -3e38, 1e30, -1e30, 20.0, -20.0,
                  -15.0, 6.0, 8.5, 1e4], np.float32)
    y = ops.gelu(x, approximate=approximate)
    assert np.isnan(y[0])
    assert y[1] == np.inf
    for i in (2, 4, 6, 8, 10, 12, 13):  # -inf, -0 and very negative: exactly -0
        assert y[i] == 0.0 and np.signbit(y[i]), (x[i], y[i])
    assert y[3] == 0.0 and not np.signbit(y[3])
    for i in (5, 7, 9, 11, 14, 15, 16):  # large x: exactly x
        assert y[i] == x[i], (x[i], y[i])
    # NaN with any payload or sign stays NaN among finite neighbours
    z = np.array([1.0, -np.nan, 2.0, np.float32(np.nan) * -1], np.float32)
    yz = ops.gelu(z, approximate=approximate)
    assert np.isnan(yz[[1, 3]]).all() and np.isfinite(yz[[0, 2]]).all()


@pytest.mark.parametrize("approximate", APPROX)
def test_tiny_and_subnormal_inputs(isa, approximate):
    x = np.array([1e-30, -1e-30, 1e-38, 3e-39, -3e-39, 1e-44, -1e-44, 1.4e-45], np.float32)
    y = ops.gelu(x, approximate=approximate).astype(np.float64)
    want = ref.gelu(x, approximate)  # ~ x / 2
    np.testing.assert_allclose(y[:2], want[:2], rtol=1e-6)
    assert np.abs(y - want).max() <= 1.5e-45  # at most one subnormal step
    nz = y != 0
    assert (np.signbit(y[nz]) == np.signbit(x[nz])).all()


def test_negative_tail_is_small_negative_and_relatively_close(isa):
    # x Phi(x) decays like exp(-x^2 / 2) and underflows float32 gradually near x = -14: no garbage
    # from the exponent scaling. The erfc fit minimises gelu's absolute error, so in this tail
    # (|gelu| < 5e-9) its relative error grows to ~0.5% (tanh form: ~1e-5).
    x = -np.linspace(3, 16, 4001, dtype=np.float32)
    for approximate, rtol in (("none", 1e-2), ("tanh", 1e-4)):
        y = ops.gelu(x, approximate=approximate).astype(np.float64)
        want = ref.gelu(x, approximate)
        assert (y <= 0).all()
        np.testing.assert_allclose(y, want, rtol=rtol, atol=1e-37)
        np.testing.assert_allclose(y, want, rtol=0, atol=1e-8)


def test_in_place_and_out(isa, rng):
    x = (rng.standard_normal((9, 70)) * 3).astype(np.float32)
    want = ops.gelu(x)
    out = np.empty_like(x)
    assert ops.gelu(x, out=out) is out
    np.testing.assert_array_equal(out, want)
    xc = x.copy()
    assert ops.gelu(xc, out=xc) is xc
    np.testing.assert_array_equal(xc, want)
    xb = x.astype(ml_dtypes.bfloat16)
    wb = ops.gelu(xb, approximate="tanh")
    ops.gelu(xb, approximate="tanh", out=xb)
    np.testing.assert_array_equal(xb.view(np.uint16), wb.view(np.uint16))


def test_out_with_reference_and_triton_backends(rng):
    x = rng.standard_normal(37).astype(np.float32)
    for backend in ("reference", "triton"):
        out = np.full_like(x, np.nan)
        assert ops.gelu(x, out=out, backend=backend) is out
        _check(out, x, "none", "float32")


def test_non_contiguous_and_misaligned_inputs_are_copied(isa, rng):
    base = (rng.standard_normal((40, 66)) * 3).astype(np.float32)
    for x in (base[:, ::2], base[::3, 1::2], base[:33, :33].T):
        before = x.copy()
        y = ops.gelu(x)
        assert y.flags.c_contiguous and y.shape == x.shape
        _check(y, x, "none", "float32")
        np.testing.assert_array_equal(x, before)
    raw = np.zeros(4 * 1001 + 1, np.uint8)[1:].view(np.float32)  # misaligned
    raw[...] = rng.standard_normal(1001)
    assert not raw.flags.aligned
    _check(ops.gelu(raw, approximate="tanh"), raw, "tanh", "float32")


def test_large_out_of_place_uses_streaming_stores_correctly(isa, rng):
    # >= 16 MiB out of place switches to non-temporal stores with an alignment peel: compare with
    # the in-place result (which never streams), on an output that starts 4 bytes off alignment.
    n = (17 << 20) // 4 + 13
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    buf = np.empty(n + 16, np.float32)
    out = buf[1:n + 1]
    ops.gelu(x, out=out)
    xc = x.copy()
    ops.gelu(xc, out=xc)
    np.testing.assert_array_equal(out, xc)
    idx = rng.integers(0, n, 5000)
    _check(out[idx], x[idx], "none", "float32")
    # bfloat16, tanh form: 16-byte (AVX2) / 32-byte (AVX-512) streaming stores, output 2 bytes off
    xb = np.concatenate([x, -x])[: (17 << 20) // 2 + 5].astype(ml_dtypes.bfloat16)
    assert xb.nbytes >= 16 << 20
    bufb = np.empty(xb.size + 32, ml_dtypes.bfloat16)
    outb = bufb[1:xb.size + 1]
    ops.gelu(xb, approximate="tanh", out=outb)
    xbc = xb.copy()
    ops.gelu(xbc, approximate="tanh", out=xbc)
    np.testing.assert_array_equal(outb.view(np.uint16), xbc.view(np.uint16))
    _check(outb[idx], xb[idx], "tanh", "bfloat16")


def test_threads_do_not_change_results(rng):
    x = (rng.standard_normal(300_001) * 3).astype(np.float32)
    before = infercore.get_num_threads()
    try:
        infercore.set_num_threads(1)
        a = ops.gelu(x)
        infercore.set_num_threads(3)
        b = ops.gelu(x)
    finally:
        infercore.set_num_threads(before)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("approximate", APPROX)
@pytest.mark.parametrize("tdtype", [torch.float32, torch.float16, torch.bfloat16])
def test_torch_cpu_tensors_in_and_out(isa, approximate, tdtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(7, 33, generator=g) * 3).to(tdtype)
    name = str(tdtype).removeprefix("torch.")
    y = ops.gelu(x, approximate=approximate)
    assert isinstance(y, torch.Tensor) and y.dtype == tdtype and y.shape == x.shape
    _check(y.float().numpy(), x.float().numpy(), approximate, name)
    # close to torch's own gelu (a peer, not the reference)
    peer = torch.nn.functional.gelu(x.float(), approximate=approximate).to(tdtype)
    np.testing.assert_allclose(y.float().numpy(), peer.float().numpy(), rtol=RTOL16.get(name, 1e-6), atol=1e-6)
    out = torch.empty_like(x)
    assert ops.gelu(x, approximate=approximate, out=out) is out
    assert torch.equal(out, y)
    xc = x.clone()
    ops.gelu(xc, approximate=approximate, out=xc)
    assert torch.equal(xc, y)
    y2 = ops.gelu(x[:, ::2], approximate=approximate)  # non-contiguous tensor
    assert torch.equal(y2, y[:, ::2].contiguous())


def test_lists_are_float32():
    y = ops.gelu([[0.0, 1.0], [-1.0, 2.0]])
    assert y.dtype == np.float32 and y.shape == (2, 2)
    np.testing.assert_allclose(y, [[0.0, 0.8413447], [-0.1586553, 1.9544997]], rtol=1e-6)


def test_reference_backend_keeps_type_and_dtype(rng):
    x = rng.standard_normal((4, 8)).astype(np.float16)
    y = ops.gelu(x, backend="reference")
    assert y.dtype == np.float16
    t = ops.gelu(torch.ones(2, 4, dtype=torch.bfloat16), backend="reference", approximate="tanh")
    assert isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=40),
                 elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
    approximate=st.sampled_from(APPROX),
)
def test_hypothesis_matches_reference(x, approximate):
    _check(ops.gelu(x, approximate=approximate), x, approximate, "float32")


# ------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    ("x", "exc", "match"),
    [
        (np.zeros(4, np.int32), TypeError, "x: expected dtype float32, float16 or bfloat16, got int32"),
        (np.zeros(4), TypeError, "x: expected dtype .* got float64"),
        (torch.zeros(3, dtype=torch.int64), TypeError, "x: expected dtype"),
        (["a"], TypeError, "x: expected numbers"),
        ([[1.0], [1.0, 2.0]], ValueError, "x: cannot make an array"),
        ("text", TypeError, "x: expected a numpy array"),
        (None, TypeError, "x: expected a numpy array"),
    ],
)
def test_bad_x(x, exc, match):
    with pytest.raises(exc, match=match):
        ops.gelu(x)


def test_bad_approximate_backend_out():
    x = np.ones((2, 4), np.float32)
    for bad in ("exact", "erf", None, True, ""):
        with pytest.raises(ValueError, match="approximate: expected one of"):
            ops.gelu(x, approximate=bad)
    with pytest.raises(ValueError, match="backend"):
        ops.gelu(x, backend="gpu")
    with pytest.raises(ValueError, match="backend='cuda' needs"):
        ops.gelu(x, backend="cuda")
    with pytest.raises(ValueError, match=r"out: expected shape \(2, 4\)"):
        ops.gelu(x, out=np.empty((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"out: expected shape"):
        ops.gelu(x, out=np.empty(8, np.float32))
    with pytest.raises(TypeError, match="out: expected dtype float32, got float16"):
        ops.gelu(x, out=np.empty((2, 4), np.float16))
    with pytest.raises(TypeError, match="out: expected the same array type"):
        ops.gelu(x, out=torch.empty(2, 4))
    with pytest.raises(ValueError, match="out: expected a C-contiguous"):
        ops.gelu(x, out=np.empty((4, 2), np.float32).T)
    ro = np.empty((2, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        ops.gelu(x, out=ro)
    buf = np.ones(12, np.float32)
    with pytest.raises(ValueError, match="partially overlaps"):
        ops.gelu(buf[:8], out=buf[4:])
    with pytest.raises(ValueError, match="out: expected shape"):
        ops.gelu(x, out=np.empty((2, 5), np.float32), backend="reference")


def test_native_entry_validates_on_its_own():
    x = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="out: expected shape"):
        _C.gelu(x, np.empty(7, np.float32), "float32", False)
    with pytest.raises(ValueError, match="x: expected 1 dimensions"):
        _C.gelu(np.ones((2, 4), np.float32), np.empty((2, 4), np.float32), "float32", False)
    with pytest.raises(TypeError, match="x: expected dtype"):
        _C.gelu(x, np.empty(8, np.float32), "int8", False)
    with pytest.raises(TypeError, match="x: expected 2-byte"):
        _C.gelu(x, np.empty(8, np.float16), "float16", False)
    with pytest.raises(ValueError, match="x: expected a C-contiguous"):
        _C.gelu(np.ones(16, np.float32)[::2], np.empty(8, np.float32), "float32", False)
    ro = np.empty(8, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: expected a writeable"):
        _C.gelu(x, ro, "float32", False)
    buf = np.ones(12, np.float32)
    with pytest.raises(ValueError, match="partially overlaps"):
        _C.gelu(buf[:8], buf[4:], "float32", False)
    y = np.empty(8, np.float32)
    _C.gelu(x, y, "float32", False)
    np.testing.assert_allclose(y, 0.8413447, rtol=1e-6)
