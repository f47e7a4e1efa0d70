"""The decode step of DeviceLlamaModel on backend "cuda" without the public ops' per-call work.

The kernels are the ones the public ops launch (_C_cuda: norm, linear_gemv, rope_inplace,
reshape_and_cache, paged_attention, silu_and_mul), called with launch arguments resolved once per
model (weight pointers, kind codes, the GEMV workspace) or once per step (stream, the index arrays
uploaded once instead of once per layer, the attention split count and workspace).

Why: a SmolLM2-sized decode step is ~300 kernels of a few microseconds each on an H200, and each
public op call spent 40-90 us of host time checking and converting its arguments (cProfile,
scripts/gpu_profile_decode.py): batch-1 decode ran at 50 tok/s, bound by the host. The public ops
validate what any caller hands them; here the model built every tensor itself, and the index
arrays the engine hands in get the ops' own checks once per step. Results are bitwise those of the
public ops (same kernels, same arguments). Prefill steps keep the public ops (their per-call cost
is spread over the prompt's tokens), as do linears of more than 8 rows (the Triton GEMM).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from .._native import cuda_module
from ..ops import _linear_gpu
from ..ops import attention as _attn
from ..quant.weight import KIND_CODES, QuantizedWeight

F32 = 0  # every launcher's dtype code for float32 (activations on the device are float32)


class _Gemv:
    """One weight's GEMV launch arguments."""

    __slots__ = ("code", "data", "group", "k", "n", "qw", "scale")

    def __init__(self, qw: QuantizedWeight) -> None:
        from ..kernels.linear import check_weight

        check_weight(qw.kind, qw.shape, qw.data, qw.scale, qw.group_size, qw.data.device)
        self.qw = qw  # keeps the tensors alive
        self.code = KIND_CODES[qw.kind]
        self.data = int(qw.data.data_ptr())
        self.scale = int(qw.scale.data_ptr()) if qw.scale is not None else 0
        self.group = int(qw.group_size or 0)
        self.n, self.k = (int(s) for s in qw.shape)


