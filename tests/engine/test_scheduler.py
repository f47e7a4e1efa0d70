"""Scheduler: token budget, chunked prefill, prefix reuse, preemption by recompute, abort.

The step loop below plays the model: it marks scheduled tokens computed and, where a chunk
reaches the end of a sequence, appends a next token that depends on the whole history (like a
real model's greedy choice). Outputs must not depend on batching, budgets or preemption.
"""

from __future__ import annotations

import numpy as np
import pytest

from infercore.engine.sampling_params import SamplingParams
from infercore.engine.scheduler import Scheduler
from infercore.engine.sequence import SeqStatus, Sequence
from infercore.kv import BlockAllocator


def _next_token(history: list[int]) -> int:
    return (sum(t * (i + 1) for i, t in enumerate(history)) * 31 + 7) % 97


def _seq(i: int, prompt: list[int], t: float) -> Sequence:
    return Sequence(i, f"r{i}", len(prompt), list(prompt), SamplingParams(max_tokens=8), np.random.default_rng(0), t)


def _run(sched: Scheduler, seqs: list[Sequence], max_new: int, cache: dict | None = None) -> dict[int, list[int]]:
    """Drive the scheduler to completion; check every computed token's KV is computed once per
    residency and that no step exceeds the budget."""
    for s in seqs:
        sched.add(s)
    steps = 0
    while sched.has_unfinished():
        out = sched.schedule()
        assert out.num_tokens <= sched.max_num_batched_tokens
        assert len(sched.running) <= sched.max_num_seqs
        assert out.scheduled or out.preempted or out.finished, "scheduler made no progress"
        for s in out.scheduled:
            assert s.start == s.seq.num_computed and s.end <= s.seq.num_tokens
            if cache is not None:
                slots = sched.allocator.slot_mapping(s.seq.seq_id, s.start, s.end)
                for p, slot in zip(range(s.start, s.end), slots, strict=True):
                    cache[int(slot)] = tuple(s.seq.token_ids[: p + 1])
        sched.on_computed(out)
        for s in out.scheduled:
            if cache is not None:  # the whole context must be readable from the cache
                slots = sched.allocator.slot_mapping(s.seq.seq_id, 0, s.end)
                for p, slot in enumerate(slots):
                    assert cache[int(slot)] == tuple(s.seq.token_ids[: p + 1])
            if s.samples:
                s.seq.token_ids.append(_next_token(s.seq.token_ids))
                if len(s.seq.output_ids) >= max_new:
                    sched.finish(s.seq, "length")
        steps += 1
        assert steps < 10_000
    return {s.seq_id: s.output_ids for s in seqs}


def _prompts(rng, n, shared=0):
    system = rng.integers(0, 97, shared).tolist()
    return [system + rng.integers(0, 97, int(rng.integers(1, 40))).tolist() for _ in range(n)]


def _baseline(prompts, max_new):
    out = {}
    for i, p in enumerate(prompts):
        toks = list(p)
        for _ in range(max_new):
            toks.append(_next_token(toks))
        out[i] = toks[len(p) :]
    return out


def test_outputs_match_one_by_one_generation():
    rng = np.random.default_rng(0)
    prompts = _prompts(rng, 12)
    sched = Scheduler(BlockAllocator(256, 4), max_num_seqs=5, max_num_batched_tokens=16)
    seqs = [_seq(i, p, i) for i, p in enumerate(prompts)]
    assert _run(sched, seqs, 10, cache={}) == _baseline(prompts, 10)
    assert sched.allocator.num_free_blocks == 256


def test_preemption_under_a_tiny_cache_gives_the_same_outputs():
    rng = np.random.default_rng(1)
    prompts = _prompts(rng, 10)
    sched = Scheduler(BlockAllocator(24, 4, watermark=0.0), max_num_seqs=8, max_num_batched_tokens=32)
    seqs = [_seq(i, p, i) for i, p in enumerate(prompts)]
    assert _run(sched, seqs, 12, cache={}) == _baseline(prompts, 12)
    assert sum(s.num_preemptions for s in seqs) > 0  # the cache really was too small


def test_shared_prefix_is_not_recomputed():
    rng = np.random.default_rng(2)
    prompts = _prompts(rng, 6, shared=40)
    sched = Scheduler(BlockAllocator(512, 8), max_num_seqs=1, max_num_batched_tokens=64)
    seqs = [_seq(i, p, i) for i, p in enumerate(prompts)]
    computed = []
    for s in seqs:
        sched.add(s)
    while sched.has_unfinished():
        out = sched.schedule()
        computed += [(x.seq.seq_id, x.start, x.end) for x in out.scheduled]
        sched.on_computed(out)
        for x in out.scheduled:
            if x.samples:
                sched.finish(x.seq, "length")
    first_starts = {sid: start for sid, start, _ in reversed(computed)}
    assert first_starts[0] == 0
    assert all(first_starts[i] == 40 for i in range(1, 6))  # 5 full blocks of the system prompt hit
    assert sched.allocator.stats().prefix_hits == 25


def test_chunked_prefill_mixes_with_decodes():
    sched = Scheduler(BlockAllocator(64, 4), max_num_seqs=4, max_num_batched_tokens=8)
    short = _seq(0, [1, 2], 0)
    long = _seq(1, list(range(30)), 1)
    sched.add(short)
    out = sched.schedule()
    sched.on_computed(out)
    short.token_ids.append(5)
    sched.add(long)
    out = sched.schedule()
    kinds = [(x.seq.seq_id, x.end - x.start) for x in out.scheduled]
    assert kinds == [(0, 1), (1, 7)]  # the decode first, then a prefill chunk in what is left


def test_abort_frees_blocks_and_waiting_requests():
    alloc = BlockAllocator(32, 4)
    sched = Scheduler(alloc, max_num_seqs=1)
    a, b = _seq(0, list(range(10)), 0), _seq(1, list(range(5)), 1)
    sched.add(a)
    sched.add(b)
    sched.on_computed(sched.schedule())
    assert a.status == SeqStatus.RUNNING and b.status == SeqStatus.WAITING
    sched.finish(a, "abort")
    sched.finish(b, "abort")
    assert alloc.num_free_blocks == 32 and not sched.has_unfinished()
    assert a.finish_reason == "abort"


def test_too_long_prompts_are_rejected():
    sched = Scheduler(BlockAllocator(4, 4), max_model_len=100)
    with pytest.raises(ValueError, match="max_model_len"):
        sched.add(_seq(0, list(range(101)), 0))
    with pytest.raises(ValueError, match="KV blocks"):
        sched.add(_seq(1, list(range(20)), 0))


def test_a_sequence_that_outgrows_the_whole_cache_stops_with_length():
    sched = Scheduler(BlockAllocator(3, 4, watermark=0.0), max_num_batched_tokens=64)
    seq = _seq(0, list(range(10)), 0)
    outputs = _run(sched, [seq], 50)
    # 12 computed tokens fill 3 blocks of 4; the 13th was sampled from them but has no room
    assert seq.finish_reason == "length" and len(outputs[0]) == 3
    assert sched.allocator.num_free_blocks == 3
