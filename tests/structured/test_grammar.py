"""Schema -> grammar -> DFA: every JSON value the schema allows (in member order, any layout the
whitespace mode allows) is accepted, and every string the DFA accepts is JSON that validates."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infercore.structured import compile_dfa, schema_to_grammar
from infercore.structured.fsm import byte_mask, range_mask
from infercore.structured.json_schema import MAX_ANY_DEPTH, MAX_WHITESPACE

TOOL_CALL = {
    "type": "object",
    "properties": {
        "tool": {"enum": ["add", "search", "weather"]},
        "arguments": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "integer", "minimum": 0},
                           "q": {"type": "string", "maxLength": 12}, "flag": {"type": ["boolean", "null"]}},
            "required": ["a"],
        },
    },
    "required": ["tool", "arguments"],
}
SCHEMAS = [
    {"type": "integer"},
    {"type": "number"},
    {"type": "string", "minLength": 2, "maxLength": 5},
    {"type": "boolean"},
    {"type": "null"},
    {"enum": ["red", 3, None, {"k": [1, 2]}]},
    {"const": "fixed"},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
    {"type": "array", "items": {"type": "string"}, "maxItems": 0},
    {"type": "object"},
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"type": "object", "additionalProperties": False},
    TOOL_CALL,
    {"anyOf": [{"type": "integer"}, {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}]},
    {"$defs": {"pt": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                      "required": ["x", "y"]}},
     "type": "array", "items": {"$ref": "#/$defs/pt"}, "maxItems": 3},
    {"type": "object", "properties": {f"p{i}": {"type": "string", "maxLength": 3} for i in range(8)}},
    True,
]


def random_walk(dfa, rng: np.random.Generator, max_len: int = 600) -> bytes | None:
    """A random string the DFA accepts: at each state pick a live byte class uniformly (so a
    closing quote is as likely as any other class), stop at an accepting state with p=0.3."""
    s, out = dfa.start, bytearray()
    while len(out) < max_len:
        if dfa.accepting[s] and (not dfa.has_exit(s) or rng.random() < 0.3):
            return bytes(out)
        live = np.nonzero(dfa.trans[s])[0]
        k = int(rng.choice(live))
        b = int(rng.choice(np.nonzero(dfa.byte_class == k)[0]))
        out.append(b)
        s = int(dfa.trans[s, k])
    return None


def walked_values(dfa, schema, tries: int, seed: int) -> list:
    """JSON values of random strings the DFA accepts, each checked to be strict UTF-8 and strict
    JSON that validates against the schema."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(tries):
        data = random_walk(dfa, rng)
        if data is not None:
            values.append(json.loads(data.decode("utf-8")))
            jsonschema.validate(values[-1], schema if schema is not True else {})
    return values


@pytest.mark.parametrize("whitespace", ["compact", "flexible"])
@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s)[:40])
def test_random_accepted_strings_are_valid_json(schema, whitespace):
    dfa = compile_dfa(schema_to_grammar(schema, whitespace=whitespace))
    assert len(walked_values(dfa, schema, 150, 7)) >= 100


PATTERNS = ["^[a-z]{2,3}\\d$", 'a"b', "x\\\\y", "a\\nb\\tc", "[^a]{1,4}", ".{0,5}", '(foo|ba"r)+', "\\s\\S",
            "[A-Z]{3}-[0-9]{4}", "é+ü?", "[ -~]{0,6}"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_string_pattern_outputs_decode_to_full_matches(pattern):
    # every string the grammar accepts is a JSON string (the characters JSON must escape come out
    # escaped) whose value matches the whole pattern; JSON Schema's own (search) check passes too
    import re

    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern}}, "required": ["code"]}
    dfa = compile_dfa(schema_to_grammar(schema))
    values = walked_values(dfa, schema, 200, 11)
    assert len(values) >= 150
    plain = pattern.removeprefix("^").removesuffix("$")
    for value in values:
        assert re.fullmatch(plain, value["code"], re.ASCII), (pattern, value)
    if pattern == PATTERNS[0]:
        assert dfa.matches(b'{"code": "ab1"}') and not dfa.matches(b'{"code": "ab1x"}')
    if pattern == 'a"b':  # the quote can only come escaped
        assert dfa.matches(b'{"code": "a\\"b"}') and not dfa.matches(b'{"code": "a"b"}')


@settings(max_examples=60, deadline=None)
@given(st.integers(-10**6, 10**6), st.integers(0, 10**6), st.sampled_from(["incl", "excl", "float"]),
       st.lists(st.integers(-3 * 10**6, 3 * 10**6), min_size=20, max_size=20))
def test_integer_bounds_accept_exactly_the_range(lo, width, kind, probes):
    hi = lo + width
    if kind == "incl":
        schema, want = {"type": "integer", "minimum": lo, "maximum": hi}, (lo, hi)
    elif kind == "excl":
        schema, want = {"type": "integer", "exclusiveMinimum": lo, "exclusiveMaximum": hi + 2}, (lo + 1, hi + 1)
    else:  # fractional bounds round inwards
        schema, want = {"type": "integer", "minimum": lo - 0.5, "maximum": hi + 0.25}, (lo, hi)
    if want[0] > want[1]:
        return
    dfa = compile_dfa(schema_to_grammar(schema))
    for v in probes + [want[0], want[1], want[0] - 1, want[1] + 1, 0, -1, 1]:
        assert dfa.matches(str(v).encode()) == (want[0] <= v <= want[1]), (schema, v)
    assert not dfa.matches(b"-0") and not dfa.matches(b"00") and not dfa.matches(b"+1")


