"""Generation on SmolLM2 (GGUF Q4_1/Q8_0) side by side with transformers float32 and, when
installed, llama-cpp-python on the same file — same threads, same run.

Cases: single-stream decode (tokens/s; GB/s = weight bytes read per token x tokens/s),
prefill of a long prompt (tokens/s), concurrent streams 1..16 (aggregate tokens/s and the ratio to
one stream of the same series; `infercore bench generate --plot F` also draws throughput vs
concurrency), 64 streams sharing a long system prompt (prefix-cache hit rate: the share of prompt
blocks not recomputed), and peak memory: a fresh process loads the model, generates, and reports
its peak RSS against weights + KV pool + 150 MB.

On a machine with a CUDA device (and only there) a GPU case joins them: LLM(device="cuda")
single-stream decode tokens/s and its share of the HBM-bandwidth bound (d2d copy GB/s measured in
the same run / weight bytes read per token). `python -m infercore.benchmarks.bench_generate
--gpu-only [--quick]` prints just that table (scripts/gpu_check.sh runs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import numpy as np

import infercore
from infercore.bench import Case

from ._peers import torch_or_none


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


def _transformers_model(path: str):
    """transformers' LlamaForCausalLM in float32 with the GGUF's weights (dequantized, Q/K rows
    un-permuted), built directly so no extra loader dependency is needed."""
    torch = torch_or_none()
    try:
        import transformers
    except ImportError:
        return None, None
    if torch is None:
        return None, None
    from infercore.models import GGUFFile, ModelConfig, normalize_gguf_weights
    from infercore.quant import dequantize_gguf

    g = GGUFFile(path)
    c = ModelConfig.from_gguf(g)
    dense = {n: dequantize_gguf(t.data, t.type_name, t.shape) for n, t in g.tensors.items()}
    w = normalize_gguf_weights(dense, c)
    hf_layer = {"attn_norm": "input_layernorm", "wq": "self_attn.q_proj", "wk": "self_attn.k_proj",
                "wv": "self_attn.v_proj", "wo": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
                "w_gate": "mlp.gate_proj", "w_up": "mlp.up_proj", "w_down": "mlp.down_proj"}  # fmt: skip
    state = {"model.embed_tokens.weight": w["embed"], "model.norm.weight": w["norm"]}
    state["lm_head.weight"] = w.get("lm_head", w["embed"])
    for i in range(c.num_layers):
        for key, name in hf_layer.items():
            state[f"model.layers.{i}.{name}.weight"] = w[f"layers.{i}.{key}"]
    cfg = transformers.LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_layers, num_attention_heads=c.num_heads, num_key_value_heads=c.num_kv_heads,
        rope_theta=c.rope_theta, rms_norm_eps=c.rms_norm_eps, max_position_embeddings=c.max_position_embeddings,
        tie_word_embeddings=c.tie_word_embeddings,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(cfg).eval()
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in state.items()})
    return torch, model


def _llama_cpp(path: str):
    try:
        import llama_cpp
    except ImportError:
        return None
    return llama_cpp.Llama(model_path=path, n_threads=infercore.get_num_threads(), n_ctx=2048, verbose=False)


def cases(quick: bool) -> list[Case]:
    from infercore import LLM, SamplingParams
    from infercore.models import resolve_model

    try:
        path = resolve_model("smollm2")
    except ValueError:
        return []  # the model is not pulled: `infercore models pull smollm2`
    new_tokens = 16 if quick else 128
    prompt_len = 128 if quick else 481
    rng = np.random.default_rng(0)
    long_prompt = rng.integers(100, 40000, prompt_len).tolist()
    out: list[Case] = []
    # The KV pool is faulted in up front, as `infercore serve` runs it (and as vLLM allocates it):
    # otherwise first touches of fresh cache pages (~1 ms per decode step at 16 streams on this
    # VM) land inside whichever timed case first reaches them.
    llms = {"q4_1": LLM(path, kv_cache_prefault=True), "int8": LLM(path, quantization="int8", kv_cache_prefault=True)}
    torch, hf = _transformers_model(path)
    lcpp = _llama_cpp(path)

    for kind, llm in llms.items():
        wbytes = llm.model.weight_bytes
        metrics: dict[str, list[float]] = {"itl": [], "ttft": []}

        def decode(llm=llm, metrics=metrics) -> None:
            sp = SamplingParams(max_tokens=new_tokens, ignore_eos=True)
            o = llm.generate({"prompt_token_ids": [1, 504, 3575]}, sp)[0]
            metrics["itl"] += o.metrics.inter_token_latencies
            metrics["ttft"].append(o.metrics.time_to_first_token)

        out.append(Case("generate", "decode", f"smollm2 +{new_tokens}", kind, "infercore", decode,
                        bytes=wbytes * new_tokens, items=new_tokens, unit="tok",
                        after=lambda m=metrics: {"itl": _percentiles(m["itl"]),
                                                 "ttft": _percentiles(m["ttft"])}))  # fmt: skip

        def prefill(llm=llm) -> None:
            llm.allocator.reset_prefix_cache()
            llm.generate({"prompt_token_ids": long_prompt}, SamplingParams(max_tokens=1))

        out.append(Case("generate", "prefill", f"smollm2 {prompt_len}", kind, "infercore", prefill,
                        flops=2.0 * 135e6 * prompt_len, items=prompt_len, unit="tok"))  # fmt: skip
        if torch is not None:
            def hf_decode() -> None:
                with torch.no_grad():
                    hf.generate(torch.tensor([[1, 504, 3575]]), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                do_sample=False, pad_token_id=0)  # fmt: skip

            def hf_prefill() -> None:
                with torch.no_grad():
                    hf(torch.tensor([long_prompt]))

            out.append(Case("generate", "decode", f"smollm2 +{new_tokens}", kind, "transformers-f32", hf_decode,
                            min_repeats=3, items=new_tokens, unit="tok"))  # fmt: skip
            out.append(Case("generate", "prefill", f"smollm2 {prompt_len}", kind, "transformers-f32", hf_prefill,
                            min_repeats=3, items=prompt_len, unit="tok"))  # fmt: skip
        if lcpp is not None and kind == "q4_1":
            def lc_decode() -> None:
                # generate() yields until told to stop (create_completion would end at EOS and
                # time fewer tokens than `items` counts)
                n = 0
                for _tok in lcpp.generate([1, 504, 3575], temp=0.0, reset=True):
                    n += 1
                    if n == new_tokens:
                        break

            def lc_prefill() -> None:
                lcpp.reset()
                lcpp.eval(long_prompt)

            out.append(Case("generate", "decode", f"smollm2 +{new_tokens}", kind, "llama.cpp", lc_decode,
                            items=new_tokens, unit="tok"))  # fmt: skip
            out.append(Case("generate", "prefill", f"smollm2 {prompt_len}", kind, "llama.cpp", lc_prefill,
                            items=prompt_len, unit="tok"))  # fmt: skip

    llm = llms["q4_1"]
    series: dict[int, float] = {}  # streams -> aggregate tokens/s, filled as the cases run
    for streams in (1, 4, 16) if quick else (1, 2, 4, 8, 16, 32):

        def concurrent(streams=streams) -> None:
            sp = SamplingParams(max_tokens=new_tokens, ignore_eos=True)
            t0 = time.perf_counter()
            llm.generate([{"prompt_token_ids": [1, 504 + i, 3575]} for i in range(streams)], sp)
            rate = streams * new_tokens / (time.perf_counter() - t0)
            series[streams] = max(series.get(streams, 0.0), rate)

        def ratio(streams=streams) -> dict[str, float]:
            one = series.get(1)
            return {"streams": streams, "vs_one_stream": round(series[streams] / one, 2) if one else float("nan")}

        out.append(Case("generate", f"decode x{streams}", f"smollm2 {streams}x+{new_tokens}", "q4_1", "infercore",
                        concurrent, bytes=llm.model.weight_bytes * new_tokens, items=streams * new_tokens,
                        unit="tok", min_repeats=3, after=ratio))  # fmt: skip

    # The x16 greedy case with temperature/top-p sampling instead: the sampler's per-row cost
    # (whole-vocabulary passes over 49k logits) shows here and nowhere else.
    sampled_streams = 16

    def concurrent_sampled() -> None:
        prompts = [{"prompt_token_ids": [1, 504 + i, 3575]} for i in range(sampled_streams)]
        params = [SamplingParams(max_tokens=new_tokens, ignore_eos=True, temperature=0.8, top_p=0.95, seed=i)
                  for i in range(sampled_streams)]
        llm.generate(prompts, params)

    out.append(Case("generate", f"decode x{sampled_streams} sampled", f"smollm2 {sampled_streams}x+{new_tokens}",
                    "q4_1", "infercore", concurrent_sampled, bytes=llm.model.weight_bytes * new_tokens,
                    items=sampled_streams * new_tokens, unit="tok", min_repeats=3))  # fmt: skip

    n_shared, system = (16, 128) if quick else (64, 400)
    system_prompt = rng.integers(100, 40000, system).tolist()
    share: dict[str, float] = {}

    def shared_prefix() -> None:
        llm.allocator.reset_prefix_cache()
        before = llm.allocator.stats()
        prompts = [{"prompt_token_ids": system_prompt + rng.integers(100, 40000, 12).tolist()} for _ in range(n_shared)]
        llm.generate(prompts, SamplingParams(max_tokens=4, ignore_eos=True))
        after = llm.allocator.stats()
        q = after.prefix_queries - before.prefix_queries
        share["prefix_hit_rate"] = (after.prefix_hits - before.prefix_hits) / q if q else 0.0

    out.append(Case("generate", "shared prefix", f"smollm2 {n_shared}x({system}+12)", "q4_1", "infercore",
                    shared_prefix, min_repeats=3, items=n_shared * (system + 12), unit="prompt-tok",
                    after=lambda: dict(share)))  # fmt: skip

    out += _gpu_cases(path, new_tokens)
    peak: dict[str, float] = {}

    def memory() -> None:
        peak.update(_rss_child(new_tokens))

    out.append(Case("generate", "peak RSS", f"smollm2 +{new_tokens}", "q4_1", "infercore", memory, min_repeats=1,
                    after=lambda: dict(peak)))  # fmt: skip
    return out


# ------------------------------------------------------------------------------------ GPU
def _gpu_decode(llm, new_tokens: int) -> dict[str, float]:
    """One single-stream greedy decode on llm (device="cuda"): decode tokens/s from the engine's
    inter-token latencies (prefill and the first token excluded), wall tokens/s, TTFT."""
    from infercore import SamplingParams

    t0 = time.perf_counter()
    o = llm.generate({"prompt_token_ids": [1, 504, 3575]}, SamplingParams(max_tokens=new_tokens, ignore_eos=True))[0]
    wall = time.perf_counter() - t0
    itl = o.metrics.inter_token_latencies
    return {"decode_tok_s": len(itl) / sum(itl) if itl else float("nan"), "wall_tok_s": new_tokens / wall,
            "ttft_ms": 1e3 * (o.metrics.time_to_first_token or float("nan"))}  # fmt: skip


def _gpu_cases(path: str, new_tokens: int) -> list[Case]:
    """The GPU decode case (batch 1, Q4_1 as shipped) where a CUDA device exists, else none."""
    torch = torch_or_none()
    if torch is None or not torch.cuda.is_available():
        return []
    from infercore import LLM

    from .bench_linear import _hbm_copy_gbps

    llm = LLM(path, device="cuda")
    hbm = _hbm_copy_gbps(torch)
    bound = hbm * 1e9 / llm.model.weight_bytes  # tokens/s if every token only streamed the weights once
    last: dict[str, float] = {}

    def decode() -> None:
        last.update(_gpu_decode(llm, new_tokens))

    def after() -> dict[str, float]:
        return {**last, "hbm_copy_gbps": round(hbm, 1), "hbm_bound_tok_s": round(bound, 1),
                "pct_of_hbm_bound": round(100 * last["decode_tok_s"] / bound, 2)}  # fmt: skip

    warm = lambda: _gpu_decode(llm, 4)  # noqa: E731  (Triton compiles, the allocator fills)
    return [Case("generate", "decode cuda", f"smollm2 +{new_tokens}", "q4_1", "infercore", decode, backend="cuda",
                 items=new_tokens, unit="tok", min_repeats=3, setup=warm, after=after)]  # fmt: skip


def gpu_main(quick: bool, shape: str = "smollm2") -> None:
    """The GPU table alone: decode at batch 1 per weight format vs the HBM-bandwidth bound, on
    SmolLM2 (shape "smollm2"), or on random weights of a 1B Llama's shapes ("llama1b"), where a
    step moves ~8x the bytes for half the launches, so launch costs weigh less."""
    torch = torch_or_none()
    if torch is None or not torch.cuda.is_available():
        print("gpu: no CUDA device, GPU cases skipped")
        return
    from infercore import LLM
    from infercore.models import resolve_model

    from .bench_linear import _hbm_copy_gbps

    if shape == "llama1b":
        path, variants = _llama1b_shaped_dir(), (("int8", "int8"), ("fp8", "fp8"))
        extra = {"skip_tokenizer_init": True}
        print("gpu: random weights of a 1B Llama's shapes (16 layers, 2048/8192, 32/8 heads, vocab 32000, tied)")
    else:
        try:
            path, variants, extra = resolve_model("smollm2"), (("q4_1", None), ("int8", "int8")), {}
        except ValueError:
            # The GGUF (98 MB) is more than a device call carries; decode speed depends on the shapes,
            # not the weight values, so a random model of SmolLM2's shapes stands in (ids in, no text).
            path, variants = _smollm2_shaped_dir(), (("int8", "int8"), ("int4", "int4"), ("fp8", "fp8"))
            extra = {"skip_tokenizer_init": True}  # its tokenizer covers 259 of the 49152 ids
            print("gpu: SmolLM2 not installed; random weights of SmolLM2-135M's shapes (30 layers, 576/1536, "
                  "vocab 49152, tied head)")  # fmt: skip
    new_tokens = 32 if quick else 128
    hbm = _hbm_copy_gbps(torch)
    props = torch.cuda.get_device_properties(0)
    print(f"gpu: {props.name}  d2d copy {hbm:.0f} GB/s  decode batch 1, +{new_tokens} tokens", flush=True)
    print(f"{'kind':<7}{'backend':<13}{'weight MB':>9}{'bound tok/s':>12}{'decode tok/s':>13}{'% bound':>8}"
          f"{'wall tok/s':>11}{'TTFT ms':>9}")  # fmt: skip
    # The first format once more through the public ops (INFERCORE_CUDA_FAST_DECODE=0): the host
    # time models/cuda_decode.py saves per step; then every format with the step as a CUDA graph
    # (INFERCORE_CUDA_GRAPHS=1, models/cuda_graphs.py).
    first = variants[0]
    runs_of = [(kind, q, {}) for kind, q in variants] + [(*first, {"INFERCORE_CUDA_FAST_DECODE": "0"})]
    runs_of += [(kind, q, {"INFERCORE_CUDA_GRAPHS": "1"}) for kind, q in variants]
    for kind, quantization, env in runs_of:
        with env_vars(env):
            llm = LLM(path, quantization=quantization, device="cuda", **extra)
        _gpu_decode(llm, 8)  # warm-up: Triton compiles, allocator fills
        runs = [_gpu_decode(llm, new_tokens) for _ in range(1 if quick else 3)]
        best = max(runs, key=lambda r: r["decode_tok_s"])
        bound = hbm * 1e9 / llm.model.weight_bytes
        fast = llm.model.fast_decode
        backend = llm.model.backend + ("-ops" if fast is None else "-graph" if fast.graphs is not None else "")
        if fast is not None and fast.graphs is not None and fast.graphs.disabled:
            backend += "-failed"  # the capture failed (warned): these are eager steps
        print(f"{kind:<7}{backend:<13}{llm.model.weight_bytes / 2**20:9.1f}{bound:12.0f}"
              f"{best['decode_tok_s']:13.1f}{100 * best['decode_tok_s'] / bound:8.2f}{best['wall_tok_s']:11.1f}"
              f"{best['ttft_ms']:9.1f}", flush=True)  # fmt: skip
        del llm
        torch.cuda.empty_cache()


def _smollm2_shaped_dir() -> str:
    """A random Llama with SmolLM2-135M's shapes in a temporary directory (safetensors, float32)."""
    from .bench_chains import tiny_llama_dir

    path = os.path.join(tempfile.mkdtemp(prefix="infercore-smollm2-shaped-"), "model")
    return tiny_llama_dir(path, layers=30, hidden=576, heads=9, kv_heads=3, ffn=1536, vocab_size=49152, tie=True)


