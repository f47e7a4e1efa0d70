"""Harmful-content rail: phrase lexicons per category (English and Japanese) over the normalized
views; each category's action is "block" or "warn" (warn: passed with a violation).

The lexicon ships as package data (data/harmful_lexicon.json); a caller can pass its own.
A classifier over the Embedder can later be another rail with the same categories.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .normalize import Normalizer, search_word
from .types import RailDecision, Violation

CATEGORIES: tuple[str, ...] = ("violence", "self_harm", "hate", "sexual_minors", "weapons", "illegal_activity")
HARM_ACTIONS: tuple[str, ...] = ("block", "warn")


def load_lexicon(path: str | None = None) -> dict[str, dict[str, list[str]]]:
    """The shipped lexicon, or a JSON file of the same shape ({category: {"en": [...], "ja": [...]}})."""
    if path is None:
        raw = resources.files("infercore.guardrails").joinpath("data/harmful_lexicon.json").read_text("utf-8")
    else:
        with open(path, encoding="utf-8") as f:
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

    def __post_init__(self) -> None:
        if self.normalizer is None:
            self.normalizer = Normalizer(decode=self.decode)
        if not isinstance(self.actions, Mapping):
            raise TypeError(f"actions: expected a mapping of category -> action, got {type(self.actions).__name__}")
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
        if not hits:
            return RailDecision("passed", text)
        viol = [Violation(self.name, f"{cat} ({where})", None, 1.0) for cat, where in hits]
        status = "blocked" if any(self.actions[c] == "block" for c, _ in hits) else "passed"
        return RailDecision(status, text, viol)
