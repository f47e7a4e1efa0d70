"""Text normalization, script counts and a heuristic language guess (English vs Japanese vs other).

detect_language rules (documented, deterministic):
  * "ja"      if any hiragana/katakana, or CJK ideographs are >= 30% of the letters;
  * "en"      if Latin letters are >= 70% of the letters and either the text has at least one common
              English function word or it has fewer than 4 words (too short to tell);
  * "latin"   Latin letters dominate but there is no English function word (another Latin-script
              language, base64 or a code);
  * "other"   another script dominates (Cyrillic, Hangul, Arabic, ...);
  * "unknown" no letters at all.
Chinese without kana is reported as "ja" when ideographs dominate: the heuristic only separates
the scripts, it is not a language identifier.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_EN_WORDS = frozenset(
    "the a an and or of to in on for with is are was were be been it this that these those you your i me my we our "
    "he she they them his her their what how why when where which who can could would should will do does did not "
    "no yes please from at by as if but so all any some about into than then there here have has had just".split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC, casefold, zero-width characters removed, whitespace collapsed: the key for exact dedup."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = t.replace("\u200b", "").replace("\u200c", "").replace("\u200d", "").replace("\ufeff", "")
    return _WS.sub(" ", t).strip()


def text_hash(text: str) -> str:
    return hashlib.sha1(normalize(text).encode("utf-8")).hexdigest()


def script_counts(text: str) -> dict[str, int]:
    """Letters per script: latin, kana (hiragana + katakana), han, cyrillic, hangul, other."""
    c = {"latin": 0, "kana": 0, "han": 0, "cyrillic": 0, "hangul": 0, "other": 0}
    for ch in text:
        o = ord(ch)
        if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9F:
            c["kana"] += 1
        elif 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
            c["han"] += 1
        elif not ch.isalpha():
            continue
        elif o < 0x250 or 0x1E00 <= o <= 0x1EFF or 0xFF21 <= o <= 0xFF5A:
            c["latin"] += 1
        elif 0x400 <= o <= 0x4FF:
            c["cyrillic"] += 1
        elif 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF:
            c["hangul"] += 1
        else:
            c["other"] += 1
    return c


def detect_language(text: str) -> str:
    c = script_counts(text)
    letters = sum(c.values())
    if letters == 0:
        return "unknown"
    if c["kana"] > 0 or c["han"] >= 0.3 * letters:
        return "ja"
    if c["latin"] >= 0.7 * letters:
        words = [w.casefold() for w in _WORD.findall(unicodedata.normalize("NFKC", text))]
        if len(words) < 4 or any(w in _EN_WORDS for w in words):
            return "en"
        return "latin"
    return "other"


def bad_char_ratio(text: str) -> float:
    """Share of characters that are control characters (other than tab/newline) or U+FFFD."""
    if not text:
        return 0.0
    bad = sum(1 for ch in text if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\t\n\r"))
    return bad / len(text)


def symbol_ratio(text: str) -> float:
    """Share of non-space characters that are neither letters nor digits."""
    chars = [ch for ch in text if not ch.isspace()]
    if not chars:
        return 0.0
    return sum(1 for ch in chars if not ch.isalnum()) / len(chars)
