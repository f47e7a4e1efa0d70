"""Triton gelu: one program per BLOCK elements of the flat array, float32 math.

Same formulation as the CPU kernel (csrc/cpu/gelu_impl.h): gelu(x) = max(x, -0) - |x| s(|x|) with
s = 0.5 erfc(|x| / sqrt 2) = 0.5 exp(-x^2 / 2) t P(t) (exact) or 1 / (1 + exp(w)) (tanh form), so
the limits are exact and the small side has no cancellation. Napkin math: b bytes read + b written
per element, ~30 flops: bound by memory bandwidth on a GPU (H100 ~3.35 TB/s).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_BLOCK = 1024


@triton.jit
def _gelu_kernel(X, Y, n, TANH: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(X + offs, mask=mask, other=0.0).to(tl.float32)
    pos = tl.where(x >= 0, x, -0.0)  # x for x >= 0 (keeps the sign of -0), else -0
    if TANH:
        a = tl.minimum(tl.abs(x), 12.0)
        e = tl.exp(a * (-1.595769122 - 7.135481627e-02 * a * a))  # exp(-2 sqrt(2/pi) (a + 0.044715 a^3))
        y = pos - a * e / (1.0 + e)
    else:
        a = tl.minimum(tl.abs(x), 15.0)
        nh = -0.5 * a
        t = 1.0 / (1.0 + 0.2786000669 * a)
        q = -2.184666395e-01 * t + 8.209311962e-01
        q = q * t - 5.363544822e-01
        q = q * t + 5.819464922e-01
        q = q * t + 1.176812872e-01
        q = q * t + 2.342621982e-01
        q = q * t  # erfc(z) exp(z^2), z = a / sqrt 2
        y = pos + nh * q * tl.exp(nh * a)
    # x's sign bit onto y: gelu(x) <= 0 for x <= 0, and -0 (or an underflow to 0 for very negative x)
    # must come out -0 as torch's does; compiled, `where(x >= 0, x, -0.0)` alone gave +0 for -0
    xb = x.to(tl.int32, bitcast=True)
    y = (y.to(tl.int32, bitcast=True) | ((xb >> 31) << 31)).to(tl.float32, bitcast=True)
    y = tl.where(x != x, x, y)  # NaN in, NaN out (minimum() would have dropped it)
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)


def gelu(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """gelu of a contiguous float32/float16/bfloat16 tensor (any shape, treated as flat)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_contiguous():
        raise ValueError(f"x: expected a contiguous tensor, got strides {tuple(x.stride())}")
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"x: expected float32, float16 or bfloat16, got {x.dtype}")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    y = torch.empty_like(x)
    n = x.numel()
    if n == 0:
        return y
    _gelu_kernel[(triton.cdiv(n, _BLOCK),)](x, y, n, TANH=approximate == "tanh", BLOCK=_BLOCK)
    return y
