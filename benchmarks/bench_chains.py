"""Overhead of the chain and tracing layer per step, against a bare LLM.generate call.

Each case runs the same one-token greedy generation on a tiny random Llama (2 layers, hidden 64,
byte-level tokenizer; built here with numpy, no download): the peer is `llm.generate(text, params)`;
infercore rows are `Step.run` without tracing, with an in-memory tracer, and a 3-step Sequential.
Medians of whole calls are dominated by the model and swing with a neighbour's load, so each
infercore row also reports `overhead_ms`: per step, the median over repeated runs of (wall time of
run() measured outside it - time spent inside llm.generate/chat, as recorded by the run), i.e. what
rendering, params, records, spans and export cost. Target (issue 9): < 1 ms per step.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

from infercore.bench import Case

SPECIALS = ["<unk>", "<s>", "</s>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")  # fmt: skip


def tiny_llama_dir(path: str, *, seed: int = 0, layers: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2,
                   ffn: int = 96, vocab_size: int | None = None, tie: bool = False, dtype: str = "float32") -> str:
    """Write a random Llama with a byte-level tokenizer (259 tokens) into path; returns path.
    vocab_size > 259 widens the embedding and LM head past the tokenizer (for shape-only benchmarks that
    feed token ids); tie=True shares them, as SmolLM2 does; dtype "float16" halves the file of large shapes."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    os.makedirs(path, exist_ok=True)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    vocab.update({c: len(SPECIALS) + i for i, c in enumerate(sorted(alphabet))})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    tok.save(os.path.join(path, "tokenizer.json"))
    n_vocab, kv = max(len(vocab), vocab_size or 0), kv_heads
    hd = hidden // heads
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": n_vocab,
           "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": layers,
           "num_attention_heads": heads, "num_key_value_heads": kv, "max_position_embeddings": 2048,
           "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": tie, "bos_token_id": 1,
           "eos_token_id": 2, "hidden_act": "silu", "torch_dtype": dtype}  # fmt: skip
    with open(os.path.join(path, "config.json"), "w") as fh:
        json.dump(cfg, fh)
    with open(os.path.join(path, "tokenizer_config.json"), "w") as fh:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "chat_template": CHAT_TEMPLATE}, fh)
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        # float32 draws for the large float16 shapes (twice as fast); float64 ones keep the float32 files' values
        return (rng.standard_normal(shape, dtype=np.float64 if dtype == "float32" else np.float32) * 0.2).astype(dtype)

    t = {"model.embed_tokens.weight": w(n_vocab, hidden), "model.norm.weight": np.ones(hidden, dtype)}
    if not tie:
        t["lm_head.weight"] = w(n_vocab, hidden)
    for i in range(layers):
        p = f"model.layers.{i}."
        t.update({p + "self_attn.q_proj.weight": w(heads * hd, hidden),
                  p + "self_attn.k_proj.weight": w(kv * hd, hidden),
                  p + "self_attn.v_proj.weight": w(kv * hd, hidden),
                  p + "self_attn.o_proj.weight": w(hidden, heads * hd),
                  p + "mlp.gate_proj.weight": w(ffn, hidden), p + "mlp.up_proj.weight": w(ffn, hidden),
                  p + "mlp.down_proj.weight": w(hidden, ffn), p + "input_layernorm.weight": np.ones(hidden, dtype),
                  p + "post_attention_layernorm.weight": np.ones(hidden, dtype)})  # fmt: skip
    save_file(t, os.path.join(path, "model.safetensors"))
    return path


def overhead_ms(fn: Any, steps: int, n: int) -> dict[str, float]:
    """Median and p90 over n runs of (outer wall time - model time recorded in the run) / steps."""
    import time

    per = []
    for _ in range(n):
        t0 = time.perf_counter()
        run = fn()
        wall = (time.perf_counter() - t0) * 1e3
        per.append((wall - sum(c.latency_ms for c in run.calls)) / steps)
    per.sort()
    return {"overhead_ms": float(np.median(per)), "overhead_p90_ms": per[int(0.9 * (n - 1))], "runs": n}


def cases(quick: bool) -> list[Case]:
    from infercore import LLM, SamplingParams
    from infercore.chains import InMemoryExporter, Sequential, Step, Tracer, inline_prompt

    d = tiny_llama_dir(os.path.join(tempfile.mkdtemp(prefix="ic-bench-chains-"), "tiny"))
    llm = LLM(d, kv_cache_dtype="float32", kv_cache_bytes=1 << 22, block_size=16)
    text = "Summarize in one word: the quick brown fox jumps over the lazy dog."
    mc = {"temperature": 0.0, "max_tokens": 1}
    prompt = inline_prompt("summ", "Summarize in one word: {{ text }}", {"text": "str"}, mc)
    params = SamplingParams(temperature=0.0, max_tokens=1)
    step = Step("summ", prompt, llm)
    seq = Sequential("three", [Step(f"s{i}", prompt, llm) for i in range(3)])
    mem = InMemoryExporter()
    tracer = Tracer([mem])
    inputs = {"text": "the quick brown fox jumps over the lazy dog."}

    def traced() -> Any:
        mem.clear()
        return step.run(inputs, tracer=tracer)

    def traced_seq() -> Any:
        mem.clear()
        return seq.run(inputs, tracer=tracer)

    shape = "tiny-llama/1tok"
    n = 100 if quick else 400
    untraced = lambda: step.run(inputs)  # noqa: E731
    return [
        Case("chains", "step", shape, "fp32", "generate", lambda: llm.generate(text, params)),
        Case("chains", "step", shape, "fp32", "infercore", untraced, extra=overhead_ms(untraced, 1, n)),
        Case("chains", "step+trace", shape, "fp32", "generate", lambda: llm.generate(text, params)),
        Case("chains", "step+trace", shape, "fp32", "infercore", traced, extra=overhead_ms(traced, 1, n)),
        Case("chains", "seq3+trace", shape, "fp32", "generate", lambda: [llm.generate(text, params) for _ in range(3)]),
        Case("chains", "seq3+trace", shape, "fp32", "infercore", traced_seq, extra=overhead_ms(traced_seq, 3, n)),
    ]
