"""Paged KV cache ops: reshape_and_cache, paged_attention_decode, paged_attention_prefill.

Caches are [num_blocks, block_size, num_kv_heads, head_dim] (NHD) arrays of float32, float16,
bfloat16 (ml_dtypes / torch), float8_e4m3fn (ml_dtypes / torch) or int8, on the host. A stored
value dequantizes to stored * scale: k_scale/v_scale are numbers for float and fp8 caches (one
per layer) and float32 arrays [num_blocks, block_size, num_kv_heads] for int8 caches (one per
token and head, written by reshape_and_cache). `infercore.kv.PagedKVCache.layer(i)` returns these
arguments for one layer. Outputs are float32 [T, Hq, D], as numpy or torch like q.

Low-precision paths at the AVX-512 level: on a CPU with VNNI, int8 caches are attended with
integer dot products (the scaled query rounded to int16 per row, the softmax weights to uint8 per
32-key tile); with AVX512-FP16, fp8 caches in float16 arithmetic (query and weights rounded to
float16, sums over 32 dims / 32 keys in float16). Both run ~1.6x faster than widening to float32;
the added error (int8 up to ~1e-2, fp8 ~3e-3 on unit-variance data) stays below what storing in
the format costs. Other cache types and ISA levels compute in float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import _C
from . import _arrays as A
from . import reference

CACHE_DTYPES = ("float32", "float16", "bfloat16", "float8_e4m3fn", "int8")
_CACHE_CODE = {name: i for i, name in enumerate(CACHE_DTYPES)}
_CACHE_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1, "int8": 1}
_INT32 = np.iinfo(np.int32)


def reshape_and_cache(k: Any, v: Any, k_cache: Any, v_cache: Any, slot_mapping: Any, *, k_scale: Any = 1.0,
                      v_scale: Any = 1.0, backend: str = "auto") -> None:
    """Write token t's rows k[t], v[t] ([T, Hkv, D]) into the caches at slot_mapping[t]
    (slot = block * block_size + offset; -1 skips the token). fp8 caches store k / k_scale
    rounded to E4M3 (nearest-even, saturating at +-448); int8 caches store round(k / s) with
    s = absmax / 127 per token and head, written into the k_scale/v_scale arrays. In place."""
    backend = _backend(backend, k, "k")
    if backend == "triton":
        return _reshape_triton(k, v, k_cache, v_cache, slot_mapping, k_scale, v_scale)
    if backend == "cuda":
        return _reshape_cuda(k, v, k_cache, v_cache, slot_mapping, k_scale, v_scale)
    kc, kname = _cache_view(k_cache, "k_cache", writeable=True)
    vc, vname = _cache_view(v_cache, "v_cache", writeable=True)
    if vname != kname:
        raise TypeError(f"v_cache: expected dtype {kname} like k_cache, got {vname}")
    ks, vs = _scales(kname, kc, k_scale, v_scale, writeable=True)
    kb, vb = _float_input(k, "k"), _float_input(v, "v")
    slots = _int_array(slot_mapping, "slot_mapping", np.int64, 1)
    if backend == "reference":
        _reshape_reference(kb.view, vb.view, kc, vc, slots, kname, ks, vs, kb.dtype)
        return
    _C.reshape_and_cache(kb.view, vb.view, kc, vc, slots, kb.dtype, _CACHE_CODE[kname],
                         *_scale_args(kname, ks, vs))


def paged_attention_decode(q: Any, k_cache: Any, v_cache: Any, block_tables: Any, seq_lens: Any, *,
                           scale: float | None = None, k_scale: Any = 1.0, v_scale: Any = 1.0,
                           sliding_window: int | None = None, backend: str = "auto",
                           num_splits: int | None = None) -> Any:
    """One new token per sequence: q [S, Hq, D] attends to positions [0, seq_lens[s]) of its
    paged cache (the token's own K/V already written). GQA: query head h reads kv head
    h // (Hq // Hkv). block_tables int32 [S, max_blocks]; seq_lens int32 [S] (>= 1).
    sliding_window w keeps the last w positions. num_splits forces the split-K count (tests)."""
    return _attention(False, q, k_cache, v_cache, block_tables, seq_lens, None, scale, k_scale, v_scale,
                      sliding_window, backend, num_splits)


def paged_attention_prefill(q: Any, k_cache: Any, v_cache: Any, block_tables: Any, seq_lens: Any,
                            query_start_loc: Any, *, scale: float | None = None, k_scale: Any = 1.0,
                            v_scale: Any = 1.0, sliding_window: int | None = None, backend: str = "auto") -> Any:
    """Causal attention of new tokens packed over sequences: q [T, Hq, D], sequence s owns rows
    query_start_loc[s]:query_start_loc[s+1] (int32 [S+1]), which are the last positions of its
    seq_lens[s]; earlier positions (a cached prefix) and the new tokens' own K/V (written first by
    reshape_and_cache) are read from the paged cache. Never materialises T x L scores."""
    return _attention(True, q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, scale, k_scale, v_scale,
                      sliding_window, backend, None)


# --------------------------------------------------------------------------------- internals
def _backend(backend: Any, x: Any, name: str = "q") -> str:
    backend = A.check_backend(backend)
    if backend == "triton" or (backend == "auto" and A.is_device_array(x) and _triton_is_auto()):
        return "triton"
    if backend == "cuda" or (backend == "auto" and A.is_device_array(x)):
        return A.resolve_backend("cuda", x, name)  # "cuda", or an error naming the argument
    if A.is_device_array(x):
        raise ValueError(f"backend={backend!r} needs host arrays, got {A.describe(x)}")
    return "cpu" if backend == "auto" else backend


def _dtype_of(x: Any) -> str:
    name = A.dtype_name(x)
    return "float8_e4m3fn" if name in ("float8_e4m3fn", "float8_e4m3") else name


def _cache_dtype_4d(cache: Any, name: str) -> str:
    """The cache's dtype name, after the checks every backend makes: a cache dtype, 4 dimensions."""
    dt = _dtype_of(cache)
    if dt not in CACHE_DTYPES:
        raise TypeError(f"{name}: expected dtype one of {CACHE_DTYPES}, got {dt}")
    if cache.ndim != 4:
        raise ValueError(f"{name}: expected 4 dimensions [num_blocks, block_size, num_kv_heads, head_dim], "
                         f"got shape {tuple(cache.shape)}")
    return dt


