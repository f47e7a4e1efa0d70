"""Japanese character n-gram similarity used by the topic rail for Japanese inputs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from infercore.guardrails.ja_similarity import cosine, is_japanese, ngrams, similarities


def test_language_detection():
    assert is_japanese("口座の残高を確認したい")
    assert is_japanese("ATMで現金を引き出せません。")
    assert not is_japanese("How do I check my balance?")
    assert not is_japanese("")
    assert not is_japanese("12345 !!!")


def test_content_ngrams_skip_hiragana_only_pieces():
    g = ngrams("口座の残高を教えてください")
    assert {"口座", "残高", "口", "座"} <= g
    assert "の" not in g and "くだ" not in g and "さい" not in g
    assert ngrams("ＡＴＭ") == ngrams("atm")  # NFKC + lowercase


def test_similarity_prefers_the_matching_topic():
    refs = [ngrams("銀行口座、残高、預金"), ngrams("政治、選挙、政党")]
    s = similarities("普通預金の残高を知りたい。", refs)
    assert s[0] > 0.2 and s[1] == 0.0
    s2 = similarities("次の選挙はいつ?", refs)
    assert s2[1] > s2[0]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_cosine_bounds_and_symmetry(a, b):
    ga, gb = ngrams(a), ngrams(b)
    c = cosine(ga, gb)
    assert 0.0 <= c <= 1.0 + 1e-12 and abs(c - cosine(gb, ga)) < 1e-12
    if ga:
        assert abs(cosine(ga, ga) - 1.0) < 1e-12


def test_bad_and_huge_inputs():
    assert ngrams("") == frozenset()
    assert ngrams("\ud800\x00\x1b") == frozenset()
    assert len(ngrams("口座" * 1_000_000)) <= 4000  # bounded: the first 4000 characters
