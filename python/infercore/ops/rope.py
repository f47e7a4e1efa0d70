"""rotary_embedding: RoPE applied in place to the leading heads of packed rows (the model's fused
q|k|v projection output), from precomputed cos/sin tables (models/rope.py builds them)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._native import _C, cuda_module
from . import _arrays as A
from . import reference


def rotary_embedding(x: Any, positions: Any, cos: Any, sin: Any, *, heads: int, interleaved: bool,
                     backend: str = "auto", check_positions: bool = True) -> Any:  # fmt: skip
    """Rotate heads [0, heads) of each row of x [T, W] float32 in place and return x.

    head_dim = 2 * cos.shape[1]; heads * head_dim <= W (the rest of each row, e.g. the v heads, is
    left alone). Row t uses table row positions[t] of cos/sin (float32 [P, head_dim / 2], equal
    shapes): each pair (a, b) becomes (a cos - b sin, b cos + a sin); pairs are (2i, 2i + 1) when
    interleaved (GGUF llama), else (i, i + head_dim / 2) (neox / rotate_half).

    x: a C-contiguous, writeable float32 numpy array, torch tensor (CPU or CUDA) or CuPy array;
    positions: integer array [T] (converted to int64), cos/sin on the same device as x.
    Everything, including each position against [0, P), is validated before x is touched
    (ValueError/TypeError naming the argument). On a device array the position check reads the
    minimum and maximum back to the host (a synchronisation); check_positions=False skips it, and
    the GPU kernels then leave rows with an out-of-range position unchanged instead.
    """
    if (type(x) is np.ndarray and type(positions) is np.ndarray and type(cos) is np.ndarray
            and type(sin) is np.ndarray and type(heads) is int and heads >= 0 and type(interleaved) is bool
            and (backend == "auto" or backend == "cpu") and cos.ndim == 2 and positions.dtype == np.int64
            and positions.flags.c_contiguous and cos.flags.c_contiguous and sin.flags.c_contiguous):  # fmt: skip
        # Fast path for the decoder's per-layer call (~1 us instead of ~18): the native entry checks
        # every shape, dtype, contiguity and position itself before it writes (same errors).
        _C.rope_inplace(x, heads, 2 * int(cos.shape[1]), positions, cos, sin, interleaved)
        return x
    backend = A.check_backend(backend)
    if A.array_kind(x) == "other":
        raise TypeError(f"x: expected a numpy array, torch tensor or CuPy array (rotated in place), got "
                        f"{type(x).__name__}")  # fmt: skip
    if A.dtype_name(x) != "float32":
        raise TypeError(f"x: expected dtype float32, got {A.dtype_name(x)}")
    if x.ndim != 2:
        raise ValueError(f"x: expected a 2-D array [T, W], got shape {tuple(x.shape)}")
    _check_writable_contiguous(x)
    if isinstance(heads, bool) or not isinstance(heads, numbers.Integral):
        raise TypeError(f"heads: expected an int, got {type(heads).__name__}")
    heads = int(heads)
    if not isinstance(interleaved, (bool, np.bool_)):
        raise TypeError(f"interleaved: expected a bool, got {type(interleaved).__name__}")
    interleaved = bool(interleaved)
    if not isinstance(check_positions, (bool, np.bool_)):
        raise TypeError(f"check_positions: expected a bool, got {type(check_positions).__name__}")
    cos, sin = _table(x, cos, "cos"), _table(x, sin, "sin")
    if tuple(cos.shape) != tuple(sin.shape):
        raise ValueError(f"cos/sin: expected equal shapes (P, head_dim / 2), got {tuple(cos.shape)} and "
                         f"{tuple(sin.shape)}")  # fmt: skip
    table_rows, half = int(cos.shape[0]), int(cos.shape[1])
    if half == 0:
        raise ValueError(f"cos: expected shape (P, head_dim / 2) with head_dim > 0, got {tuple(cos.shape)}")
    head_dim = 2 * half
    rows, width = int(x.shape[0]), int(x.shape[1])
    if heads < 0 or heads * head_dim > width:
        raise ValueError(f"heads: {heads} heads of head_dim {head_dim} do not fit the row width {width}")
    positions = _positions(x, positions, rows)
    if rows and (check_positions or not A.is_device_array(x)):
        _check_range(positions, table_rows)
    backend = A.resolve_backend(backend, x)
    if rows == 0 or heads == 0:
        return x
    if backend == "cpu":
        _C.rope_inplace(_host_view(x), heads, head_dim, _to_host(positions), _to_host(cos), _to_host(sin),
                        interleaved)  # fmt: skip
    elif backend == "reference":
        y = reference.rotary_embedding(A.to_numpy_f64(x), _to_host(positions), _to_host(cos), _to_host(sin),
                                       heads, interleaved)  # fmt: skip
        _write_back(x, y.astype(np.float32))
    elif backend == "cuda":
        _rope_cuda(x, positions, cos, sin, heads, head_dim, interleaved)
    else:
        from ..kernels import rope as tk

        t = A.to_torch(x)  # shares x's memory (x is contiguous)
        tk.rotary_embedding(t, _torch_like(positions, t), _torch_like(cos, t), _torch_like(sin, t), heads,
                            interleaved)  # fmt: skip
    return x


# ------------------------------------------------------------------------------- validation
def _check_writable_contiguous(x: Any) -> None:
    kind = A.array_kind(x)
    if kind == "torch":
        ok = x.is_contiguous()
    elif kind == "cupy":
        ok = bool(x.flags.c_contiguous)
    else:
        ok = x.flags.c_contiguous and x.flags.aligned
        if ok and not x.flags.writeable:
            raise ValueError("x: expected a writeable array (it is rotated in place)")
    if not ok:
        raise ValueError("x: expected a C-contiguous array (it is rotated in place; a copy would be lost)")


def _table(x: Any, t: Any, name: str) -> Any:
    t = A.as_array(t, name)
    A.same_place(x, t, "x", name)
    if A.dtype_name(t) != "float32":
        raise TypeError(f"{name}: expected dtype float32, got {A.dtype_name(t)}")
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D table (P, head_dim / 2), got shape {tuple(t.shape)}")
    return t


def _positions(x: Any, p: Any, rows: int) -> Any:
    if isinstance(p, (list, tuple)):
        p = np.asarray(p, dtype=np.int64) if len(p) else np.zeros(0, np.int64)
    if A.array_kind(p) == "other":
        raise TypeError(f"positions: expected an integer array, got {type(p).__name__}")
    A.same_place(x, p, "x", "positions")
    dt = A.dtype_name(p)
    if not (dt.startswith("int") or dt.startswith("uint")):
        raise TypeError(f"positions: expected an integer dtype (int64), got {dt}")
    if tuple(p.shape) != (rows,):
        raise ValueError(f"positions: expected shape ({rows},) (one per row of x), got {tuple(p.shape)}")
    if A.is_torch(p):
        import torch

        return p.detach().to(torch.int64).contiguous()
    if A.is_cupy(p):
        import cupy

        return cupy.ascontiguousarray(p, dtype=cupy.int64)
    if dt == "uint64" and p.size and int(p.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"positions: {int(p.max())} is outside the table")
    return np.ascontiguousarray(p, dtype=np.int64)


def _check_range(p: Any, table_rows: int) -> None:
    if A.is_torch(p):
        import torch

        lo, hi = (int(v) for v in torch.aminmax(p))
    else:
        lo, hi = int(p.min()), int(p.max())
    for v in (lo, hi):
        if not 0 <= v < table_rows:
            raise ValueError(f"positions: {v} is outside the table [0, {table_rows})")


# --------------------------------------------------------------------------------- backends
def _host_view(x: Any) -> np.ndarray:
    return x.detach().numpy() if A.is_torch(x) else x


def _to_host(a: Any) -> np.ndarray:
    if A.is_torch(a):
        return np.ascontiguousarray(a.detach().cpu().numpy())
    if A.is_cupy(a):
        import cupy

        return cupy.asnumpy(a)
    return np.ascontiguousarray(a)


def _write_back(x: Any, y: np.ndarray) -> None:
    if A.is_torch(x):
        import torch

        with torch.no_grad():
            x.copy_(torch.from_numpy(y))
    elif A.is_cupy(x):
        import cupy

        x[...] = cupy.asarray(y)
    else:
        np.copyto(x, y)


def _torch_like(a: Any, t: Any) -> Any:
    return A.to_torch(a).to(t.device).contiguous()


def _ptr(a: Any) -> int:
    return int(a.data_ptr()) if A.is_torch(a) else int(a.data.ptr)


def _rope_cuda(x: Any, positions: Any, cos: Any, sin: Any, heads: int, head_dim: int, interleaved: bool) -> None:
    mod = cuda_module()
    if not hasattr(mod, "rope_inplace"):
        raise RuntimeError("backend='cuda': this _C_cuda build has no rope kernel; rebuild infercore")
    if A.is_torch(x):
        import torch

        cos, sin = cos.detach().contiguous(), sin.detach().contiguous()
        stream = int(torch.cuda.current_stream(x.device).cuda_stream)
        ctx = torch.cuda.device(x.device)
    else:
        import cupy

        cos, sin = cupy.ascontiguousarray(cos), cupy.ascontiguousarray(sin)
        with x.device:
            stream = int(cupy.cuda.get_current_stream().ptr)
        ctx = x.device
    with ctx:
        mod.rope_inplace(_ptr(x), int(x.shape[0]), int(x.shape[1]), heads, head_dim, _ptr(positions), _ptr(cos),
                         _ptr(sin), int(cos.shape[0]), interleaved, stream)  # fmt: skip
