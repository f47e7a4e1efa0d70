"""JSON schema -> byte grammar expression (see fsm.py) whose every match is valid JSON that
validates against the schema.

Output shape: compact JSON with an optional single space after ':' and ','; object members in
the schema's `properties` order (required ones always present, optional ones may be skipped);
no members beyond `properties` (valid whether or not additionalProperties allows more). Strings
are valid UTF-8 with JSON escapes. Integers have at most 18 digits and numbers at most 18 integer
and 17 fraction digits, so a looping model cannot run a number forever.

Supported: type (one or a list), enum, const, properties, required, additionalProperties (for a
map without properties), items, minItems, maxItems, minLength, maxLength, pattern (the regex
subset of `regex.py`, matched against the whole string, as Outlines and xgrammar do: a leading
^ and trailing $ are dropped, and the characters JSON must escape are generated escaped; not
together with minLength/maxLength), integer minimum / maximum / exclusiveMinimum /
exclusiveMaximum (digit-range automata; fractional bounds round inwards), anyOf, oneOf (as
anyOf: exclusivity is not enforced), allOf with one member, $ref to #/$defs or #/definitions
(not recursive), the empty schema / true (any JSON value, nested at most `any_depth` deep), and
number `minimum: 0` style non-negativity. Annotations (title, description, default,
examples, format, $schema, $id, $comment, readOnly, writeOnly, deprecated) are ignored, as the
JSON Schema spec lets a validator do. Any other keyword (multipleOf, not, a number maximum,
uniqueItems, ...) is a ValueError naming it: a constraint the grammar cannot enforce is refused,
never silently dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .fsm import byte_mask, range_mask
from .regex import regex_to_grammar

_ANNOTATIONS = {"title", "description", "default", "examples", "format", "$schema", "$id", "$comment",
                "readOnly", "writeOnly", "deprecated", "$defs", "definitions", "additionalProperties"}  # fmt: skip
_SUPPORTED = _ANNOTATIONS | {"type", "enum", "const", "properties", "required", "items", "minItems", "maxItems",
                             "minLength", "maxLength", "pattern", "anyOf", "oneOf", "allOf", "$ref", "minimum",
                             "exclusiveMinimum", "maximum", "exclusiveMaximum"}  # fmt: skip
_TYPES = ("string", "integer", "number", "boolean", "null", "object", "array")
MAX_LENGTH_BOUND = 4096  # larger maxLength / maxItems would grow the automaton linearly
# The any-value grammar grows 4x per nesting level (depth 4 is past compile_dfa's default state
# bound, depth 7 takes seconds just to build): deeper is refused before any work.
MAX_ANY_DEPTH = 5
MAX_WHITESPACE = 1024  # whitespace bytes per structural character (each one is an automaton state)


def _lit(s: str) -> tuple:
    return ("lit", s.encode("utf-8"))


_SP = ("rep", ("lit", b" "), 0, 1)
_WS_BYTES = byte_mask(b" \t\n\r")
_DIGIT = ("cls", range_mask(0x30, 0x39))
_NONZERO = ("cls", range_mask(0x31, 0x39))
_HEX = ("cls", range_mask(0x30, 0x39) | range_mask(0x41, 0x46) | range_mask(0x61, 0x66))
_CONT = ("cls", range_mask(0x80, 0xBF))
# one JSON string character: printable ASCII but '"' and '\', an escape, or one well-formed UTF-8
# sequence (Unicode Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF)
_ASCII = range_mask(0x20, 0x7F) & ~byte_mask(b'"\\')


def _utf8(lead: tuple[int, int], second: tuple[int, int], tail: int) -> tuple:
    return ("seq", [("cls", range_mask(*lead)), ("cls", range_mask(*second))] + [_CONT] * tail)


_CHAR = ("alt", [
    ("cls", _ASCII),
    ("seq", [("lit", b"\\"), ("cls", byte_mask(b'"\\/bfnrt'))]),
    ("seq", [("lit", b"\\u"), _HEX, _HEX, _HEX, _HEX]),
    _utf8((0xC2, 0xDF), (0x80, 0xBF), 0),
    _utf8((0xE0, 0xE0), (0xA0, 0xBF), 1), _utf8((0xE1, 0xEC), (0x80, 0xBF), 1),
    _utf8((0xED, 0xED), (0x80, 0x9F), 1), _utf8((0xEE, 0xEF), (0x80, 0xBF), 1),
    _utf8((0xF0, 0xF0), (0x90, 0xBF), 2), _utf8((0xF1, 0xF3), (0x80, 0xBF), 2),
    _utf8((0xF4, 0xF4), (0x80, 0x8F), 2),
])  # fmt: skip


def _string(lo: int = 0, hi: int | None = None) -> tuple:
    return ("seq", [("lit", b'"'), ("rep", _CHAR, lo, hi), ("lit", b'"')])


# Inside a JSON string '"', '\\' and the control characters must be escaped: a pattern's grammar
# generates those characters in this (short, else \u00XX) escaped form, everything else as is.
_MUST_ESCAPE = range_mask(0x00, 0x1F) | byte_mask(b'"\\')
_SHORT_ESCAPES = {0x08: b"\\b", 0x09: b"\\t", 0x0A: b"\\n", 0x0C: b"\\f", 0x0D: b"\\r", 0x22: b'\\"',
                  0x5C: b"\\\\"}  # fmt: skip


def _escape_byte(b: int) -> bytes:
    return _SHORT_ESCAPES.get(b) or b"\\u%04x" % b


def _json_escaped(e: tuple) -> tuple:
    """A regex grammar (regex.py) whose matches are the same strings written inside a JSON string."""
    kind = e[0]
    if kind == "lit":
        return ("lit", b"".join(_escape_byte(b) if (_MUST_ESCAPE >> b) & 1 else bytes([b]) for b in e[1]))
    if kind == "cls":
        safe = e[1] & ~_MUST_ESCAPE
        alts = [("cls", safe)] if safe else []
        alts += [("lit", _escape_byte(b)) for b in range(0x60) if (e[1] & _MUST_ESCAPE) >> b & 1]
        return alts[0] if len(alts) == 1 else ("alt", alts)
    if kind in ("seq", "alt"):
        return (kind, [_json_escaped(x) for x in e[1]])
    if kind == "rep":
        return ("rep", _json_escaped(e[1]), e[2], e[3])
    raise ValueError(f"pattern: unexpected grammar node {kind!r}")


def _strip_anchors(pattern: str) -> str:
    """Drop a leading '^' and an unescaped trailing '$' (the whole string is matched anyway)."""
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$"):
        backslashes = len(pattern[:-1]) - len(pattern[:-1].rstrip("\\"))
        if backslashes % 2 == 0:
            pattern = pattern[:-1]
    return pattern


INT_LIMIT = 10**18 - 1  # _integer's 18 digits


def _digits_between(lo: str, hi: str) -> tuple:
    """Every digit string of len(lo) == len(hi) from lo to hi (leading zeros allowed here)."""
    if lo == hi:
        return ("lit", lo.encode())
    k = next(i for i in range(len(lo)) if lo[i] != hi[i])
    head, rest = lo[:k], len(lo) - k - 1
    a, b = int(lo[k]), int(hi[k])
    parts = []
    low_full, high_full = lo[k + 1:] == "0" * rest, hi[k + 1:] == "9" * rest
    first, last = a + (0 if low_full else 1), b - (0 if high_full else 1)
    if not low_full:
        parts.append(("seq", [("lit", lo[k].encode()), _digits_between(lo[k + 1:], "9" * rest)]))
    if first <= last:
        parts.append(("seq", [("cls", range_mask(0x30 + first, 0x30 + last))] + [_DIGIT] * rest))
    if not high_full:
        parts.append(("seq", [("lit", hi[k].encode()), _digits_between("0" * rest, hi[k + 1:])]))
    body = parts[0] if len(parts) == 1 else ("alt", parts)
    return ("seq", [("lit", head.encode()), body]) if head else body


def _naturals_between(a: int, b: int) -> list[tuple]:
    """Alternatives for the integers a..b (0 <= a <= b) written without leading zeros."""
    alts = []
    if a == 0:
        alts.append(("lit", b"0"))
        a = 1
    while a <= b:
        top = min(b, 10 ** len(str(a)) - 1)  # same digit count as a
        alts.append(_digits_between(str(a), str(top)))
        a = top + 1
    return alts


def _integer_range(lo: int, hi: int) -> tuple:
    """JSON integers lo..hi (within +-INT_LIMIT)."""
    alts = []
    if hi >= 0:
        alts += _naturals_between(max(lo, 0), hi)
    if lo < 0:
        alts += [("seq", [("lit", b"-"), e]) for e in _naturals_between(max(-hi, 1), -lo)]
    return alts[0] if len(alts) == 1 else ("alt", alts)


def _integer(nonneg: bool) -> tuple:
    body = ("alt", [("lit", b"0"), ("seq", [_NONZERO, ("rep", _DIGIT, 0, 17)])])
    return body if nonneg else ("seq", [("rep", ("lit", b"-"), 0, 1), body])


def _number(nonneg: bool) -> tuple:
    frac = ("rep", ("seq", [("lit", b"."), ("rep", _DIGIT, 1, 17)]), 0, 1)
    exp = ("rep", ("seq", [("cls", byte_mask(b"eE")), ("rep", ("cls", byte_mask(b"+-")), 0, 1),
                           ("rep", _DIGIT, 1, 3)]), 0, 1)  # fmt: skip
    return ("seq", [_integer(nonneg), frac, exp])


def _literal_value(v: Any) -> tuple:
    return _lit(json.dumps(v, ensure_ascii=False, separators=(",", ":")))


class _Compiler:
    def __init__(self, root: Any, any_depth: int, whitespace: str, max_whitespace: int) -> None:
        self.root = root
        self.any_depth = any_depth
        self.ref_stack: list[str] = []
        if whitespace == "compact":  # a single optional space after ':' and ','
            pre, post, inner = None, _SP, None
        elif whitespace == "flexible":  # JSON whitespace around every structural character, bounded
            pre = post = inner = ("rep", ("cls", _WS_BYTES), 0, max_whitespace)
        else:
            raise ValueError(f"whitespace: expected 'compact' or 'flexible', got {whitespace!r}")

        def punct(ch: bytes, before: Any, after: Any) -> tuple:
            return ("seq", [x for x in (before, ("lit", ch), after) if x is not None])

        self.comma, self.colon = punct(b",", pre, post), punct(b":", pre, post)
        self.lbrace, self.rbrace = punct(b"{", None, inner), punct(b"}", inner, None)
        self.lbracket, self.rbracket = punct(b"[", None, inner), punct(b"]", inner, None)

    def any_value(self, depth: int) -> tuple:
        alts = [_string(), _number(False), _lit("true"), _lit("false"), _lit("null")]
        if depth > 0:
            v = self.any_value(depth - 1)
            alts.append(self._array(v, 0, None))
            alts.append(self._map(v))
        return ("alt", alts)

    def _array(self, item: tuple, lo: int, hi: int | None) -> tuple:
        if hi == 0:
            return ("seq", [self.lbracket, self.rbracket])
        rest = ("rep", ("seq", [self.comma, item]), max(lo - 1, 0), None if hi is None else hi - 1)
        body = ("seq", [item, rest])
        if lo == 0:
            body = ("rep", body, 0, 1)
        return ("seq", [self.lbracket, body, self.rbracket])

    def _map(self, value: tuple) -> tuple:
        member = ("seq", [_string(), self.colon, value])
        body = ("rep", ("seq", [member, ("rep", ("seq", [self.comma, member]), 0, None)]), 0, 1)
        return ("seq", [self.lbrace, body, self.rbrace])

    def _resolve(self, ref: str, where: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise ValueError(f"json_schema{where}: only local $ref ('#/$defs/NAME') is supported, got {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise ValueError(f"json_schema{where}: $ref {ref!r} does not resolve")
            node = node[part]
        return node

    def compile(self, s: Any, where: str = "") -> tuple:
        if s is True or (isinstance(s, Mapping) and not (set(s) - _ANNOTATIONS - {"$defs", "definitions"})
                         and "additionalProperties" not in s):  # fmt: skip
            return self.any_value(self.any_depth)
        if s is False:
            raise ValueError(f"json_schema{where}: the schema false matches nothing")
        if not isinstance(s, Mapping):
            raise TypeError(f"json_schema{where}: expected an object (dict) or a boolean, got {type(s).__name__}")
        unknown = sorted(set(s) - _SUPPORTED)
        if unknown:
            raise ValueError(f"json_schema{where}: keyword(s) {', '.join(unknown)} cannot be enforced by "
                             "constrained decoding (supported: see infercore.structured.json_schema)")  # fmt: skip
        if "$ref" in s:
            ref = s["$ref"]
            if ref in self.ref_stack:
                raise ValueError(f"json_schema{where}: recursive $ref {ref!r} is not supported")
            self.ref_stack.append(ref)
            try:
                return self.compile(self._resolve(ref, where), where)
            finally:
                self.ref_stack.pop()
        if "const" in s:
            return _literal_value(s["const"])
        if "enum" in s:
            vals = s["enum"]
            if not isinstance(vals, list) or not vals:
                raise ValueError(f"json_schema{where}.enum: expected a non-empty list")
            return ("alt", [_literal_value(v) for v in vals])
        for key in ("anyOf", "oneOf"):
            if key in s:
                subs = s[key]
                if not isinstance(subs, list) or not subs:
                    raise ValueError(f"json_schema{where}.{key}: expected a non-empty list of schemas")
                return ("alt", [self.compile(x, f"{where}.{key}[{i}]") for i, x in enumerate(subs)])
        if "allOf" in s:
            subs = s["allOf"]
            if not isinstance(subs, list) or len(subs) != 1:
                raise ValueError(f"json_schema{where}.allOf: only a single-member allOf is supported")
            return self.compile(subs[0], f"{where}.allOf[0]")
        t = s.get("type")
        if t is None:
            t = "object" if "properties" in s or "additionalProperties" in s else (
                "array" if "items" in s else None)  # fmt: skip
        if t is None:
            return self.any_value(self.any_depth)
        types = t if isinstance(t, list) else [t]
        for x in types:
            if x not in _TYPES:
                raise ValueError(f"json_schema{where}.type: expected one of {', '.join(_TYPES)}, got {x!r}")
        alts = [self._typed(x, s, where) for x in types]
        return alts[0] if len(alts) == 1 else ("alt", alts)

    def _bound(self, s: Mapping[str, Any], key: str, where: str) -> int | None:
        v = s.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"json_schema{where}.{key}: expected a non-negative integer, got {v!r}")
        if v > MAX_LENGTH_BOUND:
            raise ValueError(f"json_schema{where}.{key}: at most {MAX_LENGTH_BOUND} is supported, got {v}")
        return v

    def _int_bounds(self, s: Mapping[str, Any], where: str) -> tuple[int, int] | None:
        """(lo, hi) from minimum/maximum/exclusiveMinimum/exclusiveMaximum, or None when unbounded."""
        keys = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
        if not any(k in s for k in keys):
            return None
        lo, hi = -INT_LIMIT, INT_LIMIT
        for k in keys:
            if k not in s:
                continue
            v = s[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"json_schema{where}.{k}: expected a finite number, got {v!r}")
            if k == "minimum":
                lo = max(lo, math.ceil(v))
            elif k == "exclusiveMinimum":
                lo = max(lo, math.floor(v) + 1)
            elif k == "maximum":
                hi = min(hi, math.floor(v))
            else:
                hi = min(hi, math.ceil(v) - 1)
        if lo > hi:
            raise ValueError(f"json_schema{where}: no integer of at most 18 digits lies within the bounds")
        return lo, hi

    def _nonneg(self, s: Mapping[str, Any], where: str) -> bool:
        for k in ("maximum", "exclusiveMaximum"):
            if k in s:  # a decimal upper bound would need digit-by-digit fraction automata
                raise ValueError(f"json_schema{where}: {k} is enforced on integers only, not on numbers")
        if "exclusiveMinimum" in s:
            raise ValueError(f"json_schema{where}: exclusiveMinimum cannot be enforced by constrained decoding")
        m = s.get("minimum")
        if m is None:
            return False
        if m != 0:
            raise ValueError(f"json_schema{where}.minimum: only minimum 0 can be enforced, got {m!r}")
        return True

    def _typed(self, t: str, s: Mapping[str, Any], where: str) -> tuple:
        if t == "string":
            lo, hi = self._bound(s, "minLength", where) or 0, self._bound(s, "maxLength", where)
            if hi is not None and hi < lo:
                raise ValueError(f"json_schema{where}: maxLength {hi} < minLength {lo}")
            if "pattern" in s:
                return self._pattern(s, where)
            return _string(lo, hi)
        if t == "integer":
            bounds = self._int_bounds(s, where)
            return _integer(False) if bounds is None else _integer_range(*bounds)
        if t == "number":
            return _number(self._nonneg(s, where))
        if t == "boolean":
            return ("alt", [_lit("true"), _lit("false")])
        if t == "null":
            return _lit("null")
        if t == "array":
            lo, hi = self._bound(s, "minItems", where) or 0, self._bound(s, "maxItems", where)
            if hi is not None and hi < lo:
                raise ValueError(f"json_schema{where}: maxItems {hi} < minItems {lo}")
            items = s.get("items", True)
            return self._array(self.compile(items, f"{where}.items"), lo, hi)
        return self._object(s, where)

    def _pattern(self, s: Mapping[str, Any], where: str) -> tuple:
        pattern = s["pattern"]
        if not isinstance(pattern, str):
            raise ValueError(f"json_schema{where}.pattern: expected a regular expression string, got {pattern!r:.80}")
        if "minLength" in s or "maxLength" in s:  # lengths count decoded characters, not the pattern's bytes
            raise ValueError(f"json_schema{where}: pattern together with minLength/maxLength is not supported "
                             "(put the length in the pattern, e.g. {1,40})")  # fmt: skip
        try:
            body = regex_to_grammar(_strip_anchors(pattern))
        except ValueError as e:
            raise ValueError(f"json_schema{where}.pattern: {e}") from None
        return ("seq", [("lit", b'"'), _json_escaped(body), ("lit", b'"')])

    def _object(self, s: Mapping[str, Any], where: str) -> tuple:
        props = s.get("properties")
        required = s.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise ValueError(f"json_schema{where}.required: expected a list of property names")
        if props is None or props == {}:
            if required:
                raise ValueError(f"json_schema{where}.required: names {required} need 'properties' schemas")
            extra = s.get("additionalProperties", True)
            if extra is False:
                return ("seq", [self.lbrace, self.rbrace])
            value = self.any_value(self.any_depth - 1) if extra is True else self.compile(
                extra, f"{where}.additionalProperties")  # fmt: skip
            return self._map(value)
        if not isinstance(props, Mapping):
            raise ValueError(f"json_schema{where}.properties: expected an object of schemas")
        missing = [r for r in required if r not in props]
        if missing:
            raise ValueError(f"json_schema{where}.required: {missing} are not in 'properties'")
        members = []
        for name, sub in props.items():
            value = self.compile(sub, f"{where}.properties.{name}")
            members.append((("seq", [_literal_value(str(name)), self.colon, value]), name in required))
        return ("seq", [self.lbrace, ("props", members, self.comma), self.rbrace])


def schema_to_grammar(schema: Any, any_depth: int = 2, whitespace: str = "flexible", max_whitespace: int = 16
                      ) -> tuple:  # fmt: skip
    """The grammar expression of a JSON schema (a dict, a JSON string, or True for any value).

    whitespace "flexible" lets the model lay JSON out as it learned to (newlines, indentation:
    up to `max_whitespace` bytes at each structural character, so it cannot pad forever);
    "compact" allows only one optional space after ':' and ','. any_depth: how deep an any-value
    (the empty schema / true) may nest arrays and objects, 0..MAX_ANY_DEPTH."""
    for name, v, hi in (("any_depth", any_depth, MAX_ANY_DEPTH), ("max_whitespace", max_whitespace, MAX_WHITESPACE)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name}: expected an int, got {type(v).__name__}")
        if not 0 <= v <= hi:
            raise ValueError(f"{name}: expected an int in [0, {hi}], got {v}")
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as e:
            raise ValueError(f"json_schema: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(schema, (Mapping, bool)):
        raise TypeError(f"json_schema: expected a dict, a JSON string or a bool, got {type(schema).__name__}")
    return _Compiler(schema, any_depth, whitespace, max_whitespace).compile(schema)