class CudaDecode:
    """Built once per DeviceLlamaModel (backend "cuda"); forward() runs one decode-only step."""

    @staticmethod
    def supported(model: Any) -> bool:
        """Every projection one fused QuantizedWeight (a list means formats that could not be fused)."""
        ws = [model.lm_head] + [w for layer in model.layers for w in (layer.qkv, layer.o, layer.gate_up, layer.down)]
        return all(isinstance(w, QuantizedWeight) for w in ws) and _linear_gpu.cuda_linear_module() is not None

    def __init__(self, model: Any) -> None:
        torch = model._torch
        self.model = model
        self.torch = torch
        self.mod = cuda_module()
        self.device = model.device
        self.layers = [tuple(_Gemv(w) for w in (ly.qkv, ly.o, ly.gate_up, ly.down)) for ly in model.layers]
        self.lm_head = _Gemv(model.lm_head)
        gemvs = [self.lm_head] + [g for gs in self.layers for g in gs]
        need = max(int(self.mod.linear_gemv_workspace_bytes(g.code, m, g.k, F32))
                   for g in gemvs for m in range(1, _linear_gpu.GEMV_MAX_ROWS + 1))  # fmt: skip
        self.ws = torch.empty(max(need, 1), dtype=torch.uint8, device=self.device)  # reused in stream order
        self.ws_ptr, self.ws_bytes = int(self.ws.data_ptr()), int(self.ws.numel())
        self._caches: dict[int, tuple[Any, list[Any]]] = {}
        # Decode steps of up to 8 sequences replayed as CUDA graphs (models/cuda_graphs.py), with
        # INFERCORE_CUDA_GRAPHS=1: off by default until measured on a GPU.
        self.graphs = None
        if os.environ.get("INFERCORE_CUDA_GRAPHS", "0") == "1":
            from .cuda_graphs import DecodeGraphs

            self.graphs = DecodeGraphs(self)

    # --------------------------------------------------------------------------- launches
    def _empty(self, *shape: int) -> Any:
        return self.torch.empty(shape, dtype=self.torch.float32, device=self.device)

    def rms_norm(self, x: Any, w: Any, eps: float, stream: int) -> Any:
        rows, cols = (int(s) for s in x.shape)
        y = self._empty(rows, cols)
        self.mod.norm(True, int(x.data_ptr()), int(w.data_ptr()), int(y.data_ptr()), rows, cols, F32, eps, stream)
        return y

    def linear(self, x: Any, g: _Gemv, stream: int) -> Any:
        m = int(x.shape[0])
        if m > _linear_gpu.GEMV_MAX_ROWS:  # the Triton GEMM, through the public op
            return _linear_gpu.linear_gpu(x, g.qw, None, "cuda", w8a8=True)  # int8: as the CPU model
        y = self._empty(m, g.n)
        self.mod.linear_gemv(g.code, int(x.data_ptr()), F32, g.data, g.scale, g.group, 0, int(y.data_ptr()),
                             self.ws_ptr, self.ws_bytes, m, g.n, g.k, stream)  # fmt: skip
        return y

    def silu_and_mul(self, x: Any, stream: int) -> Any:
        rows, half = int(x.shape[0]), int(x.shape[1]) // 2
        y = self._empty(rows, half)
        self.mod.silu_and_mul(int(x.data_ptr()), int(y.data_ptr()), rows, half, F32, stream)
        return y

    def _cache_args(self, cache: Any, i: int) -> tuple:
        """The launchers' cache tuple for layer i (pointers, scales, shape), checked once per cache."""
        entry = self._caches.get(id(cache))
        if entry is None or entry[0] is not cache:
            entry = self._caches[id(cache)] = (cache, [None] * cache.num_layers)
        args = entry[1][i]
        if args is None:
            kv = cache.layer(i)
            kc, vc, kname, scales = _attn._dev_cache_pair(kv["k_cache"], kv["v_cache"], kv["k_scale"], kv["v_scale"],
                                                          kv["k_cache"], "k_cache")  # fmt: skip
            args = entry[1][i] = _attn._cache_tuple(kc, vc, kname, scales)
        return args

    # ------------------------------------------------------------------------------ step
    def host_tables(self, cache: Any, t: int, attn: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The step's block tables, lengths and slots as contiguous host arrays, checked as the ops do."""
        bt = np.ascontiguousarray(attn["block_tables"], dtype=np.int32)
        lens = np.ascontiguousarray(attn["seq_lens"], dtype=np.int32)
        slots = np.ascontiguousarray(attn["slot_mapping"], dtype=np.int64)
        nb, bs = cache.num_blocks, cache.block_size
        _attn._check_tables(False, t, nb, bs, bt, lens, None)
        if slots.shape != (t,) or ((slots < -1) | (slots >= nb * bs)).any():
            raise ValueError(f"slot_mapping: expected {t} slots in [-1, {nb * bs}), got {slots.tolist()[:8]}")
        return bt, lens, slots

    def attention_plan(self, num_seqs: int, max_keys: int) -> tuple[int, int]:
        """(splits, workspace floats) of the decode attention for num_seqs sequences of up to max_keys."""
        c = self.model.config
        splits = int(self.mod.paged_attention_decode_splits(num_seqs, c.num_heads, c.num_kv_heads, max_keys,
                                                            int(self.device.index or 0)))  # fmt: skip
        return splits, int(self.mod.paged_attention_decode_workspace(num_seqs, c.num_heads, c.head_dim, splits))

    def step(self, token_ids: np.ndarray, positions: np.ndarray, cache: Any, attn: dict[str, Any],
             sample_rows: np.ndarray, eps: float) -> np.ndarray:  # fmt: skip
        """One decode step from host arrays (token ids, positions and sample rows int64 [T], the
        engine's attention tables): float32 numpy logits [len(sample_rows), vocab]. Through a CUDA
        graph where one applies (models/cuda_graphs.py), else launch by launch."""
        torch = self.torch
        t = int(token_ids.shape[0])
        bt, lens, slots = self.host_tables(cache, t, attn)
        vocab = self.model.config.vocab_size
        if ((token_ids < 0) | (token_ids >= vocab)).any():  # an index_select past the table is a device assert
            raise ValueError(f"token_ids: expected ids in [0, {vocab}), got {token_ids.tolist()[:8]}")
        if self.graphs is not None:
            logits = self.graphs.run(token_ids, positions, cache, bt, lens, slots, sample_rows, eps)
            if logits is not None:
                return logits
        dev = self.device
        ids = torch.from_numpy(token_ids).to(dev)
        pos = torch.from_numpy(positions).to(dev)
        rows = torch.from_numpy(sample_rows).to(dev)
        h = self.model.embed_table.index_select(0, ids)  # [T, hidden] float32, a fresh tensor
        bt_d = torch.from_numpy(bt).to(dev)
        lens_d = torch.from_numpy(lens).to(dev)
        slots_d = torch.from_numpy(slots).to(dev)
        s = int(lens.shape[0])
        splits, ws_n = self.attention_plan(s, int(lens.max()))
        attn_ws = self._empty(max(ws_n, 1))
        stream = int(torch.cuda.current_stream(dev).cuda_stream)
        tables = _StepTables(bt_d, int(bt.shape[1]), lens_d, slots_d, s, splits, attn_ws, ws_n, slots)
        h = self.layers_forward(h, pos, cache, tables, eps, stream)
        last = self.rms_norm(h.index_select(0, rows), self.model.final_norm, eps, stream)
        return self.linear(last, self.lm_head, stream).float().cpu().numpy()

    def layers_forward(self, h: Any, pos: Any, cache: Any, tb: _StepTables, eps: float, stream: int) -> Any:
        """Every decoder layer on h [T, hidden] (updated in place and returned): only device work
        on pointers fixed before the call, so a CUDA graph can capture it (models/cuda_graphs.py)."""
        mod, m = self.mod, self.model
        c = m.config
        t = int(h.shape[0])
        hq, hkv, d = c.num_heads, c.num_kv_heads, c.head_dim
        qd, kvd = m.q_dim, m.kv_dim
        scale = 1.0 / float(np.sqrt(d))
        cos, sin = m._cos, m._sin
        for i, (layer, (g_qkv, g_o, g_gu, g_down)) in enumerate(zip(m.layers, self.layers, strict=True)):
            x = self.rms_norm(h, layer.attn_norm, eps, stream)
            qkv = self.linear(x, g_qkv, stream)
            if layer.qkv_bias is not None:
                qkv += layer.qkv_bias
            mod.rope_inplace(int(qkv.data_ptr()), t, int(qkv.shape[1]), hq + hkv, d, int(pos.data_ptr()),
                             int(cos.data_ptr()), int(sin.data_ptr()), int(cos.shape[0]), m.interleaved,
                             stream)  # fmt: skip
            q = qkv[:, :qd].contiguous()  # one row: already contiguous, no copy
            k = qkv[:, qd : qd + kvd].contiguous()
            v = qkv[:, qd + kvd :].contiguous()
            if cache.dtype == "fp8_e4m3" and cache.k_scales[i] is None:  # this write sets the scales
                cache.write(i, k.reshape(t, hkv, d), v.reshape(t, hkv, d), tb.host_slots, backend="cuda")
            else:
                mod.reshape_and_cache(int(k.data_ptr()), int(v.data_ptr()), F32, int(tb.slots.data_ptr()), t,
                                      self._cache_args(cache, i), 0, stream)  # fmt: skip
            o = self._empty(t, qd)
            mod.paged_attention(False, int(q.data_ptr()), F32, int(o.data_ptr()), t, tb.num_seqs, hq,
                                int(tb.block_tables.data_ptr()), tb.width, int(tb.seq_lens.data_ptr()), 0, 0, scale, 0,
                                tb.splits, int(tb.workspace.data_ptr()), tb.workspace_floats,
                                self._cache_args(cache, i), 0, stream)  # fmt: skip
            h += self.linear(o, g_o, stream)
            x = self.rms_norm(h, layer.ffn_norm, eps, stream)
            h += self.linear(self.silu_and_mul(self.linear(x, g_gu, stream), stream), g_down, stream)
        return h


class _StepTables(NamedTuple):
    """One step's index arrays on the device and the attention launch plan."""

    block_tables: Any  # int32 [num_seqs, width]
    width: int
    seq_lens: Any  # int32 [num_seqs]
    slots: Any  # int64 [T]
    num_seqs: int
    splits: int
    workspace: Any  # float32, workspace_floats or more
    workspace_floats: int
    host_slots: Any  # the slots as host numpy (fp8's first write computes the scales on the host)
