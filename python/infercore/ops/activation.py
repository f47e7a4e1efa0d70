"""Activations: gelu (exact erf form and the tanh approximation) and silu_and_mul (the gated MLP
activation of Llama-family decoders)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._native import _C, cuda_module
from . import _arrays as A
from . import reference

_DTYPE_CODE = {"float32": 0, "float16": 1, "bfloat16": 2}
APPROXIMATIONS = ("none", "tanh")
_NP_FAST_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float16): "float16"}


def gelu(x: Any, *, approximate: str = "none", out: Any = None, backend: str = "auto") -> Any:
    """GELU elementwise: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (approximate="none", BERT's), or
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (approximate="tanh", GPT-2's).

    x: float32/float16/bfloat16 array of any shape (numpy, torch CPU/CUDA, CuPy) or a nested list
    of numbers (treated as float32); returns the same array type, dtype and shape. Computed in
    float32 (CPU: within ~8e-8 of the float64 reference before the result's own rounding).
    Limits: gelu(x) = x for large x and +inf, -0 for very negative x and -inf; NaN propagates.
    `out` (host arrays only) may be x itself for in-place use; non-contiguous inputs are copied.
    """
    if not isinstance(approximate, str) or approximate not in APPROXIMATIONS:
        raise ValueError(f"approximate: expected one of {APPROXIMATIONS}, got {approximate!r}")
    backend = A.check_backend(backend)
    x = A.as_array(x, "x")
    A.check_float(x, "x")
    if out is not None and A.is_device_array(x):
        raise ValueError("out: only supported for host arrays")
    backend = A.resolve_backend(backend, x)
    tanh = approximate == "tanh"
    if backend == "cpu":
        return _gelu_cpu(x, tanh, out)
    if backend == "cuda":
        return _gelu_cuda(x, tanh)
    if out is not None:  # validate before the (slow) reference / interpreted Triton work
        kview, _ = A.host_out(out, x, A.host_buffer(x, "x"))
    if backend == "reference":
        y = A.from_numpy_f64(reference.gelu(A.to_numpy_f64(x), approximate), x)
    else:
        y = _gelu_triton(x, approximate)
    if out is None:
        return y
    np.copyto(kview, A.host_buffer(y, "x").view.reshape(kview.shape))
    return out


def _gelu_cpu(x: Any, tanh: bool, out: Any) -> Any:
    buf = A.host_buffer(x, "x")
    kview, result = A.host_out(out, x, buf) if out is not None else buf.new_output()
    _C.gelu(buf.view.reshape(-1), kview.reshape(-1), buf.dtype, tanh)
    return result


def _gelu_cuda(x: Any, tanh: bool) -> Any:
    mod = cuda_module()
    buf = A.device_buffer(x, "x")
    o = A.device_empty_like(buf)
    n = int(np.prod(x.shape, dtype=np.int64))
    with A.device_context(buf):
        mod.gelu(buf.ptr, o.ptr, n, _DTYPE_CODE[buf.dtype], tanh, buf.stream)
    return o.obj


def _gelu_triton(x: Any, approximate: str) -> Any:
    from ..kernels import gelu as tk

    t = A.to_torch_for_triton(x)
    y = tk.gelu(t.reshape(-1), approximate)
    return A.from_torch(y.reshape(t.shape), x)


def silu_and_mul(x: Any, *, backend: str = "auto", out: Any = None) -> Any:
    """The gated MLP activation (vLLM's silu_and_mul): silu(x[..., :I]) * x[..., I:] -> [..., I],
    silu(g) = g * sigmoid(g).

    x: float32/float16/bfloat16 array [..., 2I] (numpy, torch CPU/CUDA, CuPy) or a nested list of
    numbers (treated as float32); returns the same array type and dtype, shape [..., I]. Computed
    in float32 (CPU: within ~3 ulp of the float64 reference before the result's own rounding).
    Limits: silu(+inf) = +inf, silu(-inf) = -0 (times the up half as IEEE says); NaN propagates.
    `out` (host arrays only): a C-contiguous array of shape [..., I] and x's dtype that shares no
    memory with x (the op cannot run in place). Non-contiguous inputs are copied.
    """
    if type(x) is np.ndarray and (backend == "auto" or backend == "cpu"):
        # Fast path for the decoder's per-token call (~2 us instead of ~12): a contiguous float32 /
        # float16 numpy array (and out, if given, a contiguous numpy array of the right shape and
        # dtype) needs none of the adapters below; the native entry checks writeability and overlap.
        name = _NP_FAST_DTYPES.get(x.dtype)
        if name is not None and x.ndim >= 1 and x.shape[-1] % 2 == 0 and x.flags.c_contiguous and x.flags.aligned:
            two = x.shape[-1]
            oshape = (*x.shape[:-1], two // 2)
            if out is None:
                y = np.empty(oshape, x.dtype)
            elif type(out) is np.ndarray and out.dtype == x.dtype and out.shape == oshape and out.flags.c_contiguous:
                y = out
            else:
                y = None  # the general path below explains what is wrong with out
            if y is not None:
                if y.size:
                    _C.silu_and_mul(x.reshape(-1, two), y.reshape(-1, two // 2), name)
                return y
    backend = A.check_backend(backend)
    x = A.as_array(x, "x")
    A.check_float(x, "x")
    if x.ndim < 1 or x.shape[-1] % 2:
        raise ValueError(f"x: expected shape [..., 2 * I] (an even last dimension), got {tuple(x.shape)}")
    if out is not None and A.is_device_array(x):
        raise ValueError("out: only supported for host arrays")
    backend = A.resolve_backend(backend, x)
    half = int(x.shape[-1]) // 2
    oshape = (*tuple(x.shape[:-1]), half)
    if backend == "cpu":
        return _silu_and_mul_cpu(x, out, oshape)
    if backend == "cuda":
        return _silu_and_mul_cuda(x, oshape)
    if out is not None:  # validate before the (slow) reference / interpreted Triton work
        kview, _ = _host_out_shaped(out, x, A.host_buffer(x, "x"), oshape)
    if backend == "reference":
        y = A.from_numpy_f64(reference.silu_and_mul(A.to_numpy_f64(x)), x)
    else:
        y = _silu_and_mul_triton(x, oshape)
    if out is None:
        return y
    np.copyto(kview, A.host_buffer(y, "x").view.reshape(kview.shape))
    return out


def _host_out_shaped(out: Any, x: Any, xbuf: A.HostBuffer, shape: tuple[int, ...]) -> tuple[np.ndarray, Any]:
    """Validate a caller-provided host output of `shape` and x's dtype that must not share memory
    with x at all; returns (kernel view, out)."""
    if type(out) is not type(x) and not (A.is_torch(out) and A.is_torch(x)):
        raise TypeError(f"out: expected the same array type as x ({A.describe(x)}), got {A.describe(out)}")
    if A.is_device_array(out):
        raise ValueError(f"out: expected a host array, got {A.describe(out)}")
    if A.dtype_name(out) != xbuf.dtype:
        raise TypeError(f"out: expected dtype {xbuf.dtype}, got {A.dtype_name(out)}")
    if tuple(out.shape) != shape:
        raise ValueError(f"out: expected shape {shape}, got {tuple(out.shape)}")
    if A.is_torch(out):
        import torch

        if not out.is_contiguous():
            raise ValueError("out: expected a contiguous tensor")
        view = out.detach().view(torch.int16).numpy() if xbuf.dtype != "float32" else out.detach().numpy()
    else:
        if not (out.flags.c_contiguous and out.flags.aligned and out.flags.writeable):
            raise ValueError("out: expected a C-contiguous, aligned, writeable array")
        view = out
    if np.may_share_memory(view, xbuf.view):
        raise ValueError("out: overlaps x; silu_and_mul cannot run in place, pass a separate array")
    return view, out


def _host_empty(x: Any, xbuf: A.HostBuffer, shape: tuple[int, ...]) -> tuple[np.ndarray, Any]:
    """A fresh host output of `shape` in x's array type and dtype: (kernel view, caller's object)."""
    o = np.empty(shape, dtype=xbuf.view.dtype)
    if not A.is_torch(x):
        return o, o
    import torch

    t = torch.from_numpy(o)
    return o, t.view(getattr(torch, xbuf.dtype)) if xbuf.dtype != "float32" else t


def _silu_and_mul_cpu(x: Any, out: Any, oshape: tuple[int, ...]) -> Any:
    buf = A.host_buffer(x, "x")
    kview, result = _host_out_shaped(out, x, buf, oshape) if out is not None else _host_empty(x, buf, oshape)
    half = oshape[-1]
    rows = math.prod(oshape[:-1])
    if rows and half:
        _C.silu_and_mul(buf.view.reshape(rows, 2 * half), kview.reshape(rows, half), buf.dtype)
    return result


def _silu_and_mul_cuda(x: Any, oshape: tuple[int, ...]) -> Any:
    mod = cuda_module()
    if not hasattr(mod, "silu_and_mul"):
        raise RuntimeError("backend='cuda': this _C_cuda build has no silu_and_mul kernel; rebuild infercore")
    buf = A.device_buffer(x, "x")
    if A.is_torch(buf.obj):
        import torch

        o = torch.empty(oshape, dtype=buf.obj.dtype, device=buf.obj.device)
        optr = int(o.data_ptr())
    else:
        import cupy

        with buf.obj.device:
            o = cupy.empty(oshape, dtype=buf.obj.dtype)
        optr = int(o.data.ptr)
    half = oshape[-1]
    rows = math.prod(oshape[:-1])
    if rows and half:
        with A.device_context(buf):
            mod.silu_and_mul(buf.ptr, optr, rows, half, _DTYPE_CODE[buf.dtype], buf.stream)
    return o


def _silu_and_mul_triton(x: Any, oshape: tuple[int, ...]) -> Any:
    from ..kernels import silu_and_mul as tk

    t = A.to_torch_for_triton(x)
    rows = math.prod(oshape[:-1])
    y = tk.silu_and_mul(t.reshape(rows, t.shape[-1]))
    return A.from_torch(y.reshape(oshape), x)
