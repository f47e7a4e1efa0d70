"""ggml/GGUF block formats: quantize Q8_0/Q4_0/Q4_1 bit-exactly like ggml's reference
quantizers, and dequantize the common tensor types (layouts from the ggml spec).

Block layouts (little endian, `d`/`m`/`dmin` float16):
  Q8_0 (34 B / 32): d, int8 q[32]                                      w = d*q
  Q4_0 (18 B / 32): d, qs[16]: q_i = low nibble of qs[i], q_{i+16} high  w = d*(q-8)
  Q4_1 (20 B / 32): d, m, qs[16] as Q4_0                                w = d*q + m
  Q5_0 (22 B / 32): d, qh (u32: bit i = 5th bit of q_i), qs[16]          w = d*(q-16)
  Q5_1 (24 B / 32): d, m, qh, qs[16]                                    w = d*q + m
  Q4_K (144 B / 256): d, dmin, scales[12] (8 6-bit scales + 8 6-bit mins), qs[128]
  Q5_K (176 B / 256): d, dmin, scales[12], qh[32], qs[128]
  Q6_K (210 B / 256): ql[128], qh[64], int8 scales[16], d
"""

from __future__ import annotations

from typing import Any

import numpy as np

# ggml type ids and (values per block, bytes per block)
GGML_TYPES = {
    "F32": (0, 1, 4),
    "F16": (1, 1, 2),
    "Q4_0": (2, 32, 18),
    "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22),
    "Q5_1": (7, 32, 24),
    "Q8_0": (8, 32, 34),
    "Q4_K": (12, 256, 144),
    "Q5_K": (13, 256, 176),
    "Q6_K": (14, 256, 210),
    "BF16": (30, 1, 2),
}
_BY_ID = {v[0]: k for k, v in GGML_TYPES.items()}


def _round_away(v: np.ndarray) -> np.ndarray:
    """C roundf: halves away from zero."""
    return np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))


def _f16(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.astype(np.float16)).view(np.uint8).reshape(a.shape[0], 2)


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    q = q.astype(np.uint8)
    return q[:, :16] | (q[:, 16:] << 4)


def _unpack_nibbles(qs: np.ndarray) -> np.ndarray:
    return np.concatenate([qs & 0xF, qs >> 4], axis=1)


