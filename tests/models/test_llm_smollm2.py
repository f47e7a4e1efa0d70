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
# linear.h uses_r8_gemm), so a row's logits do not depend on the batch. On this 90-token
# paragraph (prefill: the GEMM paths, the same bits at every ISA level) the native model measures
# 7.736, int8 7.623 (-1.5%), fp8 7.892 (+2.0%: E4M3 keeps 3 mantissa bits, ~1.8% RMS per weight
# on top of the Q4_1 values). (Stop 19's 7.687 / 7.901 predate later kernel changes; its +3.7%
# was against a float-activation baseline of 7.618 that the native model no longer runs.)
@pytest.mark.parametrize(("quantization", "budget"), [("int8", 0.02), ("fp8", 0.03)])
def test_quantized_perplexity_close_to_native(llm, quantization, budget):
    from infercore import LLM

    ids = llm.tokenizer.encode(PARAGRAPH)
    base = _perplexity(llm, ids)
    q = LLM(MODEL, quantization=quantization, kv_cache_bytes=16 << 20)
    assert abs(_perplexity(q, ids) / base - 1) <= budget, (quantization, base)


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
