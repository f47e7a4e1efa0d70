"""Japanese text similarity without a model: cosine over content character n-grams.

MiniLM (English WordPiece vocabulary) maps Japanese to near-meaningless vectors, so the topic rail
scores Japanese inputs against the Japanese texts of its topics with this instead.

Content n-grams: NFKC-folded, lowercased text; character unigrams and bigrams that contain at least
one kanji, katakana or Latin/digit character. Hiragana-only n-grams are left out: in Japanese they
are mostly particles and inflections (の, を, ます, ください), which every sentence shares and which say
nothing about its topic; content words are written in kanji and katakana. Binary vectors, cosine.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_JA_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")


def is_japanese(text: str, min_share: float = 0.2) -> bool:
    """True when kana/kanji make up at least `min_share` of the letters of `text`."""
    letters = [c for c in text[:2000] if c.isalpha()]
    if not letters:
        return False
    return sum(bool(_JA_CHAR.match(c)) for c in letters) / len(letters) >= min_share


def _content(c: str) -> bool:
    o = ord(c)
    if c.isascii():
        return c.isalnum()
    return (0x30A0 <= o <= 0x30FF) or (0x3400 <= o <= 0x4DBF) or (0x4E00 <= o <= 0x9FFF)


def ngrams(text: str) -> frozenset[str]:
    """Content character 1- and 2-grams of `text` (runs split at spaces and punctuation)."""
    t = unicodedata.normalize("NFKC", text[:4000]).lower()
    out: set[str] = set()
    for run in re.split(r"[\W_]+", t):
        out.update(c for c in run if _content(c))
        out.update(run[i:i + 2] for i in range(len(run) - 1) if _content(run[i]) or _content(run[i + 1]))
    return frozenset(g for g in out if len(g) == 1 or any(_content(c) for c in g))


def cosine(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / (len(a) * len(b)) ** 0.5


def similarities(text: str, refs: Iterable[frozenset[str]]) -> list[float]:
    g = ngrams(text)
    return [cosine(g, r) for r in refs]
