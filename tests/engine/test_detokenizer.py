"""Incremental detokenization with a real byte-level BPE (built here with `tokenizers`)."""

from __future__ import annotations

import pytest

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

from infercore.engine.detokenizer import IncrementalDetokenizer  # noqa: E402

CORPUS = [
    "The capital of France is Paris. Paris is lovely in spring.",
    "東京は日本の首都です。京都も美しい。",
    "Emoji: 🙂🚀 and accents: café, naïve, Ångström.",
    "def f(x):\n    return x * 2  # code\n\n",
]


@pytest.fixture(scope="module")
def tok():
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train_from_iterator(
        CORPUS * 20, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    )
    return t


def _stream(tok, text, stop=()):
    ids = tok.encode(text).ids
    d = IncrementalDetokenizer(lambda x: tok.decode(list(x)), [], stop)
    deltas = [d.add(i) for i in ids]
    deltas.append(d.flush())
    return deltas, d


@pytest.mark.parametrize("text", CORPUS)
def test_deltas_reassemble_the_text_and_never_split_characters(tok, text):
    deltas, d = _stream(tok, text)
    assert "".join(deltas) == tok.decode(tok.encode(text).ids) == text
    assert all("\ufffd" not in x for x in deltas)
    assert d.stopped_on is None


def test_multibyte_characters_span_several_tokens(tok):
    ids = tok.encode("🙂").ids
    assert len(ids) > 1  # byte-level pieces of one emoji
    deltas, _ = _stream(tok, "🙂")
    assert [x for x in deltas if x] == ["🙂"]


def test_stop_string_truncates_and_is_never_shown(tok):
    deltas, d = _stream(tok, CORPUS[0], stop=["Paris is"])
    assert "".join(deltas) == "The capital of France is Paris. "
    assert d.stopped_on == "Paris is" and d.text == "The capital of France is Paris. "


def test_partial_stop_prefix_is_released_when_it_does_not_complete(tok):
    deltas, d = _stream(tok, "a Pari b", stop=["Paris"])
    assert "".join(deltas) == "a Pari b" and d.stopped_on is None


def test_prompt_context_does_not_leak_into_output(tok):
    prompt = tok.encode("The capital of").ids
    out = tok.encode(" France").ids
    d = IncrementalDetokenizer(lambda x: tok.decode(list(x)), prompt)
    text = "".join(d.add(i) for i in out) + d.flush()
    assert text == " France"
