"""Harmful-content rail: phrase lexicons per category (English and Japanese) over the normalized
views; each category's action is "block" or "warn" (warn: passed with a violation).

The lexicon ships as package data (data/harmful_lexicon.json); a caller can pass its own.
Optional second layer, `classifier` ("fast" or True: harmful_classifier.HarmfulClassifier, hashed
n-gram logistic regression per category, no model; a weights path; a loaded classifier): asked only
when the lexicon found nothing; when its probability reaches its calibrated threshold, its top
category is reported ("CATEGORY (classifier)") and gets that category's action. Categories left out
of `actions` are ignored by both layers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .._fileio import check_path
from .normalize import Normalizer, search_word
from .types import RailDecision, Violation

CATEGORIES: tuple[str, ...] = ("violence", "self_harm", "hate", "sexual_minors", "weapons", "illegal_activity")
HARM_ACTIONS: tuple[str, ...] = ("block", "warn")


def load_lexicon(path: str | None = None) -> dict[str, dict[str, list[str]]]:
    """The shipped lexicon, or a JSON file of the same shape ({category: {"en": [...], "ja": [...]}})."""
    if path is None:
        raw = resources.files("infercore.guardrails").joinpath("data/harmful_lexicon.json").read_text("utf-8")
    else:
        with open(check_path(path, "path"), encoding="utf-8") as f:
            raw = f.read()
    data = json.loads(raw)
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _compile(lexicon: Mapping[str, Mapping[str, list[str]]]) -> dict[str, tuple[list[re.Pattern[str]], ...]]:
    """One compiled pattern per phrase rule: a union of rules would lose sre's first-character scan
    (any branch starting with an assertion disables it) and run several times slower."""
    out: dict[str, tuple[list[re.Pattern[str]], ...]] = {}
    for cat, langs in lexicon.items():
        if not isinstance(langs, Mapping):
            raise ValueError(f"lexicon.{cat}: expected a mapping of language -> list of patterns")
        try:
            # the end may not run into a hyphenated compound: "bomb-proof" is not "bomb"
            en = [re.compile((p[2:] if p.startswith(r"\b") else p) + r"(?![\w-])") for p in langs.get("en", [])]
            ja = [re.compile(p) for p in langs.get("ja", [])]
        except re.error as e:
            raise ValueError(f"lexicon.{cat}: invalid pattern: {e}") from e
        out[cat] = (en, ja)
    return out


@dataclass
class HarmfulRail:
    """Flags violence, self-harm, hate, sexual content involving minors, weapons and illegal
    activity. `actions` maps category -> "block" | "warn"; categories left out are not checked."""

    name: str = "harmful"
    actions: Mapping[str, str] = field(default_factory=lambda: {c: "block" for c in CATEGORIES})
    lexicon: Mapping[str, Mapping[str, list[str]]] | None = None
    decode: bool = True
    normalizer: Normalizer | None = None  # share one with other rails of a Guard to normalize once
    can_modify: bool = False
    classifier: Any = None  # None/False: lexicon only; "fast"/True; a weights path; a loaded classifier

    def __post_init__(self) -> None:
        from .harmful_classifier import load_harmful_classifier

        self.classifier = load_harmful_classifier(self.classifier)
        if self.normalizer is None:
            self.normalizer = Normalizer(decode=self.decode)
        if not isinstance(self.actions, Mapping):
            raise TypeError(f"actions: expected a mapping of category -> action, got {type(self.actions).__name__}")
        if self.lexicon is not None and not isinstance(self.lexicon, Mapping):
            raise TypeError(f"lexicon: expected a mapping of category -> patterns, got {type(self.lexicon).__name__}")
        lex = load_lexicon() if self.lexicon is None else dict(self.lexicon)
        for k, v in self.actions.items():
            if k not in lex:
                raise ValueError(f"actions.{k}: unknown category; expected one of {tuple(lex)}")
            if v not in HARM_ACTIONS:
                raise ValueError(f"actions.{k}: action must be one of {HARM_ACTIONS}, got {v!r}")
        self.actions = dict(self.actions)
        self._pats = {c: p for c, p in _compile(lex).items() if c in self.actions}

    def categories(self, text: str) -> list[tuple[str, str]]:
        """(category, view it was found in) for each category that matched."""
        v = self.normalizer.views(text)
        spaced = v.spaced()
        hits: list[tuple[str, str]] = []
        for cat, (en, ja) in self._pats.items():
            where = next((name for name, s in spaced for p in en if search_word(p, s)), None)
            if where is None and any(p.search(v.compact) for p in ja):
                where = "compact"
            if where is not None:
                hits.append((cat, where))
        return hits

    def check(self, text: str, context: Any = None) -> RailDecision:
        hits = self.categories(text)
        score = {c: 1.0 for c, _ in hits}
        if not hits and self.classifier is not None and text.strip():
            p, cat, _ = self.classifier.score(text, self.normalizer)
            if p >= self.classifier.threshold and cat in self.actions:
                hits, score = [(cat, "classifier")], {cat: p}
        if not hits:
            return RailDecision("passed", text)
        viol = [Violation(self.name, f"{cat} ({where})", None, score[cat]) for cat, where in hits]
        status = "blocked" if any(self.actions[c] == "block" for c, _ in hits) else "passed"
        return RailDecision(status, text, viol)
