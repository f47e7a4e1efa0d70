"""Embedder vs sentence-transformers on all-MiniLM-L6-v2 (the peer is a test dependency)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infercore.embed import Embedder
from infercore.embed.bert import erf, gelu

WORDS = ("the quick brown fox jumps over a lazy dog while engineers profile kernels on two cores "
         "and measure bandwidth latency throughput").split()


def varied_texts() -> list[str]:
    rng = np.random.default_rng(7)
    texts = ["", "a", "Hi!", "Café crème brûlée à la carte, naïve façade.", "東京は日本の首都です。今日は晴れ。",
             "I love pizza 🍕🔥 and emoji 👩‍💻", "ÀÉÎÕÜ ñ ß ø å", "Résumé of the über-naïve coöperative",
             " ".join(rng.choice(WORDS, 510)),  # ~512 tokens: truncated to 256 like sentence-transformers
             "Paged attention stores keys and values in fixed-size blocks.\n\nA second paragraph."]
    for n in (5, 17, 63, 128, 254):
        texts.append(" ".join(rng.choice(WORDS, n)))
    return texts


@pytest.fixture(scope="module")
def st_model():
    st = pytest.importorskip("sentence_transformers")
    import torch

    import infercore
    from infercore.models import resolve_model

    torch.set_num_threads(infercore.get_num_threads())
    return st.SentenceTransformer(resolve_model("minilm"), device="cpu")


@pytest.fixture(scope="module")
def emb():
    return Embedder("minilm")


def test_erf_and_gelu_match_math():
    x = np.linspace(-6, 6, 2001).astype(np.float32)
    want = np.array([math.erf(float(v)) for v in x])
    assert np.max(np.abs(erf(x) - want)) < 4e-7  # A&S 7.1.26: 1.5e-7, plus float32 rounding near +-1
    g = np.array([0.5 * float(v) * (1 + math.erf(float(v) / math.sqrt(2))) for v in x])
    assert np.max(np.abs(gelu(x) - g)) < 2e-6


@pytest.mark.parametrize("precision", ["high", "highest"])
def test_fp32_matches_sentence_transformers(emb, st_model, precision):
    # "high" (the default) runs bf16x3 GEMMs on AMX-BF16 CPUs, float32 FMAs elsewhere
    texts = varied_texts()
    model = emb if precision == "high" else Embedder("minilm", precision="highest")
    ours = model.encode(texts, batch_size=5)
    ref = st_model.encode(texts, batch_size=5, normalize_embeddings=True, convert_to_numpy=True)
    cos = np.sum(ours * ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert ours.dtype == np.float32 and ours.shape == (len(texts), 384)
    assert cos.min() >= 0.9999, (cos.min(), texts[int(cos.argmin())][:40])
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_precision_high_agrees_with_highest(emb):
    texts = varied_texts()
    a = emb.encode(texts, batch_size=64)  # packed batches of >= 16 tokens: the GEMM paths
    b = Embedder("minilm", precision="highest").encode(texts, batch_size=64)
    assert np.sum(a * b, axis=1).min() >= 0.999999
    assert emb.precision == "high" and "precision='high'" in repr(emb)


def test_int8_close_to_sentence_transformers(st_model):
    # batches of >= 64 tokens take the W8A16 GEMM with the unsmoothed int8 weights, one text at a
    # time (below 64 tokens) W8A8 with the SmoothQuant weights: both within the int8 budget
    texts = varied_texts()
    emb = Embedder("minilm", quantization="int8")
    ours = emb.encode(texts)
    ref = st_model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    cos = np.sum(ours * ref, axis=1)
    assert cos.min() >= 0.99, cos.min()
    short = [i for i, t in enumerate(texts) if len(emb.tokenize([t])[0]) < 64]
    assert len(short) >= 8
    one = np.stack([emb.encode(texts[i]) for i in short])
    cos1 = np.sum(one * ref[short], axis=1)
    assert cos1.min() >= 0.99, cos1.min()


def test_batching_and_order_do_not_change_results(emb):
    texts = varied_texts()[:12]
    a = emb.encode(texts, batch_size=64)
    b = emb.encode(texts[::-1], batch_size=5)[::-1]
    np.testing.assert_allclose(a, b, atol=2e-5)
    single = emb.encode(texts[3])
    assert single.shape == (384,)
    np.testing.assert_allclose(single, a[3], atol=2e-5)


def test_unnormalized_and_truncation(emb):
    raw = emb.encode(["hello world"], normalize=False)
    assert abs(np.linalg.norm(raw) - 1.0) > 1e-3  # mean pooling is not unit length
    long = " ".join(["kernel"] * 1000)
    assert len(emb.tokenize([long])[0]) == emb.max_seq_length == 256
    assert emb.encode([]).shape == (0, 384)


def test_bad_inputs(emb, tmp_path):
    with pytest.raises(TypeError, match="texts"):
        emb.encode(123)
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        emb.encode(["ok", None])
    with pytest.raises(ValueError, match="batch_size"):
        emb.encode(["ok"], batch_size=0)
    # a lone surrogate (a JSON "\ud800" escape) has no UTF-8 form: named, not the tokenizer's TypeError
    with pytest.raises(ValueError, match=r"texts\[1\]: not valid Unicode"):
        emb.encode(["ok", "a\udfffb"])
    with pytest.raises(ValueError, match="text: not valid Unicode"):
        emb.count_tokens("\ud800")
    with pytest.raises(ValueError, match="quantization"):
        Embedder("minilm", quantization="int4")
    with pytest.raises(ValueError, match=str(tmp_path)):
        Embedder(tmp_path)
    with pytest.raises(TypeError, match="model"):
        Embedder(3.5)
    with pytest.raises(ValueError, match="precision"):
        Embedder("minilm", precision="medium")
    with pytest.raises(TypeError, match="precision"):
        Embedder("minilm", precision=None)


def test_lazy_export():
    import infercore

    assert infercore.Embedder is Embedder
