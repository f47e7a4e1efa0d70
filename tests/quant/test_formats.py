"""Quantization formats: fp8 codes vs torch (bit-exact), int8/int4, ggml blocks vs gguf."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infercore import quant as Q
from infercore.quant import reference as R

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")


def _patterns() -> np.ndarray:
    hi = np.arange(1 << 16, dtype=np.uint32) << 16
    rng = np.random.default_rng(1)
    rnd = rng.integers(0, 2**32, 1 << 18, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([hi, hi | 0x7FFF, hi | 0x8000, hi | 0xFFFF, rnd]).view(np.float32)


FORMATS = [
    ("e4m3", Q.fp8_e4m3_from_float, Q.fp8_e4m3_to_float, "float8_e4m3fn", (3, 7, 0x7E, 0x7E)),
    ("e5m2", Q.fp8_e5m2_from_float, Q.fp8_e5m2_to_float, "float8_e5m2", (2, 15, 0x7B, 0x7C)),
]


@pytest.mark.parametrize("name,enc,dec,tdt,ref", FORMATS, ids=[f[0] for f in FORMATS])
def test_fp8_matches_torch_bit_exact(name, enc, dec, tdt, ref):
    x = _patterns()
    ours = enc(x, saturate=False)
    theirs = torch.from_numpy(x).to(getattr(torch, tdt)).view(torch.uint8).numpy()
    assert np.array_equal(ours, theirs)
    assert np.array_equal(ours, R.fp8_encode(x, *ref))
    codes = np.arange(256, dtype=np.uint8)
    tdec = torch.from_numpy(codes).view(getattr(torch, tdt)).float().numpy()
    assert np.array_equal(dec(codes), tdec, equal_nan=True)


def test_fp8_saturate_and_specials():
    x = np.array([1e6, -1e6, np.inf, -np.inf, np.nan, 448, 464, 2.0**-9, 2.0**-10], np.float32)
    assert Q.fp8_e4m3_from_float(x).tolist() == [0x7E, 0xFE, 0x7E, 0xFE, 0x7F, 0x7E, 0x7E, 0x01, 0x00]
    e5 = Q.fp8_e5m2_from_float(np.array([1e6, -1e6, np.inf, 57344, 61440], np.float32), saturate=True)
    assert e5.tolist() == [0x7B, 0xFB, 0x7C, 0x7B, 0x7B]
    e5n = Q.fp8_e5m2_from_float(np.array([1e6, 61440], np.float32), saturate=False)
    assert e5n.tolist() == [0x7C, 0x7C]
    assert Q.fp8_e4m3_from_float(np.zeros((2, 3), np.float32)).shape == (2, 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-448, 448, width=32), min_size=1, max_size=64))
def test_fp8_round_trip_is_nearest(values):
    x = np.array(values, np.float32)
    back = Q.fp8_e4m3_to_float(Q.fp8_e4m3_from_float(x))
    grid = Q.fp8_e4m3_to_float(np.arange(256, dtype=np.uint8))
    grid = grid[np.isfinite(grid)]
    best = np.min(np.abs(grid[None, :].astype(np.float64) - x[:, None]), axis=1)
    assert np.array_equal(np.abs(back.astype(np.float64) - x), best)
    # idempotent on the grid
    assert np.array_equal(Q.fp8_e4m3_to_float(Q.fp8_e4m3_from_float(back)), back)


def test_fp8_bad_inputs():
    with pytest.raises(TypeError, match="saturate"):
        Q.fp8_e4m3_from_float(np.ones(3, np.float32), saturate=1)
    with pytest.raises(TypeError, match="bits"):
        Q.fp8_e4m3_to_float(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="x"):
        Q.fp8_e5m2_from_float(np.ones(3, np.float64))


def test_quantize_int8():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 33)).astype(np.float32)
    x[2] = 0
    q, s = Q.quantize_int8(x)
    assert q.dtype == np.int8 and s.dtype == np.float32 and s.shape == (5,)
    assert s[2] == 0 and not q[2].any()
    assert np.abs(q).max() == 127
    err = np.abs(Q.dequantize_int8(q, s) - x).max(axis=1)
    assert np.all(err <= s / 2 + 1e-7)
    q0, s0 = Q.quantize_int8(x, axis=0)
    assert q0.shape == x.shape and s0.shape == (33,)
    # ties to even: 0.5 * scale -> 0, 1.5 * scale -> 2
    qt, _ = Q.quantize_int8(np.array([127.0, 0.5, 1.5, -2.5], np.float32))
    assert qt.tolist() == [127, 0, 2, -2]
    with pytest.raises(ValueError, match="x"):
        Q.quantize_int8(np.array([1.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="axis"):
        Q.quantize_int8(x, axis=2)
    with pytest.raises(TypeError, match="x"):
        Q.quantize_int8(np.ones(3, np.int32))
    with pytest.raises(TypeError, match="q"):
        Q.dequantize_int8(q.astype(np.int16), s)
    with pytest.raises(TypeError, match="q"):
        Q.dequantize_int8(None, s)
    with pytest.raises(ValueError, match="axis"):
        Q.dequantize_int8(q, s, axis=2**40)
    with pytest.raises(TypeError, match="axis"):
        Q.dequantize_int8(q, s, axis=1.0)
    with pytest.raises(ValueError, match="scale"):
        Q.dequantize_int8(q, s0)
    with pytest.raises(TypeError, match="scale"):
        Q.dequantize_int8(q, s.astype(np.int32))
    assert np.array_equal(Q.dequantize_int8(q0, s0, axis=0), q0 * s0[None, :])


@pytest.mark.parametrize("name", ["Q8_0", "Q4_0", "Q4_1"])
def test_gguf_quantize_bit_exact(name):
    rng = np.random.default_rng(2)
    w = (rng.standard_normal((6, 128)) * rng.uniform(0.01, 10, (6, 1))).astype(np.float32)
    w[1, :32] = 0
    ours = Q.quantize_weight(w, name.lower()).data
    theirs = gguf.quants.quantize(w, getattr(gguf.GGMLQuantizationType, name))
    assert np.array_equal(ours, theirs)
    deq = Q.dequantize_gguf(ours, name, w.shape)
    assert np.array_equal(deq, gguf.quants.dequantize(theirs, getattr(gguf.GGMLQuantizationType, name)))


def _random_blocks(name: str, nblocks: int, rng) -> np.ndarray:
    _, _, nbytes = Q.GGML_TYPES[name]
    raw = rng.integers(0, 256, (nblocks, nbytes), dtype=np.uint8)

    def sane(n: int) -> np.ndarray:  # n float16 scales per block with sane magnitudes
        return np.ascontiguousarray(rng.uniform(-0.1, 0.1, (nblocks, n)).astype(np.float16)).view(np.uint8)

    if name in ("Q4_K", "Q5_K"):
        raw[:, :4] = sane(2)
    elif name == "Q6_K":
        raw[:, 208:] = sane(1)
    elif name in ("Q4_1", "Q5_1"):
        raw[:, :4] = sane(2)
    elif name.startswith("Q"):
        raw[:, :2] = sane(1)
    return raw


@pytest.mark.parametrize("name", ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"])
def test_dequantize_gguf_matches_gguf(name):
    rng = np.random.default_rng(3)
    per_block, _ = Q.GGML_TYPES[name][1:]
    raw = _random_blocks(name, 12, rng)
    shape = (3, 4 * per_block)
    ours = Q.dequantize_gguf(raw.reshape(-1), name, shape)
    theirs = gguf.quants.dequantize(raw.reshape(3, -1), getattr(gguf.GGMLQuantizationType, name))
    assert ours.shape == shape and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs.reshape(shape))
    # the ggml type id works too
    assert np.array_equal(Q.dequantize_gguf(raw, int(getattr(gguf.GGMLQuantizationType, name)), shape), ours)


def test_dequantize_gguf_float_types():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 8)).astype(np.float32)
    assert np.array_equal(Q.dequantize_gguf(x.view(np.uint8), "F32", (3, 8)), x)
    h = x.astype(np.float16)
    assert np.array_equal(Q.dequantize_gguf(h.view(np.uint8), "F16", (3, 8)), h.astype(np.float32))
    bf = (x.view(np.uint32) >> 16).astype(np.uint16)
    theirs = gguf.quants.dequantize(bf.view(np.uint8), gguf.GGMLQuantizationType.BF16)
    assert np.array_equal(Q.dequantize_gguf(bf, "BF16", (3, 8)), theirs.reshape(3, 8))


def test_dequantize_gguf_bad_inputs():
    raw = np.zeros(34, np.uint8)
    with pytest.raises(ValueError, match="data"):
        Q.dequantize_gguf(raw[:-1], "Q8_0", (1, 32))
    with pytest.raises(ValueError, match="shape"):
        Q.dequantize_gguf(raw, "Q8_0", (1, 31))
    with pytest.raises(ValueError, match="ggml_type"):
        Q.dequantize_gguf(raw, "Q9_9", (1, 32))
    with pytest.raises(ValueError, match="ggml_type"):
        Q.dequantize_gguf(raw, 99, (1, 32))
    with pytest.raises(TypeError, match="ggml_type"):
        Q.dequantize_gguf(raw, 1.5, (1, 32))


@pytest.mark.parametrize("kind", Q.KINDS)
def test_quantize_weight_round_trip(kind):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((7, 128)).astype(np.float32)
    w[3] = 0
    qw = Q.quantize_weight(w, kind)
    assert qw.kind == kind and qw.shape == (7, 128)
    deq = qw.dequantize()
    assert deq.shape == w.shape and deq.dtype == np.float32
    assert not deq[3].any()
    budgets = {"int8": 1e-2, "q8_0": 1e-2, "fp8": 6e-2, "int4": 0.15, "q4_0": 0.15, "q4_1": 0.15}
    budget = budgets.get(kind, 5e-3)
    assert np.linalg.norm(deq - w) / np.linalg.norm(w) <= budget
    assert qw.nbytes >= qw.data.nbytes
    if kind == "int4":
        assert qw.group_size == 128 and qw.nbytes == 7 * 64 + 7 * 1 * 2
    if kind == "q4_0":
        assert qw.nbytes == 7 * 4 * 18


def test_quantize_weight_errors():
    w = np.ones((4, 64), np.float32)
    with pytest.raises(ValueError, match="kind"):
        Q.quantize_weight(w, "int3")
    with pytest.raises(TypeError, match="kind"):
        Q.quantize_weight(w, 8)
    with pytest.raises(ValueError, match="w"):
        Q.quantize_weight(np.ones((4, 40), np.float32), "q4_0")
    with pytest.raises(ValueError, match="group_size"):
        Q.quantize_weight(w, "int4", group_size=48)
    with pytest.raises(ValueError, match="group_size"):
        Q.quantize_weight(w, "int8", group_size=32)
    with pytest.raises(ValueError, match="w"):
        Q.quantize_weight(np.ones((4, 96), np.float32), "int4", group_size=64)
    with pytest.raises(ValueError, match="w"):
        Q.quantize_weight(np.ones(64, np.float32), "int8")
    with pytest.raises(TypeError, match="w"):
        Q.quantize_weight(np.ones((4, 64), np.int32), "int8")
    bad = w.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="w"):
        Q.quantize_weight(bad, "fp8")
    gs = [Q.quantize_weight(np.ones((2, 64), np.float32), "int4", group_size=g).group_size for g in (32, 64)]
    assert gs == [32, 64]
