"""Paged KV-cache block bookkeeping (vLLM-style): block tables, ref counts, copy-on-write forks,
prefix caching with LRU eviction.

Every physical block is in exactly one of three states:
  free       never cached (or its cache entry was dropped): on the free list
  evictable  ref count 0 but still holding a cached full block: in the LRU, reusable by a
             prefix hit until it is evicted to make room
  owned      ref count > 0: in the block tables of that many (sequence, position) owners
A full block is identified by a hash of its parent block's hash, its token ids and an optional
extra key (e.g. a LoRA adapter id), so identical prompt prefixes map to the same physical blocks.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

MAX_BLOCKS = 2**31 - 1  # block ids go into int32 block tables


class NoFreeBlocksError(RuntimeError):
    """Raised when an allocation needs more blocks than are free (the engine should preempt)."""


@dataclass
class AllocatorStats:
    num_blocks: int
    free_blocks: int  # free + evictable
    usage: float  # fraction of blocks owned by at least one sequence
    prefix_queries: int  # full prompt blocks looked up in the prefix cache
    prefix_hits: int
    evictions: int

    @property
    def prefix_hit_rate(self) -> float:
        return self.prefix_hits / self.prefix_queries if self.prefix_queries else 0.0


@dataclass
class Allocation:
    block_table: list[int]
    num_cached_tokens: int  # prompt tokens whose KV is already in the cache (never the last one)


@dataclass
class AppendResult:
    new_blocks: list[int] = field(default_factory=list)
    copies: list[tuple[int, int]] = field(default_factory=list)  # (src, dst): copy KV before writing


@dataclass
class _Seq:
    blocks: list[int]
    tokens: list[int]
    hashes: list[bytes]  # one per full block, in order
    extra_key: Hashable | None


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected >= {minimum}, got {value}")
    return int(value)


def _token_list(token_ids: Iterable[int], name: str) -> list[int]:
    try:
        arr = np.asarray(list(token_ids))
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of ints") from None
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected ints, got {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name}: token ids must be >= 0")
    return [int(t) for t in arr]


class BlockAllocator:
    """Allocates fixed-size KV blocks to sequences.

    num_blocks: physical blocks; block_size: tokens per block; watermark: fraction of blocks kept
    free when admitting a new prompt (so running sequences can still grow).
    """

    def __init__(
        self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True, watermark: float = 0.01
    ) -> None:
        self.num_blocks = _check_int(num_blocks, "num_blocks", 1)
        if self.num_blocks > MAX_BLOCKS:
            raise ValueError(f"num_blocks: expected <= {MAX_BLOCKS} (block tables are int32), got {num_blocks}")
        self.block_size = _check_int(block_size, "block_size", 1)
        if isinstance(watermark, bool) or not isinstance(watermark, (int, float)) or not 0 <= watermark < 1:
            raise ValueError(f"watermark: expected a fraction in [0, 1), got {watermark!r}")
        self.enable_prefix_caching = bool(enable_prefix_caching)
        self.watermark_blocks = int(watermark * self.num_blocks)
        # Free blocks: the recycled ones (taken last in, first out), then the never used ones
        # [_fresh, num_blocks) in ascending order; nothing here grows with num_blocks.
        self._free: list[int] = []
        self._fresh = 0
        self._evictable: OrderedDict[int, None] = OrderedDict()  # LRU order: oldest first
        self._ref: dict[int, int] = {}  # owned blocks (ref count > 0) only
        self._block_hash: dict[int, bytes] = {}  # block -> hash, for cached blocks
        self._cached: dict[bytes, int] = {}  # hash -> block
        self._seqs: dict[Hashable, _Seq] = {}
        self._queries = self._hits = self._evictions = 0

    # ------------------------------------------------------------------ queries
    @property
    def num_free_blocks(self) -> int:
        return len(self._free) + (self.num_blocks - self._fresh) + len(self._evictable)

    def __contains__(self, seq_id: Hashable) -> bool:
        return seq_id in self._seqs

    def block_table(self, seq_id: Hashable) -> list[int]:
        return list(self._seq(seq_id).blocks)

    def num_tokens(self, seq_id: Hashable) -> int:
        return len(self._seq(seq_id).tokens)

    def slot_mapping(self, seq_id: Hashable, start: int, end: int) -> np.ndarray:
        """Cache slots (block * block_size + offset) of token positions [start, end)."""
        seq = self._seq(seq_id)
        if not 0 <= start <= end <= len(seq.tokens):
            raise ValueError(f"start/end: expected 0 <= start <= end <= {len(seq.tokens)}, got {start}, {end}")
        pos = np.arange(start, end, dtype=np.int64)
        blocks = np.asarray(seq.blocks, dtype=np.int64)
        return blocks[pos // self.block_size] * self.block_size + pos % self.block_size if len(pos) else pos

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def can_allocate(self, token_ids: Sequence[int], extra_key: Hashable | None = None) -> bool:
        """Whether `allocate` would succeed now, keeping the watermark free."""
        tokens = _token_list(token_ids, "token_ids")
        return self._new_blocks_for_prompt(tokens, extra_key) <= self.num_free_blocks - self.watermark_blocks

    def stats(self) -> AllocatorStats:
        owned = len(self._ref)
        return AllocatorStats(
            num_blocks=self.num_blocks,
            free_blocks=self.num_free_blocks,
            usage=owned / self.num_blocks,
            prefix_queries=self._queries,
            prefix_hits=self._hits,
            evictions=self._evictions,
        )

    # ------------------------------------------------------------------ mutations
    def allocate(self, seq_id: Hashable, token_ids: Sequence[int], extra_key: Hashable | None = None) -> Allocation:
        """Blocks for a new sequence's prompt, reusing cached full blocks of an identical prefix.

        Raises NoFreeBlocksError (nothing changed) if the blocks are not there.
        """
        if seq_id in self._seqs:
            raise ValueError(f"seq_id: {seq_id!r} already has blocks; free it first")
        tokens = _token_list(token_ids, "token_ids")
        if not tokens:
            raise ValueError("token_ids: a prompt needs at least one token")
        need = self._new_blocks_for_prompt(tokens, extra_key)
        if need > self.num_free_blocks:
            raise NoFreeBlocksError(f"need {need} free blocks for {len(tokens)} tokens, have {self.num_free_blocks}")
        bs = self.block_size
        seq = _Seq([], [], [], extra_key)
        parent = b""
        hitting = self.enable_prefix_caching
        cached_tokens = 0
        for b in range(self.blocks_needed(len(tokens))):
            chunk = tokens[b * bs : (b + 1) * bs]
            if len(chunk) == bs:
                h = self._hash(parent, chunk, extra_key)
                if self.enable_prefix_caching:
                    self._queries += 1
                block = self._cached.get(h) if hitting else None
                if block is not None:
                    self._hits += 1
                    cached_tokens += bs
                    self._take_cached(block)
                else:
                    hitting = False  # a prefix ends at its first miss
                    block = self._take_fresh()
                    self._register(block, h)
                seq.hashes.append(h)
                parent = h
            else:
                block = self._take_fresh()
            seq.blocks.append(block)
        seq.tokens = tokens
        self._seqs[seq_id] = seq
        return Allocation(list(seq.blocks), min(cached_tokens, len(tokens) - 1))

    def append(self, seq_id: Hashable, token_ids: Sequence[int]) -> AppendResult:
        """Room for generated tokens. Copy-on-write: a shared, partly filled last block is first
        copied into a private one (returned in `copies`; the engine copies the KV data)."""
        seq = self._seq(seq_id)
        tokens = _token_list(token_ids, "token_ids")
        bs = self.block_size
        result = AppendResult()
        # Worst case: one copy plus one block per block_size tokens; check before mutating.
        partial = len(seq.tokens) % bs
        new_needed = self.blocks_needed(partial + len(tokens)) - (1 if partial else 0)
        cow = 1 if partial and self._ref.get(seq.blocks[-1], 0) > 1 and tokens else 0
        if new_needed + cow > self.num_free_blocks:
            raise NoFreeBlocksError(f"need {new_needed + cow} free blocks to append, have {self.num_free_blocks}")
        for t in tokens:
            pos = len(seq.tokens)
            if pos % bs == 0:
                block = self._take_fresh()
                seq.blocks.append(block)
                result.new_blocks.append(block)
            elif self._ref.get(seq.blocks[-1], 0) > 1:
                src = seq.blocks[-1]
                dst = self._take_fresh()
                self._release(src)
                seq.blocks[-1] = dst
                result.copies.append((src, dst))
            seq.tokens.append(t)
            if (pos + 1) % bs == 0:  # the block just became full: it can be cached now
                parent = seq.hashes[-1] if seq.hashes else b""
                h = self._hash(parent, seq.tokens[pos + 1 - bs : pos + 1], seq.extra_key)
                seq.hashes.append(h)
                self._register(seq.blocks[-1], h)
        return result

    def fork(self, parent_id: Hashable, child_id: Hashable) -> list[int]:
        """The child shares every block of the parent (copy-on-write on its next append)."""
        parent = self._seq(parent_id)
        if child_id in self._seqs:
            raise ValueError(f"child_id: {child_id!r} already exists")
        for b in parent.blocks:
            self._ref[b] += 1
        self._seqs[child_id] = _Seq(list(parent.blocks), list(parent.tokens), list(parent.hashes), parent.extra_key)
        return list(parent.blocks)

    def free(self, seq_id: Hashable) -> None:
        """Release a finished or preempted sequence. Its full blocks stay cached until evicted."""
        seq = self._seqs.pop(seq_id, None)
        if seq is None:
            raise KeyError(f"seq_id: unknown sequence {seq_id!r}")
        for b in reversed(seq.blocks):  # tail blocks become the oldest: evicted first
            self._release(b)

    def reset_prefix_cache(self) -> None:
        """Forget every cached block that no sequence owns."""
        for b in list(self._evictable):
            self._unregister(b)
            self._free.append(b)
        self._evictable.clear()

    # ------------------------------------------------------------------ internals
    def _seq(self, seq_id: Hashable) -> _Seq:
        try:
            return self._seqs[seq_id]
        except KeyError:
            raise KeyError(f"seq_id: unknown sequence {seq_id!r}") from None

    @staticmethod
    def _hash(parent: bytes, chunk: Sequence[int], extra_key: Hashable | None) -> bytes:
        h = hashlib.blake2b(parent, digest_size=16)
        h.update(np.asarray(chunk, dtype=np.int64).tobytes())
        if extra_key is not None:
            h.update(repr(extra_key).encode())
        return h.digest()

    def _new_blocks_for_prompt(self, tokens: list[int], extra_key: Hashable | None) -> int:
        """Blocks allocate() would take from the free pool (cached hits that are owned cost none;
        hits on evictable blocks take them out of the pool too)."""
        total = self.blocks_needed(len(tokens))
        if not self.enable_prefix_caching:
            return total
        bs, parent, owned_hits = self.block_size, b"", 0
        for b in range(len(tokens) // bs):
            parent = self._hash(parent, tokens[b * bs : (b + 1) * bs], extra_key)
            block = self._cached.get(parent)
            if block is None:
                break
            owned_hits += block in self._ref
        return total - owned_hits

    def _take_cached(self, block: int) -> None:
        if block not in self._ref:
            del self._evictable[block]
        self._ref[block] = self._ref.get(block, 0) + 1

    def _take_fresh(self) -> int:
        if self._free:
            block = self._free.pop()
        elif self._fresh < self.num_blocks:
            block = self._fresh
            self._fresh += 1
        else:
            block, _ = self._evictable.popitem(last=False)  # least recently used
            self._unregister(block)
            self._evictions += 1
        self._ref[block] = 1
        return block

    def _release(self, block: int) -> None:
        self._ref[block] -= 1
        if self._ref[block] == 0:
            del self._ref[block]
            if block in self._block_hash:
                self._evictable[block] = None
                self._evictable.move_to_end(block)
            else:
                self._free.append(block)

    def _register(self, block: int, h: bytes) -> None:
        if not self.enable_prefix_caching or h in self._cached or block in self._block_hash:
            return  # an identical block is cached already: keep that one
        self._cached[h] = block
        self._block_hash[block] = h

    def _unregister(self, block: int) -> None:
        h = self._block_hash.pop(block, None)
        if h is not None and self._cached.get(h) == block:
            del self._cached[h]

    # ------------------------------------------------------------------ checks (tests, debugging)
    def check_invariants(self) -> None:
        """Raise AssertionError if the bookkeeping is inconsistent."""
        owners = [0] * self.num_blocks
        for sid, seq in self._seqs.items():
            assert len(seq.blocks) == self.blocks_needed(len(seq.tokens)), f"{sid}: table length"
            assert len(seq.hashes) == len(seq.tokens) // self.block_size, f"{sid}: hashes only on full blocks"
            for b in seq.blocks:
                owners[b] += 1
        free, evictable = set(self._free), set(self._evictable)
        assert len(free) == len(self._free), "duplicate free block"
        assert all(b < self._fresh for b in free), "a recycled block was never taken"
        assert not free & evictable, "block both free and evictable"
        assert all(r > 0 for r in self._ref.values()), "ref count 0 kept as owned"
        for b in range(self.num_blocks):
            ref = self._ref.get(b, 0)
            assert ref == owners[b], f"block {b}: ref {ref} != owners {owners[b]}"
            states = (b in free) + (b >= self._fresh) + (b in evictable) + (owners[b] > 0)
            assert states == 1, f"block {b} is in {states} states"
        for b in evictable:
            assert b in self._block_hash, f"evictable block {b} has no hash"
        for h, b in self._cached.items():
            assert self._block_hash.get(b) == h, f"cache map and block hash disagree for block {b}"
        for seq in self._seqs.values():  # a cached block is only ever a full block of its owners
            for i, b in enumerate(seq.blocks):
                if b in self._block_hash:
                    assert i < len(seq.hashes), f"block {b} cached but partially filled"
