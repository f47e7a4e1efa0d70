"""Llama-family decoder (llama, mistral, qwen2) running on infercore's ops.

Per layer: RMSNorm -> fused QKV projection -> RoPE -> write K/V into the paged cache ->
paged attention (decode or chunked prefill) -> output projection -> residual -> RMSNorm ->
fused gate/up projection -> SiLU(gate) * up -> down projection -> residual. Only the rows whose
logits are wanted go through the final norm and the LM head.

Weights stay in their GGUF block format where a native kernel exists (Q8_0, Q4_0, Q4_1), or are
converted to the runtime format asked for (`quantization` = "int8" | "fp8" | "int4").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..quant import QuantizedWeight, dequantize_gguf, quantize_weight
from . import _hotpath as fast
from .config import ModelConfig
from .rope import Rope

NATIVE_GGUF = {"Q8_0": "q8_0", "Q4_0": "q4_0", "Q4_1": "q4_1", "F32": "f32", "F16": "f16", "BF16": "bf16"}
RUNTIME_QUANT = (None, "int8", "fp8", "int4")

Weight = Any  # QuantizedWeight or float32 ndarray [N, K]


@dataclass
class LlamaLayer:
    attn_norm: np.ndarray
    qkv: Weight  # [(Hq + 2 Hkv) * D, hidden]
    qkv_bias: np.ndarray | None
    o: Weight
    ffn_norm: np.ndarray
    gate_up: Weight  # [2 * intermediate, hidden]
    down: Weight


def _fuse(parts: list[Weight]) -> Weight:
    """Stack weights along output rows (one GEMM instead of several) when their formats allow."""
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts, axis=0)
    if all(isinstance(p, QuantizedWeight) for p in parts):
        kinds = {(p.kind, p.group_size, p.shape[1]) for p in parts}
        if len(kinds) == 1:
            scale = None if parts[0].scale is None else np.concatenate([p.scale for p in parts], axis=0)
            rows = sum(p.shape[0] for p in parts)
            return QuantizedWeight(parts[0].kind, (rows, parts[0].shape[1]), np.concatenate([p.data for p in parts]),
                                   scale, parts[0].group_size)  # fmt: skip
    return parts  # mixed formats: projected one by one


class LlamaModel:
    def __init__(
        self,
        config: ModelConfig,
        layers: list[LlamaLayer],
        embed: Callable[[np.ndarray], np.ndarray],
        final_norm: np.ndarray,
        lm_head: Weight,
        rope_style: str,
    ) -> None:
        self.config = config
        self.layers = layers
        self.embed = embed
        self.final_norm = final_norm
        self.lm_head = lm_head
        c = config
        self.rope = Rope(c.head_dim, c.rope_theta, min(c.max_position_embeddings, 4096), rope_style, c.rope_scaling)
        self.q_dim = c.num_heads * c.head_dim
        self.kv_dim = c.num_kv_heads * c.head_dim
        self._kv: list[fast.LayerKV] | None = None  # per-layer cache views, built on first use
        # observe(layer, name, x) sees each GEMM input ("qkv", "o", "gate_up", "down") and the
        # cached "k" / "v" when set (load-time calibration, calibration.py)
        self.observe: Callable[[int, str, np.ndarray], None] | None = None

    @property
    def weight_bytes(self) -> int:
        def nb(w: Weight) -> int:
            if isinstance(w, list):
                return sum(nb(p) for p in w)
            return int(w.nbytes)

        total = nb(self.lm_head)
        for layer in self.layers:
            total += nb(layer.qkv) + nb(layer.o) + nb(layer.gate_up) + nb(layer.down)
        return total

    def forward(self, token_ids: np.ndarray, positions: np.ndarray, cache: Any, attn: dict[str, Any],
                sample_rows: np.ndarray) -> np.ndarray:  # fmt: skip
        """Logits float32 [len(sample_rows), vocab] for a packed batch. `attn` carries the paged
        layout: slot_mapping, block_tables, seq_lens, query_start_loc, decode_only."""
        c = self.config
        t = token_ids.shape[0]
        positions = np.ascontiguousarray(positions, dtype=np.int64)
        self.rope.ensure(positions)
        hq, hkv, d = c.num_heads, c.num_kv_heads, c.head_dim
        h = np.ascontiguousarray(self.embed(token_ids), dtype=np.float32)
        eps = c.rms_norm_eps
        scale = 1.0 / float(np.sqrt(d))
        prefill = not attn["decode_only"]
        bt = np.ascontiguousarray(attn["block_tables"], dtype=np.int32)
        lens = np.ascontiguousarray(attn["seq_lens"], dtype=np.int32)
        qsl = np.ascontiguousarray(attn["query_start_loc"], dtype=np.int32) if prefill else None
        slots = np.ascontiguousarray(attn["slot_mapping"], dtype=np.int64)
        if self._kv is None or self._kv[0].cache is not cache:
            self._kv = [fast.LayerKV(cache, i) for i in range(len(self.layers))]
        obs = self.observe
        for i, (layer, kv) in enumerate(zip(self.layers, self._kv, strict=True)):
            x = fast.rms_norm(h, layer.attn_norm, eps)
            if obs:
                obs(i, "qkv", x)
            qkv = fast.linear(x, layer.qkv)
            if layer.qkv_bias is not None:
                qkv += layer.qkv_bias
            self.rope.apply_rows(qkv, hq + hkv, positions)  # q and k heads, in place
            q = np.ascontiguousarray(qkv[:, : self.q_dim]).reshape(t, hq, d)
            k = np.ascontiguousarray(qkv[:, self.q_dim : self.q_dim + self.kv_dim]).reshape(t, hkv, d)
            v = np.ascontiguousarray(qkv[:, self.q_dim + self.kv_dim :]).reshape(t, hkv, d)
            if obs:
                obs(i, "k", k.reshape(t, self.kv_dim))
                obs(i, "v", v.reshape(t, self.kv_dim))
            kv.write(k, v, slots)
            o = kv.attend(prefill, q, bt, lens, qsl, scale).reshape(t, self.q_dim)
            if obs:
                obs(i, "o", o)
            h += fast.linear(o, layer.o)
            x = fast.rms_norm(h, layer.ffn_norm, eps)
            if obs:
                obs(i, "gate_up", x)
            act = fast.silu_and_mul(fast.linear(x, layer.gate_up))
            if obs:
                obs(i, "down", act)
            h += fast.linear(act, layer.down)
        rows = np.ascontiguousarray(h[sample_rows])
        return fast.linear(fast.rms_norm(rows, self.final_norm, eps), self.lm_head)


# --------------------------------------------------------------------------------- loading
def _runtime_weight(raw: Any, quantization: str | None) -> Weight:
    """A float32 matrix or a QuantizedWeight -> the requested runtime format."""
    if quantization is None:
        return raw
    dense = raw.dequantize() if isinstance(raw, QuantizedWeight) else raw
    return quantize_weight(np.ascontiguousarray(dense, dtype=np.float32), quantization)


def _gguf_weight(tensor: Any) -> Weight:
    """A 2-D GGUF tensor as the kernels read it: native block formats stay packed."""
    kind = NATIVE_GGUF.get(tensor.type_name)
    n, k = tensor.shape
    if kind in ("q8_0", "q4_0", "q4_1"):
        return QuantizedWeight(kind, (n, k), tensor.data.reshape(n, -1))
    return dequantize_gguf(tensor.data, tensor.type_name, (n, k))  # F32/F16/BF16 and K-quants -> float32


def _gguf_vector(tensor: Any) -> np.ndarray:
    return np.ascontiguousarray(dequantize_gguf(tensor.data, tensor.type_name, tensor.shape), dtype=np.float32)


def load_gguf(gguf: Any, quantization: str | None = None) -> LlamaModel:
    """Build a LlamaModel from a GGUFFile (architecture llama, mistral or qwen2)."""
    if quantization not in RUNTIME_QUANT:
        raise ValueError(f"quantization: expected one of {RUNTIME_QUANT}, got {quantization!r}")
    config = ModelConfig.from_gguf(gguf)
    if config.architecture not in ("llama", "mistral", "qwen2"):
        raise ValueError(f"{gguf.path}: architecture {config.architecture!r} is not Llama-shaped")
    tensors = gguf.tensors

    def get(name: str) -> Any:
        t = tensors.get(name)
        if t is None:
            raise ValueError(f"{gguf.path}: missing tensor {name!r}")
        return t

    def w(name: str) -> Weight:
        return _runtime_weight(_gguf_weight(get(name)), quantization)

    layers = []
    for i in range(config.num_layers):
        p = f"blk.{i}."
        bias = None
        if f"{p}attn_q.bias" in tensors:
            bias = np.concatenate([_gguf_vector(get(f"{p}attn_{n}.bias")) for n in ("q", "k", "v")])
        layers.append(
            LlamaLayer(
                attn_norm=_gguf_vector(get(f"{p}attn_norm.weight")),
                qkv=_fuse([w(f"{p}attn_q.weight"), w(f"{p}attn_k.weight"), w(f"{p}attn_v.weight")]),
                qkv_bias=bias,
                o=w(f"{p}attn_output.weight"),
                ffn_norm=_gguf_vector(get(f"{p}ffn_norm.weight")),
                gate_up=_fuse([w(f"{p}ffn_gate.weight"), w(f"{p}ffn_up.weight")]),
                down=w(f"{p}ffn_down.weight"),
            )
        )
    emb = get("token_embd.weight")
    vocab, hidden = emb.shape
    emb_rows = emb.data.reshape(vocab, -1)

    def embed(ids: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(dequantize_gguf(emb_rows[ids], emb.type_name, (len(ids), hidden)), np.float32)

    # The LM head keeps the file's format, as vLLM leaves lm_head unquantized: its rounding lands
    # directly on the logits, and it is one matrix of the model's many.
    head = _gguf_weight(get("output.weight") if "output.weight" in tensors else emb)
    return LlamaModel(config, layers, embed, _gguf_vector(get("output_norm.weight")), head, "interleaved")


def load_hf_weights(config: ModelConfig, weights: dict[str, np.ndarray], quantization: str | None = None) -> LlamaModel:
    """Build a LlamaModel from Hugging Face LlamaForCausalLM tensors (name -> array)."""
    if quantization not in RUNTIME_QUANT:
        raise ValueError(f"quantization: expected one of {RUNTIME_QUANT}, got {quantization!r}")

    def get(name: str) -> np.ndarray:
        if name not in weights:
            raise ValueError(f"weights: missing tensor {name!r}")
        return np.ascontiguousarray(np.asarray(weights[name], dtype=np.float32))

    def w(name: str) -> Weight:
        return _runtime_weight(get(name), quantization)

    layers = []
    for i in range(config.num_layers):
        p = f"model.layers.{i}."
        bias = None
        if f"{p}self_attn.q_proj.bias" in weights:
            bias = np.concatenate([get(f"{p}self_attn.{n}_proj.bias") for n in ("q", "k", "v")])
        layers.append(
            LlamaLayer(
                attn_norm=get(f"{p}input_layernorm.weight"),
                qkv=_fuse([w(f"{p}self_attn.q_proj.weight"), w(f"{p}self_attn.k_proj.weight"),
                           w(f"{p}self_attn.v_proj.weight")]),
                qkv_bias=bias,
                o=w(f"{p}self_attn.o_proj.weight"),
                ffn_norm=get(f"{p}post_attention_layernorm.weight"),
                gate_up=_fuse([w(f"{p}mlp.gate_proj.weight"), w(f"{p}mlp.up_proj.weight")]),
                down=w(f"{p}mlp.down_proj.weight"),
            )
        )
    table = get("model.embed_tokens.weight")
    tied = config.tie_word_embeddings or "lm_head.weight" not in weights
    head = table if tied else get("lm_head.weight")  # kept in float32 like vLLM's lm_head (see load_gguf)
    return LlamaModel(config, layers, lambda ids: table[ids], get("model.norm.weight"), head, "neox")
