"""Retrieval-augmented generation: a store directory (SQLite + VectorIndex), ingest with
token-aware chunking, dense/hybrid retrieval with metadata filters, answers with citations."""

from .chunking import Chunk, chunk_text, split_sentences
from .loaders import SUPPORTED_EXTS, DocumentError, html_to_text, load_file
from .pipeline import (
    ABSTAIN_TEXT,
    PROMPT_VERSION,
    RAG,
    Answer,
    Citation,
    build_messages,
    cited_answer_regex,
    parse_citations,
)
from .retrieval import BM25, mmr, reciprocal_rank_fusion
from .store import Hit, RAGStore, StoreError

__all__ = [
    "ABSTAIN_TEXT", "BM25", "PROMPT_VERSION", "RAG", "SUPPORTED_EXTS", "Answer", "Chunk", "Citation",
    "DocumentError", "Hit", "RAGStore", "StoreError", "build_messages", "chunk_text", "cited_answer_regex",
    "html_to_text", "load_file",
    "mmr", "parse_citations", "reciprocal_rank_fusion", "split_sentences",
]
