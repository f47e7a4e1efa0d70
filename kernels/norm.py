"""Triton l2_normalize / rms_norm: one program per row, float32 accumulation.

Napkin math as for the CUDA kernel: per row n*b bytes read, n*b written, ~4n flops; bound by
memory bandwidth. Rows longer than BLOCK loop in BLOCK-wide chunks (the second pass re-reads
the row, from L2 on a GPU).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_MAX_BLOCK = 4096


@triton.jit
def _norm_kernel(X, W, Y, cols, eps, RMS: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = X + row * cols
    y_row = Y + row * cols
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, cols, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < cols
        v = tl.load(x_row + offs, mask=mask, other=0.0).to(tl.float32)
        acc += v * v
    ss = tl.sum(acc, axis=0)
    if RMS:
        scale = 1.0 / tl.sqrt(ss / cols + eps)
    else:
        norm = tl.sqrt(ss)
        scale = 1.0 / tl.where(norm < eps, eps, norm)  # where() keeps a NaN norm NaN
    for start in range(0, cols, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < cols
        y = tl.load(x_row + offs, mask=mask, other=0.0).to(tl.float32) * scale
        if RMS:
            y = y * tl.load(W + offs, mask=mask, other=0.0)
        tl.store(y_row + offs, y.to(Y.dtype.element_ty), mask=mask)


def _check(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or not x.is_contiguous():
        raise ValueError(f"x: expected a contiguous 2-D tensor, got shape {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"x: expected float32, float16 or bfloat16, got {x.dtype}")


def _launch(x: torch.Tensor, w: torch.Tensor | None, eps: float, rms: bool) -> torch.Tensor:
    _check(x)
    rows, cols = x.shape
    y = torch.empty_like(x)
    if rows == 0 or cols == 0:
        return y
    block = min(triton.next_power_of_2(cols), _MAX_BLOCK)
    wt = w if w is not None else x  # unused when RMS is False
    _norm_kernel[(rows,)](x, wt, y, cols, float(eps), RMS=rms, BLOCK=block)
    return y


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return _launch(x, None, eps, False)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    if weight.dtype != torch.float32 or tuple(weight.shape) != (x.shape[-1],) or weight.device != x.device:
        raise ValueError("weight: expected a float32 tensor of shape (D,) on x's device")
    return _launch(x, weight.contiguous(), eps, True)
