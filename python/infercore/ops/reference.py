"""float64 numpy definitions of every op: the specification that all backends are tested against.

Inputs may be any float dtype; they are promoted to float64 and the result is float64.
"""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """x / max(||x||_2, eps) along the last axis (torch.nn.functional.normalize semantics)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf propagate as IEEE says
        norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
        return x / np.where(norm < eps, eps, norm)


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """x / sqrt(mean(x^2) + eps) * weight along the last axis (LLaMA RMSNorm)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        ms = np.mean(x * x, axis=-1, keepdims=True)
        return x / np.sqrt(ms + eps) * w


def linear(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """x @ w.T (+ bias): x [..., K], w [N, K] (already dequantized), bias [N]."""
    y = np.asarray(x, dtype=np.float64) @ np.asarray(w, dtype=np.float64).T
    return y if bias is None else y + np.asarray(bias, dtype=np.float64)
