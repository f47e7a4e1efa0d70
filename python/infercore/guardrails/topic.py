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

Japanese: MiniLM is English-centric (Japanese inputs score low against everything), so a Japanese
input (ja_similarity.is_japanese) is scored instead by content character n-gram cosine
(ja_similarity.py) against the Japanese texts of each topic: give a topic its Japanese wording as
an example (`examples: ["銀行口座、残高、預金"]`) or as its description. The Japanese layer has its
own thresholds (ja_allowed_threshold, ja_denied_threshold; `calibrate(..., language="ja")`).
Japanese inputs go to that layer only when at least one topic has a Japanese text; a topic without
one scores 0 for Japanese inputs. With no Japanese topic text at all, Japanese inputs are scored by
MiniLM as before (and, with an allowed list, are blocked as off topic: give Japanese wording).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .ja_similarity import is_japanese, ngrams, similarities
from .types import RailDecision, Violation

ALLOWED_THRESHOLD = 0.22
DENIED_THRESHOLD = 0.36
# Japanese layer (char n-gram cosine), calibrated with calibrate(language="ja") on the calibration half
# of benchmarks/data/guardrails/topic/labeled.jsonl with the Japanese wording in its config.yaml
JA_ALLOWED_THRESHOLD = 0.16
JA_DENIED_THRESHOLD = 0.40


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
                 name: str = "topic", ja_allowed_threshold: float = JA_ALLOWED_THRESHOLD,
                 ja_denied_threshold: float = JA_DENIED_THRESHOLD) -> None:
        from .embedding import resolve_embedder

        self.allowed = _topics(allowed, "allowed")
        self.denied = _topics(denied, "denied")
        if not self.allowed and not self.denied:
            raise ValueError("allowed/denied: give at least one topic")
        self.allowed_threshold = _threshold(allowed_threshold, "allowed_threshold")
        self.denied_threshold = _threshold(denied_threshold, "denied_threshold")
        self.margin = _threshold(margin, "margin")
        self.ja_allowed_threshold = _threshold(ja_allowed_threshold, "ja_allowed_threshold")
        self.ja_denied_threshold = _threshold(ja_denied_threshold, "ja_denied_threshold")
        self.name = name
        self.embedder = resolve_embedder(embedder)
        topics = self.allowed + self.denied
        # MiniLM embeds a topic's non-Japanese texts (all of them if it has only Japanese ones)
        pairs = [(i, t) for i, tp in enumerate(topics)
                 for t in ([x for x in tp.texts if not is_japanese(x)] or list(tp.texts))]
        self._vecs = np.asarray(self.embedder.encode([t for _, t in pairs], show_progress_bar=False), np.float32)
        self._owner = np.array([i for i, _ in pairs])
        self._ja = [(i, ngrams(t)) for i, tp in enumerate(topics) for t in tp.texts if is_japanese(t)]

    @property
    def has_japanese(self) -> bool:
        """Whether Japanese inputs are scored by the Japanese layer (some topic has a Japanese text)."""
        return bool(self._ja)

    def _uses_ja(self, text: str) -> bool:
        return bool(self._ja) and is_japanese(text)

    def scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """[n, len(allowed)] and [n, len(denied)] similarities (max over each topic's texts): MiniLM
        cosine, or for Japanese inputs (when topics have Japanese texts) character n-gram cosine."""
        from .classifier import check_texts

        texts = check_texts(texts)
        n_top = len(self.allowed) + len(self.denied)
        per = np.full((len(texts), n_top), -1.0, np.float32)
        ja = [k for k, t in enumerate(texts) if self._uses_ja(t)]
        ja_set = set(ja)
        other = [k for k in range(len(texts)) if k not in ja_set]
        if other:
            e = np.asarray(self.embedder.encode([texts[k] for k in other], show_progress_bar=False),
                           np.float32).reshape(len(other), -1)
            sims = e @ self._vecs.T
            for j in range(n_top):
                if (self._owner == j).any():
                    per[other, j] = sims[:, self._owner == j].max(axis=1)
        for k in ja:
            per[k] = 0.0
            for (j, _), s in zip(self._ja, similarities(texts[k], [g for _, g in self._ja]), strict=True):
                per[k, j] = max(per[k, j], s)
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
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        if not text.strip():
            return RailDecision("passed", text)
        a, d = self.scores([text[:4000]])  # the embedder truncates anyway; bound the tokenizer's work
        at, dt = ((self.ja_allowed_threshold, self.ja_denied_threshold) if self._uses_ja(text[:4000])
                  else (self.allowed_threshold, self.denied_threshold))
        block, reason, score = self._decide(a[0], d[0], at, dt)
        if block:
            return RailDecision("blocked", text, [Violation(self.name, reason, None, score)])
        return RailDecision("passed", text)

    def calibrate(self, texts: Sequence[str], should_block: Sequence[bool], grid: Sequence[float] | None = None,
                  language: str = "en") -> dict[str, float]:
        """Set the two thresholds to the pair that maximizes balanced accuracy on labeled texts (ties:
        the lower false-positive rate, then the optimal pair nearest the centre of all optimal pairs,
        i.e. the middle of the plateau rather than its edge). Returns the metrics.
        language="ja": the Japanese layer's thresholds, from the texts that layer scores."""
        from .classifier import check_texts

        if language not in ("en", "ja"):
            raise ValueError(f"language: expected 'en' or 'ja', got {language!r}")
        texts = check_texts(texts)
        if isinstance(should_block, str) or not isinstance(should_block, Sequence):
            raise TypeError(f"should_block: expected a list of bools, got {type(should_block).__name__}")
        if len(texts) != len(should_block) or not texts:
            raise ValueError("texts/should_block: expected two non-empty lists of the same length")
        if language == "ja":
            if not self._ja:
                raise ValueError("language: 'ja' needs topics with Japanese texts")
            keep = [k for k, t in enumerate(texts) if self._uses_ja(t)]
            if not keep:
                raise ValueError("texts: no Japanese text to calibrate the Japanese layer on")
            texts = [texts[k] for k in keep]
            should_block = [should_block[k] for k in keep]
        y = np.asarray([bool(b) for b in should_block])
        if y.all() or not y.any():
            raise ValueError("should_block: expected both blocked and passed examples")
        a, d = self.scores(list(texts))
        g = ([_threshold(x, f"grid[{i}]") for i, x in enumerate(grid)] if grid is not None
             else [round(x, 2) for x in np.arange(0.0, 0.81, 0.02)])
        results: list[tuple[float, float, float, float]] = []
        at0, dt0 = ((self.ja_allowed_threshold, self.ja_denied_threshold) if language == "ja"
                    else (self.allowed_threshold, self.denied_threshold))
        for at in (g if self.allowed else [at0]):
            for dt in (g if self.denied else [dt0]):
                pred = np.array([self._decide(a[i], d[i], at, dt)[0] for i in range(len(y))])
                tpr = float(pred[y].mean())
                fpr = float(pred[~y].mean())
                results.append((round(0.5 * (tpr + 1 - fpr), 9), -fpr, at, dt))
        top = max((r[0], r[1]) for r in results)
        opt = np.array([(r[2], r[3]) for r in results if (r[0], r[1]) == top])
        c = opt.mean(axis=0)
        at, dt = (float(x) for x in opt[int(np.argmin(((opt - c) ** 2).sum(axis=1)))])
        if language == "ja":
            self.ja_allowed_threshold, self.ja_denied_threshold = at, dt
        else:
            self.allowed_threshold, self.denied_threshold = at, dt
        best = (top[0], top[1], at, dt)
        return {"balanced_accuracy": best[0], "fpr": -best[1], "allowed_threshold": best[2],
                "denied_threshold": best[3]}