@contextlib.contextmanager
def env_vars(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set inside the block, as it was after (the models read their
    INFERCORE_CUDA_* switches when built)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _llama1b_shaped_dir() -> str:
    """A random Llama with Llama-3.2-1B-like shapes (float16 safetensors, ~2 GB) in a temporary directory."""
    from .bench_chains import tiny_llama_dir

    path = os.path.join(tempfile.mkdtemp(prefix="infercore-llama1b-shaped-"), "model")
    return tiny_llama_dir(path, layers=16, hidden=2048, heads=32, kv_heads=8, ffn=8192, vocab_size=32000, tie=True,
                          dtype="float16")  # fmt: skip


def _rss_child(new_tokens: int) -> dict[str, float]:
    """Peak RSS of a fresh process that loads SmolLM2 and generates (this process holds the
    peers' models too), against the issue's budget: weights + KV pool + 150 MB."""
    cmd = [sys.executable, "-m", "infercore.benchmarks.bench_generate", "--rss-child", str(new_tokens)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"rss child failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rss_main(new_tokens: int) -> None:
    from infercore import LLM, SamplingParams

    llm = LLM("smollm2")
    llm.generate([{"prompt_token_ids": [1, 504 + i, 3575]} for i in range(16)],
                 SamplingParams(max_tokens=new_tokens, ignore_eos=True))  # fmt: skip
    with open("/proc/self/status", encoding="ascii") as f:
        hwm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    mb = 1 << 20
    weights = llm.model.weight_bytes  # layers + LM head (a tied head is the embedding table)
    kv = llm.runner.cache.nbytes
    budget = weights + kv + 150 * mb
    print(json.dumps({"peak_rss_mb": round(hwm_kb * 1024 / mb, 1), "weights_mb": round(weights / mb, 1),
                      "kv_pool_mb": round(kv / mb, 1), "budget_mb": round(budget / mb, 1),
                      "over_weights_mb": round((hwm_kb * 1024 - weights) / mb, 1),
                      "within_budget": hwm_kb * 1024 <= budget}))  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--rss-child":
        _rss_main(int(sys.argv[2]))
    elif len(sys.argv) >= 2 and sys.argv[1] == "--gpu-only" and set(sys.argv[2:]) <= {"--quick", "--llama1b"}:
        gpu_main("--quick" in sys.argv[2:], "llama1b" if "--llama1b" in sys.argv[2:] else "smollm2")
    else:
        print("usage: infercore bench generate | python -m infercore.benchmarks.bench_generate --gpu-only [--quick] "
              "[--llama1b] (--rss-child is internal)", file=sys.stderr)  # fmt: skip
        sys.exit(2)
