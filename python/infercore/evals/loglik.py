"""Log-likelihood of a continuation given a context, from `LLM.compute_logits` (one forward pass).

    lp = continuation_logprobs(llm, context_ids, continuation_ids)   # one log p per continuation token
    score = score_continuation(lp, text, normalize="char")

The context and continuation are tokenized separately and concatenated (the continuation keeps its
leading space, e.g. " Paris"), so every option of a question shares the same context tokens and the
option boundary never falls inside a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

NORMALIZATIONS = ("sum", "token", "char")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def continuation_logprobs(llm: Any, context_ids: Sequence[int], continuation_ids: Sequence[int]) -> list[float]:
    """log p(continuation token i | context, continuation[:i]) for every continuation token."""
    ctx, cont = [int(t) for t in context_ids], [int(t) for t in continuation_ids]
    if not ctx:
        raise ValueError("context_ids: expected at least one token (e.g. BOS)")
    if not cont:
        raise ValueError("continuation_ids: expected at least one token")
    logits = llm.compute_logits(ctx + cont)  # row t predicts token t+1
    rows = log_softmax(logits[len(ctx) - 1: len(ctx) + len(cont) - 1])
    return [float(rows[i, t]) for i, t in enumerate(cont)]


def score_continuation(logprobs: Sequence[float], text: str, normalize: str = "char") -> float:
    """Aggregate a continuation's token log-probs: "sum" (total log-likelihood, favours short
    options), "token" (mean per token) or "char" (total divided by the continuation's characters,
    lm-evaluation-harness' acc_norm up to bytes-vs-characters)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize: expected one of {NORMALIZATIONS}, got {normalize!r}")
    total = float(sum(logprobs))
    if normalize == "sum":
        return total
    if normalize == "token":
        return total / max(len(logprobs), 1)
    return total / max(len(text), 1)


def choice_scores(llm: Any, context: str, choices: Sequence[str], normalize: str = "char") -> list[float]:
    """Score each choice text as a continuation of context (text tokenized with llm.tokenizer)."""
    tok = llm.tokenizer
    if tok is None:
        raise ValueError("llm: scoring text choices needs a tokenizer")
    ctx = tok.encode(context, add_special_tokens=True)
    out = []
    for c in choices:
        cont = tok.encode(c, add_special_tokens=False)
        out.append(score_continuation(continuation_logprobs(llm, ctx, cont), c, normalize))
    return out
