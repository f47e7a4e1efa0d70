"""Vocabulary bytes and the per-state token mask.

`token_bytes(tokenizer)` gives every token id the bytes it adds to the decoded text (None for
special and added tokens, which constrained output never uses). `TokenMasker` then answers
"which tokens keep the DFA alive from state s" for the whole vocabulary at once: tokens are
stored as a padded byte matrix and walked through the DFA table column by column in numpy, so a
state costs sum(token lengths) table lookups (~0.3 M for SmolLM2's 49k tokens, a few ms) and is
computed once per state, then cached: decoding a long string revisits the same few states.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from .fsm import DFA

MAX_VOCAB = 1 << 24  # 16.7 M ids: far above any real vocabulary (a mask is vocab_size bytes per step)


def check_vocab_size(vocab_size: Any) -> int:
    if isinstance(vocab_size, (bool, np.bool_)) or not isinstance(vocab_size, (int, np.integer)):
        raise TypeError(f"vocab_size: expected an int, got {type(vocab_size).__name__}")
    if not 1 <= vocab_size <= MAX_VOCAB:
        raise ValueError(f"vocab_size: expected an int in [1, {MAX_VOCAB}], got {vocab_size}")
    return int(vocab_size)


def _decoder_kinds(backend: Any) -> set[str]:
    try:
        dec = json.loads(backend.to_str()).get("decoder") or {}
    except Exception:  # a backend without JSON serialization: fall back to decoding tokens
        return set()
    kinds, stack = set(), [dec]
    while stack:
        d = stack.pop()
        if isinstance(d, dict):
            kinds.add(d.get("type"))
            stack.extend(d.get("decoders") or [])
    return kinds


def token_bytes(tokenizer: Any) -> list[bytes | None]:
    """Bytes of each token id of an infercore `Tokenizer` (byte-level BPE, SentencePiece-style
    BPE with byte fallback, or anything `tokenizers` decodes token by token)."""
    from ..models.tokenizer import _byte_alphabet

    backend = tokenizer.backend
    n = tokenizer.vocab_size
    added = set(backend.get_added_tokens_decoder())
    kinds = _decoder_kinds(backend)
    out: list[bytes | None] = [None] * n
    if "ByteLevel" in kinds:
        inv = {c: b for b, c in _byte_alphabet().items()}
        for i in range(n):
            if i in added:
                continue
            t = backend.id_to_token(i)
            if t is None:
                continue
            try:
                out[i] = bytes(inv[c] for c in t)
            except KeyError:  # spelled outside the byte alphabet: the tokenizer respelled it
                out[i] = t.encode("utf-8")
        return out
    sentencepiece = "ByteFallback" in kinds or "Metaspace" in kinds
    for i in range(n):
        if i in added:
            continue
        t = backend.id_to_token(i)
        if t is None:
            continue
        if sentencepiece:
            if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                out[i] = bytes([int(t[3:5], 16)])
            else:
                out[i] = t.replace("\u2581", " ").encode("utf-8")
        else:
            out[i] = backend.decode([i]).encode("utf-8")
    return out


class VocabMatrix:
    """The vocabulary as a padded byte matrix, longest tokens first (built once per model)."""

    def __init__(self, tokens: Sequence[bytes | None], vocab_size: int) -> None:
        self.vocab_size = check_vocab_size(vocab_size)
        if isinstance(tokens, (str, bytes)) or not isinstance(tokens, (Sequence, np.ndarray)):
            raise TypeError(f"tokens: expected a sequence of bytes (or None), got {type(tokens).__name__}")
        self.tokens = list(tokens[:vocab_size])
        for i, t in enumerate(self.tokens):
            if t is not None and not isinstance(t, (bytes, bytearray)):
                raise TypeError(f"tokens[{i}]: expected bytes or None, got {type(t).__name__}")
        lens = np.array([len(t) if t else 0 for t in self.tokens], np.int64)
        ids = np.nonzero(lens > 0)[0]
        self.ids = ids[np.argsort(-lens[ids], kind="stable")]  # column p is used by a prefix of the rows
        self.lens = lens[self.ids]
        width = int(self.lens[0]) if len(self.ids) else 0
        flat = np.frombuffer(b"".join(self.tokens[i] for i in self.ids), np.uint8)
        rows = np.repeat(np.arange(len(self.ids)), self.lens)
        cols = np.arange(len(flat)) - np.repeat(np.cumsum(self.lens) - self.lens, self.lens)
        self.mat = np.zeros((len(self.ids), width), np.uint8)
        self.mat[rows, cols] = flat
        self.col0 = np.ascontiguousarray(self.mat[:, 0]) if width else np.zeros(0, np.uint8)
        # rows_at[p]: how many rows are longer than p (a prefix, thanks to the sort)
        self.rows_at = np.searchsorted(-self.lens, -np.arange(1, width + 1), side="right")


class TokenMasker:
    """Allowed-token masks of a DFA over a vocabulary (ids >= vocab_size never allowed)."""

    def __init__(self, dfa: DFA, vocab: VocabMatrix, max_cached_states: int = 2048) -> None:
        if not isinstance(dfa, DFA):
            raise TypeError(f"dfa: expected a DFA (compile_dfa), got {type(dfa).__name__}")
        if not isinstance(vocab, VocabMatrix):
            raise TypeError(f"vocab: expected a VocabMatrix, got {type(vocab).__name__}")
        if isinstance(max_cached_states, bool) or not isinstance(max_cached_states, int) or max_cached_states < 1:
            raise ValueError(f"max_cached_states: expected an int >= 1, got {max_cached_states!r}")
        self.dfa = dfa
        self.vocab = vocab
        self.vocab_size = vocab.vocab_size
        self.trans_b = np.ascontiguousarray(dfa.trans[:, dfa.byte_class])  # [states, 256]: no class lookup per byte
        self._cache: dict[int, np.ndarray] = {}
        self._max_cached = max_cached_states

    def live_mask(self, state: int) -> np.ndarray:
        """bool [vocab_size]: tokens after which the DFA is not dead (EOS not included). Masks are
        cached bit-packed (vocab/8 bytes per visited state: 6 KB for SmolLM2, so the 2048 states
        kept per guide cost at most 12 MB); unpacking one is a few microseconds."""
        got = self._cache.get(state)
        if got is not None:
            return np.unpackbits(got, count=self.vocab_size).view(bool)
        v, tb = self.vocab, self.trans_b
        state = self.dfa.check_state(state)  # only on a cache miss (which costs milliseconds)
        cur = tb[state][v.col0]  # first byte of every token
        rows = np.nonzero(cur)[0]  # sorted: tokens still alive, longest first
        cur = cur[rows]
        for p in range(1, len(v.rows_at)):
            n = int(np.searchsorted(rows, v.rows_at[p]))  # alive rows longer than p
            if n == 0:
                break
            cur[:n] = tb[cur[:n], v.mat[rows[:n], p]]
            if p % 4 == 0:  # drop rows that died, now and then (compaction costs a pass)
                keep = np.nonzero(cur)[0]
                if len(keep) < len(rows) * 3 // 4:
                    rows, cur = rows[keep], cur[keep]
        mask = np.zeros(self.vocab_size, bool)
        mask[v.ids[rows[cur != 0]]] = True
        if len(self._cache) >= self._max_cached:
            self._cache.clear()
        self._cache[state] = np.packbits(mask)
        return mask

    def advance(self, state: int, token_id: int) -> int:
        """The DFA state after a token; 0 when it is not allowed there."""
        if not 0 <= token_id < len(self.vocab.tokens):
            return 0
        t = self.vocab.tokens[token_id]
        return 0 if not t else self.dfa.step(state, t)
