"""Paged KV cache: block bookkeeping (BlockAllocator) and the cache storage."""

from .allocator import Allocation, AllocatorStats, AppendResult, BlockAllocator, NoFreeBlocksError

__all__ = ["Allocation", "AllocatorStats", "AppendResult", "BlockAllocator", "NoFreeBlocksError"]
