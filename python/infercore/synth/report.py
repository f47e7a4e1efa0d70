"""A report comparing datasets: size, length, languages, duplicates, distinct-n, embedding-space
coverage and the Vendi score, as a JSON-able dict and as Markdown."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from typing import Any

from .diversity import cluster_count, distinct_n, mean_pairwise_distance, vendi_score
from .embedders import embed, embedder_name, get_embedder
from .minhash import near_duplicates
from .textstats import detect_language, text_hash

SKIP_FIELDS = ("id", "text", "prompt", "slots", "score")


MAX_ITEMS = 100_000  # the embedding metrics compare every pair (cluster_count): O(items^2)


def _check_max_items(max_items: Any) -> int:
    if isinstance(max_items, bool) or not isinstance(max_items, int) or not 1 <= max_items <= MAX_ITEMS:
        raise ValueError(f"max_items: expected an int in [1, {MAX_ITEMS}], got {max_items!r}")
    return max_items


def dataset_stats(rows: list[dict[str, Any]], embedder: Any, *, field: str = "text", max_items: int = 2000,
                  cluster_threshold: float = 0.8, dedup_threshold: float = 0.8, seed: int = 0) -> dict[str, Any]:
    max_items = _check_max_items(max_items)  # -1 was random.sample's "Sample larger than population"
    texts = [r[field] for r in rows]
    n = len(texts)
    if n == 0:
        return {"n": 0}
    lengths = [len(t) for t in texts]
    near = near_duplicates(texts, dedup_threshold)
    st: dict[str, Any] = {
        "n": n,
        "chars_mean": statistics.fmean(lengths),
        "chars_median": statistics.median(lengths),
        "exact_dup_rate": 1 - len({text_hash(t) for t in texts}) / n,
        "near_dup_rate": sum(d is not None for d in near) / n,
        "languages": dict(Counter(detect_language(t) for t in texts).most_common()),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "distinct_3_char": distinct_n(texts, 3, "char"),
    }
    fields: dict[str, dict[str, int]] = {}
    for k in {k for r in rows for k in r if k not in SKIP_FIELDS and k != field}:
        vals = [r.get(k) for r in rows]
        if all(isinstance(v, (str, int, bool)) or v is None for v in vals):
            c = Counter(str(v) for v in vals)
            if len(c) <= 20:
                fields[k] = dict(c.most_common())
    st["fields"] = dict(sorted(fields.items()))
    sample = texts if n <= max_items else random.Random(seed).sample(texts, max_items)
    x = embed(embedder, sample)
    st["embedding"] = {
        "items": len(sample),
        "mean_pairwise_distance": mean_pairwise_distance(x),
        "clusters": cluster_count(x, cluster_threshold),
        "cluster_threshold": cluster_threshold,
        "vendi": vendi_score(x),
    }
    st["embedding"]["vendi_per_item"] = st["embedding"]["vendi"] / len(sample)
    return st


def compare(datasets: dict[str, list[dict[str, Any]]], *, embedder: Any = "auto", field: str = "text",
            max_items: int = 2000, cluster_threshold: float = 0.8) -> dict[str, Any]:
    """{"embedder", "datasets": {name: stats}} for every named dataset."""
    if not isinstance(datasets, dict) or not datasets:
        raise ValueError("datasets: expected a non-empty mapping of name -> rows")
    _check_max_items(max_items)  # before the embedder loads
    emb = get_embedder(embedder)
    return {"embedder": embedder_name(emb), "max_items": max_items, "cluster_threshold": cluster_threshold,
            "datasets": {name: dataset_stats(rows, emb, field=field, max_items=max_items,
                                             cluster_threshold=cluster_threshold)
                         for name, rows in datasets.items()}}


_COLUMNS = [
    ("n", "n", "{:d}"), ("chars (mean)", "chars_mean", "{:.1f}"), ("exact dup", "exact_dup_rate", "{:.3f}"),
    ("near dup", "near_dup_rate", "{:.3f}"), ("distinct-1", "distinct_1", "{:.3f}"),
    ("distinct-2", "distinct_2", "{:.3f}"), ("distinct-3 (char)", "distinct_3_char", "{:.3f}"),
]
_EMB = [("mean pairwise dist", "mean_pairwise_distance", "{:.3f}"), ("clusters", "clusters", "{:d}"),
        ("Vendi", "vendi", "{:.2f}"), ("Vendi / n", "vendi_per_item", "{:.3f}")]


def to_markdown(rep: dict[str, Any]) -> str:
    names = list(rep["datasets"])
    thr = rep.get("cluster_threshold", 0.8)
    out = ["# Synthetic data report", "",
           f"Embedder: `{rep['embedder']}` (embedding metrics on at most {rep['max_items']} items per dataset, "
           f"seeded sample). Near-duplicates: MinHash LSH, char 5-grams, Jaccard >= 0.8. Clusters: connected "
           f"components of cosine >= {thr}.",
           "", "| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    stats = rep["datasets"]
    for label, key, fmt in _COLUMNS:
        out.append(f"| {label} | " + " | ".join(fmt.format(stats[d][key]) if key in stats[d] else "-"
                                                  for d in names) + " |")
    for label, key, fmt in _EMB:
        out.append(f"| {label} | " + " | ".join(fmt.format(stats[d]["embedding"][key]) if "embedding" in stats[d]
                                                  else "-" for d in names) + " |")
    out.append("| languages | " + " | ".join(", ".join(f"{k} {v}" for k, v in stats[d].get("languages", {}).items())
                                               for d in names) + " |")
    for d in names:
        for k, c in stats[d].get("fields", {}).items():
            out.append(f"\n**{d}** `{k}`: " + ", ".join(f"{v} {m}" for v, m in c.items()))
    return "\n".join(out) + "\n"
