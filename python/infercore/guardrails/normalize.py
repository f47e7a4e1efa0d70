"""Detection views of a text: what an attacker's obfuscation is undone into.

Every view is built with C-level passes (str.translate, unicodedata.normalize, one regex pass),
so a megabyte costs milliseconds, not a Python loop per character. Views are for matching only;
the text a Guard returns is never normalized.

- folded:  invisible/control characters removed, lone surrogates -> U+FFFD, NFKC (full-width,
           ligatures, math letters), casefold, Cyrillic/Greek look-alikes -> Latin, whitespace
           collapsed to one space.
- leet:    folded with leetspeak digits/symbols read as letters (only when a word mixes them).
- unsplit: folded with separators inside words dropped ("r.e.s-t_r" -> "restr") and runs of
           single letters joined ("w i t h" -> "with"); only when that changes the text.
- compact: leet-or-folded with everything but letters/digits removed: "i g-n.o r e" -> "ignore",
           and Japanese with spaces inserted between characters joined again.
- decoded: base64 spans (size and count bounded), and the rot13 reading of the text when that
           reading has English function words in it, each folded.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass, field


def _invisible_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in list(range(0x00, 0x20)) + list(range(0x7F, 0xA0)):
        if chr(cp) not in "\t\n\r":
            table[cp] = None
    for cp in (0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0):
        table[cp] = None
    for lo, hi in ((0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0xFE00, 0xFE0F), (0xE0000, 0xE007F)):
        for cp in range(lo, hi + 1):
            table[cp] = None
    for cp in range(0xD800, 0xE000):  # lone surrogates (str allows them; UTF-8 does not)
        table[cp] = "\ufffd"
    return table


_INVISIBLE = _invisible_table()

# Look-alikes NFKC leaves alone (lowercase: applied after casefold).
_CONFUSABLES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "һ": "h", "ӏ": "l", "ɡ": "g", "ո": "n", "ս": "u",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ς": "s", "σ": "o", "ζ": "z",
    # Latin look-alikes outside ASCII
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h",
})

_LEET_CHARS = "013457@$"
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM",
)
_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")
_INNER_SEP = re.compile(r"(?<=\w)[._\-](?=\w)|_")
# Gates: the extra views cost a full scan each, so build them only on evidence.
_LEET_EVIDENCE = re.compile(r"[a-z][013457@$]|[013457@$][a-z]")
_SPLIT_EVIDENCE = re.compile(r"(?<!\w)\w[ ._\-]\w[ ._\-]\w(?!\w)")
# Common English words whose rot13 forms (gur, naq, lbh...) are not words: a rot13 reading that
# contains them is probably encoded English.
_STOPWORDS = re.compile(r"\b(?:the|and|you|your|to|of|is|in|all|with|that|this|for|me|now|say|how|what|are|new|tell)\b")
_SINGLE_RUN = re.compile(r"(?<!\S)(\w) (?=\w(?!\S))")
# The lookbehind makes each failed start O(1): a scan begins only where a run begins.
_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}")


def _char_class(keys: dict[int, object]) -> re.Pattern[str]:
    """A regex class of these code points, written as ranges (a class of thousands of single
    characters is matched far more slowly than a few ranges)."""
    cps = sorted(keys)
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\U{cps[i]:08x}" if i == j else f"\\U{cps[i]:08x}-\\U{cps[j]:08x}")
        i = j + 1
    return re.compile("[" + "".join(parts) + "]")


# str.translate with a dict looks every character up in Python; scanning for a character that
# needs it first (a C-level regex scan) skips the translate for most texts.
_HAS_INVISIBLE = _char_class(_INVISIBLE)
_HAS_CONFUSABLE = _char_class(_CONFUSABLES)


def fold(text: str) -> str:
    t = text.translate(_INVISIBLE) if _HAS_INVISIBLE.search(text) else text
    t = unicodedata.normalize("NFKC", t).casefold()
    if _HAS_CONFUSABLE.search(t):
        t = t.translate(_CONFUSABLES)
    return _WS.sub(" ", t).strip()


def rot13(text: str) -> str:
    return text.translate(_ROT13)


def decode_base64_spans(text: str, max_spans: int = 8, max_span_chars: int = 8192) -> list[str]:
    """Decode runs that look like base64 (standard or URL-safe) into text. Runs longer than
    max_span_chars are skipped (a decoded payload that long is data, not an instruction), at most
    max_spans runs are decoded, and a result that is not mostly printable UTF-8 is dropped."""
    out: list[str] = []
    for m in _B64.finditer(text):
        if len(out) >= max_spans:
            break
        s = m.group(0)
        if len(s) > max_span_chars:
            continue
        s = s.rstrip("=")
        s = s + "=" * (-len(s) % 4)
        try:
            raw = base64.b64decode(s, altchars=b"-_" if ("-" in s or "_" in s) else None, validate=True)
            dec = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if dec and sum(ch.isprintable() or ch.isspace() for ch in dec) >= 0.9 * len(dec):
            out.append(dec)
    return out


@dataclass
class Views:
    folded: str
    leet: str | None
    compact: str
    unsplit: str | None = None
    decoded: list[tuple[str, str]] = field(default_factory=list)  # (how, folded text)

    def spaced(self) -> list[tuple[str, str]]:
        """(view name, text) for patterns written over words separated by single spaces."""
        out = [("folded", self.folded)]
        if self.leet is not None:
            out.append(("leetspeak", self.leet))
        if self.unsplit is not None:
            out.append(("split_words", self.unsplit))
        return out + self.decoded


def views(text: str, *, decode: bool = True, max_spans: int = 8, max_span_chars: int = 8192) -> Views:
    folded = fold(text)
    leet = folded.translate(_LEET) if _LEET_EVIDENCE.search(folded) else None
    compact = _NON_WORD.sub("", leet if leet is not None else folded)
    unsplit = None
    if _SPLIT_EVIDENCE.search(folded):
        unsplit = _WS.sub(" ", _SINGLE_RUN.sub(r"\1", _INNER_SEP.sub("", folded)))
    decoded: list[tuple[str, str]] = []
    if decode:
        decoded = [("base64", fold(d)) for d in decode_base64_spans(text, max_spans, max_span_chars)]
        r13 = rot13(folded)
        hits = _STOPWORDS.findall(r13)
        if hits and len(hits) > len(_STOPWORDS.findall(folded)) // 4:
            decoded.append(("rot13", r13))
    return Views(folded, leet, compact, unsplit, decoded)


class Normalizer:
    """Builds Views, remembering the last text so rails of one Guard that see the same text share
    the work. Explicit and per-Guard (no module state); the memo is one (text, views) tuple,
    replaced atomically, so concurrent use is safe (at worst it recomputes)."""

    def __init__(self, decode: bool = True, max_spans: int = 8, max_span_chars: int = 8192) -> None:
        self.decode = decode
        self.max_spans = max_spans
        self.max_span_chars = max_span_chars
        self._memo: tuple[str, Views] | None = None

    def views(self, text: str) -> Views:
        memo = self._memo
        if memo is not None and (memo[0] is text or memo[0] == text):
            return memo[1]
        v = views(text, decode=self.decode, max_spans=self.max_spans, max_span_chars=self.max_span_chars)
        self._memo = (text, v)
        return v


def search_word(pat: re.Pattern[str], s: str) -> re.Match[str] | None:
    """pat.search that only accepts a match starting at a word boundary. Patterns are compiled
    without a leading \\b because sre only uses its fast first-character scan when a pattern
    starts with characters, not an assertion (4-6x faster on long inputs)."""
    pos = 0
    while True:
        m = pat.search(s, pos)
        if m is None:
            return None
        a = m.start()
        if a == 0 or not (s[a - 1].isalnum() or s[a - 1] == "_") or not (s[a].isalnum() or s[a] == "_"):
            return m
        pos = a + 1
