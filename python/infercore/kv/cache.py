"""PagedKVCache: the per-layer K/V block arrays of a paged KV cache (block bookkeeping lives in
BlockAllocator; this class only holds and writes the storage).

Layout per layer: K and V [num_blocks, block_size, num_kv_heads, head_dim] (NHD), the layout
ops.paged_attention_* read. dtype float32 / float16 / bfloat16 store values as they are;
fp8_e4m3 stores value / scale with one scale per layer for K and for V (given, or set by the
first write to absmax / 448 so that write fills the E4M3 range); int8 stores round(value / s)
with s = absmax / 127 per token and head, kept beside the blocks in float32
[num_blocks, block_size, num_kv_heads] arrays.

`device=None` keeps numpy arrays on the host (the CPU kernels); a torch device ("cuda", or "cpu"
for the Triton interpreter in tests) keeps torch tensors there instead, same layout and dtypes
(fp8 as torch.float8_e4m3fn), for the ops' "cuda"/"triton" backends.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._system import check_fits_in_ram
from ..ops import attention as _attn
from .allocator import MAX_BLOCKS

_ALIASES = {
    "float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "int8": "int8",
    "fp8": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3", "float8_e4m3fn": "fp8_e4m3",
}
_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "fp8_e4m3": 1, "int8": 1}
_FP8_MAX = 448.0


def _np_dtype(name: str) -> Any:
    import ml_dtypes

    return {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
            "fp8_e4m3": ml_dtypes.float8_e4m3fn, "int8": np.int8}[name]


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
            "fp8_e4m3": torch.float8_e4m3fn, "int8": torch.int8}[name]


def _torch_device(device: Any) -> Any:
    import torch

    try:
        return torch.device(device)
    except (TypeError, RuntimeError) as e:
        raise ValueError(f"device: expected None (host numpy arrays) or a torch device, got {device!r}") from e


def _dtype(dtype: Any) -> str:
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", None) or str(dtype)
    name = str(name).removeprefix("torch.")
    if name not in _ALIASES:
        raise TypeError(f"dtype: expected one of float32, float16, bfloat16, fp8_e4m3, int8, got {dtype!r}")
    return _ALIASES[name]


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected >= 1, got {value}")
    return int(value)


def _scale(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number or None, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {v}")
    return v


class PagedKVCache:
    """K/V block storage for `num_layers` layers. See the module docstring for the layouts."""

    def __init__(self, num_layers: int, num_blocks: int, block_size: int, num_kv_heads: int, head_dim: int,
                 dtype: Any = "float16", *, k_scale: float | None = None, v_scale: float | None = None,
                 prefault: bool = False, device: Any = None) -> None:
        self.num_layers = _positive_int(num_layers, "num_layers")
        self.num_blocks = _positive_int(num_blocks, "num_blocks")
        self.block_size = _positive_int(block_size, "block_size")
        self.num_kv_heads = _positive_int(num_kv_heads, "num_kv_heads")
        self.head_dim = _positive_int(head_dim, "head_dim")
        self.dtype = _dtype(dtype)
        if self.dtype != "fp8_e4m3" and (k_scale is not None or v_scale is not None):
            raise ValueError(f"k_scale/v_scale: only fp8_e4m3 caches take per-layer scales, not {self.dtype}")
        ks, vs = _scale(k_scale, "k_scale"), _scale(v_scale, "v_scale")
        if self.num_blocks > MAX_BLOCKS:
            raise ValueError(f"num_blocks: expected <= {MAX_BLOCKS} (block tables are int32), got {num_blocks}")
        shape = (self.num_blocks, self.block_size, self.num_kv_heads, self.head_dim)
        self.device = None if device is None else _torch_device(device)
        if self.device is None:
            need = self.num_blocks * self.bytes_per_block
            check_fits_in_ram(need, "num_blocks", f"a {self.dtype} pool of {self.num_layers} layers x "
                                                  f"{self.num_blocks} blocks x {self.block_size} tokens")
        self.k_scales: list[Any] = [ks] * self.num_layers
        self.v_scales: list[Any] = [vs] * self.num_layers
        if self.device is not None:
            self._init_torch(shape)
            return
        npdt = _np_dtype(self.dtype)
        # np.zeros maps fresh zero pages lazily: a large cache costs memory only as it fills.
        # prefault=True touches every page now (a server: RSS is the whole pool from the start, so
        # growth under load means a leak, not the pool filling up).
        self.k = [np.zeros(shape, npdt) for _ in range(self.num_layers)]
        self.v = [np.zeros(shape, npdt) for _ in range(self.num_layers)]
        if prefault:
            for a in (*self.k, *self.v):
                a.reshape(-1).view(np.uint8)[::4096] = 0  # one write per page
        if self.dtype == "int8":
            self.k_scales = [np.ones(shape[:3], np.float32) for _ in range(self.num_layers)]
            self.v_scales = [np.ones(shape[:3], np.float32) for _ in range(self.num_layers)]

    def _init_torch(self, shape: tuple[int, int, int, int]) -> None:
        """The same storage as torch tensors on self.device (allocated, and zeroed, up front)."""
        import torch

        tdt, dev = _torch_dtype(self.dtype), self.device
        self.k = [torch.zeros(shape, dtype=tdt, device=dev) for _ in range(self.num_layers)]
        self.v = [torch.zeros(shape, dtype=tdt, device=dev) for _ in range(self.num_layers)]
        if self.dtype == "int8":
            self.k_scales = [torch.ones(shape[:3], dtype=torch.float32, device=dev) for _ in range(self.num_layers)]
            self.v_scales = [torch.ones(shape[:3], dtype=torch.float32, device=dev) for _ in range(self.num_layers)]

    def copy_blocks(self, src: Any, dst: Any) -> None:
        """Copy-on-write: block src[i]'s K/V (and int8 scales) -> block dst[i], in every layer."""
        src = np.asarray(src, dtype=np.int64).reshape(-1)
        dst = np.asarray(dst, dtype=np.int64).reshape(-1)
        if src.shape != dst.shape:
            raise ValueError(f"src/dst: expected equal lengths, got {src.shape[0]} and {dst.shape[0]}")
        for name, ids in (("src", src), ("dst", dst)):
            if ids.size and (ids.min() < 0 or ids.max() >= self.num_blocks):
                raise ValueError(f"{name}: block ids must be in [0, {self.num_blocks})")
        if not src.size:
            return
        raw = lambda a: a  # noqa: E731
        if self.device is not None:
            import torch

            src, dst = torch.from_numpy(src).to(self.device), torch.from_numpy(dst).to(self.device)
            if self.dtype == "fp8_e4m3":  # indexing kernels are not built for float8 everywhere: copy the bytes
                raw = lambda a: a.view(torch.uint8)  # noqa: E731
        for i in range(self.num_layers):
            raw(self.k[i])[dst] = raw(self.k[i])[src]
            raw(self.v[i])[dst] = raw(self.v[i])[src]
            if self.dtype == "int8":
                self.k_scales[i][dst] = self.k_scales[i][src]
                self.v_scales[i][dst] = self.v_scales[i][src]

    @staticmethod
    def bytes_per_block_for(num_layers: int, block_size: int, num_kv_heads: int, head_dim: int, dtype: Any) -> int:
        """Bytes one block takes over all layers (K and V, plus int8's per-token scales)."""
        dt = _dtype(dtype)
        per_token_head = 2 * (head_dim * _ITEMSIZE[dt] + (4 if dt == "int8" else 0))
        return num_layers * block_size * num_kv_heads * per_token_head

    @classmethod
    def from_budget(cls, kv_cache_bytes: int, num_layers: int, block_size: int, num_kv_heads: int, head_dim: int,
                    dtype: Any = "float16", **kw: Any) -> PagedKVCache:
        """As many blocks as fit in kv_cache_bytes (at least one, else ValueError)."""
        if isinstance(kv_cache_bytes, bool) or not isinstance(kv_cache_bytes, numbers.Integral):
            raise TypeError(f"kv_cache_bytes: expected an int, got {type(kv_cache_bytes).__name__}")
        dims = [_positive_int(v, n) for v, n in ((num_layers, "num_layers"), (block_size, "block_size"),
                                                  (num_kv_heads, "num_kv_heads"), (head_dim, "head_dim"))]
        per_block = cls.bytes_per_block_for(*dims, dtype)
        num_blocks = int(kv_cache_bytes) // per_block
        if num_blocks < 1:
            raise ValueError(f"kv_cache_bytes: {kv_cache_bytes} bytes hold no block ({per_block} bytes each)")
        if kw.get("device") is None:  # named here: the caller gave a budget, not a block count
            check_fits_in_ram(num_blocks * per_block, "kv_cache_bytes", "the KV pool")
        return cls(*dims[:1], num_blocks, *dims[1:], dtype, **kw)

    @property
    def bytes_per_block(self) -> int:
        return self.bytes_per_block_for(self.num_layers, self.block_size, self.num_kv_heads, self.head_dim, self.dtype)

    @property
    def nbytes(self) -> int:
        return self.num_blocks * self.bytes_per_block

    def _layer_index(self, layer: Any) -> int:
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
            raise TypeError(f"layer: expected an int, got {type(layer).__name__}")
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer: expected 0 <= layer < {self.num_layers}, got {layer}")
        return int(layer)

    def layer(self, layer: int) -> dict[str, Any]:
        """Keyword arguments for ops.paged_attention_*/reshape_and_cache: k_cache, v_cache,
        k_scale, v_scale of one layer. An fp8 layer must have been written (or given scales)."""
        i = self._layer_index(layer)
        if self.dtype == "fp8_e4m3" and self.k_scales[i] is None:
            raise ValueError(f"layer: fp8 layer {i} has no scales yet (write to it first or pass k_scale/v_scale)")
        ks = 1.0 if self.k_scales[i] is None else self.k_scales[i]
        vs = 1.0 if self.v_scales[i] is None else self.v_scales[i]
        return {"k_cache": self.k[i], "v_cache": self.v[i], "k_scale": ks, "v_scale": vs}

    def write(self, layer: int, k: Any, v: Any, slot_mapping: Any, *, backend: str = "auto") -> None:
        """reshape_and_cache into one layer: k, v [T, num_kv_heads, head_dim]. The first write to
        an fp8 layer without scales sets them to absmax / 448 of that write's K and V."""
        i = self._layer_index(layer)
        if self.dtype == "fp8_e4m3" and self.k_scales[i] is None:
            self.k_scales[i] = _fp8_scale(k, "k")
            self.v_scales[i] = _fp8_scale(v, "v")
        args = self.layer(i)
        _attn.reshape_and_cache(k, v, args["k_cache"], args["v_cache"], slot_mapping, k_scale=args["k_scale"],
                                v_scale=args["v_scale"], backend=backend)

    def __repr__(self) -> str:
        return (f"PagedKVCache(num_layers={self.num_layers}, num_blocks={self.num_blocks}, "
                f"block_size={self.block_size}, num_kv_heads={self.num_kv_heads}, head_dim={self.head_dim}, "
                f"dtype={self.dtype!r}, nbytes={self.nbytes}"
                f"{'' if self.device is None else f', device={str(self.device)!r}'})")


def _fp8_scale(x: Any, name: str) -> float:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind != "f" and a.dtype.name != "bfloat16":
        raise TypeError(f"{name}: expected a float array, got dtype {a.dtype}")
    amax = float(np.max(np.abs(a.astype(np.float32)))) if a.size else 0.0
    if not np.isfinite(amax):
        raise ValueError(f"{name}: contains NaN or Inf; cannot derive an fp8 scale")
    return amax / _FP8_MAX if amax > 0 else 1.0
