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
# perturbations, against 0.006 for int8 W8A8, whose activations are int16, and 0.003 for fp8).
# So every model's perplexity here is the mean over PERTURBATIONS (the embedding output scaled by
# 1 + e). Stop 30, native / int8 / fp8: scalar 7.684 / -0.7% / +2.8%, avx2 7.698 / -0.9% / +2.6%,
# avx512 7.713 / -1.1% / +2.4%; one run alone put fp8 anywhere from +1% to +3.8% of the native
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
