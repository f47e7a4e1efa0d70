"""Sentence embeddings on infercore's ops: a BERT encoder (e.g. all-MiniLM-L6-v2) with packed
variable-length batches, fused QKV GEMM, mean/CLS pooling and L2 normalization."""

from .bert import BertEncoder, BertWeights
from .embedder import Embedder

__all__ = ["BertEncoder", "BertWeights", "Embedder"]
