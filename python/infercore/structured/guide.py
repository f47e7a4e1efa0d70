"""Guides: what the sampler may emit next, for one compiled grammar over one vocabulary.

A guide is shared by every sequence that asks for the same schema; a sequence only carries its
DFA state (an int), so forking (n > 1) and preemption cost nothing. `GuideCache` compiles each
distinct schema once per model (LRU), because compiling (tens of ms) and the first masks of each
state (a few ms) are the only costs: after that a step is one dict lookup and one masked fill.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .fsm import DFA, compile_dfa
from .json_schema import schema_to_grammar
from .regex import regex_to_grammar
from .vocab import TokenMasker, VocabMatrix, check_vocab_size


class Guide:
    def __init__(self, dfa: DFA, vocab: VocabMatrix, eos_token_ids: Sequence[int]) -> None:
        self.dfa = dfa
        self.masker = TokenMasker(dfa, vocab)  # checks dfa and vocab
        vocab_size = vocab.vocab_size
        eos = _check_ids(eos_token_ids, "eos_token_ids")
        self.eos = np.asarray(sorted({t for t in eos if 0 <= t < vocab_size}), np.int64)
        self._eos_set = frozenset(int(t) for t in self.eos)

    @property
    def start(self) -> int:
        return self.dfa.start

    def is_accepting(self, state: int) -> bool:
        return bool(self.dfa.accepting[self.dfa.check_state(state)])

    def is_complete(self, state: int) -> bool:
        """Accepting with nothing that could follow: generation is done."""
        return self.is_accepting(state) and not self.dfa.has_exit(state)

    def allowed(self, state: int) -> np.ndarray:
        """bool [vocab] (a fresh array the caller may modify): tokens the grammar allows next; EOS
        only where the output is complete."""
        got = self.masker.live_mask(state)
        if self.is_accepting(state) and len(self.eos):
            got[self.eos] = True
        return got

    def advance(self, state: int, token_id: int) -> int:
        """State after token_id (EOS keeps the state; a disallowed token gives 0, the dead state)."""
        if token_id in self._eos_set:  # other tokens: the state is checked by dfa.step
            return state if self.is_accepting(state) else 0
        return self.masker.advance(state, token_id)


def _check_ids(ids: Any, name: str) -> list[int]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(f"{name}: expected a list of token ids, got {type(ids).__name__}")
    out = list(ids)
    for i, t in enumerate(out):
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)):
            raise TypeError(f"{name}[{i}]: expected an int token id, got {type(t).__name__}")
    return [int(t) for t in out]


def canonical_schema(schema: Any) -> str:
    """One string per schema (dict key order kept: it is the order members are generated in)."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as e:
            raise ValueError(f"json_schema: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    try:
        return json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise TypeError(f"json_schema: expected JSON-serializable data: {e}") from None


class GuideCache:
    """Compiles and keeps guides for one model's vocabulary (token bytes computed on first use)."""

    def __init__(self, token_bytes: Callable[[], Sequence[bytes | None]], vocab_size: int,
                 eos_token_ids: Sequence[int], capacity: int = 16) -> None:  # fmt: skip
        if not callable(token_bytes):
            raise TypeError(f"token_bytes: expected a callable returning the tokens' bytes, "
                            f"got {type(token_bytes).__name__}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity: expected an int >= 1, got {capacity!r}")
        self._token_bytes_fn = token_bytes
        self._vocab: VocabMatrix | None = None
        self.vocab_size = check_vocab_size(vocab_size)
        self.eos_token_ids = _check_ids(eos_token_ids, "eos_token_ids")
        self.capacity = capacity
        self._guides: OrderedDict[str, Guide] = OrderedDict()

    def json_schema(self, schema: Any) -> Guide:
        key = canonical_schema(schema)
        return self._get("json:" + key, lambda: schema_to_grammar(json.loads(key)))

    def regex(self, pattern: str) -> Guide:
        return self._get("regex:" + pattern, lambda: regex_to_grammar(pattern))

    def for_params(self, params: Any) -> Guide | None:
        """The guide a SamplingParams asks for (json_schema or regex), or None."""
        if getattr(params, "json_schema", None) is not None:
            return self.json_schema(params.json_schema)
        if getattr(params, "regex", None) is not None:
            return self.regex(params.regex)
        return None

    def _get(self, key: str, grammar: Callable[[], Any]) -> Guide:
        g = self._guides.get(key)
        if g is not None:
            self._guides.move_to_end(key)
            return g
        dfa = compile_dfa(grammar())
        if self._vocab is None:
            self._vocab = VocabMatrix(self._token_bytes_fn(), self.vocab_size)
        g = Guide(dfa, self._vocab, self.eos_token_ids)
        self._guides[key] = g
        if len(self._guides) > self.capacity:
            self._guides.popitem(last=False)
        return g
