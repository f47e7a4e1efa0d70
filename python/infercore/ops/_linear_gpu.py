"""ops.linear on a GPU: the Triton kernels (kernels/linear.py) and the CUDA GEMV (csrc/cuda/linear.cu).

backend "cuda" runs the CUDA GEMV for M <= 8 rows and the Triton GEMM above; "triton" runs Triton
for every M. Host arrays reach here only with backend="triton" (under TRITON_INTERPRET=1, tests).
"""

from __future__ import annotations

import math
from typing import Any

from .._native import cuda_module
from ..quant.weight import KIND_CODES, QuantizedWeight
from . import _arrays as A

GEMV_MAX_ROWS = 8
_X_DTYPE_CODE = {"float32": 0, "float16": 1, "bfloat16": 2}


def cuda_linear_module() -> Any:
    """_C_cuda when it was built with the linear kernels, else None."""
    mod = cuda_module()
    return mod if mod is not None and hasattr(mod, "linear_gemv") else None


def linear_gpu(x: Any, w: Any, bias: Any, backend: str, w8a8: bool = False) -> Any:
    """w8a8: int8 weights on 8-bit per-token activations at every row count (precision "high")."""
    if backend == "auto" and A.is_device_array(x):
        backend = "cuda" if cuda_linear_module() is not None else "triton"
        if backend == "triton" and not A.is_torch(x) and cuda_module() is None:
            raise RuntimeError("x: a CUDA array was given but infercore was built without CUDA kernels")
    else:
        backend = A.resolve_backend(backend, x)
        if backend == "cuda" and cuda_linear_module() is None:
            raise RuntimeError("backend='cuda': this _C_cuda build has no linear kernels; use backend='triton'")
    t = A.to_torch(x)
    qw = _device_weight(w, t.device)
    n, k = qw.shape
    if int(t.shape[-1]) != k:
        raise ValueError(f"x: last dimension {int(t.shape[-1])} does not match w's K={k} (w {qw.shape})")
    b = _device_bias(bias, t.device, n)
    lead = tuple(int(s) for s in t.shape[:-1])
    x2 = t.reshape(math.prod(lead), k)  # not -1: K may be 0
    if backend == "cuda" and x2.shape[0] <= GEMV_MAX_ROWS:
        y = gemv_cuda(x2, qw, b)
    else:
        from ..kernels import linear as tk

        y = tk.linear(x2, qw.kind, qw.shape, qw.data, qw.scale, qw.group_size, b, w8a8=w8a8)
    return A.from_torch(y.reshape((*lead, n)), x)


def _device_weight(w: Any, device: Any) -> QuantizedWeight:
    """w as a QuantizedWeight whose tensors live on `device` (host weights only for CPU tensors,
    i.e. the Triton interpreter: a silent per-call upload to a GPU would hide a slow path)."""
    if isinstance(w, QuantizedWeight):
        if w.device == "host":
            if device.type != "cpu":
                raise ValueError(f"w: the QuantizedWeight is on the host; move it once with w.to('{device}')")
            return w.to(device)
        if w.data.device != device:
            raise ValueError(f"w: the QuantizedWeight is on {w.device}, x on {device}")
        return w
    import torch

    wa = A.as_array(w, "w")
    dt = A.check_float(wa, "w")
    if A.is_device_array(wa) or device.type != "cpu":
        if not A.is_device_array(wa):
            raise ValueError(f"w: expected a CUDA array like x (or a QuantizedWeight.to(device)), got {A.describe(wa)}")
        t = A.to_torch(wa)
        if t.device != device:
            raise ValueError(f"w: expected an array on {device} like x, got {t.device}")
    else:
        t = A.to_torch(wa)
    if t.ndim != 2:
        raise ValueError(f"w: expected a 2-D [N, K] array, got shape {tuple(t.shape)}")
    kind = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}[dt]
    data = t.contiguous().view(torch.int16) if kind == "bf16" else t.contiguous()
    return QuantizedWeight(kind, (int(t.shape[0]), int(t.shape[1])), data)


def _device_bias(bias: Any, device: Any, n: int) -> Any:
    if bias is None:
        return None
    import torch

    ba = A.as_array(bias, "bias")
    A.check_float(ba, "bias")
    if device.type != "cpu" and not A.is_device_array(ba):
        raise ValueError(f"bias: expected an array on {device} like x, got {A.describe(ba)}")
    if device.type == "cpu" and A.is_device_array(ba):
        raise ValueError(f"bias: expected a host array like x, got {A.describe(ba)}")
    t = A.to_torch(ba)
    if t.device != device:
        raise ValueError(f"bias: expected an array on {device} like x, got {t.device}")
    if tuple(t.shape) != (n,):
        raise ValueError(f"bias: expected shape ({n},), got {tuple(t.shape)}")
    return t.to(torch.float32).contiguous()


def gemv_cuda(x2: Any, qw: QuantizedWeight, bias: Any) -> Any:
    """The CUDA GEMV (M <= 8): activation prep (int8 codes or float32 copy) + one pass over W."""
    import torch

    from ..kernels.linear import check_weight

    mod = cuda_linear_module()
    m, k = (int(s) for s in x2.shape)
    n = qw.shape[0]
    if not 0 <= m <= GEMV_MAX_ROWS:
        raise ValueError(f"x: the CUDA GEMV takes at most {GEMV_MAX_ROWS} rows, got {m}")
    check_weight(qw.kind, qw.shape, qw.data, qw.scale, qw.group_size, x2.device)
    x2 = x2.contiguous()
    y = torch.empty((m, n), dtype=x2.dtype, device=x2.device)
    if m == 0 or n == 0:
        return y
    if k == 0:
        y.copy_((bias if bias is not None else torch.zeros(n, device=x2.device)).expand(m, n))
        return y
    code = KIND_CODES[qw.kind]
    xdt = _X_DTYPE_CODE[str(x2.dtype).removeprefix("torch.")]
    ws_bytes = int(mod.linear_gemv_workspace_bytes(code, m, k, xdt))
    ws = torch.empty(max(ws_bytes, 1), dtype=torch.uint8, device=x2.device)
    scale_ptr = int(qw.scale.data_ptr()) if qw.scale is not None else 0
    bias_ptr = int(bias.data_ptr()) if bias is not None else 0
    stream = int(torch.cuda.current_stream(x2.device).cuda_stream)
    with torch.cuda.device(x2.device):
        mod.linear_gemv(
            code, int(x2.data_ptr()), xdt, int(qw.data.data_ptr()), scale_ptr, int(qw.group_size or 0), bias_ptr,
            int(y.data_ptr()), int(ws.data_ptr()), ws_bytes, m, n, k, stream,
        )  # fmt: skip
    return y