def quantize_q8_0(blocks: np.ndarray) -> np.ndarray:
    """[nb, 32] float32 -> [nb, 34] uint8."""
    d = np.max(np.abs(blocks), axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    q = _round_away(blocks * inv).astype(np.int8)
    return np.concatenate([_f16(d), q.view(np.uint8)], axis=1)


def quantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    idx = np.argmax(np.abs(blocks), axis=1)[:, None]
    vmax = np.take_along_axis(blocks, idx, axis=1)  # signed value of largest magnitude
    d = vmax / np.float32(-8)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    q = np.clip(np.trunc(blocks * inv + np.float32(8.5)), 0, 15)
    return np.concatenate([_f16(d), _pack_nibbles(q)], axis=1)


def quantize_q4_1(blocks: np.ndarray) -> np.ndarray:
    lo = np.min(blocks, axis=1, keepdims=True)
    hi = np.max(blocks, axis=1, keepdims=True)
    d = (hi - lo) / np.float32(15)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    q = np.clip(np.trunc((blocks - lo) * inv + np.float32(0.5)), 0, 15)
    return np.concatenate([_f16(d), _f16(lo), _pack_nibbles(q)], axis=1)


QUANTIZERS = {"Q8_0": quantize_q8_0, "Q4_0": quantize_q4_0, "Q4_1": quantize_q4_1}


def _half(b: np.ndarray, off: int) -> np.ndarray:
    return np.ascontiguousarray(b[:, off : off + 2]).view(np.float16).astype(np.float32)


def _k_scales(sc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """12 bytes -> 8 six-bit scales and 8 six-bit mins (Q4_K/Q5_K)."""
    sc = sc.astype(np.uint8)
    a, b, c = sc[:, 0:4], sc[:, 4:8], sc[:, 8:12]
    scale = np.concatenate([a & 63, (c & 15) | ((a >> 6) << 4)], axis=1)
    mn = np.concatenate([b & 63, (c >> 4) | ((b >> 6) << 4)], axis=1)
    return scale.astype(np.float32), mn.astype(np.float32)


def _deq_blocks(name: str, b: np.ndarray) -> np.ndarray:
    nb = b.shape[0]
    if name == "Q8_0":
        return _half(b, 0) * b[:, 2:].view(np.int8).astype(np.float32)
    if name == "Q4_0":
        return _half(b, 0) * (_unpack_nibbles(b[:, 2:]).astype(np.float32) - 8)
    if name == "Q4_1":
        return _half(b, 0) * _unpack_nibbles(b[:, 4:]).astype(np.float32) + _half(b, 2)
    if name in ("Q5_0", "Q5_1"):
        off = 2 if name == "Q5_0" else 4
        qh = np.ascontiguousarray(b[:, off : off + 4]).view("<u4")
        high = ((qh >> np.arange(32, dtype=np.uint32)) & 1).astype(np.uint8)
        q = (_unpack_nibbles(b[:, off + 4 :]) | (high << 4)).astype(np.float32)
        if name == "Q5_0":
            return _half(b, 0) * (q - 16)
        return _half(b, 0) * q + _half(b, 2)
    if name in ("Q4_K", "Q5_K"):
        d, dmin = _half(b, 0), _half(b, 2)
        scale, mn = _k_scales(b[:, 4:16])
        qs = b[:, -128:].reshape(nb, 4, 32)
        q = np.stack([qs & 0xF, qs >> 4], axis=2).reshape(nb, 8, 32)  # sub-block 2j low, 2j+1 high
        if name == "Q5_K":
            qh = b[:, 16:48]
            high = (qh[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1  # bit j: sub-block j
            q = q | (high << 4)
        out = (d * scale)[:, :, None] * q.astype(np.float32) - (dmin * mn)[:, :, None]
        return out.reshape(nb, 256)
    if name == "Q6_K":
        ql, qh = b[:, :128].reshape(nb, 2, 64), b[:, 128:192].reshape(nb, 2, 32)
        scales = b[:, 192:208].view(np.int8).astype(np.float32)
        d = _half(b, 208)
        lo = np.concatenate([ql & 0xF, ql >> 4], axis=2)  # [nb, 2, 128]: l, l+32, l+64, l+96
        hi = np.concatenate([(qh >> s) & 3 for s in (0, 2, 4, 6)], axis=2)
        q = (lo | (hi << 4)).astype(np.float32) - 32
        return ((d * scales)[:, :, None] * q.reshape(nb, 16, 16)).reshape(nb, 256)
    raise AssertionError(name)


def _type_name(ggml_type: Any) -> str:
    if isinstance(ggml_type, str):
        key = ggml_type.upper()
        if key not in GGML_TYPES:
            raise ValueError(f"ggml_type: unsupported {ggml_type!r}; expected one of {sorted(GGML_TYPES)}")
        return key
    if isinstance(ggml_type, bool) or not isinstance(ggml_type, (int, np.integer)):
        raise TypeError(f"ggml_type: expected an int id or a name, got {type(ggml_type).__name__}")
    if int(ggml_type) not in _BY_ID:
        raise ValueError(f"ggml_type: unsupported id {int(ggml_type)}; expected one of {sorted(_BY_ID)}")
    return _BY_ID[int(ggml_type)]


def dequantize_gguf(data: Any, ggml_type: Any, shape: Any) -> np.ndarray:
    """Raw tensor bytes -> float32 array of `shape` (row-major, last dim = ggml's ne[0]).

    ggml_type: ggml type id (int or gguf.GGMLQuantizationType) or name ("Q4_K", ...). The last
    dimension must be a multiple of the type's block size and `data` exactly the right length."""
    name = _type_name(ggml_type)
    _, per_block, block_bytes = GGML_TYPES[name]
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape: expected a sequence of ints, got {type(shape).__name__}") from None
    if not shape or any(s < 0 for s in shape):
        raise ValueError(f"shape: expected non-negative dimensions, got {shape}")
    raw = np.asarray(data)
    if raw.dtype.kind not in "uif":
        raise TypeError(f"data: expected a byte buffer or numeric array, got dtype {raw.dtype}")
    raw = np.ascontiguousarray(raw).reshape(-1).view(np.uint8)
    if shape[-1] % per_block:
        raise ValueError(f"shape: last dimension {shape[-1]} is not a multiple of {name}'s block {per_block}")
    count = int(np.prod(shape, dtype=np.int64))
    need = count // per_block * block_bytes
    if raw.size != need:
        raise ValueError(f"data: {name} of shape {shape} needs {need} bytes, got {raw.size}")
    if name == "F32":
        return raw.view("<f4").astype(np.float32).reshape(shape)
    if name == "F16":
        return raw.view("<f2").astype(np.float32).reshape(shape)
    if name == "BF16":
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    blocks = raw.reshape(-1, block_bytes)
    return _deq_blocks(name, blocks).astype(np.float32).reshape(shape)