def test_integer_bounds_one_sided_and_in_objects():
    dfa = compile_dfa(schema_to_grammar({"type": "integer", "minimum": -3}))
    assert dfa.matches(b"-3") and dfa.matches(b"999999999999999999") and not dfa.matches(b"-4")
    dfa = compile_dfa(schema_to_grammar({"type": "integer", "exclusiveMaximum": 0}))
    assert dfa.matches(b"-1") and not dfa.matches(b"0") and dfa.matches(b"-999999999999999999")
    schema = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 150}},
              "required": ["age"]}  # fmt: skip
    dfa = compile_dfa(schema_to_grammar(schema))
    assert walked_values(dfa, schema, 100, 5)
    assert not dfa.matches(b'{"age": 151}') and dfa.matches(b'{"age": 150}')


def _dump(v, indent):
    return json.dumps(v, ensure_ascii=False, indent=indent, separators=(",", ": ") if indent else (",", ":"))


@pytest.mark.parametrize("indent", [None, 2, 4])
def test_valid_values_are_accepted(indent):
    dfa = compile_dfa(schema_to_grammar(TOOL_CALL))
    good = [
        {"tool": "add", "arguments": {"a": 1.5, "b": 2}},
        {"tool": "search", "arguments": {"a": -3, "q": "héllo \"x\"", "flag": None}},
        {"tool": "weather", "arguments": {"a": 0, "b": 0, "q": "", "flag": True}},
        {"tool": "add", "arguments": {"a": 12345678901234567, "q": "日本語"}},
    ]
    for v in good:
        assert dfa.matches(_dump(v, indent).encode()), v


def test_invalid_values_are_rejected():
    dfa = compile_dfa(schema_to_grammar(TOOL_CALL))
    bad = [
        {"tool": "delete", "arguments": {"a": 1}},  # not in enum
        {"tool": "add"},  # required member missing
        {"tool": "add", "arguments": {"b": 1}},  # nested required missing
        {"tool": "add", "arguments": {"a": "1"}},  # wrong type
        {"tool": "add", "arguments": {"a": 1, "b": -1}},  # minimum 0
        {"tool": "add", "arguments": {"a": 1, "b": 1.5}},  # integer
        {"tool": "add", "arguments": {"a": 1, "q": "x" * 13}},  # maxLength
        {"arguments": {"a": 1}, "tool": "add"},  # member order is the schema's
    ]
    for v in bad:
        assert not dfa.matches(_dump(v, None).encode()), v
    for raw in [b'{"tool":"add","arguments":{"a":01}}', b'{"tool":"add","arguments":{"a":1},}', b"",
                b'{"tool":"add","arguments":{"a":1}} ', b'{"tool":"add","arguments":{"a":1.}}',
                b'{"tool":"add","arguments":{"a":1,"q":"\\x"}}', b'{"tool":"add","arguments":{"a":1,"q":"\n"}}']:
        assert not dfa.matches(raw), raw


def test_whitespace_is_bounded_and_compact_mode_is_tight():
    flex = compile_dfa(schema_to_grammar({"type": "array", "items": {"type": "integer"}}, max_whitespace=4))
    assert flex.matches(b"[\n  1,\n  2\n]")
    assert not flex.matches(b"[" + b" " * 5 + b"1]")  # more than max_whitespace in one place
    compact = compile_dfa(schema_to_grammar({"type": "array", "items": {"type": "integer"}}, whitespace="compact"))
    assert compact.matches(b"[1, 2]") and compact.matches(b"[1,2]")
    assert not compact.matches(b"[ 1,2]") and not compact.matches(b"[1,\n2]")


def test_utf8_is_well_formed_only():
    dfa = compile_dfa(schema_to_grammar({"type": "string"}))
    assert dfa.matches('"é日本😀"'.encode())
    for bad in [b'"\xc0\xaf"', b'"\xe0\x80\xaf"', b'"\xed\xa0\x80"', b'"\xf4\x90\x80\x80"', b'"\xc3"', b'"\x80"']:
        assert not dfa.matches(bad), bad


def test_numbers_cannot_run_forever():
    dfa = compile_dfa(schema_to_grammar({"type": "integer"}))
    assert dfa.matches(b"9" * 18) and not dfa.matches(b"9" * 19)
    s = dfa.step(dfa.start, b"9" * 18)
    assert dfa.accepting[s] and not dfa.has_exit(s)


@settings(max_examples=60, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-10**15, 10**15) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False, width=32),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3),
    max_leaves=8))
