import os

import numpy as np
import pytest

from infercore.models.gguf import GGUFValue, GGUFValueType, write_gguf
from infercore.models.tokenizer import Tokenizer

pytest.importorskip("tokenizers")  # a runtime dependency of infercore.models.tokenizer

TEXTS = [
    "Hello world",
    "  leading and   trailing  ",
    "café naïve résumé Ünïcödé",
    "日本語のテキストです。東京",
    "emoji 😀👍🏽 ok 🇫🇷",
    "def f(x):\n    return x**2  # square\n",
    "\t\ttabs\n\n\nnewlines\r\n",
    "12345 678 9.01 3,000,000 x1y22z333",
    "<|im_start|>user\nhi<|im_end|>\n",
    "I'm you're they'll WE'VE",
    " 42",
    "",
    "   ",
    "ü\u00a0\u2003space",
]


@pytest.fixture(scope="module")
def smol(smollm2_gguf):
    transformers = pytest.importorskip("transformers")
    d, name = os.path.split(smollm2_gguf)
    return Tokenizer.from_gguf(smollm2_gguf), transformers.AutoTokenizer.from_pretrained(d, gguf_file=name)


def test_smollm2_matches_transformers(smol):
    ours, hf = smol
    assert ours.vocab_size == len(hf) == 49152
    assert (ours.bos_token_id, ours.eos_token_id, ours.pad_token_id) == (1, 2, 2)
    for text in TEXTS:
        for special in (True, False):
            ids = ours.encode(text, add_special_tokens=special)
            assert ids == hf.encode(text, add_special_tokens=special), text
        for skip in (True, False):
            assert ours.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip_special_tokens=skip)
    assert ours.encode("<|im_start|>") == [1]
    assert ours.encode_batch(TEXTS[:3]) == [hf.encode(t) for t in TEXTS[:3]]
    assert "<|im_start|>" in ours.chat_template
    # digits are isolated (llama.cpp's "smollm" pre-tokenizer, like the model's own tokenizer.json with
    # Digits(individual_digits=True)); transformers' GGUF loader ignores tokenizer.ggml.pre, which only
    # shows on non-ASCII digits after a space: it merges the space with the digit's first byte
    assert len(ours.encode("2024")) == 4
    assert [ours.id_to_token(i) for i in ours.encode(" ٣")] == ["Ġ", "Ù", "£"]
    assert hf.encode(" ٣")[0] == ours.token_to_id("ĠÙ")


def test_incremental_decoder_never_splits_characters(smol):
    ours, _ = smol
    text = "Grüße 😀👍🏽 日本語 ok\n  done 🇫🇷"
    ids = ours.encode(text)
    assert len(ids) > len(text.split())  # multi-byte characters span several tokens
    dec = ours.incremental_decoder()
    deltas = [dec.step(i) for i in ids]
    deltas.append(dec.flush())
    assert "".join(deltas) == text
    assert not any("\ufffd" in d for d in deltas)
    # a character split across tokens is held back, then emitted whole
    emoji = ours.encode("😀")
    assert len(emoji) > 1
    dec = ours.incremental_decoder()
    assert [dec.step(i) for i in emoji] == [""] * (len(emoji) - 1) + ["😀"]
    dec = ours.incremental_decoder(skip_special_tokens=True)
    assert "".join(dec.step(i) for i in ours.encode("<|im_start|>hi")) == "hi"
    with pytest.raises(ValueError, match="out of range"):
        dec.step(10**6)


def _spm_gguf(path, add_bos=True):
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    pieces = [
        "▁",
        "h",
        "e",
        "l",
        "o",
        "w",
        "r",
        "d",
        "ll",
        "▁h",
        "▁he",
        "llo",
        "▁hello",
        "▁w",
        "or",
        "▁wor",
        "ld",
        "▁world",
        "lo",
        "el",
        "▁▁",
        "<|tag|>",
    ]
    types = [2, 3, 3] + [6] * 256 + [1] * (len(pieces) - 1) + [3]
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    md = {
        "general.architecture": "llama",
        "llama.embedding_length": 8,
        "llama.feed_forward_length": 8,
        "llama.block_count": 1,
        "llama.attention.head_count": 2,
        "llama.context_length": 64,
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": toks + pieces,
        "tokenizer.ggml.scores": GGUFValue(GGUFValueType.FLOAT32, scores, is_array=True),
        "tokenizer.ggml.token_type": GGUFValue(GGUFValueType.INT32, types, is_array=True),
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.add_bos_token": add_bos,
    }
    write_gguf(path, md, {"token_embd.weight": np.zeros((len(toks) + len(pieces), 8), np.float32)})


