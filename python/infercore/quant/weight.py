"""QuantizedWeight: a [N, K] weight matrix packed in one of the formats the linear kernels read."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import gguf as G
from .fp8 import fp8_e4m3_from_float, fp8_e4m3_to_float
from .int8 import INT4_GROUPS, dequantize_int4, quantize_int4, quantize_int8

KINDS = ("int8", "fp8", "int4", "q8_0", "q4_0", "q4_1", "f16", "bf16", "f32")
# Codes of csrc/cpu/linear.h's WKind.
KIND_CODES = {"f32": 0, "f16": 1, "bf16": 2, "fp8": 3, "int8": 4, "int4": 5, "q8_0": 6, "q4_0": 7, "q4_1": 8}


@dataclass(frozen=True)
class QuantizedWeight:
    """A packed [N, K] weight (y = x @ W.T). Fields by kind:
    int8: data int8 [N, K], scale float32 [N]       (W8A8: activations quantized per token)
    fp8:  data uint8 E4M3 [N, K], scale float32 [N] (w = fp8 * scale; activations float)
    int4: data uint8 [N, K/2], scale float16 [N, K/group_size] (see quant.int8.quantize_int4)
    q8_0/q4_0/q4_1: data uint8 [N, K/32 * block bytes], ggml blocks (activations quantized
          per block of 32 like ggml's q8_0/q8_1)
    f32/f16/bf16: data [N, K] (bf16 as uint16 bits)
    The fields are numpy arrays on the host; `.to(device)` gives the same bytes as torch tensors
    on a device (bf16 bits as int16, torch having no uint16 kernels), for ops.linear on CUDA.
    """

    kind: str
    shape: tuple[int, int]
    data: np.ndarray
    scale: np.ndarray | None = None
    group_size: int | None = None

    @property
    def nbytes(self) -> int:
        """Bytes the kernels read: packed weights plus scales."""
        return int(self.data.nbytes + (self.scale.nbytes if self.scale is not None else 0))

    @property
    def device(self) -> str:
        """'host' when the fields are numpy arrays, else the torch device ('cuda:0', 'cpu')."""
        if isinstance(self.data, np.ndarray):
            return "host"
        return str(self.data.device)

    def to(self, device: Any) -> QuantizedWeight:
        """The same kind, shape and bytes with data/scale as torch tensors on `device` (a torch
        device or its name: 'cuda', 'cuda:1', 'cpu' (CPU torch tensors, for the Triton
        interpreter)); device='host' gives numpy arrays back. The bytes are copied as-is."""
        if isinstance(device, str) and device == "host":
            if self.device == "host":
                return self
            data = self.data.detach().cpu().numpy()
            if self.kind == "bf16":
                data = data.view(np.uint16)
            scale = None if self.scale is None else self.scale.detach().cpu().numpy()
            return replace(self, data=data, scale=scale)
        import torch

        try:
            dev = torch.device(device)
        except (TypeError, RuntimeError) as e:
            raise ValueError(f"device: expected 'host', a torch.device or a device name, got {device!r}") from e
        if dev.type == "cuda" and dev.index is None:  # 'cuda' names the current device: compare as 'cuda:N'
            dev = torch.device("cuda", torch.cuda.current_device())
        if self.device != "host":
            if self.data.device == dev:
                return self
            scale = None if self.scale is None else self.scale.to(dev)
            return replace(self, data=self.data.to(dev), scale=scale)
        host = self.data.view(np.int16) if self.kind == "bf16" else self.data
        data = torch.from_numpy(np.ascontiguousarray(host)).to(dev)
        scale = None if self.scale is None else torch.from_numpy(np.ascontiguousarray(self.scale)).to(dev)
        return replace(self, data=data, scale=scale)

    def dequantize(self) -> np.ndarray:
        """float32 [N, K]: the exact matrix the kernels multiply by (numpy, on the host)."""
        if self.device != "host":
            return self.to("host").dequantize()
        n, k = self.shape
        if self.kind == "int8":
            return self.data.astype(np.float32) * self.scale[:, None]
        if self.kind == "fp8":
            return fp8_e4m3_to_float(self.data) * self.scale[:, None]
        if self.kind == "int4":
            return dequantize_int4(self.data, self.scale, self.group_size)
        if self.kind in ("q8_0", "q4_0", "q4_1"):
            return G.dequantize_gguf(self.data, self.kind.upper(), (n, k))
        if self.kind == "bf16":
            return (self.data.astype(np.uint32) << 16).view(np.float32)
        return self.data.astype(np.float32)


def _bf16_bits(w: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits, round to nearest even (inputs are finite)."""
    b = w.view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def quantize_weight(w: Any, kind: str, group_size: int | None = None) -> QuantizedWeight:
    """Pack a float [N, K] weight for ops.linear.

    kind: one of KINDS. group_size: int4 only (32, 64 or 128; default 128 if it divides K,
    else 64, else 32); K must be a multiple of it. ggml kinds need K % 32 == 0 (ValueError
    otherwise: ggml blocks never straddle rows, so padding would change the format).
    Weights must be finite (ValueError). Scales of an all-zero row are 0 (exact zeros)."""
    if not isinstance(kind, str):
        raise TypeError(f"kind: expected a str, got {type(kind).__name__}")
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    arr = np.asarray(w) if not hasattr(w, "detach") else w.detach().float().cpu().numpy()
    if arr.dtype.kind != "f" and arr.dtype.name != "bfloat16":
        raise TypeError(f"w: expected a float array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"w: expected a 2-D [N, K] array, got shape {arr.shape}")
    w32 = np.ascontiguousarray(arr, dtype=np.float32)
    n, k = (int(s) for s in w32.shape)
    if not np.all(np.isfinite(w32)):
        raise ValueError("w: contains NaN or inf")
    if group_size is not None and kind != "int4":
        raise ValueError(f"group_size: only used with kind='int4', got kind={kind!r}")
    if kind == "f32":
        return QuantizedWeight(kind, (n, k), w32)
    if kind == "f16":
        if np.any(np.abs(w32) > 65504):
            raise ValueError("w: values beyond the float16 range (65504)")
        return QuantizedWeight(kind, (n, k), w32.astype(np.float16))
    if kind == "bf16":
        return QuantizedWeight(kind, (n, k), _bf16_bits(w32))
    if kind == "int8":
        q, s = quantize_int8(w32, axis=1)
        return QuantizedWeight(kind, (n, k), q, s.astype(np.float32))
    if kind == "fp8":
        amax = np.max(np.abs(w32), axis=1, initial=np.float32(0))
        scale = (amax / np.float32(448)).astype(np.float32)
        safe = np.where(scale > 0, scale, np.float32(1))
        bits = fp8_e4m3_from_float(w32 / safe[:, None], saturate=True)
        return QuantizedWeight(kind, (n, k), bits, scale)
    if kind == "int4":
        if group_size is None:
            group_size = next((g for g in (128, 64, 32) if k % g == 0), 32)
        if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)):
            raise TypeError(f"group_size: expected an int, got {type(group_size).__name__}")
        if int(group_size) not in INT4_GROUPS:
            raise ValueError(f"group_size: expected one of {INT4_GROUPS}, got {group_size}")
        g = int(group_size)
        if k % g:
            raise ValueError(f"w: K={k} is not a multiple of group_size={g}")
        packed, scales = quantize_int4(w32, g)
        return QuantizedWeight(kind, (n, k), packed, scales, g)
    if k % 32:
        raise ValueError(f"w: K={k} must be a multiple of 32 for kind={kind!r} (ggml blocks of 32)")
    if np.any(np.abs(w32) > 65504):
        raise ValueError("w: values beyond the float16 range of ggml block scales")
    blocks = G.QUANTIZERS[kind.upper()](w32.reshape(-1, 32))
    return QuantizedWeight(kind, (n, k), np.ascontiguousarray(blocks.reshape(n, -1)))


def to_device(w: QuantizedWeight, device: Any) -> QuantizedWeight:
    """quant.to_device(w, "cuda") == w.to("cuda"): the packed bytes as torch tensors on a device."""
    if not isinstance(w, QuantizedWeight):
        raise TypeError(f"w: expected a QuantizedWeight, got {type(w).__name__}")
    return w.to(device)
