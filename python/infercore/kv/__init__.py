"""Paged KV cache: block storage (PagedKVCache) for ops.paged_attention_*."""

from __future__ import annotations

from .cache import PagedKVCache

__all__ = ["PagedKVCache"]
