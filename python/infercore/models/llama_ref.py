"""Numpy reference forward pass of the Llama graph (RMSNorm, RoPE, GQA causal attention, SwiGLU).

It is the ground truth the engine's kernels are tested against: plain, unfused, float32 or float64.
Weights come as a dict of numpy arrays under canonical names (see `normalize_hf_weights` and
`normalize_gguf_weights`); shapes follow HF/PyTorch ([out, in] for linear weights).

GGUF files from llama.cpp's converter store the Q and K projections of llama models with their rows
permuted (RoPE on adjacent pairs); `normalize_gguf_weights` undoes that, so one forward (rotate-half
RoPE, like HF) serves both sources and both give the same logits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .config import ModelConfig

_HF_LAYER = {
    "input_layernorm.weight": "attn_norm",
    "self_attn.q_proj.weight": "wq",
    "self_attn.k_proj.weight": "wk",
    "self_attn.v_proj.weight": "wv",
    "self_attn.o_proj.weight": "wo",
    "self_attn.q_proj.bias": "bq",
    "self_attn.k_proj.bias": "bk",
    "self_attn.v_proj.bias": "bv",
    "post_attention_layernorm.weight": "ffn_norm",
    "mlp.gate_proj.weight": "w_gate",
    "mlp.up_proj.weight": "w_up",
    "mlp.down_proj.weight": "w_down",
}
_GGUF_LAYER = {
    "attn_norm.weight": "attn_norm",
    "attn_q.weight": "wq",
    "attn_k.weight": "wk",
    "attn_v.weight": "wv",
    "attn_output.weight": "wo",
    "attn_q.bias": "bq",
    "attn_k.bias": "bk",
    "attn_v.bias": "bv",
    "ffn_norm.weight": "ffn_norm",
    "ffn_gate.weight": "w_gate",
    "ffn_up.weight": "w_up",
    "ffn_down.weight": "w_down",
}
_HF_TOP = {"model.embed_tokens.weight": "embed", "model.norm.weight": "norm", "lm_head.weight": "lm_head"}
_GGUF_TOP = {"token_embd.weight": "embed", "output_norm.weight": "norm", "output.weight": "lm_head"}
_LAYER_KEYS = ("attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w_gate", "w_up", "w_down")


def _normalize(tensors: Mapping[str, Any], top: dict[str, str], layer: dict[str, str], pattern: str) -> dict:
    out: dict[str, np.ndarray] = {}
    rx = re.compile(pattern)
    for name, arr in tensors.items():
        if name in top:
            out[top[name]] = np.asarray(arr)
            continue
        m = rx.fullmatch(name)
        if m and m.group(2) in layer:
            out[f"layers.{int(m.group(1))}.{layer[m.group(2)]}"] = np.asarray(arr)
        # anything else (rotary caches, rope_freqs) is not a weight of this graph: ignored
    return out


def normalize_hf_weights(tensors: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """HF names (model.layers.N.self_attn.q_proj.weight ...) -> canonical names (layers.N.wq ...)."""
    return _normalize(tensors, _HF_TOP, _HF_LAYER, r"model\.layers\.(\d+)\.(.+)")


def unpermute_gguf_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's Q/K permutation: per head, rows (d0, d1, d0', d1', ...) back to halves."""
    if w.shape[0] % (2 * n_heads):
        raise ValueError(f"weight rows ({w.shape[0]}) are not a multiple of 2 * heads ({2 * n_heads})")
    half = w.shape[0] // n_heads // 2
    return w.reshape(n_heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def normalize_gguf_weights(tensors: Mapping[str, Any], config: ModelConfig) -> dict[str, np.ndarray]:
    """GGUF names (blk.N.attn_q.weight ...), already dequantized to float -> canonical names, Q/K unpermuted."""
    out = _normalize(tensors, _GGUF_TOP, _GGUF_LAYER, r"blk\.(\d+)\.(.+)")
    if config.architecture == "llama":  # llama.cpp permutes only for the llama family
        for i in range(config.num_layers):
            for key, heads in (("wq", config.num_heads), ("wk", config.num_kv_heads)):
                name = f"layers.{i}.{key}"
                if name in out:
                    out[name] = unpermute_gguf_rows(out[name], heads)
            for key, heads in (("bq", config.num_heads), ("bk", config.num_kv_heads)):
                name = f"layers.{i}.{key}"
                if name in out:
                    out[name] = unpermute_gguf_rows(out[name], heads)
    return out


def rope_inv_freq(config: ModelConfig) -> np.ndarray:
    d = config.head_dim
    inv = 1.0 / (config.rope_theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
    s = config.rope_scaling
    if not s:
        return inv
    kind = s.get("rope_type", s.get("type"))
    factor = float(s.get("factor", 1.0))
    if kind in (None, "default"):
        return inv
    if kind == "linear":
        return inv / factor
    if kind == "llama3":
        low, high = float(s["low_freq_factor"]), float(s["high_freq_factor"])
        old = float(s["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > old / low, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        mid = (wavelen >= old / high) & (wavelen <= old / low)
        return np.where(mid, (1 - smooth) * scaled / factor + smooth * scaled, scaled)
    raise ValueError(
        f"config.rope_scaling: rope type {kind!r} is not supported by the reference (default, linear, llama3)"
    )


class LlamaReference:
    def __init__(self, config: ModelConfig, weights: Mapping[str, np.ndarray], dtype: Any = np.float32) -> None:
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config: expected a ModelConfig, got {type(config).__name__}")
        self.config = config
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {self.dtype}")
        c = config
        D, H, Hkv = c.head_dim, c.num_heads, c.num_kv_heads
        shapes = {
            "attn_norm": (c.hidden_size,),
            "ffn_norm": (c.hidden_size,),
            "wq": (H * D, c.hidden_size),
            "wk": (Hkv * D, c.hidden_size),
            "wv": (Hkv * D, c.hidden_size),
            "wo": (c.hidden_size, H * D),
            "w_gate": (c.intermediate_size, c.hidden_size),
            "w_up": (c.intermediate_size, c.hidden_size),
            "w_down": (c.hidden_size, c.intermediate_size),
        }
        self.w: dict[str, np.ndarray] = {}

        def take(name: str, shape: tuple[int, ...]) -> np.ndarray:
            if name not in weights:
                raise ValueError(f"weights: missing {name!r}")
            a = np.asarray(weights[name])
            if a.shape != shape:
                raise ValueError(f"weights[{name!r}]: shape {a.shape}, expected {shape}")
            return a.astype(self.dtype, copy=False)

        self.w["embed"] = take("embed", (c.vocab_size, c.hidden_size))
        self.w["norm"] = take("norm", (c.hidden_size,))
        if "lm_head" in weights:
            self.w["lm_head"] = take("lm_head", (c.vocab_size, c.hidden_size))
        elif c.tie_word_embeddings:
            self.w["lm_head"] = self.w["embed"]
        else:
            raise ValueError("weights: missing 'lm_head' and the config does not tie word embeddings")
        for i in range(c.num_layers):
            for k in _LAYER_KEYS:
                self.w[f"layers.{i}.{k}"] = take(f"layers.{i}.{k}", shapes[k])
            for k, n in (("bq", H * D), ("bk", Hkv * D), ("bv", Hkv * D)):
                if f"layers.{i}.{k}" in weights:
                    self.w[f"layers.{i}.{k}"] = take(f"layers.{i}.{k}", (n,))
        self.inv_freq = rope_inv_freq(c)

    def _rms_norm(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        var = np.mean(x * x, axis=-1, keepdims=True)
        return x / np.sqrt(var + self.config.rms_norm_eps) * w

    def _rope(self, x: np.ndarray, pos: np.ndarray) -> np.ndarray:
        # x [T, heads, D]; rotate-half layout (first half / second half of each head pair up)
        ang = pos[:, None].astype(np.float64) * self.inv_freq[None, :]  # [T, D/2]
        cos = np.cos(ang).astype(self.dtype)[:, None, :]
        sin = np.sin(ang).astype(self.dtype)[:, None, :]
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

    def hidden_states(self, token_ids: Sequence[int], cache: list | None = None) -> np.ndarray:
        """Final-norm hidden states [T, hidden]. `cache` (a list, initially empty) keeps each layer's
        K/V so a later call continues the sequence: positions start after the cached tokens."""
        ids = np.asarray(token_ids)
        c = self.config
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError("token_ids: expected a non-empty 1-D sequence of ints")
        if ids.min() < 0 or ids.max() >= c.vocab_size:
            raise ValueError(f"token_ids: ids must be in [0, {c.vocab_size})")
        if cache is not None and not isinstance(cache, list):
            raise TypeError("cache: expected a list (start with [])")
        T, D, H, Hkv = ids.size, c.head_dim, c.num_heads, c.num_kv_heads
        past = cache[0][0].shape[0] if cache else 0
        pos = np.arange(past, past + T)
        # query t (absolute position past + t) sees keys 0 .. past + t
        mask = np.triu(np.full((T, past + T), -np.inf, dtype=self.dtype), k=past + 1)
        x = self.w["embed"][ids]
        for i in range(c.num_layers):
            w = lambda k, i=i: self.w[f"layers.{i}.{k}"]  # noqa: E731
            b = lambda k, i=i: self.w.get(f"layers.{i}.{k}", 0)  # noqa: E731
            h = self._rms_norm(x, w("attn_norm"))
            q = (h @ w("wq").T + b("bq")).reshape(T, H, D)
            k = (h @ w("wk").T + b("bk")).reshape(T, Hkv, D)
            v = (h @ w("wv").T + b("bv")).reshape(T, Hkv, D)
            q, k = self._rope(q, pos), self._rope(k, pos)
            if cache is not None:
                if len(cache) <= i:
                    cache.append((k, v))
                else:
                    k, v = np.concatenate([cache[i][0], k]), np.concatenate([cache[i][1], v])
                    cache[i] = (k, v)
            g = H // Hkv  # GQA: query head j reads kv head j // g
            k, v = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
            s = np.einsum("thd,shd->hts", q, k) / np.sqrt(D).astype(self.dtype) + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            p = s / s.sum(axis=-1, keepdims=True)
            attn = np.einsum("hts,shd->thd", p, v).reshape(T, H * D)
            x = x + attn @ w("wo").T
            h = self._rms_norm(x, w("ffn_norm"))
            gate = h @ w("w_gate").T
            x = x + ((gate / (1 + np.exp(-gate))) * (h @ w("w_up").T)) @ w("w_down").T
        return self._rms_norm(x, self.w["norm"])

    def compute_logits(
        self, token_ids: Sequence[int], last_only: bool = False, cache: list | None = None
    ) -> np.ndarray:
        """[T, vocab] logits (or [1, vocab] for the last position)."""
        h = self.hidden_states(token_ids, cache)
        if last_only:
            h = h[-1:]
        return h @ self.w["lm_head"].T

    def greedy(self, token_ids: Sequence[int], max_new_tokens: int, stop_ids: Sequence[int] = ()) -> list[int]:
        """Greedy continuation with a K/V cache (the prompt once, then one token per step)."""
        cache: list = []
        out: list[int] = []
        step = list(token_ids)
        for _ in range(max_new_tokens):
            nxt = int(np.argmax(self.compute_logits(step, last_only=True, cache=cache)[0]))
            out.append(nxt)
            if nxt in stop_ids:
                break
            step = [nxt]
        return out
