"""Array adapters shared by every op.

An op receives whatever the caller has: a numpy array (float32, float16 or ml_dtypes bfloat16),
a torch tensor on the CPU or on CUDA, a CuPy array, or a nested list of numbers. These helpers
classify it, validate it with errors that name the argument, give the kernels the C-contiguous
buffer they need (non-contiguous or misaligned inputs are copied), and wrap results back into
the caller's array type.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

FLOAT_DTYPES = ("float32", "float16", "bfloat16")
BACKENDS = ("auto", "cpu", "cuda", "triton", "reference")


_KIND_BY_TYPE: dict[type, str] = {np.ndarray: "numpy"}
# numpy's dtype.name is a slow Python property; ops are called per token, so cache the names.
_NP_DTYPE_NAMES: dict[Any, str] = {np.dtype(t): np.dtype(t).name for t in (np.float32, np.float16, np.float64)}


def array_kind(x: Any) -> str:
    """'numpy', 'torch', 'cupy' or 'other' (cached per type: this runs on every op call)."""
    t = type(x)
    kind = _KIND_BY_TYPE.get(t)
    if kind is None:
        top = t.__module__.split(".", 1)[0]
        if isinstance(x, np.ndarray):
            kind = "numpy"
        elif top == "torch" and hasattr(x, "data_ptr"):
            kind = "torch"
        elif top == "cupy" and hasattr(x, "data"):
            kind = "cupy"
        else:
            kind = "other"
        _KIND_BY_TYPE[t] = kind
    return kind


def is_torch(x: Any) -> bool:
    return array_kind(x) == "torch"


def is_cupy(x: Any) -> bool:
    return array_kind(x) == "cupy"


def is_device_array(x: Any) -> bool:
    kind = array_kind(x)
    return kind == "cupy" or (kind == "torch" and x.device.type == "cuda")


def dtype_name(x: Any) -> str:
    """'float32', 'float16', 'bfloat16', ... for numpy, torch and CuPy arrays alike."""
    kind = array_kind(x)
    if kind == "torch":
        return str(x.dtype).removeprefix("torch.")
    name = _NP_DTYPE_NAMES.get(x.dtype)
    return name if name is not None else str(np.dtype(x.dtype).name)


def describe(x: Any) -> str:
    if is_torch(x):
        return f"torch.Tensor(dtype={dtype_name(x)}, device={x.device})"
    if is_cupy(x):
        return f"cupy.ndarray(dtype={dtype_name(x)})"
    if isinstance(x, np.ndarray):
        return f"numpy.ndarray(dtype={dtype_name(x)})"
    return type(x).__name__


def check_real(value: Any, name: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}: expected >= {minimum}, got {v}")
    return v


def check_backend(backend: Any) -> str:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    return backend


def as_array(x: Any, name: str) -> Any:
    """Numpy, torch and CuPy arrays pass through; lists/tuples of numbers become float32 numpy."""
    if array_kind(x) != "other":
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    if isinstance(x, (list, tuple)):
        try:
            arr = np.asarray(x)
        except ValueError as e:  # ragged nesting
            raise ValueError(f"{name}: cannot make an array from this nested sequence ({e})") from None
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{name}: expected numbers, got a sequence of {arr.dtype.kind!r}-kind values")
        return arr.astype(np.float32)
    raise TypeError(
        f"{name}: expected a numpy array, torch tensor, CuPy array or list of numbers, got {type(x).__name__}"
    )


def check_float(x: Any, name: str) -> str:
    dt = dtype_name(x)
    if dt not in FLOAT_DTYPES:
        hint = " (convert with .astype(np.float32))" if dt == "float64" else ""
        raise TypeError(f"{name}: expected dtype float32, float16 or bfloat16, got {dt}{hint}")
    return dt


def resolve_backend(backend: str, x: Any, name: str = "x") -> str:
    on_device = is_device_array(x)
    if backend == "auto":
        if not on_device:
            return "cpu"
        from .._native import cuda_module

        if cuda_module() is not None:
            return "cuda"
        if is_torch(x):
            return "triton"
        raise RuntimeError(f"{name}: a CUDA array was given but infercore was built without CUDA kernels")
    if backend == "cpu" and on_device:
        raise ValueError(
            f"{name}: backend='cpu' needs a host array, got {describe(x)}; copy it to the host first"
        )
    if backend == "cuda" and not on_device:
        raise ValueError(f"{name}: backend='cuda' needs a CuPy array or CUDA torch tensor, got {describe(x)}")
    if backend == "cuda":
        from .._native import cuda_module

        if cuda_module() is None:
            raise RuntimeError("backend='cuda': this infercore build has no CUDA kernels (_C_cuda)")
    return backend


def same_place(x: Any, other: Any, xname: str, oname: str) -> None:
    """Raise unless `other` lives where `x` does (host vs which CUDA device)."""
    if is_device_array(x) != is_device_array(other):
        where = "a CUDA device" if is_device_array(x) else "the host"
        raise ValueError(f"{oname}: expected an array on {where} like {xname}, got {describe(other)}")
    if is_device_array(x) and _device_index(x) != _device_index(other):
        raise ValueError(
            f"{oname}: expected CUDA device {_device_index(x)} like {xname}, got {_device_index(other)}"
        )


def _device_index(x: Any) -> int:
    if is_torch(x):
        return int(x.device.index or 0)
    return int(x.device.id)


# ---------------------------------------------------------------------------------- host side
@dataclass
class HostBuffer:
    """A C-contiguous numpy view for a kernel plus how to hand a result back to the caller."""

    view: np.ndarray  # what the kernel reads (16-bit types may be a uint16 view)
    dtype: str
    new_output: Callable[[], tuple[np.ndarray, Any]]  # -> (kernel view, caller's object)


def host_buffer(x: Any, name: str) -> HostBuffer:
    dt = check_float(x, name)
    if is_torch(x):
        import torch

        t = x.detach().contiguous()
        as_u16 = t.dtype in (torch.float16, torch.bfloat16)

        def torch_view(a: Any) -> np.ndarray:
            return a.view(torch.int16).numpy() if as_u16 else a.numpy()

        def new_torch() -> tuple[np.ndarray, Any]:
            # Allocated by numpy, which asks for transparent huge pages on large blocks: a
            # fresh 64 MB torch.empty costs ~16k page faults, numpy's ~32.
            o = np.empty(t.shape, dtype=np.int16 if as_u16 else np.float32)
            return o, torch.from_numpy(o).view(t.dtype) if as_u16 else torch.from_numpy(o)

        return HostBuffer(torch_view(t), dt, new_torch)
    arr = x if x.flags.c_contiguous and x.flags.aligned else np.ascontiguousarray(x)

    def new_numpy() -> tuple[np.ndarray, Any]:
        o = np.empty(arr.shape, dtype=arr.dtype)
        return o, o

    return HostBuffer(arr, dt, new_numpy)


def host_out(out: Any, x: Any, xbuf: HostBuffer, name: str = "out") -> tuple[np.ndarray, Any]:
    """Validate a caller-provided output for a host op that returns x's shape and dtype."""
    if type(out) is not type(x) and not (is_torch(out) and is_torch(x)):
        raise TypeError(f"{name}: expected the same array type as x ({describe(x)}), got {describe(out)}")
    if is_device_array(out):
        raise ValueError(f"{name}: expected a host array, got {describe(out)}")
    if dtype_name(out) != xbuf.dtype:
        raise TypeError(f"{name}: expected dtype {xbuf.dtype}, got {dtype_name(out)}")
    if tuple(out.shape) != tuple(xbuf.view.shape):
        raise ValueError(f"{name}: expected shape {tuple(xbuf.view.shape)}, got {tuple(out.shape)}")
    if is_torch(out):
        import torch

        if not out.is_contiguous():
            raise ValueError(f"{name}: expected a contiguous tensor")
        view = out.detach().view(torch.int16).numpy() if xbuf.dtype != "float32" else out.detach().numpy()
    else:
        if not (out.flags.c_contiguous and out.flags.aligned and out.flags.writeable):
            raise ValueError(f"{name}: expected a C-contiguous, aligned, writeable array")
        view = out
    if np.may_share_memory(view, xbuf.view) and view.ctypes.data != xbuf.view.ctypes.data:
        raise ValueError(f"{name}: partially overlaps x; pass x itself for in-place or a separate array")
    return view, out


