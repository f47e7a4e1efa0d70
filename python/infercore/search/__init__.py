"""Vector search on top of ops.topk_inner_product: VectorIndex."""

from __future__ import annotations

from .index import VectorIndex

__all__ = ["VectorIndex"]
