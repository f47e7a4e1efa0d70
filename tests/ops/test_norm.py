"""l2_normalize / rms_norm on the CPU kernels (every ISA level) against the float64 reference."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import infercore
from infercore import ops
from infercore.ops import reference as ref

SHAPES = [(1, 1), (7, 33), (129, 1000), (3, 4099), (2, 3, 17)]
# Budgets: float32 results are within a few ulp (sums of squares accumulate in double);
# 16-bit outputs are bounded by their own rounding (2^-11 float16, 2^-8 bfloat16).
RTOL = {"float32": 1e-6, "float16": 2e-3, "bfloat16": 1e-2}
NP_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _expected(op: str, x: np.ndarray, w: np.ndarray | None, eps: float) -> np.ndarray:
    xf = x.astype(np.float64)
    return ref.rms_norm(xf, w, eps) if op == "rms_norm" else ref.l2_normalize(xf, eps)


def _run(op: str, x, w, eps, **kw):
    return ops.rms_norm(x, w, eps, **kw) if op == "rms_norm" else ops.l2_normalize(x, eps, **kw)


def _close(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    got64 = np.asarray(got).astype(np.float64)
    np.testing.assert_allclose(got64, want, rtol=RTOL[dtype], atol=1e-30 if dtype == "float32" else 1e-6)


@pytest.mark.parametrize("op", ["rms_norm", "l2_normalize"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_reference(isa, rng, op, dtype, shape):
    x = rng.standard_normal(shape).astype(NP_DTYPES[dtype])
    w = rng.standard_normal(shape[-1]).astype(np.float32)
    eps = 1e-6 if op == "rms_norm" else 1e-12
    y = _run(op, x, w, eps)
    assert isinstance(y, np.ndarray) and y.dtype == x.dtype and y.shape == x.shape
    _close(y, _expected(op, x, w, eps), dtype)


@pytest.mark.parametrize("op", ["rms_norm", "l2_normalize"])
@pytest.mark.parametrize("seed", range(4))
def test_random_seeds_large_rows(isa, op, seed):
    r = np.random.default_rng(seed)
    x = (r.standard_normal((5, 8191)) * r.uniform(1e-3, 1e3)).astype(np.float32)
    w = r.standard_normal(8191).astype(np.float32)
    _close(_run(op, x, w, 1e-6), _expected(op, x, w, 1e-6), "float32")


def test_large_array_uses_streaming_stores_correctly(isa, rng):
    # > 16 MiB output switches to non-temporal stores with an alignment peel per row; odd cols
    # make every row start at a different alignment.
    x = rng.standard_normal((1031, 4099)).astype(np.float32)
    w = rng.standard_normal(4099).astype(np.float32)
    _close(ops.rms_norm(x, w), ref.rms_norm(x, w), "float32")
    xb = x.astype(ml_dtypes.bfloat16)
    _close(ops.l2_normalize(xb), ref.l2_normalize(xb.astype(np.float64)), "bfloat16")


def test_huge_and_tiny_values_do_not_overflow(isa):
    x = np.array([[3e38, -3e38, 1e38], [1e-40, -2e-40, 0.0]], dtype=np.float32)
    w = np.ones(3, np.float32)
    _close(ops.l2_normalize(x), ref.l2_normalize(x), "float32")
    y = ops.rms_norm(x[:1], w)
    _close(y, ref.rms_norm(x[:1], w), "float32")


def test_zero_rows(isa):
    x = np.zeros((3, 10), np.float32)
    assert np.array_equal(ops.l2_normalize(x), x)
    assert np.array_equal(ops.rms_norm(x, np.ones(10, np.float32)), x)


def test_nan_and_inf_propagate_per_row(isa):
    x = np.ones((3, 9), np.float32)
    x[0, 4] = np.nan
    x[1, 2] = np.inf
    w = np.ones(9, np.float32)
    for op in ("rms_norm", "l2_normalize"):
        y = _run(op, x, w, 1e-6)
        want = _expected(op, x, w, 1e-6)
        assert np.isnan(y[0]).all()
        np.testing.assert_array_equal(np.isnan(y[1]), np.isnan(want[1]))
        np.testing.assert_allclose(y[2], want[2], rtol=1e-6)


def test_empty_leading_dims_return_empty():
    x = np.zeros((0, 5), np.float32)
    assert ops.l2_normalize(x).shape == (0, 5)
    assert ops.rms_norm(np.zeros((2, 0, 5), np.float32), np.ones(5, np.float32)).shape == (2, 0, 5)


def test_non_contiguous_and_misaligned_inputs(isa, rng):
    base = rng.standard_normal((40, 66)).astype(np.float32)
    w = rng.standard_normal(33).astype(np.float32)
    for x in (base[:, ::2], base[::3, 1::2], base[:33, :33].T):
        _close(ops.rms_norm(x, w), ref.rms_norm(x, w), "float32")
    raw = np.zeros(4 * 7 * 33 + 1, np.uint8)[1:].view(np.float32).reshape(7, 33)  # misaligned
    raw[...] = rng.standard_normal((7, 33))
    assert not raw.flags.aligned
    _close(ops.l2_normalize(raw), ref.l2_normalize(raw), "float32")


def test_out_and_in_place(isa, rng):
    x = rng.standard_normal((9, 70)).astype(np.float32)
    w = rng.standard_normal(70).astype(np.float32)
    want = ref.rms_norm(x, w)
    out = np.empty_like(x)
    assert ops.rms_norm(x, w, out=out) is out
    _close(out, want, "float32")
    xc = x.copy()
    ops.rms_norm(xc, w, out=xc)
    _close(xc, want, "float32")


def test_threads_do_not_change_results(rng):
    x = rng.standard_normal((300, 1000)).astype(np.float32)
    w = rng.standard_normal(1000).astype(np.float32)
    before = infercore.get_num_threads()
    try:
        infercore.set_num_threads(1)
        a = ops.rms_norm(x, w)
        infercore.set_num_threads(3)
        b = ops.rms_norm(x, w)
    finally:
        infercore.set_num_threads(before)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("tdtype", [torch.float32, torch.float16, torch.bfloat16])
def test_torch_cpu_tensors_round_trip(isa, tdtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 33, generator=g).to(tdtype)
    w = torch.randn(33, generator=g)
    y = ops.rms_norm(x, w)
    assert isinstance(y, torch.Tensor) and y.dtype == tdtype and y.shape == x.shape
    want = ref.rms_norm(x.float().numpy().astype(np.float64), w.numpy())
    _close(y.float().numpy(), want, str(tdtype).removeprefix("torch."))
    y2 = ops.l2_normalize(x[:, ::2])  # non-contiguous tensor
    _close(y2.float().numpy(), ref.l2_normalize(x[:, ::2].float().numpy()), str(tdtype).removeprefix("torch."))


def test_lists_are_float32():
    y = ops.l2_normalize([[3.0, 4.0]])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[0.6, 0.8]], rtol=1e-7)


def test_reference_backend_keeps_type_and_dtype(rng):
    x = rng.standard_normal((4, 8)).astype(np.float16)
    y = ops.l2_normalize(x, backend="reference")
    assert y.dtype == np.float16
    t = ops.rms_norm(torch.ones(2, 4, dtype=torch.bfloat16), torch.ones(4), backend="reference")
    assert isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=40),
        elements=st.floats(-1e6, 1e6, width=32),
    )
)
def test_hypothesis_matches_reference(x):
    w = np.linspace(-2, 2, x.shape[-1], dtype=np.float32)
    np.testing.assert_allclose(ops.rms_norm(x, w), ref.rms_norm(x, w), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(ops.l2_normalize(x), ref.l2_normalize(x), rtol=1e-6, atol=1e-30)


# ------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((np.float32(1.0),), ValueError, "x: expected at least 1 dimension"),
        ((np.zeros((3, 0), np.float32),), ValueError, "last dimension"),
        ((np.zeros((3, 4)),), TypeError, "float64"),
        ((np.zeros((3, 4), np.int32),), TypeError, "x: expected dtype"),
        ((["a", "b"],), TypeError, "x: expected numbers"),
        (([[1.0], [1.0, 2.0]],), ValueError, "x: cannot make an array"),
        (("text",), TypeError, "x: expected a numpy array"),
        ((None,), TypeError, "x: expected a numpy array"),
    ],
)
def test_bad_x(args, exc, match):
    with pytest.raises(exc, match=match):
        ops.l2_normalize(*args)
    with pytest.raises(exc, match=match):
        ops.rms_norm(*args, np.ones(4, np.float32))


def test_bad_weight_eps_backend_out():
    x = np.ones((2, 4), np.float32)
    with pytest.raises(TypeError, match="weight"):
        ops.rms_norm(x, None)
    with pytest.raises(ValueError, match=r"weight: expected shape \(4,\)"):
        ops.rms_norm(x, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="weight"):
        ops.rms_norm(x, np.ones((4, 1), np.float32))
    with pytest.raises(TypeError, match="weight"):
        ops.rms_norm(x, np.ones(4, np.int64))
    with pytest.raises(ValueError, match="eps"):
        ops.rms_norm(x, np.ones(4, np.float32), eps=-1.0)
    with pytest.raises(ValueError, match="eps"):
        ops.l2_normalize(x, eps=float("nan"))
    with pytest.raises(TypeError, match="eps"):
        ops.l2_normalize(x, eps="small")
    with pytest.raises(ValueError, match="backend"):
        ops.l2_normalize(x, backend="gpu")
    with pytest.raises(ValueError, match="backend='cuda' needs"):
        ops.l2_normalize(x, backend="cuda")
    with pytest.raises(ValueError, match=r"out: expected shape"):
        ops.l2_normalize(x, out=np.empty((2, 5), np.float32))
    with pytest.raises(TypeError, match="out: expected dtype"):
        ops.l2_normalize(x, out=np.empty((2, 4), np.float16))
    with pytest.raises(TypeError, match="out: expected the same array type"):
        ops.l2_normalize(x, out=torch.empty(2, 4))
    with pytest.raises(ValueError, match="out: expected a C-contiguous"):
        ops.l2_normalize(x, out=np.empty((4, 2), np.float32).T)
    buf = np.ones(12, np.float32)
    with pytest.raises(ValueError, match="partially overlaps"):
        ops.l2_normalize(buf[:8].reshape(2, 4), out=buf[4:].reshape(2, 4))


def test_native_entry_validates_on_its_own():
    from infercore._native import _C

    x = np.ones((2, 4), np.float32)
    with pytest.raises(ValueError, match="out: expected shape"):
        _C.l2_normalize(x, np.empty((2, 3), np.float32), "float32", 1e-12)
    with pytest.raises(TypeError, match="x: expected dtype"):
        _C.l2_normalize(x, np.empty((2, 4), np.float32), "int8", 1e-12)
    with pytest.raises(TypeError, match="x: expected 2-byte"):
        _C.l2_normalize(x, np.empty((2, 4), np.float32), "float16", 1e-12)
    with pytest.raises(ValueError, match="x: expected a C-contiguous"):
        _C.l2_normalize(np.ones((4, 4), np.float32)[:, ::2], np.empty((4, 2), np.float32), "float32", 1e-12)
    with pytest.raises(ValueError, match="out: expected a writeable"):
        ro = np.empty((2, 4), np.float32)
        ro.flags.writeable = False
        _C.l2_normalize(x, ro, "float32", 1e-12)
    with pytest.raises(ValueError, match="weight: expected shape"):
        _C.rms_norm(x, np.ones(3, np.float32), np.empty_like(x), "float32", 1e-6)
    with pytest.raises(ValueError, match="eps"):
        _C.rms_norm(x, np.ones(4, np.float32), np.empty_like(x), "float32", -1.0)


def test_bad_inputs_never_crash_the_interpreter():
    # Every bad call in a fresh interpreter: it must end normally, having raised each error.
    script = textwrap.dedent(
        """
        import numpy as np
        from infercore import ops
        from infercore._native import _C
        calls = [
            lambda: ops.l2_normalize(np.zeros((3, 0), np.float32)),
            lambda: ops.rms_norm(np.ones((2, 4), np.float32), np.ones(1, np.float32)),
            lambda: _C.l2_normalize(np.ones((2, 4), np.float32), np.empty((1, 4), np.float32), "float32", 0.0),
            lambda: _C.rms_norm(np.ones((2, 4), np.float32), np.ones((2, 2), np.float32),
                                np.empty((2, 4), np.float32), "float32", 0.0),
            lambda: _C.l2_normalize(np.ones((2, 4), np.float16), np.empty((2, 4), np.float16), "bfloat17", 0.0),
            lambda: _C.set_num_threads(0),
            lambda: _C.set_isa("avx9000"),
            lambda: _C.read_bandwidth_gbps(10, 1),
        ]
        raised = 0
        for call in calls:
            try:
                call()
            except (ValueError, TypeError):
                raised += 1
        print("raised", raised, "of", len(calls))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "raised 8 of 8" in proc.stdout
