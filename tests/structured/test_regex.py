"""regex -> grammar -> DFA against Python's re on the same strings, and SamplingParams(regex=...)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infercore import LLM, SamplingParams
from infercore.structured import compile_dfa, regex_to_grammar

PATTERNS = [
    r"\d{3}-\d{4}", r"(yes|no)", r"[A-Z][a-z]*( [A-Z][a-z]*)*", r"a{2,3}b?", r"\w+@\w+\.com", r".*",
    r"[^.!?\[\]\n]{1,20} \[(?:1|2|3)\]\.", r"(?:ab|cd)+?x", r"[\d,]+", r"é+|日本", r"[-+]?\d+(\.\d+)?",
    r"\s*\S+", r"[a-c\]]{0,3}", r"x{2}", r"{not a count}", r"\x41\u00e9+[\x30-\x39]", r"[\b\-]+",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_agrees_with_python_re(pattern):
    dfa = compile_dfa(regex_to_grammar(pattern))
    rx = re.compile(pattern, re.ASCII)  # our \d \w \s are ASCII classes

    @settings(max_examples=150, deadline=None)
    @given(st.one_of(st.from_regex(rx, fullmatch=True), st.text(alphabet="ab cdx-+.,[]!?123é日本\nA@", max_size=12)))
    def check(s):
        assert dfa.matches(s.encode("utf-8")) == (rx.fullmatch(s) is not None), repr(s)

    check()


@pytest.mark.parametrize(("pattern", "match"), [
    ("(a", "missing"), ("a)", "unbalanced"), ("*a", "nothing to repeat"), ("[a", "missing"),
    (r"\1", "backreference"), ("^a", "anchors"), ("a$", "anchors"), ("(?=a)", "lookaround"),
    ("a{3,1}", "repeat count"), ("[z-a]", "range"), ("[^é]", "non-ASCII"), ("[]", "missing"), ("a\\", "trailing"),
    (r"\p{L}+", r"escape \\p"), (r"[\p]", r"escape \\p"), (r"\x4", "hex digits"), (r"\u12G4", "hex digits"),
    (r"\ud800", "surrogate"), (r"\k<n>", r"escape \\k"),  # \p{L} was taken as the literal text "p{L}"
])
def test_bad_patterns(pattern, match):
    with pytest.raises(ValueError, match=match):
        regex_to_grammar(pattern)


def test_sampling_params_regex_validation():
    with pytest.raises(ValueError, match="regex"):
        SamplingParams(regex="(unclosed")
    with pytest.raises(TypeError, match="regex"):
        SamplingParams(regex=5)
    with pytest.raises(ValueError, match="either"):
        SamplingParams(regex="a", json_schema={"type": "integer"})


def test_generation_matches_the_regex(tmp_path):
    pytest.importorskip("safetensors")
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    llm = LLM(tiny_llama_dir(str(tmp_path / "m")), kv_cache_dtype="float32", kv_cache_bytes=1 << 22)
    pattern = r"(?:[A-Z][a-z]{1,8} ){1,3}\[[1-3]\]\."
    outs = llm.generate(["x"] * 12, [SamplingParams(temperature=1.0, seed=s, max_tokens=200, regex=pattern)
                                     for s in range(12)])  # fmt: skip
    for o in outs:
        c = o.outputs[0]
        assert c.finish_reason == "stop" and re.fullmatch(pattern, c.text), c.text
