"""Per-answer RAG metrics. Sentences are split with `rag.chunking.split_sentences`; citation
markers `[n]` are removed before a sentence is embedded.

citation_coverage = |{sentences with >= 1 valid citation}| / |sentences|
    The sentence-level form of ALCE's citation recall (Gao et al. 2023, "Enabling Large Language
    Models to Generate Text with Citations"), without the NLI entailment check: ALCE also requires
    the cited passages to entail the sentence, which `groundedness` approximates below.

groundedness = |{sentences s : max_{c in cited(s)} cos(e(s), e(c)) >= threshold}| / |sentences|
    RAGAS faithfulness (Es et al. 2023) is |claims supported by the context| / |claims|, with an LLM
    judging support; here a claim is a sentence, "the context" is the chunks the sentence cites
    (ALCE's citation-level check), and support is embedding cosine >= `GROUNDED_THRESHOLD`.
    A sentence with no valid citation counts as not grounded.

hallucination_rate = |{sentences s : max_{c in retrieved} cos(e(s), e(c)) < threshold}| / |sentences|
    Sentences not supported by any retrieved chunk, cited or not (1 - RAGAS faithfulness with all
    retrieved contexts as the context).

citation_precision = |{valid citations (s, c) : cos(e(s), e(c)) >= threshold}| / |citations|
    ALCE citation precision with cosine support in place of NLI; invalid markers count as wrong.

context_precision@k = sum_{i<=k} (precision@i * rel_i) / |{relevant in top k}|
    RAGAS context precision: rewards relevant chunks ranked early; needs relevance labels.

Support of a sentence by a chunk = the highest cosine between the sentence and any sentence of the
chunk (`support_matrix`), so one matching sentence is not diluted by the rest of a long chunk.

Threshold: `GROUNDED_THRESHOLD` = 0.7 for all-MiniLM-L6-v2, calibrated on tests/evals/calibration.py
(12 paraphrases the bundled docs support, 12 plausible claims they do not; top-4 retrieved chunks).
Supported claims scored 0.48-0.98 (median ~0.8), unsupported 0.09-0.82 (median ~0.65); 0.7 keeps
8/12 of each side correct (balanced accuracy 0.67; 0.65 gives the same). Embedding similarity does
not see wrong numbers or negations ("holds 16 tokens" vs "holds 4096 tokens" score alike), so
these metrics flag off-topic sentences, not subtle factual errors; an NLI or LLM judge is needed for
that (not implemented). Recalibrate the threshold for another embedder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._fileio import check_path

GROUNDED_THRESHOLD = 0.7
_MARK = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


def answer_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the answer's sentences that hold words (a lone citation marker is not a sentence)."""
    from ..rag.chunking import split_sentences

    return [(s, e) for s, e in split_sentences(text) if re.search(r"\w", _MARK.sub("", text[s:e]))]


def context_precision_at_k(relevant: Sequence[bool], k: int | None = None) -> float:
    """RAGAS context precision over the ranked relevance labels (see the module docstring)."""
    if k is not None and (not isinstance(k, int) or k < 1):
        raise ValueError(f"k: expected a positive int, got {k!r}")
    rel = [bool(r) for r in relevant][: k or None]
    hits, total = 0, 0.0
    for i, r in enumerate(rel, start=1):
        if r:
            hits += 1
            total += hits / i
    return total / hits if hits else 0.0


def support_matrix(sentences: Sequence[str], contexts: Sequence[str], embedder: Any) -> np.ndarray:
    """[len(sentences), len(contexts)]: support of each sentence by each context = the highest cosine
    between the sentence and any sentence of the context (claim-level matching, robust to long
    chunks where one relevant sentence is diluted by the rest)."""
    from ..rag.chunking import split_sentences

    pieces, owner = [], []
    for j, c in enumerate(contexts):
        spans = split_sentences(c) or [(0, len(c))]
        pieces += [c[a:b] for a, b in spans]
        owner += [j] * len(spans)
    if not sentences or not contexts:
        return np.zeros((len(sentences), len(contexts)), np.float32)
    emb = embedder.encode(list(sentences) + pieces, show_progress_bar=False)
    sims = emb[: len(sentences)] @ emb[len(sentences):].T
    out = np.full((len(sentences), len(contexts)), -1.0, np.float32)
    owner_arr = np.array(owner)
    for j in range(len(contexts)):
        out[:, j] = sims[:, owner_arr == j].max(axis=1)
    return out


