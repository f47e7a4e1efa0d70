"""A regular expression -> byte grammar expression (see fsm.py), for `SamplingParams(regex=...)`.

The whole output must match (implicit ^...$). Supported: literals (any Unicode), escapes
\\d \\D \\w \\W \\s \\S \\. \\n \\t \\r \\\\ \\[ \\xhh \\uhhhh etc. (an escaped punctuation character is
itself; any other escaped letter or digit, such as \\p{L}, is a ValueError), `.` (any character
but newline), classes
`[a-z0-9_]` / `[^...]` (ranges over ASCII; a negated class matches every other character,
multi-byte UTF-8 included), groups `(...)` / `(?:...)`, alternation `|`, quantifiers `* + ?`
`{m}` `{m,}` `{m,n}` (greedy and lazy forms parse alike: laziness does not change the language).
\\d \\w \\s are ASCII classes (Python re.ASCII semantics). Not supported (ValueError): anchors,
backreferences, lookaround, inline flags.
Characters are matched as their UTF-8 bytes, so a generated string is always valid UTF-8.
"""

from __future__ import annotations

from .fsm import byte_mask, range_mask

_ASCII_ALL = range_mask(0, 0x7F)
_DIGIT = range_mask(0x30, 0x39)
_WORD = _DIGIT | range_mask(0x41, 0x5A) | range_mask(0x61, 0x7A) | byte_mask(b"_")
_SPACE = byte_mask(b" \t\n\r\f\v")
_CONT = ("cls", range_mask(0x80, 0xBF))


def _utf8_multibyte() -> tuple:
    """Any well-formed multi-byte UTF-8 character (Unicode Table 3-7)."""

    def seq(lead: tuple[int, int], second: tuple[int, int], tail: int) -> tuple:
        return ("seq", [("cls", range_mask(*lead)), ("cls", range_mask(*second))] + [_CONT] * tail)

    return ("alt", [seq((0xC2, 0xDF), (0x80, 0xBF), 0), seq((0xE0, 0xE0), (0xA0, 0xBF), 1),
                    seq((0xE1, 0xEC), (0x80, 0xBF), 1), seq((0xED, 0xED), (0x80, 0x9F), 1),
                    seq((0xEE, 0xEF), (0x80, 0xBF), 1), seq((0xF0, 0xF0), (0x90, 0xBF), 2),
                    seq((0xF1, 0xF3), (0x80, 0xBF), 2), seq((0xF4, 0xF4), (0x80, 0x8F), 2)])  # fmt: skip


_MULTIBYTE = _utf8_multibyte()
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}
_CLASS_ESCAPES = {"d": (_DIGIT, False), "D": (_DIGIT, True), "w": (_WORD, False), "W": (_WORD, True),
                  "s": (_SPACE, False), "S": (_SPACE, True)}  # fmt: skip
MAX_REPEAT = 4096