def test_sentencepiece_gguf_matches_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    _spm_gguf(tmp_path / "spm.gguf")
    ours = Tokenizer.from_gguf(tmp_path / "spm.gguf")
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="spm.gguf")
    for text in ["hello world", "hello  world", " hello", "héllo wörld 😀", "hello<|tag|>world", "", "lol"]:
        ids = ours.encode(text)
        assert ids == hf.encode(text), text
        assert ours.decode(ids) == hf.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == hf.decode(ids, skip_special_tokens=True)
    assert ours.encode("hello world")[:2] == [1, ours.token_to_id("▁hello")]
    dec = ours.incremental_decoder(skip_special_tokens=True)
    ids = ours.encode("hello wörld hello")
    assert "".join(dec.step(i) for i in ids) + dec.flush() == "hello wörld hello"
    _spm_gguf(tmp_path / "nobos.gguf", add_bos=False)
    assert Tokenizer.from_gguf(tmp_path / "nobos.gguf").encode("hello")[0] != 1


def test_minilm_tokenizer_json(minilm_dir):
    tokenizers = pytest.importorskip("tokenizers")
    ours = Tokenizer.from_file(minilm_dir)
    ref = tokenizers.Tokenizer.from_file(os.path.join(minilm_dir, "tokenizer.json"))
    assert ours.vocab_size == 30522 and ours.pad_token_id == 0
    for text in TEXTS:
        assert ours.encode(text) == ref.encode(text).ids
        assert ours.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False).ids
    assert ours.encode("Hello")[0] == ref.token_to_id("[CLS]")
    with pytest.raises(ValueError, match=r"text: not valid Unicode text .* at index 3"):
        ours.encode("ok \ud800")
    with pytest.raises(ValueError, match=r"texts\[1\]: not valid Unicode"):
        ours.encode_batch(["fine", "\udfff"])


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="tokenizer file not found"):
        Tokenizer.from_file(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot load tokenizer"):
        Tokenizer.from_file(tmp_path)
    p = tmp_path / "x.gguf"
    write_gguf(p, {"general.architecture": "llama", "tokenizer.ggml.model": "bert", "tokenizer.ggml.tokens": ["a"]}, {})
    with pytest.raises(ValueError, match=r"tokenizer.ggml.model 'bert' is not supported"):
        Tokenizer.from_gguf(p)
    write_gguf(p, {"general.architecture": "llama", "tokenizer.ggml.model": "gpt2"}, {})
    with pytest.raises(ValueError, match=r"'tokenizer.ggml.tokens' is missing"):
        Tokenizer.from_gguf(p)
    md = {
        "general.architecture": "llama",
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": ["a", "b"],
        "tokenizer.ggml.merges": ["a b"],
        "tokenizer.ggml.pre": "gpt2",
    }
    write_gguf(p, md, {})
    with pytest.raises(ValueError, match=r"merge #0 'a b' uses or makes a token that is not in the vocabulary"):
        Tokenizer.from_gguf(p)
    md.update({"tokenizer.ggml.tokens": ["a", "b", "ab"], "tokenizer.ggml.pre": "mystery"})
    write_gguf(p, md, {})
    with pytest.raises(ValueError, match=r"tokenizer.ggml.pre 'mystery' is not supported"):
        Tokenizer.from_gguf(p)
    md.update({"tokenizer.ggml.pre": "gpt2", "tokenizer.ggml.eos_token_id": 7})
    write_gguf(p, md, {})
    with pytest.raises(ValueError, match=r"'tokenizer.ggml.eos_token_id' = 7 is not a token id"):
        Tokenizer.from_gguf(p)
    md.pop("tokenizer.ggml.eos_token_id")
    write_gguf(p, md, {})
    tok = Tokenizer.from_gguf(p)
    assert tok.encode("aba") == [2, 0]
    with pytest.raises(TypeError, match="text"):
        tok.encode(b"bytes")
    with pytest.raises(ValueError, match="token id 5 is out of range"):
        tok.decode([5])
