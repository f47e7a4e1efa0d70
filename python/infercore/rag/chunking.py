"""Token-aware chunking on paragraph and sentence boundaries, with overlap and character spans."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_PARA = re.compile(r"\n\s*\n")
# a sentence ends at . ! ? (or CJK 。！？) followed by whitespace, or at a CJK stop itself
_SENT = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
_WORD = re.compile(r"\S+\s*")


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # character span [start, end) in the document text
    end: int


def _pieces(text: str) -> list[tuple[int, int]]:
    """Sentence spans (stripped), paragraph breaks marked by span (-1, -1)."""
    out: list[tuple[int, int]] = []
    pos = 0
    for para in [*_PARA.finditer(text), None]:
        pend = para.start() if para is not None else len(text)
        seg_start = pos
        for m in [*_SENT.finditer(text, pos, pend), None]:
            send = m.start() if m is not None else pend
            s, e = seg_start, send
            while s < e and text[s].isspace():
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            if e > s:
                out.append((s, e))
            if m is not None:
                seg_start = m.end()
        out.append((-1, -1))
        if para is not None:
            pos = para.end()
    return out


def chunk_text(text: str, count_tokens: Callable[[Sequence[str]], list[int]], max_tokens: int = 200,
               overlap_tokens: int = 40) -> list[Chunk]:
    """Pack whole sentences into chunks of at most `max_tokens` tokens (as counted by
    `count_tokens`, a batch function: texts -> token counts without special tokens). A chunk ends
    early at a paragraph break when it is already at least half full. Consecutive chunks share
    trailing sentences worth up to `overlap_tokens` tokens. A sentence longer than `max_tokens` is
    split on word boundaries (characters, for text without spaces)."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    if not isinstance(max_tokens, int) or max_tokens < 8:
        raise ValueError(f"max_tokens: expected an int >= 8, got {max_tokens!r}")
    if not isinstance(overlap_tokens, int) or not 0 <= overlap_tokens < max_tokens // 2 + 1:
        raise ValueError(f"overlap_tokens: expected an int in [0, max_tokens/2], got {overlap_tokens!r}")
    spans = _pieces(text)
    real = [(s, e) for s, e in spans if s >= 0]
    if not real:
        return []
    counts = dict(zip(real, count_tokens([text[s:e] for s, e in real]), strict=True))
    units: list[tuple[int, int, int]] = []  # (start, end, tokens); (-1, -1, 0) = paragraph break
    for s, e in spans:
        if s < 0:
            units.append((-1, -1, 0))
        elif counts[(s, e)] <= max_tokens:
            units.append((s, e, counts[(s, e)]))
        else:
            units.extend(_split_long(text, s, e, count_tokens, max_tokens))
    chunks: list[Chunk] = []
    cur: list[tuple[int, int, int]] = []
    total = 0

    def flush() -> None:
        nonlocal cur, total
        if not cur:
            return
        s, e = cur[0][0], cur[-1][1]
        chunks.append(Chunk(text[s:e], s, e))
        keep: list[tuple[int, int, int]] = []
        kept = 0
        for u in reversed(cur[1:] if len(cur) > 1 else []):
            if kept + u[2] > overlap_tokens:
                break
            keep.insert(0, u)
            kept += u[2]
        cur, total = keep, kept

    for u in units:
        if u[0] < 0:
            if total >= max_tokens // 2:
                flush()
            continue
        # +1 per sentence join: tokenizers rarely merge across a space, keep a margin anyway
        if cur and total + u[2] + len(cur) > max_tokens:
            flush()
            if cur and total + u[2] + len(cur) > max_tokens:
                cur, total = [], 0
        cur.append(u)
        total += u[2]
    if cur and (not chunks or cur[-1][1] > chunks[-1].end):
        s, e = cur[0][0], cur[-1][1]
        chunks.append(Chunk(text[s:e], s, e))
    return chunks


def _split_long(text: str, s: int, e: int, count_tokens: Callable[[Sequence[str]], list[int]],
                max_tokens: int) -> list[tuple[int, int, int]]:
    words = [(s + m.start(), s + m.end()) for m in _WORD.finditer(text[s:e])]
    if len(words) <= 1:  # no spaces (e.g. Japanese): fixed character windows
        step = max(1, max_tokens // 2)
        words = [(i, min(i + step, e)) for i in range(s, e, step)]
    counts = count_tokens([text[a:b] for a, b in words])
    out: list[tuple[int, int, int]] = []
    cs, ce, ct = words[0][0], words[0][0], 0
    for (a, b), c in zip(words, counts, strict=True):
        if ct and ct + c > max_tokens:
            out.append((cs, ce, ct))
            cs, ct = a, 0
        ce, ct = b, ct + c
    out.append((cs, ce, ct))
    return [(a, _rstrip(text, a, b), c) for a, b, c in out]


def _rstrip(text: str, a: int, b: int) -> int:
    while b > a and text[b - 1].isspace():
        b -= 1
    return b


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of `text` (used by the answer metrics)."""
    return [(s, e) for s, e in _pieces(text) if s >= 0]
