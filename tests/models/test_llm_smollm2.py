"""LLM on the real SmolLM2 GGUF: chat answer, quantized runtime formats and KV-cache dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from infercore.models import resolve_model

try:
    MODEL = resolve_model("smollm2")
except ValueError:
    MODEL = None
pytestmark = pytest.mark.skipif(MODEL is None, reason="SmolLM2 not pulled (infercore models pull smollm2)")

PARAGRAPH = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named after "
    "the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889. Locally nicknamed "
    "the Iron Lady, it was constructed as the centrepiece of the 1889 World's Fair, and to crown the centennial "
    "anniversary of the French Revolution."
)
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def llm():
    from infercore import LLM

    return LLM(MODEL, kv_cache_bytes=64 << 20)


def _perplexity(llm, ids):
    logits = llm.compute_logits(ids).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(np.exp(-np.mean(logp[np.arange(len(ids) - 1), ids[1:]])))


def test_chat_answers_paris(llm):
    from infercore import SamplingParams

    out = llm.chat(QUESTION, SamplingParams(max_tokens=16))[0].outputs[0]
    assert "Paris" in out.text and out.finish_reason == "stop"


def test_stream_equals_generate(llm):
    from infercore import SamplingParams

    sp = SamplingParams(max_tokens=24, ignore_eos=True)
    text = llm.generate("The three primary colors are", sp)[0].outputs[0].text
    assert "".join(llm.stream("The three primary colors are", sp)) == text


# Issue targets: int8 within 2%, fp8 within 3% of the native (Q4_1/Q8_0) model. The native model
# runs its block kinds on per-block int8 activations at every batch size (like ggml's q8_0/q8_1;
# linear.h uses_r8_gemm), and on this 90-token paragraph that makes its perplexity chaotic: a
# 1e-7 relative change of the embeddings, or another ISA level's last-bit rounding in exp/RMSNorm
# (scalar 7.61, avx2 7.69, avx512 7.74), moves it by up to ~2% (sd 0.07 around 7.69 over 8
# perturbations, against 0.003 for fp8; int8 W8A8 with SmoothQuant, whose activations are now
# 8-bit at every size, has sd ~0.04 on a 283-token text).
# So every model's perplexity here is the mean over PERTURBATIONS (the embedding output scaled by
# 1 + e). Stop 30, native / int8 / fp8: scalar 7.684 / -0.7% / +2.8%, avx2 7.698 / -0.9% / +2.6%,
# avx512 7.713 / -1.1% / +2.4% (int8 then ran W8A16 at 64+ rows); stop 31, int8 W8A8 with
# SmoothQuant at every size: scalar +1.0%, avx2 +0.2%, avx512 -0.5% (plain W8A8: +1.2-2.2% on a
# 283-token text, where SmoothQuant gave +0.1-0.4%); one run alone put fp8 anywhere from +1% to +3.8% of the native
# model (the scalar level's single run failed the 3% budget). (Against the float64 reference of the
# dequantized weights, 7.618, fp8 weights cost +4.2% even with exact activations: E4M3 keeps 3
# mantissa bits, ~1.8% RMS per weight on top of the Q4_1 values.)
PERTURBATIONS = (-1.5e-7, -0.5e-7, 0.5e-7, 1.5e-7)


def _mean_perplexity(llm, ids, monkeypatch) -> float:
    embed = llm.model.embed
    vals = []
    for e in PERTURBATIONS:
        monkeypatch.setattr(llm.model, "embed", lambda i, e=e: (embed(i) * np.float32(1 + e)).astype(np.float32))
        vals.append(_perplexity(llm, ids))
    monkeypatch.setattr(llm.model, "embed", embed)
    return float(np.mean(vals))


@pytest.mark.parametrize(("quantization", "budget"), [("int8", 0.02), ("fp8", 0.03)])
def test_quantized_perplexity_close_to_native(llm, quantization, budget, monkeypatch):
    from infercore import LLM

    ids = llm.tokenizer.encode(PARAGRAPH)
    base = _mean_perplexity(llm, ids, monkeypatch)
    q = LLM(MODEL, quantization=quantization, kv_cache_bytes=16 << 20)
    assert abs(_mean_perplexity(q, ids, monkeypatch) / base - 1) <= budget, (quantization, base)


def test_int8_smoothquant_cuts_the_logit_error(llm):
    # LLM(quantization="int8") smooths before quantizing (models/smoothquant.py); plain per-channel
    # int8 of the same weights, both W8A8 at every size. Measured relative logit error against the
    # native model (float32 KV): plain 0.129 / 0.124 / 0.123, smoothed 0.091 / 0.088 / 0.101
    # (avx512 / avx2 / scalar).
    from infercore import LLM
    from infercore.models.smoothquant import _dense
    from infercore.quant import QuantizedWeight, quantize_weight

    ids = llm.tokenizer.encode(PARAGRAPH)
    args = {"kv_cache_dtype": "float32", "kv_cache_bytes": 16 << 20}
    ref = LLM(MODEL, **args).compute_logits(ids)
    plain = LLM(MODEL, **args)
    for layer in plain.model.layers:
        for name in ("qkv", "o", "gate_up", "down"):
            setattr(layer, name, quantize_weight(_dense(getattr(layer, name)), "int8"))
    smooth = LLM(MODEL, quantization="int8", **args)
    assert all(isinstance(w, QuantizedWeight) and w.kind == "int8"
               for layer in smooth.model.layers for w in (layer.qkv, layer.o, layer.gate_up, layer.down))

    def rel(a):
        return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))

    assert rel(smooth.compute_logits(ids)) < 0.9 * rel(plain.compute_logits(ids))


@pytest.mark.parametrize("kv", ["fp8", "int8", "bfloat16"])
def test_quantized_kv_cache_keeps_the_answer(kv):
    from infercore import LLM, SamplingParams

    q = LLM(MODEL, kv_cache_dtype=kv, kv_cache_bytes=16 << 20)
    assert "Paris" in q.chat(QUESTION, SamplingParams(max_tokens=16))[0].outputs[0].text


def test_bad_arguments(llm):
    from infercore import LLM, SamplingParams

    with pytest.raises(ValueError, match="kv_cache_dtype"):
        LLM(MODEL, kv_cache_dtype="fp4")
    with pytest.raises(ValueError, match="quantization"):
        LLM(MODEL, quantization="int3")
    with pytest.raises(ValueError, match="device"):
        LLM(MODEL, device="tpu")
    with pytest.raises(ValueError, match="neither an existing path nor a known model"):
        LLM("no-such-model")
    with pytest.raises(TypeError, match="prompts"):
        llm.generate(42)
    with pytest.raises(ValueError, match="max_model_len"):
        llm.generate({"prompt_token_ids": [1] * (llm.max_model_len + 1)}, SamplingParams())
    with pytest.raises(ValueError, match="token_ids"):
        llm.compute_logits([])
