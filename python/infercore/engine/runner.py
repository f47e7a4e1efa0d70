"""The model runner: a Llama model plus its paged KV cache, executing ForwardBatches."""

from __future__ import annotations

import numpy as np

from ..kv import PagedKVCache
from ..models.llama import LlamaModel
from .batch import ForwardBatch


class LlamaRunner:
    def __init__(self, model: LlamaModel, cache: PagedKVCache) -> None:
        self.model = model
        self.cache = cache
        self.vocab_size = model.config.vocab_size

    def execute(self, batch: ForwardBatch) -> np.ndarray:
        attn = {
            "slot_mapping": batch.slot_mapping,
            "block_tables": batch.block_tables,
            "seq_lens": batch.seq_lens,
            "query_start_loc": batch.query_start_loc,
            "decode_only": batch.is_decode_only,
        }
        return self.model.forward(batch.token_ids, batch.positions, self.cache, attn, batch.sample_rows)

    def copy_blocks(self, pairs: list[tuple[int, int]]) -> None:
        """Copy-on-write: duplicate each (src, dst) block's K/V (and int8 scales) in every layer."""
        if not pairs:
            return
        src = np.asarray([p[0] for p in pairs], dtype=np.int64)
        dst = np.asarray([p[1] for p in pairs], dtype=np.int64)
        c = self.cache
        for i in range(c.num_layers):
            c.k[i][dst] = c.k[i][src]
            c.v[i][dst] = c.v[i][src]
            if isinstance(c.k_scales[i], np.ndarray):
                c.k_scales[i][dst] = c.k_scales[i][src]
                c.v_scales[i][dst] = c.v_scales[i][src]