def _char_set(ascii_mask: int, negate: bool, extra: list[str]) -> tuple:
    """A set of characters: ASCII bytes in the mask plus non-ASCII literals in `extra`; negated,
    every ASCII byte outside it plus every multi-byte character not in `extra`."""
    if negate:
        if extra:
            raise ValueError("regex: a negated class with non-ASCII characters is not supported")
        mask = _ASCII_ALL & ~ascii_mask
        return ("alt", [("cls", mask), _MULTIBYTE]) if mask else _MULTIBYTE
    alts = [("cls", ascii_mask)] if ascii_mask else []
    alts += [("lit", c.encode("utf-8")) for c in extra]
    if not alts:
        raise ValueError("regex: an empty character class matches nothing")
    return alts[0] if len(alts) == 1 else ("alt", alts)


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def error(self, msg: str) -> ValueError:
        return ValueError(f"regex: {msg} at position {self.i} of {self.p!r}")

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def take(self) -> str:
        c = self.p[self.i]
        self.i += 1
        return c

    def parse(self) -> tuple:
        e = self.alternation()
        if self.i != len(self.p):
            raise self.error("unbalanced ')'")
        return e

    def alternation(self) -> tuple:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.take()
            branches.append(self.sequence())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def sequence(self) -> tuple:
        items = []
        while self.peek() is not None and self.peek() not in "|)":
            items.append(self.quantified())
        return ("seq", items)

    def quantified(self) -> tuple:
        atom = self.atom()
        while True:
            c = self.peek()
            if c == "*":
                lo, hi = 0, None
            elif c == "+":
                lo, hi = 1, None
            elif c == "?":
                lo, hi = 0, 1
            elif c == "{" and self._is_count():
                lo, hi = self._count()
                atom = ("rep", atom, lo, hi)
                if self.peek() == "?":
                    self.take()
                continue
            else:
                return atom
            self.take()
            if self.peek() == "?":  # lazy: same language
                self.take()
            atom = ("rep", atom, lo, hi)

    def _is_count(self) -> bool:
        j = self.p.find("}", self.i)
        body = self.p[self.i + 1:j] if j > 0 else ""
        return bool(body) and all(ch.isdigit() or ch == "," for ch in body) and body[0] != ","

    def _count(self) -> tuple[int, int | None]:
        j = self.p.index("}", self.i)
        body = self.p[self.i + 1:j]
        self.i = j + 1
        if "," in body:
            a, b = body.split(",", 1)
            lo, hi = int(a), (int(b) if b else None)
        else:
            lo = hi = int(body)
        if (hi is not None and hi < lo) or lo > MAX_REPEAT or (hi or 0) > MAX_REPEAT:
            raise self.error(f"bad repeat count {{{body}}} (0 <= m <= n <= {MAX_REPEAT})")
        return lo, hi

    def atom(self) -> tuple:
        c = self.take()
        if c == "(":
            if self.p.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                raise self.error("lookaround and inline flags are not supported")
            e = self.alternation()
            if self.peek() != ")":
                raise self.error("missing ')'")
            self.take()
            return e
        if c == "[":
            return self.char_class()
        if c == ".":
            return _char_set(byte_mask(b"\n"), True, [])
        if c == "\\":
            return self.escape(in_class=False)
        if c in "^$":
            raise self.error("anchors are implicit (the whole output must match); remove them")
        if c in "*+?{" and not (c == "{" and not self._count_like_prev()):
            raise self.error(f"nothing to repeat before {c!r}")
        if c == ")":
            raise self.error("unbalanced ')'")
        return ("lit", c.encode("utf-8"))

    def _count_like_prev(self) -> bool:
        self.i -= 1
        ok = self._is_count()
        self.i += 1
        return ok

    def escape(self, in_class: bool) -> tuple:
        if self.peek() is None:
            raise self.error("trailing backslash")
        c = self.take()
        if c in _CLASS_ESCAPES:
            mask, neg = _CLASS_ESCAPES[c]
            return ("cls", mask) if not neg else _char_set(mask, True, [])
        if c.isdigit() and c != "0":
            raise self.error("backreferences are not supported")
        if c in "bBAZzG" and not in_class:
            raise self.error(f"anchor \\{c} is not supported")
        return ("lit", self.escaped_char(c, in_class).encode("utf-8"))

    def escaped_char(self, c: str, in_class: bool) -> str:
        """The character `\\c` stands for (the backslash and c already taken): a control escape,
        \\xhh, \\uhhhh, \\b (backspace) in a class, or c itself for punctuation. Any other letter
        or digit is an error: taken literally, \\p{L} matched the text "p{L}"."""
        if c in _ESCAPES:
            return _ESCAPES[c]
        if c in "xu":
            n = 2 if c == "x" else 4
            digits = self.p[self.i:self.i + n]
            if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise self.error(f"\\{c} needs {n} hex digits")
            self.i += n
            code = int(digits, 16)
            if 0xD800 <= code <= 0xDFFF:
                raise self.error(f"\\{c}{digits} is a surrogate, not a character")
            return chr(code)
        if c == "b" and in_class:
            return "\b"
        if c.isascii() and c.isalnum():
            raise self.error(f"escape \\{c} is not supported")
        return c

    def char_class(self) -> tuple:
        negate = self.peek() == "^"
        if negate:
            self.take()
        mask, extra, first = 0, [], True
        while True:
            c = self.peek()
            if c is None:
                raise self.error("missing ']'")
            if c == "]" and not first:
                self.take()
                break
            first = False
            self.take()
            if c == "\\":
                if self.peek() in _CLASS_ESCAPES:
                    m, neg = _CLASS_ESCAPES[self.take()]
                    if neg:
                        raise self.error("negated class escapes (\\D \\W \\S) inside [...] are not supported")
                    mask |= m
                    continue
                if self.peek() is None:
                    raise self.error("trailing backslash")
                c = self.escaped_char(self.take(), in_class=True)
            if self.peek() == "-" and self.i + 1 < len(self.p) and self.p[self.i + 1] != "]":
                self.take()
                hi = self.take()
                if hi == "\\":
                    if self.peek() is None:
                        raise self.error("trailing backslash")
                    hi = self.escaped_char(self.take(), in_class=True)
                if ord(c) > 0x7F or ord(hi) > 0x7F:
                    raise self.error("ranges over non-ASCII characters are not supported")
                if ord(hi) < ord(c):
                    raise self.error(f"bad range {c}-{hi}")
                mask |= range_mask(ord(c), ord(hi))
            elif ord(c) > 0x7F:
                extra.append(c)
            else:
                mask |= 1 << ord(c)
        return _char_set(mask, negate, extra)


def regex_to_grammar(pattern: str) -> tuple:
    if not isinstance(pattern, str):
        raise TypeError(f"regex: expected a str, got {type(pattern).__name__}")
    return _Parser(pattern).parse()
