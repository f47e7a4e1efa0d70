"""Direct native calls for the model graph's hot loop.

The model owns its activations (C-contiguous float32 of known shapes) and its KV cache, so the
public ops' argument normalisation (array-type detection, dtype names, copies) is skipped here;
it costs about as much as a small kernel at decode time. The native entry points still check
every shape, dtype and index themselves, so a bug here raises a ValueError, never corrupts memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import _C
from ..ops import linear as _ops_linear
from ..ops.attention import _CACHE_CODE, _dtype_of, _scale_args
from ..quant.weight import KIND_CODES, QuantizedWeight


def linear(x2: np.ndarray, w: Any) -> np.ndarray:
    """x2 [M, K] float32 contiguous @ W.T -> [M, N] float32.

    int8 weights run W8A8 at every row count (ops.linear's precision "high"): a token's outputs
    are then the same bits whether it came in a decode step of one row or in a prefill chunk of
    hundreds, so a request's text does not depend on what else was batched with it. The block
    kinds (q8_0/q4_x/int4) have that property at "highest" already."""
    if isinstance(w, list):  # weights whose formats could not be fused
        return np.concatenate([linear(x2, p) for p in w], axis=-1)
    if not isinstance(w, QuantizedWeight):
        return _ops_linear(x2, w)  # float weights: the op's BLAS-backed path
    out = np.empty((x2.shape[0], w.shape[0]), dtype=np.float32)
    wscale = w.scale if w.kind in ("int8", "fp8") else None
    gscale = w.scale.view(np.uint16) if w.kind == "int4" else None
    _C.linear(x2, w.data, KIND_CODES[w.kind], wscale, gscale, int(w.group_size or 0), None, out, w.kind == "int8")
    return out


def silu_and_mul(gu: np.ndarray) -> np.ndarray:
    """gu [T, 2I] float32 (gate | up) -> silu(gate) * up [T, I]."""
    out = np.empty((gu.shape[0], gu.shape[1] // 2), dtype=np.float32)
    _C.silu_and_mul(gu, out, "float32")
    return out


def rms_norm(x2: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    out = np.empty_like(x2)
    _C.rms_norm(x2, weight, out, "float32", eps)
    return out


class LayerKV:
    """One layer's cache arrays and the native codes the kernels take, resolved once."""

    def __init__(self, cache: Any, layer: int) -> None:
        self.cache = cache
        self.layer = layer
        self.k = cache.k[layer]
        self.v = cache.v[layer]
        self.name = _dtype_of(self.k)
        self.code = _CACHE_CODE[self.name]
        self._scales: tuple[Any, Any, Any, Any] | None = None

    def scale_args(self) -> tuple[Any, Any, Any, Any]:
        if self._scales is None:  # fixed once known (fp8 scales are set by the layer's first write)
            kv = self.cache.layer(self.layer)
            self._scales = _scale_args(self.name, kv["k_scale"], kv["v_scale"])
        return self._scales

    def write(self, k: np.ndarray, v: np.ndarray, slots: np.ndarray) -> None:
        if self.name == "float8_e4m3fn" and self.cache.k_scales[self.layer] is None:
            self.cache.write(self.layer, k, v, slots)  # derives the layer's fp8 scales
            return
        _C.reshape_and_cache(k, v, self.k, self.v, slots, "float32", self.code, *self.scale_args())

    def attend(self, prefill: bool, q: np.ndarray, block_tables: np.ndarray, seq_lens: np.ndarray,
               query_start_loc: np.ndarray | None, scale: float) -> np.ndarray:  # fmt: skip
        out = np.empty(q.shape, dtype=np.float32)
        _C.paged_attention(prefill, q, "float32", self.k, self.v, self.code, block_tables, seq_lens,
                           query_start_loc, out, scale, *self.scale_args(), 0, 0)  # fmt: skip
        return out