def host_float32_vector(w: Any, name: str, length: int) -> np.ndarray:
    """A 1-D float32 numpy copy/view of a weight vector on the host (any float dtype accepted)."""
    w = as_array(w, name)
    check_float(w, name)
    if is_device_array(w):
        raise ValueError(f"{name}: expected a host array like x, got {describe(w)}")
    if is_torch(w):
        w = w.detach().float().contiguous().numpy()
    if w.ndim != 1 or w.shape[0] != length:
        raise ValueError(f"{name}: expected shape ({length},), got {tuple(w.shape)}")
    return np.ascontiguousarray(w, dtype=np.float32)


# -------------------------------------------------------------------------------- device side
@dataclass
class DeviceBuffer:
    obj: Any  # contiguous CuPy array or torch tensor
    ptr: int
    dtype: str
    device: int
    stream: int


def device_buffer(x: Any, name: str) -> DeviceBuffer:
    dt = check_float(x, name)
    if is_torch(x):
        import torch

        t = x.detach().contiguous()
        stream = torch.cuda.current_stream(t.device).cuda_stream
        return DeviceBuffer(t, int(t.data_ptr()), dt, int(t.device.index or 0), int(stream))
    import cupy

    a = cupy.ascontiguousarray(x)
    with a.device:
        stream = cupy.cuda.get_current_stream().ptr
    return DeviceBuffer(a, int(a.data.ptr), dt, int(a.device.id), int(stream))