def answer_metrics(answer: Any, embedder: Any, threshold: float = GROUNDED_THRESHOLD,
                   relevant: Sequence[bool] | None = None) -> dict[str, Any]:
    """Metrics of one `rag.Answer` (text, citations, contexts). relevant: optional relevance label
    per context (in rank order) for context_precision@k."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold: expected a value in (0, 1), got {threshold!r}")
    text = answer.text
    sents = answer_sentences(text)
    own = [c for c in answer.citations if not getattr(c, "posthoc", False)]  # the model's own markers
    out: dict[str, Any] = {"sentences": len(sents), "citations": len(own),
                           "invalid_citations": sum(not c.valid for c in own),
                           "threshold": threshold}
    if relevant is not None:
        if len(relevant) != len(answer.contexts):
            raise ValueError(f"relevant: expected {len(answer.contexts)} labels, got {len(relevant)}")
        out["context_precision"] = context_precision_at_k(relevant)
    if not sents:
        out.update(citation_coverage=0.0, groundedness=0.0, hallucination_rate=0.0, citation_precision=0.0)
        return out
    cited: list[set[int]] = [set() for _ in sents]
    for c in own:
        if not c.valid:
            continue
        for i, (s, e) in enumerate(sents):
            if s <= c.answer_start <= e + 1:
                cited[i].add(c.marker - 1)
                break
        else:  # marker after the last sentence's end (e.g. "... end. [2]"): belongs to the previous sentence
            prev = [i for i, (s, _) in enumerate(sents) if s <= c.answer_start]
            if prev:
                cited[prev[-1]].add(c.marker - 1)
    clean = [_MARK.sub("", text[s:e]).strip() for s, e in sents]
    sim = support_matrix(clean, [h.text for h in answer.contexts], embedder)
    grounded = [bool(cs) and max(sim[i, j] for j in cs) >= threshold for i, cs in enumerate(cited)]
    supported_any = [sim.shape[1] > 0 and sim[i].max() >= threshold for i in range(len(clean))]
    pairs = [(i, j) for i, cs in enumerate(cited) for j in cs]
    n_cit = len(pairs) + out["invalid_citations"]
    out.update(
        citation_coverage=sum(bool(cs) for cs in cited) / len(sents),
        groundedness=sum(grounded) / len(sents),
        hallucination_rate=sum(not s for s in supported_any) / len(sents),
        citation_precision=(sum(sim[i, j] >= threshold for i, j in pairs) / n_cit) if n_cit else 0.0,
        sentence_support=[float(sim[i].max()) if sim.shape[1] else 0.0 for i in range(len(clean))],
    )
    return out


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean of each numeric metric over answers (abstentions excluded from the answer metrics)."""
    keys = ("citation_coverage", "groundedness", "hallucination_rate", "citation_precision", "context_precision")
    out: dict[str, float] = {"answers": float(len(rows)),
                             "abstained": float(sum(bool(r.get("abstained")) for r in rows))}
    for k in keys:
        vals = [float(r[k]) for r in rows if k in r and not r.get("abstained")]
        if vals:
            out[k] = float(np.mean(vals))
    return out


def read_questions(path: str) -> list[dict[str, Any]]:
    """A JSONL question set: one object per line with "question" (str) and optionally
    "relevant_docs" (doc ids or file names whose chunks count as relevant)."""
    import json

    rows = []
    path = check_path(path, "path")
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except OSError as e:
        raise ValueError(f"{path}: cannot read question set: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: question set is not UTF-8") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not valid JSON: {e}") from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise ValueError(f"{path}:{n}: expected an object with a non-empty \"question\" string")
        rel = row.get("relevant_docs")
        if rel is not None and (not isinstance(rel, list) or not all(isinstance(r, str) for r in rel)):
            raise ValueError(f"{path}:{n}: \"relevant_docs\" must be a list of strings")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no questions")
    return rows


def evaluate_questions(rag: Any, questions: str | Sequence[dict[str, Any]], k: int = 4,
                       min_score: float = 0.3) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Answer every question with `rag` and compute its metrics; returns (rows, aggregate)."""
    import os

    qs = read_questions(questions) if isinstance(questions, str) else list(questions)
    rows = []
    for q in qs:
        ans = rag.answer(q["question"], k=k, min_score=min_score, compute_metrics=False)
        rel = q.get("relevant_docs")
        labels = None
        if rel is not None:
            names = set(rel)
            labels = [h.doc_id in names or os.path.basename(h.doc_id) in names or h.metadata.get("source") in names
                      for h in ans.contexts]
        row: dict[str, Any] = {"question": q["question"], "answer": ans.text, "abstained": ans.abstained}
        if ans.abstained:
            if labels is not None:
                row["context_precision"] = context_precision_at_k(labels) if labels else 0.0
        else:
            m = answer_metrics(ans, rag.embedder, relevant=labels)
            row.update({k2: v for k2, v in m.items() if k2 != "sentence_support"})
        row["timings"] = ans.timings
        rows.append(row)
    return rows, aggregate(rows)
