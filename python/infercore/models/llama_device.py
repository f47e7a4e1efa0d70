"""The Llama decoder on a device: a host LlamaModel's weights uploaded once as torch tensors, and a
forward() on torch tensors through the public ops with backend "cuda" (CUDA kernels, Triton GEMM
above 8 rows) or "triton" (Triton everywhere; on CPU tensors under TRITON_INTERPRET=1 in tests).

Same graph as models/llama.py: RMSNorm -> fused QKV -> RoPE in place on the q|k heads -> K/V into
the device PagedKVCache -> paged attention -> o-proj + residual -> RMSNorm -> gate|up -> SiLU*up ->
down + residual; only the sampled rows reach the final norm and the LM head, and their logits come
back to the host as float32 numpy for the engine's sampler. Activations are float32 on the device.

Weights keep their runtime format: QuantizedWeight kinds go up as the same packed bytes
(QuantizedWeight.to), float matrices as float32 "f32" QuantizedWeights (no per-call wrapping), the
embedding table as float32 rows (GGUF tables are dequantized once, on the host, at load).
Index arrays (slots, block tables, lengths) stay host numpy: the ops validate them on the host
and upload them per call; on backend "cuda" decode steps go through models/cuda_decode.py, which
validates and uploads them once per step and calls the same kernels without per-call checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .. import ops
from ..quant import QuantizedWeight
from .llama import LlamaModel
from .rope import Rope

BACKENDS = ("cuda", "triton")


@dataclass
class DeviceLayer:
    attn_norm: Any  # float32 [hidden] tensor
    qkv: Any  # QuantizedWeight on the device, or a list of them (formats that could not be fused)
    qkv_bias: Any  # float32 [(Hq + 2 Hkv) D] tensor or None
    o: Any
    ffn_norm: Any
    gate_up: Any
    down: Any


class DeviceLlamaModel:
    """A LlamaModel's weights on `device` (a torch device), run with ops backend `backend`."""

    def __init__(self, host: LlamaModel, device: Any, backend: str) -> None:
        import torch

        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        if not isinstance(host, LlamaModel):
            raise TypeError(f"host: expected a LlamaModel, got {type(host).__name__}")
        self.device = torch.device(device)
        if backend == "cuda" and self.device.type != "cuda":
            raise ValueError(f"backend='cuda' needs a CUDA device, got {self.device}")
        c = host.config
        if backend == "cuda" and (c.head_dim % 8 or c.head_dim > 256):
            raise ValueError(f"head_dim: the CUDA attention kernels need head_dim % 8 == 0 and <= 256, got "
                             f"{c.head_dim}; not supported on device yet")  # fmt: skip
        self._torch = torch
        self.backend = backend
        self.config = c
        self.q_dim = host.q_dim
        self.kv_dim = host.kv_dim
        self.weight_bytes = host.weight_bytes  # bytes the kernels read per token (layers + LM head)
        self.layers = [
            DeviceLayer(
                attn_norm=self._vector(layer.attn_norm, "attn_norm"),
                qkv=self._weight(layer.qkv, "qkv"),
                qkv_bias=None if layer.qkv_bias is None else self._vector(layer.qkv_bias, "qkv_bias"),
                o=self._weight(layer.o, "o"),
                ffn_norm=self._vector(layer.ffn_norm, "ffn_norm"),
                gate_up=self._weight(layer.gate_up, "gate_up"),
                down=self._weight(layer.down, "down"),
            )
            for layer in host.layers
        ]
        self.final_norm = self._vector(host.final_norm, "final_norm")
        self.lm_head = self._weight(host.lm_head, "lm_head")
        self.embed_table = self._embedding(host)
        self.rope = Rope(c.head_dim, c.rope_theta, host.rope.max_positions, host.rope.style, c.rope_scaling)
        self.interleaved = host.rope.style == "interleaved"
        self._cos = self._sin = None
        self._rope_rows = 0
        self._upload_rope()
        # Decode steps skip the public ops' per-call checks (models/cuda_decode.py); set
        # INFERCORE_CUDA_FAST_DECODE=0 to run them through the public ops (A/B, debugging).
        self.fast_decode = None
        if backend == "cuda" and os.environ.get("INFERCORE_CUDA_FAST_DECODE", "1") != "0":
            from .cuda_decode import CudaDecode

            if CudaDecode.supported(self):
                self.fast_decode = CudaDecode(self)

    # ----------------------------------------------------------------------------- upload
    def _vector(self, v: Any, name: str) -> Any:
        a = np.asarray(v, dtype=np.float32)
        if a.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D float vector, got shape {a.shape}")
        return self._upload(a)

    def _upload(self, a: np.ndarray) -> Any:
        """A float32 tensor on the device with a's values (a writeable host copy first where a is a
        read-only memory map: torch.from_numpy would share it, and a CPU device keeps that view)."""
        return self._torch.from_numpy(np.require(a, np.float32, ["C", "W"])).to(self.device)

    def _weight(self, w: Any, name: str) -> Any:
        if isinstance(w, list):
            return [self._weight(p, name) for p in w]
        if isinstance(w, QuantizedWeight):
            if self.device.type == "cpu" and isinstance(w.data, np.ndarray) and not w.data.flags.writeable:
                w = replace(w, data=w.data.copy())  # a CPU tensor would share the read-only memory map
            return w.to(self.device)
        if isinstance(w, np.ndarray) and w.ndim == 2 and w.dtype.kind == "f":
            return QuantizedWeight("f32", (int(w.shape[0]), int(w.shape[1])), self._upload(w))
        raise ValueError(f"{name}: a weight of type {type(w).__name__} is not supported on device yet "
                         f"(expected a QuantizedWeight or a 2-D float array)")  # fmt: skip

    def _embedding(self, host: LlamaModel) -> Any:
        """The whole table as float32 rows on the device (host.embed dequantizes GGUF rows)."""
        c = self.config
        rows = []
        for start in range(0, c.vocab_size, 8192):  # bounded host temporaries for large vocabularies
            ids = np.arange(start, min(start + 8192, c.vocab_size), dtype=np.int64)
            chunk = np.asarray(host.embed(ids), dtype=np.float32)
            if chunk.shape != (ids.shape[0], c.hidden_size):
                raise ValueError(f"embedding: expected rows of width {c.hidden_size}, got shape {chunk.shape}")
            rows.append(self._upload(chunk))
        return self._torch.cat(rows) if len(rows) > 1 else rows[0]

    def _upload_rope(self) -> None:
        torch = self._torch
        self._cos = torch.from_numpy(np.ascontiguousarray(self.rope.cos)).to(self.device)
        self._sin = torch.from_numpy(np.ascontiguousarray(self.rope.sin)).to(self.device)
        self._rope_rows = self.rope.max_positions

    # ---------------------------------------------------------------------------- forward
    def _linear(self, x: Any, w: Any) -> Any:
        if isinstance(w, list):  # weights whose formats could not be fused: one product each
            return self._torch.cat([self._linear(x, p) for p in w], dim=-1)
        # int8 weights: W8A8 at every row count, as the CPU model (_hotpath.linear)
        return ops.linear(x, w, backend=self.backend, precision="high")

    def forward(self, token_ids: np.ndarray, positions: np.ndarray, cache: Any, attn: dict[str, Any],
                sample_rows: np.ndarray) -> np.ndarray:  # fmt: skip
        """Logits float32 numpy [len(sample_rows), vocab] for a packed batch (see LlamaModel.forward);
        `cache` is a PagedKVCache whose tensors live on this model's device."""
        torch, b, c = self._torch, self.backend, self.config
        if getattr(cache, "device", None) != self.device:
            raise ValueError(f"cache: expected a PagedKVCache on {self.device}, got one on "
                             f"{getattr(cache, 'device', None) or 'the host'}")  # fmt: skip
        t = int(token_ids.shape[0])
        hq, hkv, d = c.num_heads, c.num_kv_heads, c.head_dim
        positions = np.ascontiguousarray(positions, dtype=np.int64)
        self.rope.ensure(positions)  # positions come from the host: the table range is checked here
        if self.rope.max_positions != self._rope_rows:
            self._upload_rope()
        dev = self.device
        token_ids = np.ascontiguousarray(token_ids, dtype=np.int64)
        sample_rows = np.ascontiguousarray(sample_rows, dtype=np.int64)
        prefill = not attn["decode_only"]
        if self.fast_decode is not None and not prefill:
            with torch.cuda.device(dev):
                return self.fast_decode.step(token_ids, positions, cache, attn, sample_rows, c.rms_norm_eps)
        ids = torch.from_numpy(token_ids).to(dev)
        pos = torch.from_numpy(positions).to(dev)
        rows = torch.from_numpy(sample_rows).to(dev)
        bt = np.ascontiguousarray(attn["block_tables"], dtype=np.int32)
        lens = np.ascontiguousarray(attn["seq_lens"], dtype=np.int32)
        qsl = np.ascontiguousarray(attn["query_start_loc"], dtype=np.int32) if prefill else None
        slots = np.ascontiguousarray(attn["slot_mapping"], dtype=np.int64)
        eps = c.rms_norm_eps
        scale = 1.0 / float(np.sqrt(d))
        qd, kvd = self.q_dim, self.kv_dim
        h = self.embed_table.index_select(0, ids)  # [T, hidden] float32, a fresh tensor
        for i, layer in enumerate(self.layers):
            x = ops.rms_norm(h, layer.attn_norm, eps, backend=b)
            qkv = self._linear(x, layer.qkv)
            if layer.qkv_bias is not None:
                qkv += layer.qkv_bias
            ops.rotary_embedding(qkv, pos, self._cos, self._sin, heads=hq + hkv, interleaved=self.interleaved,
                                 backend=b, check_positions=False)  # fmt: skip
            q = qkv[:, :qd].reshape(t, hq, d).contiguous()
            k = qkv[:, qd : qd + kvd].reshape(t, hkv, d).contiguous()
            v = qkv[:, qd + kvd :].reshape(t, hkv, d).contiguous()
            cache.write(i, k, v, slots, backend=b)
            kv = cache.layer(i)
            if prefill:
                o = ops.paged_attention_prefill(q, kv["k_cache"], kv["v_cache"], bt, lens, qsl, scale=scale,
                                                k_scale=kv["k_scale"], v_scale=kv["v_scale"], backend=b)  # fmt: skip
            else:
                o = ops.paged_attention_decode(q, kv["k_cache"], kv["v_cache"], bt, lens, scale=scale,
                                               k_scale=kv["k_scale"], v_scale=kv["v_scale"], backend=b)  # fmt: skip
            h += self._linear(o.reshape(t, qd), layer.o)
            x = ops.rms_norm(h, layer.ffn_norm, eps, backend=b)
            h += self._linear(ops.silu_and_mul(self._linear(x, layer.gate_up), backend=b), layer.down)
        last = ops.rms_norm(h.index_select(0, rows), self.final_norm, eps, backend=b)
        logits = self._linear(last, self.lm_head)
        return logits.float().cpu().numpy()