def device_empty_like(buf: DeviceBuffer) -> DeviceBuffer:
    if is_torch(buf.obj):
        import torch

        o = torch.empty_like(buf.obj, memory_format=torch.contiguous_format)
        return DeviceBuffer(o, int(o.data_ptr()), buf.dtype, buf.device, buf.stream)
    import cupy

    with buf.obj.device:
        o = cupy.empty_like(buf.obj)
    return DeviceBuffer(o, int(o.data.ptr), buf.dtype, buf.device, buf.stream)


def device_float32_vector(w: Any, like: DeviceBuffer, name: str, length: int) -> DeviceBuffer:
    w = as_array(w, name)
    check_float(w, name)
    if not is_device_array(w):
        raise ValueError(f"{name}: expected an array on the CUDA device like x, got {describe(w)}")
    if tuple(w.shape) != (length,):
        raise ValueError(f"{name}: expected shape ({length},), got {tuple(w.shape)}")
    if is_torch(w):
        w = w.detach().float().contiguous()
        return DeviceBuffer(w, int(w.data_ptr()), "float32", int(w.device.index or 0), like.stream)
    import cupy

    w = cupy.ascontiguousarray(w, dtype=cupy.float32)
    return DeviceBuffer(w, int(w.data.ptr), "float32", int(w.device.id), like.stream)


def device_context(buf: DeviceBuffer) -> Any:
    """Make buf's device current while a kernel is launched."""
    if is_torch(buf.obj):
        import torch

        return torch.cuda.device(buf.device)
    return buf.obj.device


# ------------------------------------------------------------------------- torch (for Triton)
def to_torch(x: Any) -> Any:
    import torch

    if is_torch(x):
        return x.detach().contiguous()
    if is_cupy(x):
        return torch.from_dlpack(x).contiguous()
    arr = np.ascontiguousarray(x)
    if dtype_name(arr) == "bfloat16":
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(arr)


def to_torch_for_triton(x: Any) -> Any:
    """to_torch, then host memory moves to the GPU: compiled Triton kernels read device memory only
    (under TRITON_INTERPRET=1, or with no GPU, the tensor stays where it is)."""
    t = to_torch(x)
    if t.device.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        import torch

        if torch.cuda.is_available():
            t = t.cuda()
    return t


def from_torch(t: Any, like: Any) -> Any:
    """Return torch result `t` as the caller's array type (`like`)."""
    if is_torch(like):
        return t
    if is_cupy(like):
        import cupy

        return cupy.from_dlpack(t)
    import torch

    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.view(torch.int16).cpu().numpy().view(ml_dtypes.bfloat16)
    return t.cpu().numpy()


# ---------------------------------------------------------------------------- reference path
def to_numpy_f64(x: Any) -> np.ndarray:
    if is_torch(x):
        return x.detach().float().cpu().numpy().astype(np.float64)
    if is_cupy(x):
        import cupy

        return cupy.asnumpy(x).astype(np.float64)
    return np.asarray(x).astype(np.float64)


def from_numpy_f64(y: np.ndarray, like: Any) -> Any:
    """Cast a float64 reference result to like's dtype and array type."""
    dt = dtype_name(like)
    if is_torch(like):
        import torch

        return torch.from_numpy(np.ascontiguousarray(y)).to(getattr(torch, dt)).to(like.device)
    if is_cupy(like):
        import cupy

        return cupy.asarray(y.astype(np.float32)).astype(dt)
    return y.astype(like.dtype)
