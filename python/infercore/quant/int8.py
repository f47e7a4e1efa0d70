"""Symmetric int8 (per slice along an axis) and group-wise int4 quantization."""

from __future__ import annotations

from typing import Any

import numpy as np

INT4_GROUPS = (32, 64, 128)


def _float_input(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind != "f" and a.dtype.name != "bfloat16":
        raise TypeError(f"{name}: expected a float array, got dtype {a.dtype}")
    return a.astype(np.float32, copy=False)


def _check_axis(axis: Any, ndim: int) -> None:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis: expected an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis: {axis} is out of range for a {ndim}-d array")


def quantize_int8(x: Any, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 along `axis`: scale = absmax / 127 (float32), q = rint(x / scale) with
    ties to even, clipped to [-127, 127]. An all-zero slice gets scale 0 and q 0 (so
    q * scale reproduces it exactly). Non-finite values raise ValueError.
    Returns (q int8 of x's shape, scale float32 of x's shape without `axis`)."""
    a = _float_input(x, "x")
    if a.ndim == 0:
        raise ValueError("x: expected at least 1 dimension")
    _check_axis(axis, a.ndim)
    if not np.all(np.isfinite(a)):
        raise ValueError("x: contains NaN or inf; int8 quantization needs finite values")
    amax = np.max(np.abs(a), axis=axis, keepdims=True, initial=np.float32(0))
    scale = (amax / np.float32(127)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))
    q = np.clip(np.rint(a / safe), -127, 127).astype(np.int8)
    return q, np.squeeze(scale, axis=axis)


def dequantize_int8(q: np.ndarray, scale: np.ndarray, axis: int = -1) -> np.ndarray:
    """q * scale as float32, scale broadcast along `axis` (the inverse of quantize_int8)."""
    qa = np.asarray(q)
    if qa.dtype != np.int8:
        raise TypeError(f"q: expected an int8 array, got {type(q).__name__} of dtype {qa.dtype}")
    if qa.ndim == 0:
        raise ValueError("q: expected at least 1 dimension")
    _check_axis(axis, qa.ndim)
    sa = _float_input(scale, "scale")
    want = qa.shape[:axis % qa.ndim] + qa.shape[axis % qa.ndim + 1 :]
    if sa.shape != want:
        raise ValueError(f"scale: expected shape {want} (q's shape without axis {axis}), got {sa.shape}")
    return qa.astype(np.float32) * np.expand_dims(sa, axis)


def quantize_int4(w: np.ndarray, group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Group-wise symmetric int4 of a [N, K] float matrix (K % group_size == 0).

    Per group: scale = -(the value of largest magnitude) / 8, rounded to float16 (so that value
    maps to q = -8 and the whole range [-8, 7] is used, as ggml's q4_0 does; the scale may be
    negative); q = clip(rint(w / scale), -8, 7), ties to even.
    Packing: each run of 32 values is 16 bytes, value i in the low nibble of byte i and value
    i + 16 in the high nibble, both stored as q + 8. Returns (packed uint8 [N, K/2],
    scales float16 [N, K/group_size])."""
    n, k = w.shape
    g = w.reshape(n, k // group_size, group_size)
    idx = np.argmax(np.abs(g), axis=-1)[..., None]
    vmax = np.take_along_axis(g, idx, axis=-1)
    scale16 = (vmax / np.float32(-8)).astype(np.float16)
    s = scale16.astype(np.float32)
    q = np.clip(np.rint(g / np.where(s != 0, s, 1)), -8, 7).astype(np.int16) + 8
    q = q.reshape(n, k // 32, 2, 16).astype(np.uint8)
    packed = (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(n, k // 2)
    return np.ascontiguousarray(packed), np.ascontiguousarray(scale16[..., 0])


def dequantize_int4(packed: np.ndarray, scales: np.ndarray, group_size: int) -> np.ndarray:
    n = packed.shape[0]
    k = packed.shape[1] * 2
    p = packed.reshape(n, k // 32, 16)
    q = np.stack([p & 0xF, p >> 4], axis=2).astype(np.float32).reshape(n, k) - 8
    s = np.repeat(scales.astype(np.float32), group_size, axis=1)
    return q * s
