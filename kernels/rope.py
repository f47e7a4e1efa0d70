"""Triton RoPE, in place on packed rows x [T, W] float32 (the fused q|k|v projection output).

Grid (T, cdiv(heads * head_dim / 2, BLOCK)): a program rotates BLOCK pairs of one row with the
cos/sin table row positions[t]. Pairs (2i, 2i + 1) when INTERLEAVED, else (i, i + head_dim / 2).
A row whose position is outside [0, P) is left unchanged (the Python op validates positions
first unless the caller opted out). Napkin math: per row 8 bytes read + written per rotated
element and 4 bytes of cos/sin per pair (table rows are shared across heads: L1/L2 hits), 3 flops
per element: bound by memory bandwidth on a GPU, and a negligible share of a decoder layer.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

_MAX_BLOCK = 1024


@triton.jit
def _rope_kernel(X, P, COS, SIN, width, pairs, half, table_rows, INTERLEAVED: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)  # pair index over all rotated heads of the row
    pos = tl.load(P + row)
    valid = (pos >= 0) & (pos < table_rows)
    mask = j < tl.where(valid, pairs, 0)  # nothing of a row with an out-of-range position
    pos = tl.where(valid, pos, 0)
    h = j // half
    i = j - h * half
    if INTERLEAVED:
        ia = h * 2 * half + 2 * i
        ib = ia + 1
    else:
        ia = h * 2 * half + i
        ib = ia + half
    base = X + row * width
    a = tl.load(base + ia, mask=mask, other=0.0)
    b = tl.load(base + ib, mask=mask, other=0.0)
    c = tl.load(COS + pos * half + i, mask=mask, other=0.0)
    s = tl.load(SIN + pos * half + i, mask=mask, other=0.0)
    tl.store(base + ia, a * c - b * s, mask=mask)
    tl.store(base + ib, b * c + a * s, mask=mask)


def rotary_embedding(x: torch.Tensor, positions: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, heads: int,
                     interleaved: bool) -> torch.Tensor:  # fmt: skip
    """Rotate heads [0, heads) of each row of x [T, W] float32 (contiguous) in place by the table
    rows cos/sin[positions] (float32 [P, head_dim / 2], positions int64 [T]); returns x."""
    for name, t, dt in (("x", x, torch.float32), ("positions", positions, torch.int64), ("cos", cos, torch.float32),
                        ("sin", sin, torch.float32)):  # fmt: skip
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.dtype != dt:
            raise TypeError(f"{name}: expected {dt}, got {t.dtype}")
        if not t.is_contiguous():
            raise ValueError(f"{name}: expected a contiguous tensor")
        if t.device != x.device:
            raise ValueError(f"{name}: expected device {x.device}, got {t.device}")
    if x.ndim != 2 or cos.ndim != 2 or cos.shape != sin.shape or cos.shape[1] == 0:
        raise ValueError(f"x/cos/sin: expected x [T, W] and equal cos/sin [P, head_dim / 2], got {tuple(x.shape)}, "
                         f"{tuple(cos.shape)}, {tuple(sin.shape)}")  # fmt: skip
    if positions.shape != (x.shape[0],):
        raise ValueError(f"positions: expected shape ({x.shape[0]},), got {tuple(positions.shape)}")
    half = cos.shape[1]
    if heads < 0 or heads * 2 * half > x.shape[1]:
        raise ValueError(f"heads: {heads} heads of head_dim {2 * half} do not fit the row width {x.shape[1]}")
    if not x.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("x: the Triton kernel needs a CUDA tensor (or TRITON_INTERPRET=1 for CPU tensors)")
    pairs = heads * half
    if x.shape[0] == 0 or pairs == 0:
        return x
    block = max(16, min(triton.next_power_of_2(pairs), _MAX_BLOCK))  # >= 16: no 1-lane tiles
    _rope_kernel[(x.shape[0], triton.cdiv(pairs, block))](
        x, positions, cos, sin, x.shape[1], pairs, half, cos.shape[0], INTERLEAVED=bool(interleaved), BLOCK=block
    )
    return x
