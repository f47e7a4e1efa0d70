"""Row-wise normalisations: l2_normalize and rms_norm over the last axis."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import _C, cuda_module
from . import _arrays as A
from . import reference

_DTYPE_CODE = {"float32": 0, "float16": 1, "bfloat16": 2}


def l2_normalize(x: Any, eps: float = 1e-12, *, backend: str = "auto", out: Any = None) -> Any:
    """x / max(||x||_2, eps) along the last axis.

    x: float32/float16/bfloat16 array of shape [..., D] (numpy, torch CPU/CUDA, CuPy) or a nested
    list of numbers (treated as float32). Accumulates in float32 or better; returns the same
    array type, dtype and shape. Non-contiguous inputs are copied. `out` (host arrays only) may be
    x itself for in-place use. NaN/Inf propagate as IEEE arithmetic does.
    """
    return _norm(False, x, None, eps, backend, out)


def rms_norm(x: Any, weight: Any, eps: float = 1e-6, *, backend: str = "auto", out: Any = None) -> Any:
    """x / sqrt(mean(x^2) + eps) * weight along the last axis (LLaMA RMSNorm).

    weight: [D], any float dtype, on the same device as x (used as float32). See l2_normalize for
    the accepted arrays and `out`.
    """
    return _norm(True, x, weight, eps, backend, out)


def _norm(rms: bool, x: Any, weight: Any, eps: Any, backend: Any, out: Any) -> Any:
    eps = A.check_real(eps, "eps", minimum=0.0)
    backend = A.check_backend(backend)
    x = A.as_array(x, "x")
    A.check_float(x, "x")
    if x.ndim < 1:
        raise ValueError(f"x: expected at least 1 dimension [..., D], got a {x.ndim}-d array")
    cols = int(x.shape[-1])
    if cols == 0:
        raise ValueError(f"x: the last dimension (D) must be > 0, got shape {tuple(x.shape)}")
    if rms and weight is None:
        raise TypeError("weight: expected an array of shape (D,), got None")
    if out is not None and A.is_device_array(x):
        raise ValueError("out: only supported for host arrays")
    backend = A.resolve_backend(backend, x)
    if rms:
        w_arr = A.as_array(weight, "weight")
        A.same_place(x, w_arr, "x", "weight")

    if backend == "reference":
        xs = A.to_numpy_f64(x)
        if rms:
            wv = A.to_numpy_f64(w_arr)
            if wv.shape != (cols,):
                raise ValueError(f"weight: expected shape ({cols},), got {tuple(wv.shape)}")
            y = reference.rms_norm(xs, wv, eps)
        else:
            y = reference.l2_normalize(xs, eps)
        return A.from_numpy_f64(y, x)
    if backend == "cpu":
        return _norm_cpu(rms, x, w_arr if rms else None, eps, out, cols)
    if backend == "cuda":
        return _norm_cuda(rms, x, w_arr if rms else None, eps, cols)
    return _norm_triton(rms, x, w_arr if rms else None, eps, cols)


def _norm_cpu(rms: bool, x: Any, weight: Any, eps: float, out: Any, cols: int) -> Any:
    buf = A.host_buffer(x, "x")
    kview, result = A.host_out(out, x, buf) if out is not None else buf.new_output()
    x2 = buf.view.reshape(-1, cols)
    o2 = kview.reshape(-1, cols)
    if rms:
        w = A.host_float32_vector(weight, "weight", cols)
        _C.rms_norm(x2, w, o2, buf.dtype, eps)
    else:
        _C.l2_normalize(x2, o2, buf.dtype, eps)
    return result


def _norm_cuda(rms: bool, x: Any, weight: Any, eps: float, cols: int) -> Any:
    mod = cuda_module()
    buf = A.device_buffer(x, "x")
    o = A.device_empty_like(buf)
    wptr = 0
    if rms:
        wbuf = A.device_float32_vector(weight, buf, "weight", cols)
        wptr = wbuf.ptr
    rows = int(np.prod(x.shape[:-1], dtype=np.int64))
    with A.device_context(buf):
        mod.norm(rms, buf.ptr, wptr, o.ptr, rows, cols, _DTYPE_CODE[buf.dtype], eps, buf.stream)
    return o.obj


def _norm_triton(rms: bool, x: Any, weight: Any, eps: float, cols: int) -> Any:
    from ..kernels import norm as tk

    t = A.to_torch_for_triton(x)
    t2 = t.reshape(-1, cols)
    if rms:
        w = A.to_torch(weight).float().contiguous()
        if tuple(w.shape) != (cols,):
            raise ValueError(f"weight: expected shape ({cols},), got {tuple(w.shape)}")
        y = tk.rms_norm(t2, w.to(t2.device), eps)
    else:
        y = tk.l2_normalize(t2, eps)
    return A.from_torch(y.reshape(t.shape), x)
