"""Topic boundary rail: allowed and denied topics described in words, matched by embedding similarity.

    TopicRail(allowed=["bank accounts, cards, payments and loans"],
              denied=["politics and elections", {"name": "medical", "description": "medical advice",
                                                   "examples": ["what medicine should I take?"]}])

A topic is a string (its description) or a mapping {name, description, examples: [...]}; it is
embedded as its description and each example, and the similarity of an input to it is the highest
cosine over those. Decision, in order:
  1. a denied topic with similarity >= denied_threshold and >= the best allowed similarity + margin
     -> blocked ("denied topic: NAME");
  2. allowed topics given and the best allowed similarity < allowed_threshold -> blocked ("off topic");
  3. passed (the best similarities are in the violation-free decision's log via `scores`).
Default thresholds were calibrated with `calibrate` on the calibration half of
benchmarks/data/guardrails/topic.jsonl with MiniLM (see bench_guardrails.py); topic descriptions in
another domain, or another embedder, want their own calibration: `rail.calibrate(texts, should_block)`.
MiniLM is English-centric: Japanese inputs score low against everything (measured in the benchmark).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .types import RailDecision, Violation

ALLOWED_THRESHOLD = 0.22
DENIED_THRESHOLD = 0.36


@dataclass(frozen=True)
class Topic:
    name: str
    texts: tuple[str, ...]  # description first, then examples


def _topics(items: Any, arg: str) -> list[Topic]:
    if items is None:
        return []
    if isinstance(items, (str, Mapping)) or not isinstance(items, Sequence):
        raise ValueError(f"{arg}: expected a list of topics (strings or mappings), got {type(items).__name__}")
    out = []
    for i, t in enumerate(items):
        if isinstance(t, str):
            if not t.strip():
                raise ValueError(f"{arg}[{i}]: empty topic description")
            out.append(Topic(t, (t,)))
            continue
        if not isinstance(t, Mapping):
            raise ValueError(f"{arg}[{i}]: expected a string or a mapping, got {type(t).__name__}")
        unknown = set(t) - {"name", "description", "examples"}
        if unknown:
            raise ValueError(f"{arg}[{i}]: unknown keys {sorted(unknown)}; expected name, description, examples")
        desc = t.get("description")
        ex = t.get("examples", [])
        if not isinstance(desc, str) or not desc.strip():
            raise ValueError(f"{arg}[{i}].description: expected a non-empty string")
        if isinstance(ex, str) or not isinstance(ex, Sequence) or not all(isinstance(e, str) and e.strip() for e in ex):
            raise ValueError(f"{arg}[{i}].examples: expected a list of non-empty strings")
        out.append(Topic(str(t.get("name", desc)), (desc, *ex)))
    return out


def _threshold(x: Any, arg: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not -1.0 <= float(x) <= 1.0:
        raise ValueError(f"{arg}: expected a cosine threshold in [-1, 1], got {x!r}")
    return float(x)


class TopicRail:
    can_modify = False

    def __init__(self, allowed: Any = None, denied: Any = None, *, allowed_threshold: float = ALLOWED_THRESHOLD,
                 denied_threshold: float = DENIED_THRESHOLD, margin: float = 0.0, embedder: Any = None,
                 name: str = "topic") -> None:
        from .embedding import resolve_embedder

        self.allowed = _topics(allowed, "allowed")
        self.denied = _topics(denied, "denied")
        if not self.allowed and not self.denied:
            raise ValueError("allowed/denied: give at least one topic")
        self.allowed_threshold = _threshold(allowed_threshold, "allowed_threshold")
        self.denied_threshold = _threshold(denied_threshold, "denied_threshold")
        self.margin = _threshold(margin, "margin")
        self.name = name
        self.embedder = resolve_embedder(embedder)
        texts = [t for tp in self.allowed + self.denied for t in tp.texts]
        self._vecs = np.asarray(self.embedder.encode(texts, show_progress_bar=False), np.float32)
        self._owner = np.array([i for i, tp in enumerate(self.allowed + self.denied) for _ in tp.texts])

    def scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """[n, len(allowed)] and [n, len(denied)] similarities (max over each topic's texts)."""
        e = np.asarray(self.embedder.encode(list(texts), show_progress_bar=False), np.float32).reshape(len(texts), -1)
        sims = e @ self._vecs.T
        per = np.full((len(texts), len(self.allowed) + len(self.denied)), -1.0, np.float32)
        for j in range(per.shape[1]):
            per[:, j] = sims[:, self._owner == j].max(axis=1)
        return per[:, : len(self.allowed)], per[:, len(self.allowed):]

    def _decide(self, a: np.ndarray, d: np.ndarray, at: float, dt: float) -> tuple[bool, str, float]:
        best_a = float(a.max()) if a.size else -1.0
        if d.size:
            j = int(d.argmax())
            if d[j] >= dt and d[j] >= best_a + self.margin:
                return True, f"denied topic: {self.denied[j].name}", float(d[j])
        if self.allowed and best_a < at:
            return True, "off topic", best_a
        return False, "", best_a

    def check(self, text: str, context: Any = None) -> RailDecision:
        if not text.strip():
            return RailDecision("passed", text)
        a, d = self.scores([text[:4000]])  # the embedder truncates anyway; bound the tokenizer's work
        block, reason, score = self._decide(a[0], d[0], self.allowed_threshold, self.denied_threshold)
        if block:
            return RailDecision("blocked", text, [Violation(self.name, reason, None, score)])
        return RailDecision("passed", text)

    def calibrate(self, texts: Sequence[str], should_block: Sequence[bool], grid: Sequence[float] | None = None
                  ) -> dict[str, float]:
        """Set the two thresholds to the pair that maximizes balanced accuracy on labeled texts (ties:
        the lower false-positive rate, then the optimal pair nearest the centre of all optimal pairs,
        i.e. the middle of the plateau rather than its edge). Returns the metrics."""
        if len(texts) != len(should_block) or not texts:
            raise ValueError("texts/should_block: expected two non-empty lists of the same length")
        y = np.asarray([bool(b) for b in should_block])
        if y.all() or not y.any():
            raise ValueError("should_block: expected both blocked and passed examples")
        a, d = self.scores(list(texts))
        g = list(grid) if grid is not None else [round(x, 2) for x in np.arange(0.0, 0.81, 0.02)]
        results: list[tuple[float, float, float, float]] = []
        for at in (g if self.allowed else [self.allowed_threshold]):
            for dt in (g if self.denied else [self.denied_threshold]):
                pred = np.array([self._decide(a[i], d[i], at, dt)[0] for i in range(len(y))])
                tpr = float(pred[y].mean())
                fpr = float(pred[~y].mean())
                results.append((round(0.5 * (tpr + 1 - fpr), 9), -fpr, at, dt))
        top = max((r[0], r[1]) for r in results)
        opt = np.array([(r[2], r[3]) for r in results if (r[0], r[1]) == top])
        c = opt.mean(axis=0)
        at, dt = (float(x) for x in opt[int(np.argmin(((opt - c) ** 2).sum(axis=1)))])
        self.allowed_threshold, self.denied_threshold = at, dt
        best = (top[0], top[1], at, dt)
        return {"balanced_accuracy": best[0], "fpr": -best[1], "allowed_threshold": best[2],
                "denied_threshold": best[3]}
