"""Paged KV cache: block bookkeeping (BlockAllocator) and the block storage (PagedKVCache)."""

from .allocator import Allocation, AllocatorStats, AppendResult, BlockAllocator, NoFreeBlocksError
from .cache import PagedKVCache

__all__ = ["Allocation", "AllocatorStats", "AppendResult", "BlockAllocator", "NoFreeBlocksError", "PagedKVCache"]
