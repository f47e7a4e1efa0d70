"""LLMEngine mechanics (batching, n > 1 forks, stop rules, seeds, abort, metrics) driven by a
small context-hash language model that keeps its state in a real paged cache: it writes each
token into its slot and reads the whole context back through the block tables, so any paging
mistake changes the generated tokens."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from infercore.engine.batch import ForwardBatch
from infercore.engine.core import LLMEngine
from infercore.engine.sampling_params import SamplingParams
from infercore.kv import BlockAllocator

VOCAB = 50
EOS = 0


def _logits(context: list[int]) -> np.ndarray:
    seed = zlib.crc32(np.asarray(context, np.int64).tobytes())
    return np.random.default_rng(seed).standard_normal(VOCAB).astype(np.float32) * 3


class PagedHashLM:
    vocab_size = VOCAB

    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.bs = block_size
        self.cache = np.full(num_blocks * block_size, -1, dtype=np.int64)
        self.batches: list[ForwardBatch] = []

    def copy_blocks(self, pairs):
        view = self.cache.reshape(-1, self.bs)
        for src, dst in pairs:
            view[dst] = view[src]

    def execute(self, batch: ForwardBatch) -> np.ndarray:
        self.batches.append(batch)
        self.cache[batch.slot_mapping] = batch.token_ids
        rows = []
        for s in range(len(batch.seq_lens)):
            last = batch.query_start_loc[s + 1] - 1
            if last not in batch.sample_rows:
                continue
            pos = np.arange(batch.seq_lens[s])
            slots = batch.block_tables[s][pos // self.bs] * self.bs + pos % self.bs
            ctx = self.cache[slots]
            assert (ctx >= 0).all(), "read a slot that was never written"
            rows.append(_logits(ctx.tolist()))
        return np.stack(rows) if rows else np.zeros((0, VOCAB), np.float32)


def _engine(num_blocks=64, bs=4, **kw):
    runner = PagedHashLM(num_blocks, bs)
    alloc = BlockAllocator(num_blocks, bs, watermark=0.0)
    decode = lambda ids, skip: "".join(chr(ord("a") + i % 26) for i in ids)  # noqa: E731
    return LLMEngine(runner, alloc, decode=decode, eos_token_ids=[EOS], **kw), runner


def _run(engine):
    final = {}
    while engine.has_unfinished_requests():
        for o in engine.step():
            if o.finished:
                final[o.request_id] = o
    return final


def _greedy_reference(prompt, max_tokens):
    toks = list(prompt)
    out = []
    for _ in range(max_tokens):
        t = int(np.argmax(_logits(toks)))
        out.append(t)
        toks.append(t)
        if t == EOS:
            break
    return out


def test_batched_greedy_equals_one_by_one():
    rng = np.random.default_rng(0)
    prompts = [rng.integers(1, VOCAB, int(rng.integers(1, 20))).tolist() for _ in range(9)]
    engine, runner = _engine(max_num_seqs=4, max_num_batched_tokens=12)
    for i, p in enumerate(prompts):
        engine.add_request(str(i), p, SamplingParams(max_tokens=15))
    final = _run(engine)
    for i, p in enumerate(prompts):
        want = _greedy_reference(p, 15)
        got = final[str(i)].outputs[0]
        assert got.token_ids == want
        assert got.finish_reason == ("stop" if want[-1] == EOS else "length")
    assert max(b.num_tokens for b in runner.batches) <= 12
    assert engine.allocator.num_free_blocks == 64


def test_preemption_keeps_outputs():
    prompts = [[i + 1] * 9 for i in range(6)]
    engine, _ = _engine(num_blocks=14, bs=4, max_num_seqs=6)
    for i, p in enumerate(prompts):
        engine.add_request(str(i), p, SamplingParams(max_tokens=12, ignore_eos=True))
    final = _run(engine)
    for i, p in enumerate(prompts):
        toks, out = list(p), []
        for _ in range(12):
            out.append(int(np.argmax(_logits(toks))))
            toks.append(out[-1])
        assert final[str(i)].outputs[0].token_ids == out


def test_n_samples_fork_and_seeds_reproduce():
    def run(seed):
        engine, _ = _engine()
        engine.add_request("r", [3, 4, 5, 6, 7], SamplingParams(n=4, temperature=1.0, seed=seed, max_tokens=6,
                                                                ignore_eos=True))  # fmt: skip
        return [o.token_ids for o in _run(engine)["r"].outputs]

    a, b, c = run(11), run(11), run(12)
    assert a == b and a != c
    assert len(a) == 4 and len({tuple(x) for x in a}) > 1  # independent samples


def test_seed_is_independent_of_the_batch():
    def run(others):
        engine, _ = _engine()
        for i in range(others):
            engine.add_request(f"o{i}", [9, i + 1], SamplingParams(temperature=1.0, max_tokens=5))
        engine.add_request("x", [1, 2, 3], SamplingParams(temperature=1.0, seed=5, max_tokens=8, ignore_eos=True))
        return _run(engine)["x"].outputs[0].token_ids

    assert run(0) == run(3)


def test_stop_strings_stop_tokens_min_tokens_and_logprobs():
    prompt = [1, 2, 3]
    ref = _greedy_reference(prompt, 30)
    engine, _ = _engine()
    text = "".join(chr(ord("a") + i % 26) for i in ref)
    stop = text[3:5]
    engine.add_request("s", prompt, SamplingParams(max_tokens=30, stop=[stop], ignore_eos=True))
    engine.add_request("t", prompt, SamplingParams(max_tokens=30, stop_token_ids=[ref[1]], ignore_eos=True))
    engine.add_request("l", prompt, SamplingParams(max_tokens=3, logprobs=2))
    final = _run(engine)
    s = final["s"].outputs[0]
    assert s.finish_reason == "stop" and s.stop_reason == stop and s.text == text[: text.find(stop)]
    t = final["t"].outputs[0]
    assert t.finish_reason == "stop" and t.stop_reason == ref[1] and t.token_ids == ref[:2]
    lp = final["l"].outputs[0]
    assert len(lp.logprobs) == len(lp.token_ids) and all(len(d) >= 2 for d in lp.logprobs)
    assert lp.cumulative_logprob == pytest.approx(sum(d[t] for d, t in zip(lp.logprobs, lp.token_ids, strict=True)))


def test_abort_frees_everything_and_metrics_are_filled():
    engine, _ = _engine()
    engine.add_request("a", [1, 2, 3, 4, 5, 6], SamplingParams(max_tokens=50, ignore_eos=True))
    engine.add_request("b", [7, 8], SamplingParams(max_tokens=4, ignore_eos=True))
    engine.step()
    engine.abort_request("a")
    final = _run(engine)
    assert "a" not in final and engine.allocator.num_free_blocks == 64
    m = final["b"].metrics
    assert m.time_to_first_token is not None and m.e2e_latency >= m.time_to_first_token
    assert m.num_generated_tokens == 4 and len(m.inter_token_latencies) == 3


def test_bad_requests():
    engine, _ = _engine(max_model_len=32)
    with pytest.raises(ValueError, match="empty"):
        engine.add_request("a", [], SamplingParams())
    with pytest.raises(ValueError, match="prompt_token_ids"):
        engine.add_request("a", [VOCAB], SamplingParams())
    with pytest.raises(ValueError, match="max_model_len"):
        engine.add_request("a", [1] * 40, SamplingParams())
    engine.add_request("a", [1], SamplingParams())
    with pytest.raises(ValueError, match="already"):
        engine.add_request("a", [1], SamplingParams())
