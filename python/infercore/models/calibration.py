"""Calibration at load time: built-in text through the model, with its GEMM inputs and K/V observed.

Used for the int8 weights' SmoothQuant scales (smoothquant.py) and the fp8 KV cache's per-layer
scales (fp8_kv_scales). The text goes through the model's tokenizer; a model without one
calibrates on fixed pseudo-random ids, so the result never depends on anything but the model.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..kv import PagedKVCache

# Varied text (prose, dialogue, numbers, code, other scripts) for the activation ranges.
CALIBRATION_TEXT = (
    "The committee postponed its decision until the financial report had been reviewed by the auditors. "
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules.\n"
    "Q: What time does the museum open on Sundays?\nA: At 10 a.m., and entry is free for children under 12.\n"
    "def add(a, b):\n    return a + b  # a tiny Python function\n"
    "Our quarterly revenue grew 12% year over year while costs stayed flat; see table 3 (p. 14).\n"
    "Der Zug nach München fährt um halb neun ab. La réunion a été déplacée à jeudi. 北京是中国的首都。\n"
    "In 1969 two astronauts walked on the Moon while a third orbited above in the command module, and "
    "millions watched the grainy broadcast live."
)
CALIBRATION_TOKENS = 256


def calibration_ids(tokenizer: Any, vocab_size: int, bos: int | None) -> list[int]:
    """Token ids of CALIBRATION_TEXT (or, without a tokenizer, fixed pseudo-random ids)."""
    if tokenizer is not None:
        ids = list(tokenizer.encode(CALIBRATION_TEXT, add_special_tokens=True))[:CALIBRATION_TOKENS]
    else:
        rng = np.random.default_rng(0)
        head = [bos] if bos is not None else []
        ids = head + rng.integers(0, vocab_size, CALIBRATION_TOKENS - len(head)).tolist()
    return [int(t) for t in ids]


def activation_ranges(model: Any, ids: list[int], block_size: int = 16) -> list[dict[str, np.ndarray]]:
    """Per layer, per GEMM input ("qkv", "o", "gate_up", "down") and for the cached "k" (after
    RoPE) and "v": max |x| per channel over one prefill of `ids` (a private float32 cache; the
    model's own is untouched)."""
    c = model.config
    t = len(ids)
    nb = math.ceil(t / block_size)
    cache = PagedKVCache(c.num_layers, nb, block_size, c.num_kv_heads, c.head_dim, "float32")
    stats: list[dict[str, np.ndarray]] = [{} for _ in model.layers]

    def observe(layer: int, name: str, x: np.ndarray) -> None:
        m = np.abs(x).max(axis=0)
        old = stats[layer].get(name)
        stats[layer][name] = m if old is None else np.maximum(old, m)

    attn = {"slot_mapping": np.arange(t, dtype=np.int64), "block_tables": np.arange(nb, dtype=np.int32)[None, :],
            "seq_lens": np.array([t], np.int32), "query_start_loc": np.array([0, t], np.int32),
            "decode_only": False}  # fmt: skip
    model.observe = observe
    try:
        model.forward(np.asarray(ids, np.int64), np.arange(t, dtype=np.int64), cache, attn, np.array([t - 1]))
    finally:
        model.observe = None
        model._kv = None  # the views of the calibration cache
    return stats


# fp8 KV scales leave one binade above the calibration's largest |K| / |V|: E4M3 keeps its
# relative precision over its whole normal range, so the headroom costs nothing but values
# below 2^-5 of the largest, and a later prompt's larger keys are not clipped at 448 * scale.
FP8_MAX = 448.0
FP8_KV_HEADROOM = 2.0


def fp8_kv_scales(model: Any, ids: list[int]) -> tuple[list[float], list[float]]:
    """Per-layer (k_scales, v_scales) for an fp8_e4m3 KV cache from the calibration prefill, so
    the cache's contents never depend on which request came first (PagedKVCache's default is
    the layer's first write)."""
    stats = activation_ranges(model, ids)

    def scale(a: np.ndarray) -> float:
        amax = float(np.max(a))
        return amax * FP8_KV_HEADROOM / FP8_MAX if np.isfinite(amax) and amax > 0 else 1.0

    return [scale(st["k"]) for st in stats], [scale(st["v"]) for st in stats]
