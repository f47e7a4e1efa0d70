"""SmoothQuant for the LLM's int8 weights (models/smoothquant.py): the folding is exact in float,
it cuts the W8A8 error of activation outliers, and LLM(quantization="int8") uses it."""

from __future__ import annotations

import numpy as np
import pytest
from infercore.benchmarks.bench_chains import tiny_llama_dir

from infercore import LLM, ops
from infercore.models import calibration as cal
from infercore.models import smoothquant as sq
from infercore.quant import quantize_weight

IDS = [1, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33, 9, 50, 51, 200, 17, 5]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    # GQA (4 query heads on 2 KV heads) so the output projection's scales are shared per group
    return tiny_llama_dir(str(tmp_path_factory.mktemp("tiny_sq") / "m"), layers=2, hidden=64, heads=4, kv_heads=2,
                          ffn=96, seed=3)  # fmt: skip


def _with_outliers(tiny_dir, bias: bool = False) -> LLM:
    """A float32 tiny model whose GEMM inputs have a few channels ~20x the rest, as real Llamas do
    (with bias: Qwen2's QKV biases)."""
    llm = LLM(tiny_dir, kv_cache_dtype="float32", block_size=8, skip_tokenizer_init=True, kv_cache_bytes=1 << 20)
    rng = np.random.default_rng(1)
    for layer in llm.model.layers:
        if bias:
            layer.qkv_bias = rng.standard_normal(layer.qkv.shape[0]).astype(np.float32)
        layer.attn_norm = layer.attn_norm.copy()
        layer.attn_norm[[5, 40]] = [25.0, -18.0]
        layer.ffn_norm = layer.ffn_norm.copy()
        layer.ffn_norm[[7, 33]] = [20.0, 30.0]
        qkv = layer.qkv.copy()
        qkv[-5] *= 15.0  # one V channel: an outlier in the output projection's input
        layer.qkv = qkv
    return llm


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize(("kv_heads", "bias"), [(2, False), (1, True), (4, True)])
def test_folding_is_exact_in_float(tmp_path, kv_heads, bias):
    d = tiny_llama_dir(str(tmp_path / "m"), layers=2, hidden=64, heads=4, kv_heads=kv_heads, ffn=96, seed=3)
    ref = _with_outliers(d, bias)
    folded = _with_outliers(d, bias)
    sq.smooth_quantize_int8(folded.model, IDS, kind=None)
    want, got = ref.compute_logits(IDS), folded.compute_logits(IDS)
    assert _rel(got, want) < 1e-5
    layer, orig = folded.model.layers[0], ref.model.layers[0]
    assert not np.allclose(layer.attn_norm, orig.attn_norm) and not np.allclose(layer.ffn_norm, orig.ffn_norm)
    v0 = 64 + kv_heads * 16  # V rows carry the output projection's 1/s (and so does V's bias)
    assert not np.allclose(layer.qkv[v0:], orig.qkv[v0:])
    assert not bias or not np.allclose(layer.qkv_bias[v0:], orig.qkv_bias[v0:])
    assert folded.model.observe is None  # calibration leaves no hook behind


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smoothing_cuts_the_w8a8_error_of_outlier_channels(seed):
    # per-token int8 activations: three channels 60x the rest take the whole int8 range
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 256)).astype(np.float32)
    x[:, [3, 77, 200]] *= 60.0
    w = rng.standard_normal((128, 256)).astype(np.float32)
    ref = x.astype(np.float64) @ w.T.astype(np.float64)
    plain = ops.linear(x, quantize_weight(w, "int8"), precision="high")
    s = sq.smooth_scales(np.abs(x).max(axis=0), w)
    assert s.dtype == np.float32 and s[3] > 5 * np.median(s)
    smooth = ops.linear(np.ascontiguousarray(x / s), quantize_weight(np.ascontiguousarray(w * s), "int8"),
                        precision="high")  # fmt: skip
    assert _rel(smooth, ref) < 0.3 * _rel(plain, ref)  # measured 0.21-0.23


def test_llm_int8_is_smoothed_and_deterministic(tiny_dir):
    a = LLM(tiny_dir, quantization="int8", skip_tokenizer_init=True, kv_cache_bytes=1 << 20)
    b = LLM(tiny_dir, quantization="int8", kv_cache_bytes=1 << 20)  # with its tokenizer
    np.testing.assert_array_equal(a.compute_logits(IDS), b.compute_logits(IDS))
    plain = LLM(tiny_dir, skip_tokenizer_init=True, kv_cache_bytes=1 << 20)
    assert not np.allclose(a.model.layers[0].attn_norm, plain.model.layers[0].attn_norm)  # the norms carry 1/s
    assert _rel(a.compute_logits(IDS), plain.compute_logits(IDS)) < 0.05


def test_calibration_ids():
    class Tok:
        def encode(self, text, add_special_tokens=True):
            return [1] + [ord(c) % 250 for c in text]

    ids = cal.calibration_ids(Tok(), 259, 1)
    assert ids[0] == 1 and len(ids) == cal.CALIBRATION_TOKENS
    fixed = cal.calibration_ids(None, 259, 1)
    assert fixed == cal.calibration_ids(None, 259, 1) and fixed[0] == 1 and max(fixed) < 259
    assert len(fixed) == cal.CALIBRATION_TOKENS
