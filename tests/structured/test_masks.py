"""Token masks against a brute-force walk of every token, and token bytes against the tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from infercore.structured import (
    Guide,
    GuideCache,
    TokenMasker,
    VocabMatrix,
    compile_dfa,
    schema_to_grammar,
    token_bytes,
)
from infercore.structured.vocab import MAX_VOCAB

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 6},
                                           "n": {"type": "integer"}, "ok": {"type": "boolean"}},
          "required": ["name"]}  # fmt: skip


def brute_force(dfa, tokens, vocab_size, state):
    out = np.zeros(vocab_size, bool)
    for i, t in enumerate(tokens[:vocab_size]):
        if t:
            out[i] = dfa.step(state, t) != 0
    return out


def synthetic_vocab(rng, n=3000):
    alphabet = list(b'{}[]:,"\\ \n\tabcnrtuelsf0123456789-.eE') + [0xC3, 0xA9, 0xE6, 0x97, 0xA5, 0xFF]
    toks = [bytes([b]) for b in range(256)]
    for _ in range(n):
        k = int(rng.integers(2, 40 if rng.random() < 0.02 else 6))
        toks.append(bytes(int(rng.choice(alphabet)) for _ in range(k)))
    toks[5] = None  # a special token: never allowed
    return toks


def test_masks_match_brute_force_on_a_synthetic_vocabulary():
    rng = np.random.default_rng(3)
    toks = synthetic_vocab(rng)
    vocab_size = len(toks) + 7  # model vocab padded beyond the tokenizer's
    dfa = compile_dfa(schema_to_grammar(SCHEMA))
    m = TokenMasker(dfa, VocabMatrix(toks, vocab_size))
    states = list(range(dfa.num_states)) if dfa.num_states < 400 else list(rng.choice(dfa.num_states, 400))
    for s in states:
        np.testing.assert_array_equal(m.live_mask(int(s)), brute_force(dfa, toks, vocab_size, int(s)))
    assert not m.live_mask(dfa.start)[5]
    assert not m.live_mask(dfa.start)[len(toks):].any()


def test_guide_allows_eos_only_when_complete_and_advances():
    toks = [bytes([b]) for b in range(256)] + [b'{"name":"', b'"}', b"ab", None]
    eos = len(toks) - 1
    g = Guide(compile_dfa(schema_to_grammar(SCHEMA, whitespace="compact")), VocabMatrix(toks, len(toks)), [eos])
    s = g.start
    assert not g.allowed(s)[eos]
    for tid in (256, 258, 257):  # {"name":"  ab  "}
        assert g.allowed(s)[tid]
        s = g.advance(s, tid)
        assert s != 0
    assert g.is_accepting(s) and g.is_complete(s)
    assert g.allowed(s)[eos] and g.allowed(s).sum() == 1
    assert g.advance(g.start, ord("x")) == 0  # not allowed at the start
    assert g.advance(g.start, eos) == 0  # EOS before the JSON is complete


def test_constructors_check_their_arguments():
    toks = [bytes([b]) for b in range(256)]
    dfa = compile_dfa(schema_to_grammar({"type": "integer"}))
    vocab = VocabMatrix(toks, 256)
    with pytest.raises(TypeError, match="dfa"):  # were AttributeErrors
        TokenMasker(None, vocab)
    with pytest.raises(TypeError, match="vocab"):
        TokenMasker(dfa, toks)
    with pytest.raises(TypeError, match="vocab"):
        Guide(dfa, None, [1])
    with pytest.raises(TypeError, match="eos_token_ids"):
        Guide(dfa, vocab, None)
    with pytest.raises(TypeError, match=r"eos_token_ids\[0\]"):
        Guide(dfa, vocab, ["1"])
    with pytest.raises(TypeError, match="vocab_size"):  # was an OverflowError
        GuideCache(lambda: toks, float("inf"), [1])
    with pytest.raises(ValueError, match="vocab_size"):  # was a MemoryError at the first mask
        GuideCache(lambda: toks, 10**12, [1])
    with pytest.raises(ValueError, match="capacity"):
        GuideCache(lambda: toks, 256, [1], capacity=0)
    for bad in (-1, 0, MAX_VOCAB + 1):  # -1 silently dropped the last token
        with pytest.raises(ValueError, match="vocab_size"):
            VocabMatrix(toks, bad)
    with pytest.raises(TypeError, match="vocab_size"):
        VocabMatrix(toks, 256.0)
    with pytest.raises(TypeError, match="tokens"):
        VocabMatrix(None, 256)
    with pytest.raises(TypeError, match=r"tokens\[1\]"):
        VocabMatrix([b"a", "b"], 2)
    g = GuideCache(lambda: toks, np.int64(256), [np.int64(0)]).json_schema({"type": "integer"})
    assert g.allowed(g.start)[ord("7")] and not g.allowed(g.start)[ord("x")]


def test_negative_guide_states_are_refused():
    toks = [bytes([b]) for b in range(256)]
    g = Guide(compile_dfa(schema_to_grammar({"type": "integer"})), VocabMatrix(toks, 257), [256])
    for call in (lambda: g.allowed(-1), lambda: g.advance(-1, ord("1")), lambda: g.advance(-1, 256)):
        with pytest.raises(ValueError, match="state"):  # numpy wrapped -1 to the last state
            call()
    with pytest.raises(ValueError, match="state"):
        g.allowed(g.dfa.num_states)
    with pytest.raises(TypeError, match="state"):
        g.masker.live_mask(1.5)
    n = g.dfa.num_states
    for call in (lambda: g.is_accepting(-1), lambda: g.is_complete(-1), lambda: g.is_complete(n),
                 lambda: g.dfa.step(n, b"1"), lambda: g.dfa.has_exit(-1), lambda: g.advance(n, 256)):
        with pytest.raises(ValueError, match="state"):  # -1 wrapped to the last state, n was an IndexError
            call()
    with pytest.raises(TypeError, match="state"):
        g.is_accepting(True)
    assert g.is_accepting(g.dfa.step(g.start, b"12")) and not g.is_accepting(g.start)


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    from infercore.models import GGUFFile, Tokenizer, resolve_model

    try:
        path = resolve_model("smollm2")
    except ValueError:
        pytest.skip("SmolLM2 is not available: run `infercore models pull smollm2`")
    return Tokenizer.from_gguf(GGUFFile(path))


def test_token_bytes_reproduce_decoding(smollm2_tokenizer):
    tok = smollm2_tokenizer
    tb = token_bytes(tok)
    assert len(tb) == tok.vocab_size
    assert all(tb[i] is None for i in tok.special_token_ids)
    text = 'Hello, 世界! {"a": [1, 2.5e-3, "x\\n"]} \u00e9\t'
    ids = tok.encode(text, add_special_tokens=False)
    assert b"".join(tb[i] for i in ids).decode("utf-8") == text


def test_smollm2_masks_match_brute_force(smollm2_tokenizer):
    tok = smollm2_tokenizer
    tb = token_bytes(tok)
    dfa = compile_dfa(schema_to_grammar(SCHEMA))
    m = TokenMasker(dfa, VocabMatrix(tb, tok.vocab_size))
    rng = np.random.default_rng(0)
    for s in [dfa.start, *rng.choice(np.arange(1, dfa.num_states), 6, replace=False)]:
        np.testing.assert_array_equal(m.live_mask(int(s)), brute_force(dfa, tb, tok.vocab_size, int(s)))
