"""BlockAllocator: prefix caching, copy-on-write, LRU eviction, and a hypothesis state machine
that checks the bookkeeping invariants after every step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, precondition, rule

from infercore.kv import BlockAllocator, NoFreeBlocksError


def test_identical_prefixes_share_blocks():
    a = BlockAllocator(16, 4)
    prompt = list(range(10))  # 2 full blocks + 2 tokens
    first = a.allocate("a", prompt)
    assert first.num_cached_tokens == 0 and len(first.block_table) == 3
    second = a.allocate("b", prompt[:8] + [99, 98, 97])
    assert second.block_table[:2] == first.block_table[:2]  # shared full blocks
    assert second.block_table[2] != first.block_table[2]  # partial blocks are never shared
    assert second.num_cached_tokens == 8
    s = a.stats()
    assert s.prefix_queries == 4 and s.prefix_hits == 2
    a.check_invariants()


def test_prefix_ends_at_first_miss_and_extra_key_separates():
    a = BlockAllocator(16, 2)
    a.allocate("a", [1, 2, 3, 4, 5, 6])
    b = a.allocate("b", [1, 2, 9, 9, 5, 6])  # block 3 has the same tokens but another parent
    assert b.num_cached_tokens == 2
    c = a.allocate("c", [1, 2, 3, 4], extra_key="lora-7")
    assert c.num_cached_tokens == 0
    a.check_invariants()


def test_fully_cached_prompt_still_computes_its_last_token():
    a = BlockAllocator(8, 4)
    a.allocate("a", list(range(8)))
    assert a.allocate("b", list(range(8))).num_cached_tokens == 7


def test_freed_blocks_stay_cached_until_evicted_lru():
    a = BlockAllocator(4, 2)
    a.allocate("a", [1, 2, 3, 4])  # blocks for (1,2), (3,4)
    a.free("a")
    assert a.num_free_blocks == 4
    hit = a.allocate("b", [1, 2, 3, 4, 5])
    assert hit.num_cached_tokens == 4
    a.free("b")
    # Fill the cache with other prompts: the least recently used cached blocks go first.
    a.allocate("c", [7, 8, 9, 10, 11, 12, 13, 14])
    assert a.stats().evictions >= 1
    a.check_invariants()


def test_fork_then_copy_on_write():
    a = BlockAllocator(8, 4)
    a.allocate("p", [1, 2, 3, 4, 5, 6])  # last block partial (2 of 4)
    child_table = a.fork("p", "c")
    assert child_table == a.block_table("p")
    res = a.append("c", [7])
    assert len(res.copies) == 1
    src, dst = res.copies[0]
    assert src == a.block_table("p")[-1] and dst == a.block_table("c")[-1] and src != dst
    assert a.block_table("c")[0] == a.block_table("p")[0]  # the full block stays shared
    res_p = a.append("p", [8])  # the parent owns its block alone again: no copy
    assert res_p.copies == []
    a.check_invariants()


def test_append_grows_one_block_at_a_time_and_caches_full_blocks():
    a = BlockAllocator(8, 4)
    a.allocate("a", [1, 2, 3])
    r = a.append("a", [4, 5])
    assert len(r.new_blocks) == 1 and a.num_tokens("a") == 5
    a.allocate("b", [1, 2, 3, 4, 0])
    assert a.block_table("b")[0] == a.block_table("a")[0]  # generated tokens are cached too
    a.check_invariants()


def test_out_of_blocks_changes_nothing():
    a = BlockAllocator(2, 4)
    a.allocate("a", [1] * 8)
    before = a.stats()
    with pytest.raises(NoFreeBlocksError):
        a.allocate("b", [2])
    with pytest.raises(NoFreeBlocksError):
        a.append("a", [3])
    assert a.stats() == before and "b" not in a
    a.check_invariants()


def test_watermark_and_can_allocate():
    a = BlockAllocator(100, 4, watermark=0.1)
    assert a.can_allocate([1] * 4 * 90)
    assert not a.can_allocate([1] * 4 * 91)


def test_slot_mapping():
    a = BlockAllocator(8, 4)
    table = a.allocate("a", list(range(6))).block_table
    slots = a.slot_mapping("a", 0, 6)
    want = [table[p // 4] * 4 + p % 4 for p in range(6)]
    assert slots.tolist() == want and slots.dtype == np.int64


def test_at_most_one_partial_block_per_sequence():
    a = BlockAllocator(64, 8)
    rng = np.random.default_rng(0)
    for s in range(6):
        a.allocate(s, rng.integers(0, 50, int(rng.integers(1, 30))).tolist())
    for _ in range(40):
        s = int(rng.integers(0, 6))
        a.append(s, [int(rng.integers(0, 50))])
    for s in range(6):
        n, table = a.num_tokens(s), a.block_table(s)
        partial = sum(1 for i in range(len(table)) if min(8, n - 8 * i) < 8)
        assert partial <= 1


def test_shared_prefix_workload_hit_rate():
    # 90% of each prompt is a shared system prompt: the target is >= 85% prefix hit rate.
    a = BlockAllocator(4096, 16)
    rng = np.random.default_rng(1)
    system = rng.integers(0, 1000, 16 * 18).tolist()
    for i in range(200):
        user = rng.integers(0, 1000, 32).tolist()
        a.allocate(i, system + user)
        a.append(i, rng.integers(0, 1000, 20).tolist())
        if i % 3 == 0:
            a.free(i)
    s = a.stats()
    assert s.prefix_hit_rate >= 0.85, s
    a.check_invariants()


def test_free_list_is_lazy_and_keeps_its_order():
    """Blocks never used come out in ascending order after the recycled ones (last freed first),
    and nothing is built per block: the int32 maximum of blocks costs nothing up front."""
    a = BlockAllocator(2**31 - 1, 4, enable_prefix_caching=False)
    a.allocate("a", list(range(12)))
    a.allocate("b", list(range(8)))
    assert a.block_table("a") == [0, 1, 2] and a.block_table("b") == [3, 4]
    a.free("a")
    a.allocate("c", list(range(16)))
    assert a.block_table("c") == [0, 1, 2, 5]  # freed tail-first, taken last-in first-out, then fresh
    assert a.num_free_blocks == 2**31 - 1 - 6
    assert a.stats().usage == 6 / (2**31 - 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_blocks"):
        BlockAllocator(0, 4)
    with pytest.raises(ValueError, match=r"num_blocks.*int32"):
        BlockAllocator(2**31, 4)
    with pytest.raises(TypeError, match="block_size"):
        BlockAllocator(4, 2.5)
    with pytest.raises(ValueError, match="watermark"):
        BlockAllocator(4, 4, watermark=1.5)
    a = BlockAllocator(4, 4)
    with pytest.raises(ValueError, match="at least one token"):
        a.allocate("a", [])
    with pytest.raises(TypeError, match="token_ids"):
        a.allocate("a", ["x"])
    with pytest.raises(ValueError, match="token ids must be >= 0"):
        a.allocate("a", [-1])
    a.allocate("a", [1])
    with pytest.raises(ValueError, match="already"):
        a.allocate("a", [1])
    with pytest.raises(KeyError, match="unknown sequence"):
        a.free("zzz")
    with pytest.raises(KeyError):
        a.append("zzz", [1])
    with pytest.raises(ValueError, match="already exists"):
        a.fork("a", "a")
    with pytest.raises(ValueError, match="start/end"):
        a.slot_mapping("a", 0, 5)


class AllocatorMachine(RuleBasedStateMachine):
    """Random interleavings of allocate / append / fork / free / reset against the invariants,
    and a model of the token contents of every sequence."""

    seqs = Bundle("seqs")

    def __init__(self) -> None:
        super().__init__()
        self.alloc = BlockAllocator(24, 4, watermark=0.0)
        self.model: dict[int, list[int]] = {}
        self.next_id = 0
        # What an engine would have written into the KV cache. A K/V row depends on its token and
        # on every token before it (attention), so a prefix hash stands in for each row.
        self.cache = np.full(24 * 4, -1, dtype=np.int64)

    @staticmethod
    def _rows(tokens, start, end):
        return [hash(tuple(tokens[: p + 1])) for p in range(start, end)]

    @rule(target=seqs, tokens=st.lists(st.integers(0, 3), min_size=1, max_size=14))
    def allocate(self, tokens):
        sid = self.next_id
        self.next_id += 1
        try:
            res = self.alloc.allocate(sid, tokens)
        except NoFreeBlocksError:
            return -1
        self.model[sid] = list(tokens)
        # Prefix-cache hits must already hold these tokens; compute (write) only the rest.
        n0 = res.num_cached_tokens
        self.cache[self.alloc.slot_mapping(sid, n0, len(tokens))] = self._rows(tokens, n0, len(tokens))
        return sid

    @rule(sid=seqs, tokens=st.lists(st.integers(0, 3), min_size=1, max_size=6))
    def append(self, sid, tokens):
        if sid not in self.model:
            return
        start = len(self.model[sid])
        try:
            res = self.alloc.append(sid, tokens)
        except NoFreeBlocksError:
            return
        view = self.cache.reshape(24, 4)
        for src, dst in res.copies:
            view[dst] = view[src]
        self.model[sid].extend(tokens)
        self.cache[self.alloc.slot_mapping(sid, start, start + len(tokens))] = self._rows(
            self.model[sid], start, start + len(tokens)
        )

    @rule(target=seqs, sid=seqs)
    def fork(self, sid):
        if sid not in self.model:
            return -1
        child = self.next_id
        self.next_id += 1
        self.alloc.fork(sid, child)
        self.model[child] = list(self.model[sid])
        return child

    @rule(sid=consumes(seqs))
    def free(self, sid):
        if sid in self.model:
            self.alloc.free(sid)
            del self.model[sid]

    @precondition(lambda self: self.next_id % 7 == 3)
    @rule()
    def reset_cache(self):
        self.alloc.reset_prefix_cache()

    @invariant()
    def bookkeeping_is_consistent(self):
        self.alloc.check_invariants()
        for sid, toks in self.model.items():
            assert self.alloc.num_tokens(sid) == len(toks)
            # every sequence reads back exactly its own tokens: prefix sharing and CoW are sound
            assert self.cache[self.alloc.slot_mapping(sid, 0, len(toks))].tolist() == self._rows(toks, 0, len(toks))
        owned = {b for sid in self.model for b in self.alloc.block_table(sid)}
        assert self.alloc.num_free_blocks == self.alloc.num_blocks - len(owned)


TestAllocatorMachine = AllocatorMachine.TestCase
TestAllocatorMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