def _cache_view(cache: Any, name: str, writeable: bool) -> tuple[np.ndarray, str]:
    """A numpy view sharing the cache's memory (never a copy: writes must land in it)."""
    if A.array_kind(cache) not in ("numpy", "torch"):
        raise TypeError(f"{name}: expected a numpy array or torch tensor, got {type(cache).__name__}")
    if A.is_device_array(cache):
        raise ValueError(f"{name}: expected a host array, got {A.describe(cache)}")
    dt = _cache_dtype_4d(cache, name)
    if A.is_torch(cache):
        import torch

        if not cache.is_contiguous():
            raise ValueError(f"{name}: expected a contiguous tensor")
        view_dt = {1: torch.uint8, 2: torch.int16, 4: torch.float32}[_CACHE_ITEMSIZE[dt]]
        arr = cache.detach().view(view_dt).numpy()
    else:
        arr = cache
        if not (arr.flags.c_contiguous and arr.flags.aligned):
            raise ValueError(f"{name}: expected a C-contiguous, aligned array (a copy would lose the writes)")
        if writeable and not arr.flags.writeable:
            raise ValueError(f"{name}: expected a writeable array")
    return arr, dt


def _scales(dt: str, kc: np.ndarray, k_scale: Any, v_scale: Any, writeable: bool) -> tuple[Any, Any]:
    if dt != "int8":
        return A.check_real(k_scale, "k_scale"), A.check_real(v_scale, "v_scale")
    shape = tuple(kc.shape[:3])
    out = []
    for s, name in ((k_scale, "k_scale"), (v_scale, "v_scale")):
        if A.is_torch(s):
            s = s.detach().numpy()
        if not isinstance(s, np.ndarray) or s.dtype != np.float32:
            raise TypeError(f"{name}: int8 caches need a float32 array {shape} (one scale per token and head), "
                            f"got {A.describe(s) if A.array_kind(s) != 'other' else type(s).__name__}")
        if s.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {s.shape}")
        if not s.flags.c_contiguous or (writeable and not s.flags.writeable):
            raise ValueError(f"{name}: expected a C-contiguous{', writeable' if writeable else ''} array")
        out.append(s)
    return out[0], out[1]


def _scale_args(dt: str, ks: Any, vs: Any) -> tuple[float, float, Any, Any]:
    if dt == "int8":
        return 1.0, 1.0, ks, vs
    return ks, vs, None, None


def _float_input(x: Any, name: str) -> A.HostBuffer:
    x = A.as_array(x, name)
    if A.is_device_array(x):
        raise ValueError(f"{name}: expected a host array, got {A.describe(x)}")
    buf = A.host_buffer(x, name)
    if buf.view.ndim != 3:
        raise ValueError(f"{name}: expected 3 dimensions [T, heads, head_dim], got shape {tuple(buf.view.shape)}")
    return buf


