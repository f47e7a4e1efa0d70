"""SmoothQuant for the LLM's int8 weights (W8A8 with per-token activations).

int8 weights run on int8 activation codes, one scale per token (ops.linear precision "high", at
every batch size). A Llama's GEMM inputs have a few channels tens of times larger than the rest,
and with one scale per token they take the int8 range from every other channel. SmoothQuant
(Xiao et al. 2023) moves that range into the weights: per input channel j, s_j =
max|X_j|^alpha / max|W_:,j|^(1 - alpha), and X W^T = (X / s)(W s)^T. Here every 1/s folds into
the layer before, so the decoder runs no extra pass:
  - QKV and gate/up inputs: into the RMSNorm weights (the norm's output is x * g: g / s);
  - the down projection's input silu(gate) * up: into the up rows (linear in up);
  - the output projection's input (attention output, linear in V): into the V rows, one scale
    per KV head channel shared by the query heads of its group (as SmoothQuant does for GQA).
Activation ranges come from one prefill over built-in calibration texts on the unquantized model
(the file's formats), ~0.3 s for SmolLM2. The LM head is not quantized (see llama.load_gguf).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..quant import QuantizedWeight, quantize_weight
from .calibration import activation_ranges

ALPHA = 0.5


def smooth_scales(act_absmax: np.ndarray, w: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """SmoothQuant's per-input-channel scale s_j = max|X_j|^a / max|W_:,j|^(1-a), clipped to [1e-2, 1e2]."""
    wmax = np.abs(w).max(axis=0)
    s = np.power(np.maximum(act_absmax, 1e-5), alpha) / np.power(np.maximum(wmax, 1e-5), 1 - alpha)
    return np.clip(s, 1e-2, 1e2).astype(np.float32)


def _dense(w: Any) -> np.ndarray:
    """A layer weight (float32 array, QuantizedWeight, or a list of unfused parts) as float32 [N, K]."""
    if isinstance(w, list):
        return np.concatenate([_dense(p) for p in w], axis=0)
    if isinstance(w, QuantizedWeight):
        return np.ascontiguousarray(w.dequantize(), np.float32)
    return np.array(w, np.float32)  # a copy: HF weights may be read-only file maps


def smooth_quantize_int8(model: Any, ids: list[int], alpha: float = ALPHA, kind: str | None = "int8") -> None:
    """Calibrate on `ids`, fold the smoothing scales into the norms / up / V rows, and turn every
    layer's GEMM weights into int8, in place. kind=None keeps the smoothed weights in float32 (the
    same function as before, up to float32 rounding: what the tests check the folding with)."""

    def q(w: np.ndarray) -> Any:
        return w if kind is None else quantize_weight(np.ascontiguousarray(w), kind)

    stats = activation_ranges(model, ids)
    c = model.config
    q_dim, kv_dim, d = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim, c.head_dim
    group = c.num_heads // c.num_kv_heads
    inter = _dense_rows(model.layers[0].gate_up) // 2
    for layer, st in zip(model.layers, stats, strict=True):
        qkv, o, gate_up, down = (_dense(w) for w in (layer.qkv, layer.o, layer.gate_up, layer.down))
        s_qkv = smooth_scales(st["qkv"], qkv, alpha)
        s_gu = smooth_scales(st["gate_up"], gate_up, alpha)
        s_down = smooth_scales(st["down"], down, alpha)
        # o's input channel h * d + j comes from V channel (h // group) * d + j: one scale per KV
        # channel, from the largest activation and weight column of its query heads
        a_o = st["o"].reshape(c.num_kv_heads, group, d).max(axis=1).reshape(kv_dim)
        w_o = np.abs(o).max(axis=0).reshape(c.num_kv_heads, group, d).max(axis=1).reshape(kv_dim)
        s_kv = smooth_scales(a_o, w_o[None, :], alpha)
        s_o = np.repeat(s_kv.reshape(c.num_kv_heads, 1, d), group, axis=1).reshape(q_dim)
        qkv *= s_qkv[None, :]
        qkv[q_dim + kv_dim:] /= s_kv[:, None]
        if layer.qkv_bias is not None:
            layer.qkv_bias = np.array(layer.qkv_bias, np.float32)
            layer.qkv_bias[q_dim + kv_dim:] /= s_kv
        gate_up *= s_gu[None, :]
        gate_up[inter:] /= s_down[:, None]
        layer.attn_norm = (np.asarray(layer.attn_norm, np.float32) / s_qkv).astype(np.float32)
        layer.ffn_norm = (np.asarray(layer.ffn_norm, np.float32) / s_gu).astype(np.float32)
        layer.qkv, layer.o = q(qkv), q(o * s_o[None, :])
        layer.gate_up, layer.down = q(gate_up), q(down * s_down[None, :])


def _dense_rows(w: Any) -> int:
    return sum(_dense_rows(p) for p in w) if isinstance(w, list) else int(w.shape[0])
