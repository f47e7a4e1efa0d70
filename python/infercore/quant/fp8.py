"""float32 <-> 8-bit float bit patterns (OCP E4M3FN and E5M2), computed by the native kernels.

Round to nearest, ties to even; subnormals exact. Overflow (matches torch 2.13's casts):
  E4M3: anything that rounds past 448, and +-inf, becomes +-448 (0x7E/0xFE) with either
        `saturate` value (torch's cast already saturates); NaN -> 0x7F|sign.
  E5M2: saturate=False: past 57344 -> +-inf (0x7C/0xFC), like torch; saturate=True: finite
        values clamp to +-57344, +-inf stays +-inf. NaN -> 0x7F|sign.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import _C

_E4M3, _E5M2 = 0, 1


def _as_f32(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if a.dtype.kind == "f" and a.dtype.itemsize > 4:
        raise TypeError(f"{name}: expected float32 (or narrower), got {a.dtype}; cast explicitly")
    return np.ascontiguousarray(a, dtype=np.float32)


def _check_saturate(saturate: Any) -> bool:
    if not isinstance(saturate, (bool, np.bool_)):
        raise TypeError(f"saturate: expected a bool, got {type(saturate).__name__}")
    return bool(saturate)


def _encode(x: Any, fmt: int, saturate: Any) -> np.ndarray:
    sat = _check_saturate(saturate)
    a = _as_f32(x, "x")
    out = np.empty(a.shape, dtype=np.uint8)
    _C.fp8_encode(a.reshape(-1), out.reshape(-1), fmt, sat)
    return out


def _decode(bits: Any, fmt: int) -> np.ndarray:
    b = np.asarray(bits)
    if b.dtype not in (np.uint8, np.int8):
        raise TypeError(f"bits: expected a uint8 array of fp8 codes, got dtype {b.dtype}")
    b = np.ascontiguousarray(b).view(np.uint8)
    out = np.empty(b.shape, dtype=np.float32)
    _C.fp8_decode(b.reshape(-1), out.reshape(-1), fmt)
    return out


def fp8_e4m3_from_float(x: Any, saturate: bool = True) -> np.ndarray:
    """float32 array -> uint8 E4M3FN codes (same shape)."""
    return _encode(x, _E4M3, saturate)


def fp8_e4m3_to_float(bits: Any) -> np.ndarray:
    """uint8 E4M3FN codes -> float32 (exact; 0x7F/0xFF -> NaN)."""
    return _decode(bits, _E4M3)


def fp8_e5m2_from_float(x: Any, saturate: bool = True) -> np.ndarray:
    """float32 array -> uint8 E5M2 codes (same shape)."""
    return _encode(x, _E5M2, saturate)


def fp8_e5m2_to_float(bits: Any) -> np.ndarray:
    """uint8 E5M2 codes -> float32 (exact)."""
    return _decode(bits, _E5M2)
