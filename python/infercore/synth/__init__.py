"""Synthetic data: declarative specs rendered through templates and/or an LLM (seeded), quality
filters (length, charset, language, exact and MinHash near-duplicates, score thresholds, guardrail
screening) and diversity metrics (distinct-n, embedding coverage, Vendi score).

    from infercore.synth import Spec, generate, run_filters, NearDedup, GuardFilter, compare
    rows = generate("spec.yaml", n=1000, seed=7)
    kept, report = run_filters(rows, [ExactDedup(), NearDedup(0.8), GuardFilter()])

CLI: `infercore synth generate|filter|report`. Shipped specs: infercore/synth/specs/*.yaml.
"""

from __future__ import annotations

from pathlib import Path

from .diversity import cluster_count, distinct_n, mean_pairwise_distance, vendi_from_kernel, vendi_score
from .embedders import HashEmbedder, get_embedder
from .filters import (
    CharsetFilter,
    ExactDedup,
    FilterReport,
    GuardFilter,
    LanguageFilter,
    LengthFilter,
    NearDedup,
    ScoreFilter,
    run_filters,
)
from .generate import generate
from .jsonl import read_jsonl, write_jsonl, write_split
from .minhash import MinHasher, estimate_jaccard, jaccard, near_duplicates, shingles
from .report import compare, to_markdown
from .scoring import EmbeddingSimilarity, LLMJudge
from .spec import Spec
from .textstats import detect_language, normalize

SPECS_DIR = Path(__file__).resolve().parent / "specs"

__all__ = [
    "SPECS_DIR", "CharsetFilter", "EmbeddingSimilarity", "ExactDedup", "FilterReport", "GuardFilter", "HashEmbedder",
    "LLMJudge", "LanguageFilter", "LengthFilter", "MinHasher", "NearDedup", "ScoreFilter", "Spec", "cluster_count",
    "compare", "detect_language", "distinct_n", "estimate_jaccard", "generate", "get_embedder", "jaccard",
    "mean_pairwise_distance", "near_duplicates", "normalize", "read_jsonl", "run_filters", "shingles", "to_markdown",
    "vendi_from_kernel", "vendi_score", "write_jsonl", "write_split",
]
