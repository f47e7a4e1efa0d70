"""Byte-level regular grammars: an expression tree -> Thompson NFA -> DFA over byte classes.

Structured output compiles a JSON schema into an expression (`json_schema.py`), then into the DFA
here; the token masker (`vocab.py`) walks vocabulary tokens through the DFA table.

Expressions are tuples:
    ("lit", b"...")                 the bytes, in order
    ("cls", mask)                   one byte whose bit is set in the int `mask` (bit b = byte b)
    ("seq", [e, ...])               concatenation
    ("alt", [e, ...])               alternation
    ("rep", e, lo, hi)              e repeated lo..hi times (hi None = unbounded)
    ("props", [(e_member, required), ...], sep)
                                    object members in order, each optional unless required,
                                    separated by `sep` (built in O(n) states: see _props)

The DFA is built eagerly by subset construction, with bytes grouped into classes that every NFA
edge treats alike (JSON grammars need ~20-40 classes, not 256), so a state's row costs O(classes).
State 0 is the dead state (no way to continue); `max_states` bounds the construction so a
pathological schema fails with a ValueError instead of exhausting memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

ALL_BYTES = (1 << 256) - 1


def byte_mask(values: Iterable[int]) -> int:
    m = 0
    for b in values:
        m |= 1 << b
    return m


def range_mask(lo: int, hi: int) -> int:
    """Bytes lo..hi inclusive."""
    return ((1 << (hi + 1)) - 1) ^ ((1 << lo) - 1)


class _NFA:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[int, int]]] = []  # (byte mask, target)

    def state(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def compile(self, e: Any) -> tuple[int, int]:
        """Fragment (start, end) for expression e; fresh states every call."""
        if not isinstance(e, tuple) or not e:
            raise TypeError(f"expr: expected a grammar expression tuple such as ('lit', b'...'), got {e!r:.80}")
        kind = e[0]
        if kind == "lit":
            s = cur = self.state()
            for b in e[1]:
                nxt = self.state()
                self.edges[cur].append((1 << b, nxt))
                cur = nxt
            return s, cur
        if kind == "cls":
            if e[1] == 0:
                raise ValueError("grammar: an empty byte class can never match")
            s, t = self.state(), self.state()
            self.edges[s].append((e[1], t))
            return s, t
        if kind == "seq":
            s = cur = self.state()
            for sub in e[1]:
                a, b = self.compile(sub)
                self.eps[cur].append(a)
                cur = b
            return s, cur
        if kind == "alt":
            if not e[1]:
                raise ValueError("grammar: an empty alternation can never match")
            s, t = self.state(), self.state()
            for sub in e[1]:
                a, b = self.compile(sub)
                self.eps[s].append(a)
                self.eps[b].append(t)
            return s, t
        if kind == "rep":
            return self._rep(e[1], e[2], e[3])
        if kind == "props":
            return self._props(e[1], e[2])
        raise ValueError(f"grammar: unknown expression kind {kind!r}")

    def _rep(self, sub: Any, lo: int, hi: int | None) -> tuple[int, int]:
        s = cur = self.state()
        for _ in range(lo):
            a, b = self.compile(sub)
            self.eps[cur].append(a)
            cur = b
        if hi is None:  # Kleene star on the tail
            loop = self.state()
            self.eps[cur].append(loop)
            a, b = self.compile(sub)
            self.eps[loop].append(a)
            self.eps[b].append(loop)
            return s, loop
        end = self.state()
        self.eps[cur].append(end)
        for _ in range(hi - lo):
            a, b = self.compile(sub)
            self.eps[cur].append(a)
            self.eps[b].append(end)
            cur = b
        return s, end

    def _props(self, members: list[tuple[Any, bool]], sep: Any) -> tuple[int, int]:
        """Members i..n in order given whether one was already written (then a separator comes
        first). L(i, first) = [L(i+1, first) if optional] | sep? member_i L(i+1, False); built
        back to front so each L is one state: 2n states plus two copies of each member."""
        end = self.state()
        nxt = {True: end, False: end}
        for member, required in reversed(members):
            cur = {}
            for first in (True, False):
                s = self.state()
                if not required:
                    self.eps[s].append(nxt[first])
                a, b = self.compile(member if first else ("seq", [sep, member]))
                self.eps[s].append(a)
                self.eps[b].append(nxt[False])
                cur[first] = s
            nxt = cur
        return nxt[True], end


@dataclass
class DFA:
    trans: np.ndarray  # int32 [num_states, num_classes]; state 0 is dead
    byte_class: np.ndarray  # int32 [256]
    accepting: np.ndarray  # bool [num_states]
    start: int

    @property
    def num_states(self) -> int:
        return int(self.trans.shape[0])

    def check_state(self, state: int) -> int:
        """state as an int in [0, num_states) (numpy would wrap a negative one to the last state)."""
        if isinstance(state, (bool, np.bool_)) or not isinstance(state, (int, np.integer)):
            raise TypeError(f"state: expected an int DFA state, got {type(state).__name__}")
        if not 0 <= state < self.trans.shape[0]:
            raise ValueError(f"state: expected a DFA state in [0, {self.trans.shape[0]}), got {state}")
        return int(state)

    def step(self, state: int, data: bytes) -> int:
        state = self.check_state(state)  # one check per call, not per byte
        t, cls = self.trans, self.byte_class
        for b in data:
            state = int(t[state, cls[b]])
            if state == 0:
                return 0
        return state

    def has_exit(self, state: int) -> bool:
        """Whether any byte continues from state."""
        return bool((self.trans[self.check_state(state)] != 0).any())

    def matches(self, data: bytes) -> bool:
        s = self.step(self.start, data)
        return s != 0 and bool(self.accepting[s])


def _byte_classes(masks: Iterable[int]) -> list[int]:
    """Partition of the 256 bytes into classes no mask splits."""
    classes = [ALL_BYTES]
    for m in set(masks):
        out = []
        for c in classes:
            a, b = c & m, c & ~m
            if a:
                out.append(a)
            if b:
                out.append(b)
        classes = out
    return classes


def compile_dfa(expr: Any, max_states: int = 50_000) -> DFA:
    if isinstance(max_states, bool) or not isinstance(max_states, int) or max_states < 2:
        raise ValueError(f"max_states: expected an int >= 2, got {max_states!r}")
    nfa = _NFA()
    start, final = nfa.compile(expr)
    classes = _byte_classes(m for edges in nfa.edges for m, _ in edges)
    reps = [(c & -c).bit_length() - 1 for c in classes]  # lowest byte of each class
    byte_class = np.zeros(256, np.int32)
    for k, c in enumerate(classes):
        for b in range(256):
            if (c >> b) & 1:
                byte_class[b] = k

    closure_cache: dict[int, frozenset[int]] = {}

    def closure(s: int) -> frozenset[int]:
        got = closure_cache.get(s)
        if got is None:
            seen, stack = {s}, [s]
            while stack:
                for t in nfa.eps[stack.pop()]:
                    if t not in seen:
                        seen.add(t)
                        stack.append(t)
            got = closure_cache[s] = frozenset(seen)
        return got

    ids: dict[frozenset[int], int] = {frozenset(): 0}
    rows: list[list[int]] = [[0] * len(classes)]
    accepting = [False]
    start_set = closure(start)
    ids[start_set] = 1
    rows.append([0] * len(classes))
    accepting.append(final in start_set)
    todo = [start_set]
    while todo:
        cur = todo.pop()
        row = rows[ids[cur]]
        edges = [e for s in cur for e in nfa.edges[s]]
        for k, b in enumerate(reps):
            nxt: set[int] = set()
            for m, t in edges:
                if (m >> b) & 1:
                    nxt |= closure(t)
            if not nxt:
                continue
            key = frozenset(nxt)
            sid = ids.get(key)
            if sid is None:
                if len(ids) >= max_states:
                    raise ValueError(f"grammar: more than {max_states} automaton states; simplify the schema "
                                     "(fewer optional members, smaller maxLength/maxItems, shallower nesting)")
                sid = ids[key] = len(rows)
                rows.append([0] * len(classes))
                accepting.append(final in key)
                todo.append(key)
            row[k] = sid
    return DFA(np.asarray(rows, np.int32), byte_class, np.asarray(accepting, bool), 1)