def _int_array(x: Any, name: str, dtype: Any, ndim: int) -> np.ndarray:
    if A.is_torch(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu" and not (arr.size == 0 and arr.dtype.kind == "f"):
        raise TypeError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimension(s), got shape {arr.shape}")
    if arr.dtype != dtype:
        if arr.size and dtype == np.int32 and (arr.min() < _INT32.min or arr.max() > _INT32.max):
            raise ValueError(f"{name}: values do not fit in int32")
        arr = arr.astype(dtype)
    return np.ascontiguousarray(arr)


def _attention(prefill, q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, scale, k_scale, v_scale,
               sliding_window, backend, num_splits):
    backend = _backend(backend, q)
    if backend == "triton":
        return _attention_triton(prefill, q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, scale,
                                 k_scale, v_scale, sliding_window, num_splits)
    if backend == "cuda":
        return _attention_cuda(prefill, q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, scale, k_scale,
                               v_scale, sliding_window, num_splits)
    kc, kname = _cache_view(k_cache, "k_cache", writeable=False)
    vc, vname = _cache_view(v_cache, "v_cache", writeable=False)
    if vname != kname:
        raise TypeError(f"v_cache: expected dtype {kname} like k_cache, got {vname}")
    if vc.shape != kc.shape:
        raise ValueError(f"v_cache: expected shape {tuple(kc.shape)} like k_cache, got {tuple(vc.shape)}")
    ks, vs = _scales(kname, kc, k_scale, v_scale, writeable=False)
    qb = _float_input(q, "q")
    t, hq, d = qb.view.shape
    if d != kc.shape[3]:
        raise ValueError(f"q: head_dim {d} differs from the cache's {kc.shape[3]}")
    if hq % kc.shape[2]:
        raise ValueError(f"q: num_heads ({hq}) must be a multiple of the cache's num_kv_heads ({kc.shape[2]})")
    bt = _int_array(block_tables, "block_tables", np.int32, 2)
    lens = _int_array(seq_lens, "seq_lens", np.int32, 1)
    qsl = _int_array(query_start_loc, "query_start_loc", np.int32, 1) if prefill else None
    scale = 1.0 / float(np.sqrt(d)) if scale is None else A.check_real(scale, "scale")
    window = _window_arg(sliding_window)
    if backend == "reference":
        y = _attention_reference(prefill, qb, kc, vc, kname, bt, lens, qsl, scale, ks, vs, sliding_window)
    else:
        y = np.empty((t, hq, d), dtype=np.float32)
        _C.paged_attention(prefill, qb.view, qb.dtype, kc, vc, _CACHE_CODE[kname], bt, lens, qsl, y, scale,
                           *_scale_args(kname, ks, vs), window, int(num_splits or 0))
    if A.is_torch(q):
        import torch

        return torch.from_numpy(y)
    return y


def _as_values(view: np.ndarray, dt: str) -> np.ndarray:
    """The stored values of a cache/input view as a typed numpy array."""
    import ml_dtypes

    if dt == "bfloat16":
        return view.view(ml_dtypes.bfloat16)
    if dt == "float8_e4m3fn":
        return view.view(ml_dtypes.float8_e4m3fn)
    if dt == "float16":
        return view.view(np.float16)
    return view


def _attention_reference(prefill, qb, kc, vc, kname, bt, lens, qsl, scale, ks, vs, window):
    qv = _as_values(qb.view, qb.dtype)
    kv, vv = _as_values(kc, kname), _as_values(vc, kname)
    if prefill:
        y = reference.paged_attention_prefill(qv, kv, vv, bt, lens, qsl, scale, ks, vs, window)
    else:
        y = reference.paged_attention_decode(qv, kv, vv, bt, lens, scale, ks, vs, window)
    return y.astype(np.float32)


def _reshape_reference(k, v, kc, vc, slots, kname, ks, vs, src_dtype):
    """numpy writer (independent of the C++ one): same rounding and saturation rules."""
    import ml_dtypes

    kf = _as_values(k, src_dtype).astype(np.float32)
    vf = _as_values(v, src_dtype).astype(np.float32)
    bs = kc.shape[1]
    for t, slot in enumerate(slots.tolist()):
        if slot < 0:
            continue
        if slot >= kc.shape[0] * bs:
            raise ValueError(f"slot_mapping[{t}] = {slot} is out of range [-1, {kc.shape[0] * bs})")
        b, o = divmod(slot, bs)
        for x, cache, sc in ((kf[t], kc, ks), (vf[t], vc, vs)):
            vals = _as_values(cache, kname)  # typed view sharing the cache's memory
            if kname == "int8":
                amax = np.abs(x).max(axis=-1)
                s = np.where(amax > 0, amax / np.float32(127), np.float32(1)).astype(np.float32)
                vals[b, o] = np.clip(np.rint(x / s[:, None]), -127, 127).astype(np.int8)
                sc[b, o] = s
            elif kname == "float8_e4m3fn":  # ml_dtypes maps overflow to NaN: saturate first
                vals[b, o] = np.clip(x / np.float32(sc), -448, 448).astype(ml_dtypes.float8_e4m3fn)
            else:
                vals[b, o] = (x / np.float32(sc)).astype(vals.dtype)


def _window_arg(sliding_window: Any) -> int:
    """sliding_window -> 0 (none) or the window length (>= 1)."""
    if sliding_window is None:
        return 0
    if isinstance(sliding_window, bool) or not isinstance(sliding_window, (int, np.integer)):
        raise TypeError(f"sliding_window: expected None or an int, got {type(sliding_window).__name__}")
    if sliding_window < 1:
        raise ValueError(f"sliding_window: expected >= 1, got {sliding_window}")
    return int(sliding_window)


# ------------------------------------------------------------ Triton backend (kernels/attention.py)
# Triton takes torch tensors (CUDA, or CPU under TRITON_INTERPRET=1); numpy and CuPy arrays are
# wrapped without copies, so reshape_and_cache's writes land in the caller's arrays. Every index
# the kernels follow (block ids, seq_lens, query_start_loc, slots) is checked here, on the host,
# before the launch: the kernels do no bounds checks of their own.
def _triton_is_auto() -> bool:
    """backend="auto" on device arrays takes Triton when infercore has no CUDA kernels."""
    from .._native import cuda_module

    return cuda_module() is None


def _torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def _triton_cache(cache: Any, name: str, writeable: bool) -> tuple[Any, str]:
    """(torch tensor sharing the cache's memory, dtype name), after _cache_view's checks (host)
    or the same checks on a CUDA array."""
    import torch

    if not A.is_device_array(cache):
        view, dt = _cache_view(cache, name, writeable)
        if A.is_torch(cache):
            return cache.detach(), dt
        u = view.view({1: np.uint8, 2: np.int16, 4: np.float32}[_CACHE_ITEMSIZE[dt]])
        return torch.from_numpy(u).view(_torch_dtype(dt)), dt
    dt = _cache_dtype_4d(cache, name)
    t = cache.detach() if A.is_torch(cache) else torch.from_dlpack(cache)
    if not t.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous tensor")
    return t, dt


def _triton_caches(k_cache: Any, v_cache: Any, writeable: bool) -> tuple[Any, Any, str]:
    kc, kname = _triton_cache(k_cache, "k_cache", writeable)
    vc, vname = _triton_cache(v_cache, "v_cache", writeable)
    if vname != kname:
        raise TypeError(f"v_cache: expected dtype {kname} like k_cache, got {vname}")
    if vc.shape != kc.shape:
        raise ValueError(f"v_cache: expected shape {tuple(kc.shape)} like k_cache, got {tuple(vc.shape)}")
    if vc.device != kc.device:
        raise ValueError(f"v_cache: expected device {kc.device} like k_cache, got {vc.device}")
    if min(kc.shape) < 1:
        raise ValueError(f"k_cache: expected every dimension > 0, got shape {tuple(kc.shape)}")
    return kc, vc, kname


def _triton_scales(dt: str, kc: Any, k_scale: Any, v_scale: Any, writeable: bool) -> tuple[Any, Any]:
    """Floats > 0 (float/fp8 caches) or float32 [num_blocks, block_size, Hkv] tensors on the
    cache's device (int8; _scales' checks on the host)."""
    import torch

    if dt != "int8":
        out = []
        for s, name in ((k_scale, "k_scale"), (v_scale, "v_scale")):
            val = A.check_real(s, name)
            if val <= 0:
                raise ValueError(f"{name}: expected a finite number > 0, got {val}")
            out.append(val)
        return out[0], out[1]
    if kc.device.type == "cpu":
        ks, vs = _scales(dt, kc, k_scale, v_scale, writeable)  # numpy views of the caller's memory
        return torch.from_numpy(ks), torch.from_numpy(vs)
    shape = tuple(kc.shape[:3])
    out = []
    for s, name in ((k_scale, "k_scale"), (v_scale, "v_scale")):
        if not A.is_torch(s) or s.dtype != torch.float32 or s.device != kc.device:
            raise TypeError(f"{name}: int8 caches need a float32 tensor {shape} on {kc.device} (one scale per token "
                            f"and head), got {A.describe(s) if A.array_kind(s) != 'other' else type(s).__name__}")
        if tuple(s.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(s.shape)}")
        if not s.is_contiguous():
            raise ValueError(f"{name}: expected a contiguous tensor")
        out.append(s.detach())
    return out[0], out[1]


def _triton_rows(x: Any, name: str, device: Any, heads: int | None, head_dim: int) -> Any:
    """q/k/v: a float [T, heads, head_dim] array -> contiguous torch tensor on the cache's device."""
    x = A.as_array(x, name)
    A.check_float(x, name)
    if x.ndim != 3:
        raise ValueError(f"{name}: expected 3 dimensions [T, heads, head_dim], got shape {tuple(x.shape)}")
    t = A.to_torch(x)
    if t.device != device:
        raise ValueError(f"{name}: expected an array on {device} like the cache, got {A.describe(x)}")
    if t.shape[2] != head_dim:
        raise ValueError(f"{name}: head_dim {t.shape[2]} differs from the cache's {head_dim}")
    if heads is not None and t.shape[1] != heads:
        raise ValueError(f"{name}: expected {heads} heads (the cache's num_kv_heads), got shape {tuple(t.shape)}")
    return t


def _check_tables(prefill: bool, num_tokens: int, num_blocks: int, block_size: int, bt: np.ndarray,
                  lens: np.ndarray, qsl: np.ndarray | None) -> None:
    """The index checks the CPU kernel does in C++ (check_attention), on host copies of the tables."""
    S = lens.shape[0]
    if bt.shape[0] != S:
        raise ValueError(f"block_tables: expected {S} rows (one per sequence), got shape {bt.shape}")
    if S and bt.shape[1] == 0:
        raise ValueError("block_tables: expected at least one column")
    if not prefill and num_tokens != S:
        raise ValueError(f"q: expected one token per sequence ({S}), got {num_tokens} tokens")
    low = 0 if prefill else 1
    capacity = bt.shape[1] * block_size
    for i in np.flatnonzero((lens < low) | (lens > capacity))[:1].tolist():
        what = f"expected >= {low}" if lens[i] < low else (
            f"exceeds the block table capacity {capacity} (max_blocks x block_size)")
        raise ValueError(f"seq_lens[{i}] = {lens[i]}: {what}")
    used = np.arange(bt.shape[1])[None, :] < ((lens.astype(np.int64) + block_size - 1) // block_size)[:, None]
    bad = np.argwhere(used & ((bt < 0) | (bt >= num_blocks)))
    if bad.size:
        r, c = bad[0].tolist()
        raise ValueError(f"block_tables[{r}, {c}] = {bt[r, c]} is out of range [0, {num_blocks})")
    if prefill:
        if qsl.shape != (S + 1,):
            raise ValueError(f"query_start_loc: expected shape ({S + 1},), got {qsl.shape}")
        if qsl[0] != 0:
            raise ValueError("query_start_loc[0]: expected 0")
        n = np.diff(qsl.astype(np.int64))
        if (n < 0).any():
            raise ValueError("query_start_loc: expected non-decreasing values")
        for i in np.flatnonzero(n > lens)[:1].tolist():
            raise ValueError(f"seq_lens[{i}] = {lens[i]} is shorter than its {n[i]} new tokens")
        if qsl[-1] != num_tokens:
            raise ValueError(f"query_start_loc[-1]: expected the number of tokens in q ({num_tokens})")


def _device_ints(orig: Any, host: np.ndarray, device: Any) -> Any:
    """The validated host copy as a tensor on device: the caller's tensor itself when it is
    already there with the kernel's dtype (no second upload)."""
    import torch

    if (A.is_torch(orig) and orig.device == device and orig.is_contiguous() and orig.dim() == host.ndim
            and orig.dtype == {np.dtype(np.int32): torch.int32, np.dtype(np.int64): torch.int64}[host.dtype]):
        return orig.detach()
    return torch.from_numpy(host).to(device)


def _reshape_triton(k, v, k_cache, v_cache, slot_mapping, k_scale, v_scale) -> None:
    from ..kernels import attention as tk

    kc, vc, kname = _triton_caches(k_cache, v_cache, writeable=True)
    ks, vs = _triton_scales(kname, kc, k_scale, v_scale, writeable=True)
    nb, bs, hkv, d = kc.shape
    kt = _triton_rows(k, "k", kc.device, hkv, d)
    vt = _triton_rows(v, "v", kc.device, hkv, d)
    if vt.shape != kt.shape:
        raise ValueError(f"v: expected shape {tuple(kt.shape)} like k, got {tuple(vt.shape)}")
    slots = _int_array(slot_mapping, "slot_mapping", np.int64, 1)
    if slots.shape[0] != kt.shape[0]:
        raise ValueError(f"slot_mapping: expected {kt.shape[0]} entries (one per token of k), got {slots.shape[0]}")
    for t in np.flatnonzero((slots < -1) | (slots >= nb * bs))[:1].tolist():
        raise ValueError(f"slot_mapping[{t}] = {slots[t]} is out of range [-1, {nb * bs})")
    tk.reshape_and_cache(kt, vt, kc, vc, _device_ints(slot_mapping, slots, kc.device), kname, ks, vs)


def _attention_triton(prefill, q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, scale, k_scale, v_scale,
                      sliding_window, num_splits):
    from ..kernels import attention as tk

    kc, vc, kname = _triton_caches(k_cache, v_cache, writeable=False)
    ks, vs = _triton_scales(kname, kc, k_scale, v_scale, writeable=False)
    nb, bs, hkv, d = kc.shape
    qt = _triton_rows(q, "q", kc.device, None, d)
    t, hq, _ = qt.shape
    if hq % hkv:
        raise ValueError(f"q: num_heads ({hq}) must be a multiple of the cache's num_kv_heads ({hkv})")
    bt = _int_array(block_tables, "block_tables", np.int32, 2)
    lens = _int_array(seq_lens, "seq_lens", np.int32, 1)
    qsl = _int_array(query_start_loc, "query_start_loc", np.int32, 1) if prefill else None
    scale = 1.0 / float(np.sqrt(d)) if scale is None else A.check_real(scale, "scale")
    window = _window_arg(sliding_window)
    if num_splits is not None and (isinstance(num_splits, bool) or not isinstance(num_splits, (int, np.integer))
                                   or num_splits < 1):
        raise ValueError(f"num_splits: expected None or an int >= 1, got {num_splits!r}")
    _check_tables(prefill, t, nb, bs, bt, lens, qsl)
    dev = kc.device
    btt, lent = _device_ints(block_tables, bt, dev), _device_ints(seq_lens, lens, dev)
    if prefill:
        qslt = _device_ints(query_start_loc, qsl, dev)
        y = tk.paged_attention_prefill(qt, kc, vc, kname, btt, lent, qslt, qsl.tolist(), scale=scale, k_scale=ks,
                                       v_scale=vs, sliding_window=window)
    else:
        keys = np.minimum(lens, window) if window else lens
        splits = num_splits or tk.default_splits(t, hkv, int(keys.max(initial=0)), dev)
        y = tk.paged_attention_decode(qt, kc, vc, kname, btt, lent, scale=scale, k_scale=ks, v_scale=vs,
                                      sliding_window=window, num_splits=int(splits))
    return A.from_torch(y, q) if A.array_kind(q) != "other" else y.cpu().numpy()


# ------------------------------------------------------------------------------- cuda backend
# Device arrays (CUDA torch tensors, CuPy arrays) go to _C_cuda (csrc/cuda/attention_*.cu,
# kv_cache.cu). Index arrays may be on the host or the device; their values are checked on the
# host first (one small device-to-host copy when they live on the device) with the CPU backend's
# messages, so a bad block id, length or slot raises ValueError before any memory is touched.
# The kernels also clamp and skip out-of-range indices on their own, so even the raw binding
# never reads or writes out of bounds.
_Q_CODE = {"float32": 0, "float16": 1, "bfloat16": 2}
_CUPY_DTYPES = ("float32", "float16", "int8")  # CuPy has no bfloat16 / float8 dtypes


def _cuda_built() -> bool:
    from .._native import cuda_module

    return cuda_module() is not None


def _dev_ptr(x: Any) -> int:
    return int(x.data_ptr()) if A.is_torch(x) else int(x.data.ptr)


def _dev_index(x: Any) -> int:
    return int(x.device.index or 0) if A.is_torch(x) else int(x.device.id)


def _dev_stream(x: Any) -> int:
    if A.is_torch(x):
        import torch

        return int(torch.cuda.current_stream(x.device).cuda_stream)
    import cupy

    with x.device:
        return int(cupy.cuda.get_current_stream().ptr)


def _dev_contiguous(x: Any) -> bool:
    return bool(x.is_contiguous()) if A.is_torch(x) else bool(x.flags.c_contiguous)


def _dev_check(x: Any, name: str, like: Any, likename: str) -> None:
    if not A.is_device_array(x):
        raise ValueError(f"{name}: expected a CUDA array like {likename}, got "
                         f"{A.describe(x) if A.array_kind(x) != 'other' else type(x).__name__}")
    A.same_place(like, x, likename, name)


def _dev_cache(cache: Any, name: str, like: Any, likename: str) -> tuple[Any, str]:
    if A.array_kind(cache) not in ("torch", "cupy"):
        raise TypeError(f"{name}: expected a CUDA torch tensor or CuPy array, got {type(cache).__name__}")
    _dev_check(cache, name, like, likename)
    dt = _cache_dtype_4d(cache, name)
    if not _dev_contiguous(cache) or _dev_ptr(cache) % 16:
        raise ValueError(f"{name}: expected a contiguous, 16-byte aligned array (a copy would lose the writes)")
    if any(int(n) == 0 for n in cache.shape):
        raise ValueError(f"{name}: expected every dimension > 0, got shape {tuple(cache.shape)}")
    return cache, dt


def _dev_scales(dt: str, kc: Any, k_scale: Any, v_scale: Any, like: Any,
                likename: str) -> tuple[int, int, float, float]:
    """(k_scales ptr, v_scales ptr, k_scale, v_scale) for the launcher's cache tuple."""
    if dt != "int8":
        ks, vs = A.check_real(k_scale, "k_scale"), A.check_real(v_scale, "v_scale")
        for val, nm in ((ks, "k_scale"), (vs, "v_scale")):
            if val <= 0:
                raise ValueError(f"{nm}: expected a number > 0, got {val}")
        return 0, 0, ks, vs
    shape = tuple(int(n) for n in kc.shape[:3])
    ptrs = []
    for sc, nm in ((k_scale, "k_scale"), (v_scale, "v_scale")):
        if not A.is_device_array(sc) or A.dtype_name(sc) != "float32":
            got = A.describe(sc) if A.array_kind(sc) != "other" else type(sc).__name__
            raise TypeError(f"{nm}: int8 caches on CUDA need a float32 CUDA array {shape} (one scale per token and "
                            f"head), got {got}")
        A.same_place(like, sc, likename, nm)
        if tuple(sc.shape) != shape:
            raise ValueError(f"{nm}: expected shape {shape}, got {tuple(sc.shape)}")
        if not _dev_contiguous(sc):
            raise ValueError(f"{nm}: expected a contiguous array")
        ptrs.append(_dev_ptr(sc))
    return ptrs[0], ptrs[1], 1.0, 1.0


def _cache_tuple(kc: Any, vc: Any, dt: str, scales: tuple[int, int, float, float]) -> tuple:
    nb, bs, hkv, d = (int(n) for n in kc.shape)
    return (_dev_ptr(kc), _dev_ptr(vc), scales[0], scales[1], scales[2], scales[3], _CACHE_CODE[dt], nb, bs, hkv, d)


def _dev_input(x: Any, name: str, like: Any, likename: str) -> A.DeviceBuffer:
    x = A.as_array(x, name)
    if not A.is_device_array(x):
        raise ValueError(f"{name}: expected a CUDA array (backend='cuda'), got {A.describe(x)}")
    A.same_place(like, x, likename, name)
    buf = A.device_buffer(x, name)  # float32/float16/bfloat16, made contiguous
    if buf.obj.ndim != 3:
        raise ValueError(f"{name}: expected 3 dimensions [T, heads, head_dim], got shape {tuple(buf.obj.shape)}")
    if buf.ptr % 16:
        raise ValueError(f"{name}: expected a 16-byte aligned array")
    return buf


def _host_ints(x: Any, name: str, dtype: Any, ndim: int) -> np.ndarray:
    """The values of an index array (host or device) as a host numpy array, for validation."""
    if A.is_cupy(x):
        import cupy

        x = cupy.asnumpy(x)
    return _int_array(x, name, dtype, ndim)


def _to_device(host: np.ndarray, orig: Any, like: Any) -> tuple[Any, int]:
    """orig itself when it already is a contiguous device array of the right dtype on like's
    device; else a device copy of the validated host values. Returns (object to keep alive, ptr)."""
    if (A.is_device_array(orig) and A.dtype_name(orig) == host.dtype.name and _dev_contiguous(orig)
            and _dev_index(orig) == _dev_index(like)):
        return orig, _dev_ptr(orig)
    if A.is_torch(like):
        import torch

        t = torch.from_numpy(np.ascontiguousarray(host)).to(like.device)
        return t, int(t.data_ptr())
    import cupy

    with like.device:
        a = cupy.asarray(host)
    return a, int(a.data.ptr)


def _dev_empty(like: Any, shape: tuple[int, ...]) -> tuple[Any, int]:
    if A.is_torch(like):
        import torch

        t = torch.empty(shape, dtype=torch.float32, device=like.device)
        return t, int(t.data_ptr())
    import cupy

    with like.device:
        a = cupy.empty(shape, dtype=cupy.float32)
    return a, int(a.data.ptr)


def _dev_cache_pair(k_cache: Any, v_cache: Any, k_scale: Any, v_scale: Any, like: Any, likename: str):
    """(k_cache, v_cache, dtype name, scales) after the checks both CUDA entry points share."""
    kc, kname = _dev_cache(k_cache, "k_cache", like, likename)
    vc, vname = _dev_cache(v_cache, "v_cache", like, likename)
    if vname != kname:
        raise TypeError(f"v_cache: expected dtype {kname} like k_cache, got {vname}")
    if tuple(vc.shape) != tuple(kc.shape):
        raise ValueError(f"v_cache: expected shape {tuple(kc.shape)} like k_cache, got {tuple(vc.shape)}")
    if A.is_cupy(like) and kname not in _CUPY_DTYPES:
        raise TypeError(f"k_cache: CuPy caches must be one of {_CUPY_DTYPES}")
    return kc, vc, kname, _dev_scales(kname, kc, k_scale, v_scale, like, likename)


def _attention_cuda(prefill, q, k_cache, v_cache, block_tables, seq_lens, query_start_loc, scale, k_scale, v_scale,
                    sliding_window, num_splits):
    from .._native import cuda_module

    mod = cuda_module()
    qb = _dev_input(q, "q", q, "q")
    kc, vc, kname, scales = _dev_cache_pair(k_cache, v_cache, k_scale, v_scale, q, "q")
    t, hq, d = (int(n) for n in qb.obj.shape)
    nb, bs, hkv, _ = (int(n) for n in kc.shape)
    if d != int(kc.shape[3]):
        raise ValueError(f"q: head_dim {d} differs from the cache's {int(kc.shape[3])}")
    if hq == 0 or hq % hkv:
        raise ValueError(f"q: num_heads ({hq}) must be a multiple of the cache's num_kv_heads ({hkv})")
    if d % 8 or d > 256:
        raise ValueError(f"q: the CUDA kernels need head_dim % 8 == 0 and head_dim <= 256, got {d}")
    scale = 1.0 / float(np.sqrt(d)) if scale is None else A.check_real(scale, "scale")
    window = min(_window_arg(sliding_window), int(_INT32.max))
    bt = _host_ints(block_tables, "block_tables", np.int32, 2)
    lens = _host_ints(seq_lens, "seq_lens", np.int32, 1)
    qsl = _host_ints(query_start_loc, "query_start_loc", np.int32, 1) if prefill else None
    _check_tables(prefill, t, nb, bs, bt, lens, qsl)
    out, out_ptr = _dev_empty(q, (t, hq, d))
    s = int(lens.shape[0])
    if t == 0 or s == 0:
        return out
    bt_dev, bt_ptr = _to_device(bt, block_tables, q)
    lens_dev, lens_ptr = _to_device(lens, seq_lens, q)
    qsl_ptr, max_q, splits, ws_ptr, ws_n = 0, 0, 1, 0, 0
    if prefill:
        _qsl_dev, qsl_ptr = _to_device(qsl, query_start_loc, q)
        max_q = int(np.diff(qsl.astype(np.int64)).max())
    else:
        if num_splits is not None:
            if isinstance(num_splits, bool) or not isinstance(num_splits, (int, np.integer)) or not \
                    1 <= num_splits <= 256:
                raise ValueError(f"num_splits: expected None or an int in [1, 256], got {num_splits!r}")
            splits = int(num_splits)
        else:
            max_keys = int(lens.max())
            if window:
                max_keys = min(max_keys, window)
            splits = int(mod.paged_attention_decode_splits(s, hq, hkv, max_keys, _dev_index(q)))
        ws_n = int(mod.paged_attention_decode_workspace(s, hq, d, splits))
        if ws_n:
            _ws, ws_ptr = _dev_empty(q, (ws_n,))
    cache = _cache_tuple(kc, vc, kname, scales)
    with A.device_context(qb):
        mod.paged_attention(prefill, qb.ptr, _Q_CODE[qb.dtype], out_ptr, t, s, hq, bt_ptr, int(bt.shape[1]),
                            lens_ptr, qsl_ptr, max_q, scale, window, splits, ws_ptr, ws_n, cache, 0, qb.stream)
    # Temporaries (uploaded indices, workspace, a contiguous copy of q) are dropped on return while
    # the kernel may still run: safe, as torch's caching allocator and CuPy's pool hand freed
    # memory only to later work in the same stream order.
    del bt_dev, lens_dev
    return out


def _reshape_cuda(k, v, k_cache, v_cache, slot_mapping, k_scale, v_scale) -> None:
    from .._native import cuda_module

    mod = cuda_module()
    kb = _dev_input(k, "k", k, "k")
    vb = _dev_input(v, "v", k, "k")
    if vb.dtype != kb.dtype:
        raise TypeError(f"v: expected dtype {kb.dtype} like k, got {vb.dtype}")
    kc, vc, kname, scales = _dev_cache_pair(k_cache, v_cache, k_scale, v_scale, k, "k")
    nb, bs, hkv, d = (int(n) for n in kc.shape)
    slots = _host_ints(slot_mapping, "slot_mapping", np.int64, 1)
    t = int(slots.shape[0])
    for buf, nm in ((kb, "k"), (vb, "v")):
        if tuple(buf.obj.shape) != (t, hkv, d):
            raise ValueError(f"{nm}: expected shape ({t}, {hkv}, {d}) (tokens, num_kv_heads, head_dim), got "
                             f"{tuple(buf.obj.shape)}")
    bad = np.flatnonzero((slots < -1) | (slots >= nb * bs))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"slot_mapping[{i}] = {int(slots[i])} is out of range [-1, {nb * bs})")
    if t == 0:
        return None
    slots_dev, slots_ptr = _to_device(slots, slot_mapping, k)
    with A.device_context(kb):
        mod.reshape_and_cache(kb.ptr, vb.ptr, _Q_CODE[kb.dtype], slots_ptr, t, _cache_tuple(kc, vc, kname, scales), 0,
                              kb.stream)
    del slots_dev  # stream-ordered reuse only: see _attention_cuda
    return None
