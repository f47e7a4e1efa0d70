"""ops.linear: y = x @ W.T (+ bias) for float and quantized weights on the CPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import _C
from ..quant import reference as qref
from ..quant.weight import KIND_CODES, QuantizedWeight
from . import _arrays as A
from . import reference


def _as_weight(w: Any) -> QuantizedWeight:
    if isinstance(w, QuantizedWeight):
        return w
    w = A.as_array(w, "w")
    if A.is_device_array(w):
        raise ValueError(f"w: expected a host array, got {A.describe(w)}")
    dt = A.check_float(w, "w")
    if A.is_torch(w):
        w = w.detach().float().contiguous().numpy()
        dt = "float32"
    if w.ndim != 2:
        raise ValueError(f"w: expected a 2-D [N, K] array, got shape {tuple(w.shape)}")
    if dt == "float32":
        return QuantizedWeight("f32", (int(w.shape[0]), int(w.shape[1])), np.ascontiguousarray(w))
    if dt == "float16":
        return QuantizedWeight("f16", (int(w.shape[0]), int(w.shape[1])), np.ascontiguousarray(w))
    bits = np.ascontiguousarray(w).view(np.uint16)
    return QuantizedWeight("bf16", (int(w.shape[0]), int(w.shape[1])), bits)


# Mirrors csrc/cpu/linear.h: from this many activation rows (prefill) int8 weights run the
# integer GEMM on int16 activation codes (W8A16) and fp8 weights are dequantized and multiplied
# with float activations (no activation quantization). The block kinds (int4, q8_0, q4_0, q4_1)
# quantize activations per block of 32 at every size (like ggml's q8_0/q8_1 activations).
GEMM_MIN_ROWS_QUANT = 64
_PRECISIONS = ("highest", "high")
BLOCK_A8_KINDS = ("int4", "q8_0", "q4_0", "q4_1")


def _check_precision(precision: Any) -> None:
    if precision not in _PRECISIONS:
        if not isinstance(precision, str):
            raise TypeError(f"precision: expected 'highest' or 'high', got {type(precision).__name__}")
        raise ValueError(f"precision: expected 'highest' or 'high', got {precision!r}")


def int8_activation_bits(rows: int, precision: str = "highest") -> int:
    """8 or 16: the per-token activation codes an int8-weight ops.linear of `rows` rows runs with
    on the CPU (8 below GEMM_MIN_ROWS_QUANT rows, and at every size with precision="high")."""
    _check_precision(precision)
    return int(_C.linear_int8_activation_bits(int(rows), precision == "high"))


def _reference(x2: np.ndarray, qw: QuantizedWeight, bias: np.ndarray | None, high: bool = False) -> np.ndarray:
    """float64 result of exactly what the kernel computes (activation quantization included: per
    block of 32 for the block kinds; per row for int8, 8-bit codes below GEMM_MIN_ROWS_QUANT rows
    (and at every size with precision "high"), int16 codes from there on; none for fp8 from there on).
    bf16x3 (float32 weights, precision "high") is not modelled: the float64 product is its target."""
    if qw.kind in BLOCK_A8_KINDS:
        y = qref.linear_qblock(x2, qw.dequantize())
    elif qw.kind == "int8" and int8_activation_bits(x2.shape[0], "high" if high else "highest") == 8:
        y = qref.linear_w8a8(x2, qw.data, qw.scale)
    elif x2.shape[0] >= GEMM_MIN_ROWS_QUANT and qw.kind == "int8":
        y = qref.linear_w8a16(x2, qw.data, qw.scale)
    elif x2.shape[0] >= GEMM_MIN_ROWS_QUANT:
        y = reference.linear(x2, qw.dequantize())
    elif qw.kind == "int8":
        y = qref.linear_w8a8(x2, qw.data, qw.scale)
    else:
        y = reference.linear(x2, qw.dequantize())
    return y if bias is None else y + bias.astype(np.float64)


def linear(x: Any, w: Any, bias: Any = None, *, backend: str = "auto", precision: str = "highest",
           activation: str | None = None) -> Any:
    """y = x @ W.T (+ bias).

    x: [..., K] float32/float16/bfloat16 (numpy, torch CPU/CUDA, CuPy).
    w: a float [N, K] array or a quant.QuantizedWeight (see quant.quantize_weight for kinds).
       int8 weights run W8A8: each row of x is quantized to int8 (absmax/127) inside the
       kernel; int4/q8_0/q4_0/q4_1 quantize x per block of 32 (float32 scale) like ggml's
       q8_0/q8_1 dot products. From GEMM_MIN_ROWS_QUANT (64) rows (prefill, embedding batches)
       int8 weights run an integer GEMM on int16 activation codes per row (absmax/32767, ~3e-5
       relative from float activations; csrc/cpu/gemm_int16_impl.h) and fp8 weights are
       dequantized and multiplied with float activations (no activation quantization); the block
       kinds keep their per-block int8 activations at every size (csrc/cpu/gemm_blocks_r8_impl.h).
       A row of x holding NaN/inf then gives a NaN output row; with float kinds NaN/inf
       propagate as IEEE arithmetic does.
    bias: [N] float or None, where x lives. Returns [..., N] of x's array type and dtype.

    backend: "auto" (host arrays -> "cpu"; CUDA arrays -> "cuda" when _C_cuda is built, else
    "triton"), "cpu" (native kernels, float32 math), "reference" (float64 numpy of the same
    computation), "triton" (kernels/linear.py: GEMV up to 8 rows, tensor-core GEMM above), or
    "cuda" (csrc/cuda/linear.cu GEMV for M <= 8 rows, the Triton GEMM above 8 rows).

    precision: matmul precision, as torch.set_float32_matmul_precision names it. "highest"
    (default): the arithmetic above. "high" trades a little precision for the CPU's AMX tiles
    (Sapphire Rapids and later), about 2x the throughput of the GEMM paths:
      - float32/float16 weights from 16 rows (the packed GEMM) run as three bfloat16 products per
        multiply-add ("bf16x3": hi_x hi_w + lo_x hi_w + hi_x lo_w, float32 sums;
        csrc/cpu/gemm_bf16x3_amx.cpp; system_info()["cpu"]["amx_bf16x3_gemm"]): ~16-bit
        products, relative error ~5e-6 instead of ~3e-7; bfloat16 weights (from 16 rows) and
        fp8 weights (from 64 rows, the issue's "fp8 via BF16 dot"), exact in bf16, take two
        (hi_x w + lo_x w; fp8's row scale applied to the sums), error ~3e-6. A call with an
        inf/NaN in x or W runs the "highest" path (same bits);
      - int8 weights keep 8-bit per-token activations (W8A8, as below 64 rows) at every size,
        on every CPU: one AMX-INT8 tile pass instead of W8A16's two; without AMX the int16 GEMM
        runs on the widened 8-bit codes (W8A16's speed). Each row then gets the same bits
        whatever the number of rows (the batch-invariant mode the LLM's int8 weights run in;
        int8_activation_bits tells which ran). On a GPU int8 weights likewise run W8A8 at every
        size (the Triton GEMM's int8 tensor-core path instead of W8A16 from 64 rows).
    Everywhere else "high" is "highest" (the GPU's float32 GEMM already runs tf32x3).
    On a GPU the weight must be there too: `w.to(x.device)` (QuantizedWeight.to) once, or a
    float CUDA tensor. GPU compute: float32 accumulation; the quantized kinds use the same
    integer activation codes as the CPU (int8 below 64 rows, the block kinds at every size);
    the GEMM multiplies in x's dtype (float16 / bfloat16; float32 x via tf32x3), so
    float16/bfloat16 x also rounds dequantized weights to it.
    """
    _check_precision(precision)
    high = precision == "high"
    if activation is not None and activation != "gelu":
        raise ValueError(f"activation: expected None or 'gelu', got {activation!r}")
    fuse_gelu = activation == "gelu"
    if (
        type(x) is np.ndarray
        and x.dtype == np.float32
        and type(w) is QuantizedWeight
        and type(w.data) is np.ndarray
        and backend in ("auto", "cpu")
        and x.ndim >= 1
        and x.shape[-1] == w.shape[1]
    ):  # the decode-loop case: skip the generic array adapters (tens of microseconds)
        return _linear_cpu(x, w, bias, high, fuse_gelu)
    backend = A.check_backend(backend)
    x = A.as_array(x, "x")
    A.check_float(x, "x")
    if x.ndim < 1:
        raise ValueError("x: expected at least 1 dimension [..., K]")
    if backend == "reference" and (A.is_device_array(x) or _on_device(w)):
        return _linear_reference_any(x, w, bias, fuse_gelu, high)
    if A.is_device_array(x) or backend in ("cuda", "triton"):
        from . import _linear_gpu
        from .activation import gelu

        y = _linear_gpu.linear_gpu(x, w, bias, backend, w8a8=high)
        return gelu(y, backend=backend) if fuse_gelu else y
    qw = _as_weight(w)
    if qw.device != "host":
        raise ValueError(f"w: the QuantizedWeight lives on {qw.device} but x is a host array; use w.to('host')")
    n, k = qw.shape
    if int(x.shape[-1]) != k:
        raise ValueError(f"x: last dimension {int(x.shape[-1])} does not match w's K={k} (w {qw.shape})")
    b = None
    if bias is not None:
        b = A.host_float32_vector(bias, "bias", n)
    lead = tuple(int(s) for s in x.shape[:-1])
    xf = A.to_numpy_f64(x).astype(np.float32) if A.dtype_name(x) != "float32" or A.is_torch(x) else x
    x2 = np.ascontiguousarray(np.asarray(xf, dtype=np.float32).reshape(_rows(lead), k))
    if backend == "reference":
        y = _reference(x2, qw, b, high)
        y = reference.gelu(y) if fuse_gelu else y
        return A.from_numpy_f64(y.reshape((*lead, n)), x)
    return _wrap(_run(x2, qw, b, high, fuse_gelu).reshape((*lead, n)), x)


def _rows(lead: tuple[int, ...]) -> int:
    """Rows of the [rows, K] view (reshape(-1, K) cannot infer them when K is 0)."""
    return int(np.prod(lead, dtype=np.int64))


def _on_device(w: Any) -> bool:
    if isinstance(w, QuantizedWeight):
        return w.device != "host"
    return A.array_kind(w) != "other" and A.is_device_array(w)


def _linear_reference_any(x: Any, w: Any, bias: Any, fuse_gelu: bool = False, high: bool = False) -> Any:
    """backend="reference" for device arrays: everything to the host in float64, result back."""
    if isinstance(w, QuantizedWeight):
        qw = w.to("host")
    else:
        wa = A.as_array(w, "w")
        qw = _as_weight(A.to_numpy_f64(wa).astype(np.float32) if A.is_device_array(wa) else wa)
    n, k = qw.shape
    if int(x.shape[-1]) != k:
        raise ValueError(f"x: last dimension {int(x.shape[-1])} does not match w's K={k} (w {qw.shape})")
    b = None
    if bias is not None:
        ba = A.as_array(bias, "bias")
        A.check_float(ba, "bias")
        b = A.to_numpy_f64(ba).astype(np.float32)
        if b.shape != (n,):
            raise ValueError(f"bias: expected shape ({n},), got {tuple(b.shape)}")
    lead = tuple(int(s) for s in x.shape[:-1])
    x2 = np.ascontiguousarray(A.to_numpy_f64(x).astype(np.float32).reshape(_rows(lead), k))
    y = _reference(x2, qw, b, high)
    y = reference.gelu(y) if fuse_gelu else y
    return A.from_numpy_f64(y.reshape((*lead, n)), x)


def _run(x2: np.ndarray, qw: QuantizedWeight, b: np.ndarray | None, high: bool = False, gelu: bool = False,
         out: np.ndarray | None = None, act_scale: np.ndarray | None = None) -> np.ndarray:
    """The native call on C-contiguous float32 x2 [M, K] (into `out` [M, N] when given). act_scale
    (int8 weights only, [K]): x2 * act_scale is what the kernel quantizes (SmoothQuant's 1/s)."""
    if out is None:
        out = np.empty((x2.shape[0], qw.shape[0]), dtype=np.float32)
    wscale = qw.scale if qw.kind in ("int8", "fp8") else None
    gscale = qw.scale.view(np.uint16) if qw.kind == "int4" else None
    _C.linear(x2, qw.data, KIND_CODES[qw.kind], wscale, gscale, int(qw.group_size or 0), b, out, high, gelu,
              act_scale)
    return out


def _linear_cpu(x: np.ndarray, qw: QuantizedWeight, bias: Any, high: bool = False,
                gelu: bool = False) -> np.ndarray:
    n, k = qw.shape
    b = None if bias is None else A.host_float32_vector(bias, "bias", n)
    x2 = np.ascontiguousarray(x.reshape(_rows(x.shape[:-1]), k))
    return _run(x2, qw, b, high, gelu).reshape((*x.shape[:-1], n))


def _wrap(y: np.ndarray, like: Any) -> Any:
    dt = A.dtype_name(like)
    if A.is_torch(like):
        import torch

        return torch.from_numpy(y).to(getattr(torch, dt))
    if dt == "float32":
        return y
    return y.astype(like.dtype)
