"""Elementwise activations: gelu (exact erf form and the tanh approximation)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import _C, cuda_module
from . import _arrays as A
from . import reference

_DTYPE_CODE = {"float32": 0, "float16": 1, "bfloat16": 2}
APPROXIMATIONS = ("none", "tanh")


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

    t = A.to_torch(x)
    y = tk.gelu(t.reshape(-1), approximate)
    return A.from_torch(y.reshape(t.shape), x)