def test_any_value_schema_accepts_generated_json(value):
    text = json.dumps(value, ensure_ascii=False)
    fits = _depth(value) <= 2 and _numbers_fit(value)  # the any-value grammar nests 2 deep
    assert _ANY_DFA.matches(text.encode()) == fits, text


def _depth(v) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


def _numbers_fit(v) -> bool:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return True
    if isinstance(v, (int, float)):
        t = json.dumps(v)
        mant = t.lstrip("-").split("e")[0].split("E")[0]
        ip, _, fp = mant.partition(".")
        return len(ip) <= 18 and len(fp) <= 17
    if isinstance(v, list):
        return all(_numbers_fit(x) for x in v)
    return all(_numbers_fit(x) for x in v.values())


_ANY_DFA = compile_dfa(schema_to_grammar(True))


@pytest.mark.parametrize(("schema", "match"), [
    ({"type": "string", "pattern": "^a+$", "maxLength": 3}, "pattern together with minLength"),
    ({"type": "string", "pattern": "(?=a)b"}, r"pattern: .*lookaround|pattern:"),
    ({"type": "string", "pattern": 3}, "pattern"),
    ({"type": "number", "maximum": 5}, "maximum"),
    ({"type": "number", "minimum": 3}, "minimum"),
    ({"type": "integer", "minimum": 3, "maximum": 2.5}, "no integer"),
    ({"type": "integer", "minimum": 10**19}, "no integer"),
    ({"type": "integer", "maximum": "5"}, "maximum"),
    ({"type": "integer", "exclusiveMinimum": float("nan")}, "exclusiveMinimum"),
    ({"type": "array", "uniqueItems": True}, "uniqueItems"),
    ({"not": {"type": "string"}}, "not"),
    ({"type": "strin"}, "type"),
    ({"enum": []}, "enum"),
    ({"type": "string", "maxLength": -1}, "maxLength"),
    ({"type": "string", "minLength": 5, "maxLength": 2}, "maxLength"),
    ({"type": "object", "properties": {"a": {}}, "required": ["b"]}, "required"),
    ({"$ref": "#/$defs/missing"}, "does not resolve"),
    ({"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"}, "recursive"),
    ({"$ref": "http://example.com/s.json"}, "local"),
    ({"allOf": [{"type": "string"}, {"maxLength": 3}]}, "allOf"),
    (False, "matches nothing"),
    ("{not json", "not valid JSON"),
])
def test_unsupported_or_bad_schemas_raise(schema, match):
    with pytest.raises(ValueError, match=match):
        schema_to_grammar(schema)


def test_bad_schema_types_raise_typeerror():
    with pytest.raises(TypeError, match="json_schema"):
        schema_to_grammar(3)
    with pytest.raises(TypeError, match=r"json_schema\.properties\.a"):
        schema_to_grammar({"type": "object", "properties": {"a": 5}})
    with pytest.raises(ValueError, match="whitespace"):
        schema_to_grammar({"type": "integer"}, whitespace="pretty")


@pytest.mark.parametrize("kw, exc", [
    ({"max_whitespace": "abc"}, TypeError), ({"max_whitespace": 2.5}, TypeError), ({"max_whitespace": True}, TypeError),
    ({"max_whitespace": -1}, ValueError),  # silently allowed no whitespace
    ({"max_whitespace": MAX_WHITESPACE + 1}, ValueError),  # 10**12 hung compile_dfa
    ({"any_depth": "2"}, TypeError), ({"any_depth": -1}, ValueError),  # -1 silently matched nothing
    ({"any_depth": MAX_ANY_DEPTH + 1}, ValueError),  # 10**12 was a RecursionError
])  # fmt: skip
def test_grammar_options_are_checked(kw, exc):
    name = next(iter(kw))
    for schema in (True, {"type": "integer"}):  # checked whether or not the schema uses the option
        with pytest.raises(exc, match=name):
            schema_to_grammar(schema, **kw)


def test_grammar_option_bounds_compile():
    assert compile_dfa(schema_to_grammar({"type": "integer"}, max_whitespace=0)).matches(b"12")
    assert compile_dfa(schema_to_grammar(True, any_depth=0)).matches(b'"x"')


@pytest.mark.parametrize("expr", ["", [], (), None, ("seq", ["x"]), ("alt", [()])])
def test_malformed_expressions_are_typeerrors(expr):
    with pytest.raises(TypeError, match="expr"):  # "" and [] were IndexErrors
        compile_dfa(expr)


def test_state_limit_raises():
    with pytest.raises(ValueError, match="automaton states"):
        compile_dfa(schema_to_grammar({"type": "string", "maxLength": 4000}), max_states=500)


def test_byte_mask_helpers():
    assert byte_mask(b"ab") == (1 << 97) | (1 << 98)
    assert range_mask(0x30, 0x32) == (1 << 0x30) | (1 << 0x31) | (1 << 0x32)


def test_negative_states_are_refused():
    dfa = compile_dfa(schema_to_grammar({"type": "integer"}))
    with pytest.raises(ValueError, match="state"):  # numpy wrapped -1 to the last state
        dfa.step(-1, b"1")
    with pytest.raises(ValueError, match="max_states"):
        compile_dfa(("lit", b"a"), max_states="many")
