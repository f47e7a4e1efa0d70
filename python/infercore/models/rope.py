"""Rotary position embeddings (RoPE) with the model's base and scaling.

Two layouts: "neox" rotates pairs (i, i + D/2) (Hugging Face's rotate_half) and "interleaved"
rotates pairs (2i, 2i + 1) (GGUF llama: the converter permutes Q/K rows so that interleaved
RoPE on its weights equals rotate_half on the original ones).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._native import _C


def inv_frequencies(head_dim: int, theta: float, scaling: dict[str, Any] | None) -> np.ndarray:
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    if not scaling:
        return inv
    kind = scaling.get("rope_type", scaling.get("type"))
    factor = float(scaling.get("factor", 1.0))
    if kind in (None, "default"):
        return inv
    if kind == "linear":
        return inv / factor
    if kind == "llama3":  # smooth blend between scaled low and unscaled high frequencies
        low = float(scaling.get("low_freq_factor", 1.0))
        high = float(scaling.get("high_freq_factor", 4.0))
        old = float(scaling.get("original_max_position_embeddings", 8192))
        wavelen = 2 * math.pi / inv
        smooth = np.clip((old / wavelen - low) / (high - low), 0.0, 1.0)
        scaled = np.where(wavelen > old / low, inv / factor, inv)
        mid = (1 - smooth) * inv / factor + smooth * inv
        return np.where((wavelen <= old / low) & (wavelen >= old / high), mid, scaled)
    raise ValueError(f"rope_scaling: unsupported type {kind!r} (supported: linear, llama3)")


class Rope:
    """Precomputed cos/sin tables; apply() rotates [T, H, D] float32 in place."""

    def __init__(self, head_dim: int, theta: float, max_positions: int, style: str,
                 scaling: dict[str, Any] | None = None) -> None:  # fmt: skip
        if style not in ("neox", "interleaved"):
            raise ValueError(f"style: expected 'neox' or 'interleaved', got {style!r}")
        if head_dim % 2:
            raise ValueError(f"head_dim: RoPE needs an even head dimension, got {head_dim}")
        self.style = style
        self.head_dim = head_dim
        self.inv = inv_frequencies(head_dim, theta, scaling)
        self.max_positions = 0
        self._grow(max(1, max_positions))

    def _grow(self, n: int) -> None:
        ang = np.arange(n, dtype=np.float64)[:, None] * self.inv[None, :]
        self.cos = np.cos(ang).astype(np.float32)
        self.sin = np.sin(ang).astype(np.float32)
        self.max_positions = n

    def ensure(self, positions: np.ndarray) -> None:
        """Grow the tables to cover `positions`."""
        if positions.size and int(positions.max()) >= self.max_positions:
            self._grow(max(int(positions.max()) + 1, 2 * self.max_positions))

    def apply_rows(self, rows: np.ndarray, heads: int, positions: np.ndarray) -> None:
        """Rotate heads [0, heads) of each row of rows [T, W] float32 (C-contiguous) in place: the
        model's fused q|k|v output, whose q and k heads lead each row. Native; checks its inputs
        (a position beyond the tables raises ValueError: call ensure() first)."""
        _C.rope_inplace(rows, heads, self.head_dim, positions, self.cos, self.sin, self.style == "interleaved")

    def apply(self, x: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Numpy form on [T, H, D] (any strides); the reference that apply_rows is tested against."""
        self.ensure(positions)
        cos = self.cos[positions][:, None, :]
        sin = self.sin[positions][:, None, :]
        if self.style == "neox":
            half = self.head_dim // 2
            x1, x2 = x[..., :half].copy(), x[..., half:].copy()
            x[..., :half] = x1 * cos - x2 * sin
            x[..., half:] = x2 * cos + x1 * sin
        else:
            x1, x2 = x[..., 0::2].copy(), x[..., 1::2].copy()
            x[..., 0::2] = x1 * cos - x2 * sin
            x[..., 1::2] = x2 * cos + x1 * sin
        return x
