"""LLM(device="cuda") on SmolLM2 (GGUF Q4_1 + Q8_0 as shipped) against the CPU LLM: logits on a
prompt, the first 16 greedy tokens of a small batch, and decode tokens/s (printed, not asserted).
Skipped without a CUDA device; the SmolLM2 tests also without the model (the GGUF, 98 MB, is more
than a device call carries), so the tiny random Llama runs the same comparison everywhere.

Budget: the GPU kernels quantize activations with the same integer codes as the CPU below 64 rows
and accumulate in float32 in another order, and attention reads a float16 KV cache on both sides,
so logits agree to LOGIT_ATOL = 0.05 absolute (SmolLM2's logits span ~±30). Greedy tokens must be
identical, except that a divergence is accepted at a near tie: where the CPU model's logits of the
two tokens differ by less than TIE.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from infercore import LLM, SamplingParams  # noqa: E402
from infercore.models import resolve_model  # noqa: E402

LOGIT_ATOL = 0.05
TIE = 0.05
STEPS = 16
PROMPTS = ["The capital of France is", "def fibonacci(n):\n    ", "Once upon a time, in a small village,"]


def test_tiny_llama_matches_cpu(tmp_path):
    pytest.importorskip("safetensors")
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    d = tiny_llama_dir(str(tmp_path / "tiny"))
    kw = {"kv_cache_dtype": "float32", "kv_cache_bytes": 1 << 22, "block_size": 8, "skip_tokenizer_init": True}
    cpu, gpu = LLM(d, **kw), LLM(d, device="cuda", **kw)
    ids = [1, 5, 80, 33, 200, 17, 9, 44, 100, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    np.testing.assert_allclose(gpu.compute_logits(ids), cpu.compute_logits(ids), rtol=0, atol=1e-3)  # tf32x3 GEMM
    prompts = [{"prompt_token_ids": p} for p in ([1, 5, 80], [1, *range(40, 61)], [1, 44, 45, 46, 47, 48, 49])]
    sp = SamplingParams(max_tokens=8, ignore_eos=True)
    assert [o.outputs[0].token_ids for o in gpu.generate(prompts, sp)] == \
        [o.outputs[0].token_ids for o in cpu.generate(prompts, sp)]  # fmt: skip


@pytest.fixture(scope="module")
def smollm2() -> str:
    try:
        p = resolve_model("smollm2")
    except ValueError:
        p = None
    if not p or not os.path.isfile(p):
        pytest.skip("SmolLM2 is not available: run `infercore models pull smollm2`")
    return p


@pytest.fixture(scope="module")
def pair(smollm2):
    return LLM(smollm2), LLM(smollm2, device="cuda")


def test_device_model_is_on_the_gpu(pair):
    _, gpu = pair
    assert gpu.device.startswith("cuda")
    assert gpu.runner.cache.k[0].is_cuda and gpu.model.embed_table.is_cuda
    assert gpu.model.backend in ("cuda", "triton")


def test_logits_match_cpu(pair):
    cpu, gpu = pair
    ids = cpu.tokenizer.encode(PROMPTS[0], add_special_tokens=True)
    want, got = cpu.compute_logits(ids), gpu.compute_logits(ids)
    assert got.shape == want.shape and np.abs(want).max() > 5
    np.testing.assert_allclose(got, want, rtol=0, atol=LOGIT_ATOL)
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_greedy_tokens_match_cpu(pair):
    cpu, gpu = pair
    sp = SamplingParams(max_tokens=STEPS, ignore_eos=True)
    want = cpu.generate(PROMPTS, sp)
    got = gpu.generate(PROMPTS, sp)
    for w, g in zip(want, got, strict=True):
        a, b = w.outputs[0].token_ids, g.outputs[0].token_ids
        assert len(a) == len(b) == STEPS
        if a == b:
            continue
        i = next(j for j in range(STEPS) if a[j] != b[j])
        logits = cpu.compute_logits(w.prompt_token_ids + a[:i])[-1]
        margin = float(abs(logits[a[i]] - logits[b[i]]))
        assert margin < TIE, (f"prompt {w.prompt!r}: GPU token {b[i]} != CPU token {a[i]} at step {i} with a CPU "
                              f"logit margin of {margin:.3f} (not a near tie)\ncpu {a}\ngpu {b}")  # fmt: skip


def test_decode_tokens_per_second(pair):
    cpu, gpu = pair
    sp = SamplingParams(max_tokens=64, ignore_eos=True)
    prompt = {"prompt_token_ids": [1, 504, 3575]}
    gpu.generate(prompt, SamplingParams(max_tokens=4))  # warm-up (Triton compiles)
    rates = {}
    for name, llm in (("cpu", cpu), ("cuda", gpu)):
        t0 = time.perf_counter()
        out = llm.generate(prompt, sp)[0]
        wall = time.perf_counter() - t0
        itl = out.metrics.inter_token_latencies
        rates[name] = len(itl) / sum(itl)
        print(f"\nSmolLM2 Q4_1 batch 1 on {name}: decode {rates[name]:.1f} tok/s, wall {64 / wall:.1f} tok/s")
    assert all(r > 0 for r in rates.values())


@pytest.mark.parametrize("quantization, kv", [(None, "float16"), ("int8", "int8"), ("int4", "fp8"), ("fp8", "float32")])
def test_fast_decode_equals_the_public_ops_path(tmp_path, monkeypatch, quantization, kv):
    """models/cuda_decode.py launches the public ops' kernels with the same arguments, so greedy
    tokens and every step's log-probabilities must be bitwise those of the public-ops path."""
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    d = tiny_llama_dir(str(tmp_path / "tiny"), layers=3, hidden=128, heads=4, kv_heads=2, ffn=256)
    kw = {"quantization": quantization, "kv_cache_dtype": kv, "kv_cache_bytes": 1 << 22, "block_size": 8,
          "skip_tokenizer_init": True, "device": "cuda"}  # fmt: skip
    fast = LLM(d, **kw)
    monkeypatch.setenv("INFERCORE_CUDA_FAST_DECODE", "0")
    slow = LLM(d, **kw)
    assert fast.model.fast_decode is not None and slow.model.fast_decode is None
    # batches of 1 and 3 sequences, and 11 (above the GEMV's 8 rows: the Triton GEMM)
    for n in (1, 3, 11):
        prompts = [{"prompt_token_ids": [1, 5 + i, 80, 33 + 2 * i]} for i in range(n)]
        sp = SamplingParams(max_tokens=12, ignore_eos=True, logprobs=3)
        for a, b in zip(fast.generate(prompts, sp), slow.generate(prompts, sp), strict=True):
            assert a.outputs[0].token_ids == b.outputs[0].token_ids
            assert a.outputs[0].logprobs == b.outputs[0].logprobs


