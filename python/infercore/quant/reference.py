"""numpy definitions of the quantization formats: the specification the native code is tested
against (fp8 codes by exhaustive comparison, linear kernels through dequantize-then-matmul)."""

from __future__ import annotations

import numpy as np


def fp8_encode(x: np.ndarray, man: int, bias: int, max_code: int, overflow_code: int) -> np.ndarray:
    """float32 -> 8-bit float codes, round to nearest even, for finite/inf/NaN inputs.
    NaN -> 0x7F|sign; +-inf and values rounding past max_code -> overflow_code|sign."""
    x = np.asarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.int64)
    sign = ((bits >> 24) & 0x80).astype(np.uint8)
    ax = bits & 0x7FFFFFFF
    min_normal_exp = 127 + 1 - bias
    exp = ax >> 23
    # Normal range: round the float32 mantissa to `man` bits, then rebias the exponent.
    shift = 23 - man
    r = (ax + ((1 << (shift - 1)) - 1) + ((ax >> shift) & 1)) >> shift
    normal = r - ((127 - bias) << man)
    # Subnormal range: exact scaled value rounded half to even (np.rint).
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.abs(x.astype(np.float64))
        sub = np.rint(np.where(np.isfinite(a), a, 0) * 2.0 ** (man + bias - 1)).astype(np.int64)
    code = np.where(exp < min_normal_exp, sub, normal)
    code = np.where(code > max_code, overflow_code, code)
    code = np.where(ax == 0x7F800000, overflow_code, code)
    code = np.where(ax > 0x7F800000, 0x7F, code)
    return (code.astype(np.uint8) | sign).astype(np.uint8)


def fp8_e4m3_decode(bits: np.ndarray) -> np.ndarray:
    b = np.asarray(bits, dtype=np.uint8).astype(np.int64)
    e, m = (b >> 3) & 0xF, b & 0x7
    v = np.where(e == 0, m * 2.0**-9, (8 + m) * 2.0 ** (e - 10))
    v = np.where((e == 15) & (m == 7), np.nan, v)
    return np.where(b & 0x80, -v, v).astype(np.float32)


def fp8_e5m2_decode(bits: np.ndarray) -> np.ndarray:
    b = np.asarray(bits, dtype=np.uint8).astype(np.uint16) << 8
    return b.view(np.float16).astype(np.float32)


def _quantize_rows(x: np.ndarray, qmax: int, dtype: type, reciprocal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row quantization over the last axis in float32, exactly as the C++ does it:
    d = absmax / qmax, q = clip(rint(x / d) or rint(x * (1 / d)), -qmax, qmax); d = 0 -> q = 0; a
    row holding a non-finite value gets d = NaN and q = 0 (its outputs are NaN)."""
    x = np.asarray(x, dtype=np.float32)
    finite = np.all(np.isfinite(x), axis=-1, keepdims=True)
    amax = np.max(np.abs(np.where(np.isfinite(x), x, 0)), axis=-1, keepdims=True, initial=np.float32(0))
    d = (amax / np.float32(qmax)).astype(np.float32)
    safe = np.where(d > 0, d, np.float32(1))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scaled = x * (np.float32(1) / safe).astype(np.float32) if reciprocal else x / safe
        q = np.where(d > 0, np.rint(scaled), 0)
    q = np.clip(np.where(finite, q, 0), -qmax, qmax).astype(dtype)
    d = np.where(finite, d, np.float32(np.nan)).astype(np.float32)
    return q, d[..., 0]


def quantize_rows_int8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The integer tiles' activation quantization (W8A8 below 64 rows, ggml-style blocks when x is
    [..., K/32, 32]): d = absmax / 127, q = clip(rint(x / d), -127, 127)."""
    return _quantize_rows(x, 127, np.int8, reciprocal=False)


def quantize_rows_int16(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The int8 GEMM's activation codes (csrc/cpu/gemm_int16_impl.h): d = absmax / 32767,
    q = clip(rint(x * (1 / d)), -32767, 32767) (a float32 reciprocal, then one multiply)."""
    return _quantize_rows(x, 32767, np.int16, reciprocal=True)


def linear_w8a16(x: np.ndarray, q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float64 result of the int8 GEMM (from 64 rows): int16 activation codes per row, exact dot."""
    xq, xd = quantize_rows_int16(x)
    acc = xq.astype(np.float64) @ q.astype(np.float64).T
    return acc * xd.astype(np.float64)[:, None] * scale.astype(np.float64)[None, :]


def linear_w8a8(x: np.ndarray, q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float64 result of the int8 kernel: per-token activation quantization, exact int dot."""
    xq, xd = quantize_rows_int8(x)
    acc = xq.astype(np.float64) @ q.astype(np.float64).T
    return acc * xd.astype(np.float64)[:, None] * scale.astype(np.float64)[None, :]


def linear_qblock(x: np.ndarray, w_deq: np.ndarray) -> np.ndarray:
    """float64 result of the block kernels (int4, q8_0, q4_0, q4_1): activations quantized per
    block of 32 (float32 scale), then multiplied with the dequantized weight in float64."""
    m, k = x.shape
    xq, xd = quantize_rows_int8(np.asarray(x, np.float32).reshape(m, k // 32, 32))
    xa = xq.astype(np.float64) * xd.astype(np.float64)[..., None]
    return xa.reshape(m, k) @ np.asarray(w_deq, np.float64).T
