"""Triton silu_and_mul: out[r, j] = silu(x[r, j]) * x[r, I + j], float32 math.

Grid (rows, cdiv(I, BLOCK)): one program per BLOCK outputs of one row. Same formulation as the
CPU kernel (csrc/cpu/silu_and_mul_impl.h): s = exp(-|g|), silu(g) = g / (1 + s) for g >= 0 and
g s / (1 + s) below (nothing overflows; the negative side is clamped at -120, where s is already
0, so silu(-inf) = -0 instead of -inf * 0). On a GPU tl.exp is ex2.approx(g * log2 e): for g < 0
the result is within ~(|g| + 4) float32 ulp (the CPU and CUDA kernels: ~3-4).
Napkin math: 2b bytes read + b written per output, ~10 flops and one exp: bound by memory
bandwidth on a GPU (H100 ~3.35 TB/s: ~0.28 T float32 outputs/s).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_MAX_BLOCK = 1024


@triton.jit
def _silu_and_mul_kernel(X, Y, inner, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < inner
    g = tl.load(X + row * 2 * inner + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(X + row * 2 * inner + inner + offs, mask=mask, other=0.0).to(tl.float32)
    s = tl.exp(-tl.abs(g))
    num = tl.where(g >= 0, g, tl.maximum(g, -120.0) * s)
    num = tl.where(g != g, g, num)  # NaN in, NaN out, whatever maximum() does with it
    y = num / (1.0 + s) * u
    tl.store(Y + row * inner + offs, y.to(Y.dtype.element_ty), mask=mask)


def silu_and_mul(x: torch.Tensor) -> torch.Tensor:
    """silu(x[:, :I]) * x[:, I:] of a contiguous float32/float16/bfloat16 tensor [rows, 2I]."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] % 2 or not x.is_contiguous():
        raise ValueError(f"x: expected a contiguous 2-D tensor [rows, 2 * I], got shape {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"x: expected float32, float16 or bfloat16, got {x.dtype}")
    rows, inner = x.shape[0], x.shape[1] // 2
    y = torch.empty((rows, inner), dtype=x.dtype, device=x.device)
    if rows == 0 or inner == 0:
        return y
    block = max(16, min(triton.next_power_of_2(inner), _MAX_BLOCK))  # >= 16: no 1-lane tiles
    _silu_and_mul_kernel[(rows, triton.cdiv(inner, block))](x, y, inner, BLOCK=block)
    return y