@pytest.mark.parametrize("quantization, kv", [(None, "float16"), ("int8", "int8"), ("int4", "fp8")])
def test_cuda_graph_decode_equals_eager(tmp_path, monkeypatch, quantization, kv):
    """models/cuda_graphs.py replays the eager step's kernels on static buffers; only the attention
    split count may differ (planned for the graph's table width, not the batch's longest sequence),
    so greedy tokens must be equal and log-probabilities agree to LOGPROB_ATOL."""
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    d = tiny_llama_dir(str(tmp_path / "tiny"), layers=3, hidden=128, heads=4, kv_heads=2, ffn=256)
    kw = {"quantization": quantization, "kv_cache_dtype": kv, "kv_cache_bytes": 1 << 23, "block_size": 8,
          "skip_tokenizer_init": True, "device": "cuda"}  # fmt: skip
    monkeypatch.delenv("INFERCORE_CUDA_GRAPHS", raising=False)
    eager = LLM(d, **kw)
    monkeypatch.setenv("INFERCORE_CUDA_GRAPHS", "1")
    graphed = LLM(d, **kw)
    dg = graphed.model.fast_decode.graphs
    assert dg is not None and eager.model.fast_decode.graphs is None
    # batches of 1-8 (padded to 1/2/4/8), one with 300-token prompts (wider tables, more splits),
    # and 11 sequences (above the buckets: eager steps)
    for n, plen in ((1, 4), (3, 4), (5, 9), (8, 4), (2, 300), (11, 4)):
        prompts = [{"prompt_token_ids": [1] + [(5 + i + 7 * j) % 250 + 3 for j in range(plen - 1)]} for i in range(n)]
        sp = SamplingParams(max_tokens=12, ignore_eos=True, logprobs=3)
        for a, b in zip(graphed.generate(prompts, sp), eager.generate(prompts, sp), strict=True):
            assert a.outputs[0].token_ids == b.outputs[0].token_ids
            for la, lb in zip(a.outputs[0].logprobs, b.outputs[0].logprobs, strict=True):
                assert la.keys() == lb.keys()
                np.testing.assert_allclose(list(la.values()), list(lb.values()), rtol=0, atol=1e-4)
    assert not dg.disabled
    assert {b for b, _ in dg.graphs} == {1, 2, 4, 8}  # every bucket was captured and replayed
