"""Public ops. Each validates its arguments, picks a backend ("auto", "cpu", "cuda", "triton",
"reference") and returns the array type it was given."""

from __future__ import annotations

from . import reference
from .activation import gelu, silu_and_mul
from .attention import paged_attention_decode, paged_attention_prefill, reshape_and_cache
from .linear import linear
from .norm import l2_normalize, rms_norm
from .rope import rotary_embedding
from .search import topk_cosine, topk_inner_product

__all__ = [
    "gelu",
    "l2_normalize",
    "linear",
    "paged_attention_decode",
    "paged_attention_prefill",
    "reference",
    "reshape_and_cache",
    "rms_norm",
    "rotary_embedding",
    "silu_and_mul",
    "topk_cosine",
    "topk_inner_product",
]
