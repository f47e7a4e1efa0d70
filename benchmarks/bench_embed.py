"""Embedder.encode throughput: infercore fp32 / int8 vs sentence-transformers (same threads) on
all-MiniLM-L6-v2, 512 texts of ~60 tokens (64 with --quick).

Napkin math: ~10.6M GEMM weights -> 21.2 MFLOP per token (2 per weight), plus attention
4*L*H FLOP per token per layer; at ~60 tokens a text costs ~1.3 GFLOP. Targets (issue 8):
fp32 >= 1.3x and int8 >= 3x sentence-transformers' texts/s. Rows: our default precision "high"
(AMX CPUs: bf16x3 float32 GEMMs, W8A8 int8 GEMMs on AMX tiles; elsewhere the same as "highest")
and "highest" (float32 FMAs; int8 with 16-bit activation codes from 64 tokens).
On the 2-core AVX2 dev machine (AMD Zen 3) the GEMMs were ~90% of the time (fp32 ~170 GFLOP/s,
the int8 W8A16 integer GEMM ~200-240 GOP/s). On a 2-core AVX-512/AMX Xeon (stop 24), int8
"high" ~0.82 s per pass: AMX tiles + their quantizer ~45%, attention ~17%, LayerNorm ~5%; fp32
"high" ~1.3 s, its bf16x3 GEMMs at ~800 GFLOP/s (float32 FMAs: ~370 of the 452 GFLOP/s peak).
Run directly for a texts/s table: python benchmarks/bench_embed.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import infercore
from infercore.bench import Case

from ._peers import torch_or_none

_WORDS = ("the model reads a document about memory bandwidth and kernels then writes a short answer with "
          "citations while the scheduler batches requests across two cores of a shared server").split()


def make_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(_WORDS, int(rng.integers(48, 62)))) + "." for _ in range(n)]


def _impls(quick: bool) -> tuple[list[str], dict[str, object], int, float]:
    from infercore.embed import Embedder
    from infercore.models import resolve_model

    texts = make_texts(64 if quick else 512)
    impls: dict[str, object] = {}
    fp32 = Embedder("minilm")
    impls["infercore-fp32"] = fp32
    impls["infercore-fp32-highest"] = Embedder("minilm", precision="highest")
    impls["infercore-int8"] = Embedder("minilm", quantization="int8")
    impls["infercore-int8-highest"] = Embedder("minilm", quantization="int8", precision="highest")
    torch = torch_or_none()
    if torch is not None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            SentenceTransformer = None
        if SentenceTransformer is not None:
            impls["sentence-transformers"] = SentenceTransformer(resolve_model("minilm"), device="cpu")
    tokens = sum(len(s) for s in fp32.tokenize(texts))
    w = fp32.weights
    h, nl = fp32.dim, len(w.layers)
    gemm = sum(int(np.prod(np.shape(getattr(L, n)))) for L in w.layers for n in ("qkv", "o", "up", "down"))
    lens = [len(s) for s in fp32.tokenize(texts)]
    flops = 2.0 * gemm * tokens + sum(4.0 * L * L * h * nl for L in lens)
    return texts, impls, tokens, flops


def _encode(model: object, texts: list[str]) -> np.ndarray:
    return model.encode(texts, batch_size=64, normalize_embeddings=True) if not hasattr(model, "weights") \
        else model.encode(texts, batch_size=64)


def cases(quick: bool) -> list[Case]:
    texts, impls, tokens, flops = _impls(quick)
    shape = f"{len(texts)}x~{tokens // len(texts)}tok"
    peer = impls.get("sentence-transformers")
    out = []
    for name, model in impls.items():
        if not name.startswith("infercore"):
            continue
        dtype = name.split("-", 1)[1]  # fp32, fp32-highest, int8, int8-highest
        group = [(name.split("-")[0], model)] + ([("sentence-transformers", peer)] if peer is not None else [])
        # each of our rows gets its own group with the float32 peer in it (the ratio the issue asks)
        for impl, m in group:
            out.append(Case("embed", "encode", shape, dtype, impl, lambda m=m: _encode(m, texts), flops=flops,
                            min_repeats=3 if not quick else 5, extra={"texts": len(texts), "tokens": tokens}))
    return out


def main(quick: bool) -> None:
    texts, impls, tokens, flops = _impls(quick)
    print(f"cpu isa {infercore.get_isa()}, threads {infercore.get_num_threads()}, {len(texts)} texts, "
          f"{tokens} tokens ({tokens / len(texts):.1f}/text), {flops / 1e9:.1f} GFLOP per pass")
    times: dict[str, list[float]] = {name: [] for name in impls}
    for model in impls.values():
        _encode(model, texts[:64])
    for _ in range(3):  # round-robin, so a neighbour's load on the shared cores hits every impl alike
        for name, model in impls.items():
            t = time.perf_counter()
            _encode(model, texts)
            times[name].append(time.perf_counter() - t)
    res = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        res[name] = len(texts) / med
        print(f"{name:24s} median {med:7.3f}s  {len(texts) / med:8.1f} texts/s  {tokens / med:9.0f} tok/s  "
              f"{flops / med / 1e9:6.1f} GFLOP/s")
    peer = res.get("sentence-transformers")
    if peer:
        for name in res:
            if name.startswith("infercore"):
                print(f"{name} / sentence-transformers: {res[name] / peer:.2f}x")


if __name__ == "__main__":
    main("--quick" in sys.argv)
