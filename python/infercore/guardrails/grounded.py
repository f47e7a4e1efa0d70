"""Groundedness output rail: sentences of an answer that the given contexts do not support.

    guard = Guard(output_rails=[GroundednessRail(action="remove")])
    guard.check_output(answer, contexts=["retrieved chunk 1", "retrieved chunk 2"])

Scoring is the RAG metrics' (infercore.evals.rag): the answer is split with `answer_sentences`,
citation markers are stripped, and a sentence's support is its highest cosine against any sentence
of any context (`support_matrix`); unsupported = support < `threshold` (GROUNDED_THRESHOLD, 0.7 for
MiniLM, calibrated there; the same caveats hold: wrong numbers and negations are not seen).
Contexts are strings or objects with a `.text` (rag.Hit). Actions:
  flag   -> "passed", one violation per unsupported sentence (its span in the answer);
  remove -> "modified", unsupported sentences cut out (all of them unsupported: the text becomes "");
  block  -> "blocked" when more than `max_unsupported` sentences are unsupported.
No contexts (None or []) -> "passed" with no violation: there is nothing to check against.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..evals.rag import _MARK, GROUNDED_THRESHOLD, answer_sentences, support_matrix
from .types import RailDecision, Violation

ACTIONS = ("flag", "remove", "block")


def _contexts(context: Any) -> list[str]:
    if context is None:
        return []
    if isinstance(context, str):
        return [context]
    if not isinstance(context, Sequence):
        raise TypeError(f"contexts: expected a list of strings (or objects with .text), got {type(context).__name__}")
    out = []
    for i, c in enumerate(context):
        t = c if isinstance(c, str) else getattr(c, "text", None)
        if not isinstance(t, str):
            raise TypeError(f"contexts[{i}]: expected a str or an object with a str .text, got {type(c).__name__}")
        if t.strip():
            out.append(t)
    return out


class GroundednessRail:
    def __init__(self, threshold: float = GROUNDED_THRESHOLD, action: str = "flag", *, embedder: Any = None,
                 max_unsupported: int = 0, name: str = "groundedness") -> None:
        from .embedding import resolve_embedder

        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold: expected a value in (0, 1), got {threshold!r}")
        if action not in ACTIONS:
            raise ValueError(f"action: expected one of {ACTIONS}, got {action!r}")
        if isinstance(max_unsupported, bool) or not isinstance(max_unsupported, int) or max_unsupported < 0:
            raise ValueError(f"max_unsupported: expected an int >= 0, got {max_unsupported!r}")
        self.threshold = float(threshold)
        self.action = action
        self.max_unsupported = max_unsupported
        self.name = name
        self.can_modify = action == "remove"
        self.embedder = resolve_embedder(embedder)

    def support(self, text: str, contexts: Sequence[str]) -> list[tuple[tuple[int, int], float]]:
        """(sentence span in text, support) per sentence of the answer."""
        spans = answer_sentences(text)
        clean = [_MARK.sub("", text[s:e]).strip() for s, e in spans]
        if not spans:
            return []
        sim = support_matrix(clean, list(contexts), self.embedder)
        return [(sp, float(sim[i].max()) if sim.shape[1] else 0.0) for i, sp in enumerate(spans)]

    def check(self, text: str, context: Any = None) -> RailDecision:
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        ctx = _contexts(context)
        if not ctx or not text.strip():
            return RailDecision("passed", text)
        bad = [(sp, s) for sp, s in self.support(text, ctx) if s < self.threshold]
        viol = [Violation(self.name, "unsupported by the contexts", sp, s) for sp, s in bad]
        if not bad:
            return RailDecision("passed", text)
        if self.action == "block":
            return RailDecision("blocked" if len(bad) > self.max_unsupported else "passed", text, viol)
        if self.action == "flag":
            return RailDecision("passed", text, viol)
        out, pos = [], 0
        for (s, e), _ in bad:
            out.append(text[pos:s])
            pos = e
        out.append(text[pos:])
        kept = re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()
        return RailDecision("modified", kept, viol)
