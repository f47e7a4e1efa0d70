"""The flat batch a model runner executes for one scheduler step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..kv import BlockAllocator
from .scheduler import SchedulerOutput


@dataclass
class ForwardBatch:
    """Tokens of every scheduled sequence, packed: sequence s owns rows
    query_start_loc[s]:query_start_loc[s+1]. seq_lens[s] is its context length once this step's
    tokens are in the cache. sample_rows are the rows whose logits are wanted (last token of
    each sequence whose chunk reaches its end)."""

    token_ids: np.ndarray  # int64 [T]
    positions: np.ndarray  # int64 [T]
    slot_mapping: np.ndarray  # int64 [T]
    block_tables: np.ndarray  # int32 [S, max_blocks]; entries past a sequence's blocks are 0, never read
    seq_lens: np.ndarray  # int32 [S]
    query_start_loc: np.ndarray  # int32 [S + 1]
    sample_rows: np.ndarray  # int64 [num_samples]

    @property
    def num_tokens(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def is_decode_only(self) -> bool:
        return self.num_tokens == self.seq_lens.shape[0]


class ModelRunner(Protocol):
    """What the engine needs from a model: run a batch, copy KV blocks (copy-on-write)."""

    vocab_size: int

    def execute(self, batch: ForwardBatch) -> np.ndarray:  # float32 [len(sample_rows), vocab]
        ...

    def copy_blocks(self, pairs: list[tuple[int, int]]) -> None: ...


def build_batch(out: SchedulerOutput, allocator: BlockAllocator) -> ForwardBatch:
    seqs = out.scheduled
    lens = [s.end - s.start for s in seqs]
    qsl = np.zeros(len(seqs) + 1, dtype=np.int32)
    np.cumsum(lens, out=qsl[1:])
    tables = [allocator.block_table(s.seq.seq_id) for s in seqs]
    width = max((len(t) for t in tables), default=0)
    bt = np.zeros((len(seqs), max(width, 1)), dtype=np.int32)
    for i, t in enumerate(tables):
        bt[i, : len(t)] = t
    token_ids = np.concatenate([np.asarray(s.seq.token_ids[s.start : s.end], np.int64) for s in seqs])
    positions = np.concatenate([np.arange(s.start, s.end, dtype=np.int64) for s in seqs])
    slots = np.concatenate([allocator.slot_mapping(s.seq.seq_id, s.start, s.end) for s in seqs])
    sample_rows = np.asarray([qsl[i + 1] - 1 for i, s in enumerate(seqs) if s.samples], dtype=np.int64)
    return ForwardBatch(
        token_ids=token_ids,
        positions=positions,
        slot_mapping=slots,
        block_tables=bt,
        seq_lens=np.asarray([s.end for s in seqs], dtype=np.int32),
        query_start_loc=qsl,
        sample_rows=sample_rows,
    )
