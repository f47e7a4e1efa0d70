"""CUDA graphs of CudaDecode's step (every layer, the final norm and the LM head) for decode
batches of up to 8 sequences, the batch sizes where launching is what a step costs.

Why: a SmolLM2-sized step is ~300 kernels of a few microseconds each. models/cuda_decode.py cut
the host's work per launch, but the host still spends ~10 us on each (pybind11 call, tensor
allocation), and batch-1 decode ran at ~210 tok/s on an H200 (stop 29), ~1% of the HBM bound.
A graph replay launches the whole step from one host call.

How (the scheme vLLM and llama.cpp use): one graph per (batch bucket B in 1/2/4/8, block-table
width bucket W, a power of two), captured on first use into one shared memory pool. A graph reads
one static int32 device buffer (pack_step): the slots, token ids and positions (int64), the block
tables [B, W] and the lengths, uploaded with one copy per step; the embedding lookup is part of
the graph, and the logits come back with one copy. So a step is one upload, one replay and one
download, where the eager step spends ~10 host operations besides its ~300 launches. Padding rows
get token 0, position 0, length 0 (the attention kernels read no key for them) and slot -1 (no
cache write); their logits are dropped. The attention split count is the one for B
sequences of W * block_size keys: the kernels take any length up to that with the same launch,
so the logits equal the eager step's up to the summation order of the splits.

A graph holds pointers: the cache's layer tensors, the weights, the RoPE tables, workspaces.
Another cache, a re-uploaded RoPE table or another eps drops every graph. A capture that fails
turns graphs off for the model with a warning; steps go on eagerly.

Status: written without a GPU at hand (stop 30); off unless INFERCORE_CUDA_GRAPHS=1 until
tests/gpu/test_llm_cuda.py's graph test and bench_generate's graph row have run on a device.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .cuda_decode import CudaDecode, _StepTables

BATCH_BUCKETS = (1, 2, 4, 8)  # the GEMV path's rows (ops/_linear_gpu.GEMV_MAX_ROWS)


def graph_shape(num_seqs: int, table_width: int) -> tuple[int, int] | None:
    """(B, W) of the graph that runs num_seqs sequences with tables table_width wide, or None."""
    if num_seqs < 1 or num_seqs > BATCH_BUCKETS[-1]:
        return None
    b = next(b for b in BATCH_BUCKETS if b >= num_seqs)
    return b, 1 << max(0, table_width - 1).bit_length()


def pack_step(b: int, w: int, token_ids: np.ndarray, positions: np.ndarray, bt: np.ndarray, lens: np.ndarray,
              slots: np.ndarray) -> np.ndarray:  # fmt: skip
    """The one int32 upload of a step for a graph of b sequences and tables w wide: int64 [b]
    slots (padding -1), token ids and positions (padding 0), then int32 block tables [b, w]
    (padding 0) and lengths [b] (padding 0). Views in the same layout: step_views()."""
    t, width = bt.shape
    if t > b or width > w or any(a.shape != (t,) for a in (token_ids, positions, lens, slots)):
        raise ValueError(f"tables: {t} sequences x {width} blocks do not fit a graph of {b} x {w}")
    out = np.zeros(6 * b + b * w + b, dtype=np.int32)
    wide = out[: 6 * b].view(np.int64)
    wide[:b] = -1
    wide[:t] = slots
    wide[b : b + t] = token_ids
    wide[2 * b : 2 * b + t] = positions
    out[6 * b : 6 * b + b * w].reshape(b, w)[:t, :width] = bt
    out[6 * b + b * w :][:t] = lens
    return out


def step_views(buf: Any, b: int, w: int) -> tuple[Any, Any, Any, Any, Any]:
    """(slots, token ids, positions, block tables, lengths): views of a pack_step buffer (numpy or torch)."""
    if isinstance(buf, np.ndarray):
        wide = buf[: 6 * b].view(np.int64)
    else:
        import torch

        wide = buf[: 6 * b].view(torch.int64)
    return wide[:b], wide[b : 2 * b], wide[2 * b :], buf[6 * b : 6 * b + b * w].reshape(b, w), buf[6 * b + b * w :]


class _Graph:
    __slots__ = ("graph", "ids", "ix", "logits", "pos", "tables")


class DecodeGraphs:
    """The graphs of one CudaDecode; run() replays one step, or returns None for an eager step."""

    def __init__(self, decode: CudaDecode) -> None:
        self.decode = decode
        self.torch = decode.torch
        self.graphs: dict[tuple[int, int], _Graph] = {}
        self.pool: Any = None
        self.disabled = False
        self._owner: tuple[Any, Any, float] | None = None  # (cache, RoPE cos table, eps) of the graphs

    def run(self, token_ids: np.ndarray, positions: np.ndarray, cache: Any, bt: np.ndarray, lens: np.ndarray,
            slots: np.ndarray, sample_rows: np.ndarray, eps: float) -> np.ndarray | None:  # fmt: skip
        """float32 numpy logits [len(sample_rows), vocab] of a decode step through a graph, or None
        where none applies (the caller then launches the step eagerly). The arrays are the ones
        CudaDecode.step checked: one token per sequence, ids inside the vocabulary."""
        t = int(token_ids.shape[0])
        shape = graph_shape(t, int(bt.shape[1]))
        if self.disabled or shape is None:
            return None
        if cache.dtype == "fp8_e4m3" and any(s is None for s in cache.k_scales):
            return None  # the first fp8 write computes the scales on the host
        cos = self.decode.model._cos
        if self._owner is None or self._owner[0] is not cache or self._owner[1] is not cos or self._owner[2] != eps:
            self.graphs.clear()
            self.pool = None
            self._owner = (cache, cos, float(eps))
        g = self.graphs.get(shape)
        if g is None:
            g = self._capture(cache, *shape, eps)
            if g is None:
                return None
            self.graphs[shape] = g
        g.ix.copy_(self.torch.from_numpy(pack_step(*shape, token_ids, positions, bt, lens, slots)))
        g.graph.replay()
        return g.logits[:t].cpu().numpy()[sample_rows]

    def _step(self, g: _Graph, cache: Any, eps: float, stream: int) -> Any:
        d = self.decode
        h = d.model.embed_table.index_select(0, g.ids)  # [B, hidden] float32
        h = d.layers_forward(h, g.pos, cache, g.tables, eps, stream)
        return d.linear(d.rms_norm(h, d.model.final_norm, eps, stream), d.lm_head, stream)

    def _capture(self, cache: Any, b: int, w: int, eps: float) -> _Graph | None:
        torch, d = self.torch, self.decode
        dev = d.device
        c = d.model.config
        g = _Graph()
        empty = np.zeros(0, np.int64)
        g.ix = torch.from_numpy(pack_step(b, w, empty, empty, np.zeros((0, 0), np.int32), empty.astype(np.int32),
                                          empty)).to(dev)  # fmt: skip
        slots, g.ids, g.pos, tables, lens = step_views(g.ix, b, w)
        splits, ws_n = d.attention_plan(b, w * cache.block_size)
        g.tables = _StepTables(
            block_tables=tables,
            width=w,
            seq_lens=lens,
            slots=slots,
            num_seqs=b,
            splits=splits,
            workspace=torch.empty(max(ws_n, 1), dtype=torch.float32, device=dev),
            workspace_floats=ws_n,
            host_slots=None,
        )
        try:
            for i in range(c.num_layers):
                d._cache_args(cache, i)  # host-side checks, before the capture
            # One eager run first (lazy kernel attributes, allocator): lengths 0 and slots -1 read
            # and write no cache entry.
            side = torch.cuda.Stream(dev)
            side.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(side):
                self._step(g, cache, eps, int(side.cuda_stream))
            torch.cuda.current_stream(dev).wait_stream(side)
            if self.pool is None:
                self.pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                g.logits = self._step(g, cache, eps, int(torch.cuda.current_stream(dev).cuda_stream))
            g.graph = graph
        except (RuntimeError, ValueError) as e:
            self.disabled = True
            self.graphs.clear()
            warnings.warn(f"CUDA graph capture of the decode step failed, decoding without graphs: {e}",
                          RuntimeWarning, stacklevel=3)  # fmt: skip
            return None
        return g
