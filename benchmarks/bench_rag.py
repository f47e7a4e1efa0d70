"""RAG timings: ingest throughput (chunks/s: chunking + embedding + SQLite + index save) and query
latency p50/p99 (query embedding + top-k over N stored vectors), and the answer step's TTFT.

Ingest uses synthetic prose documents through the real pipeline; the query-latency index holds N
synthetic unit vectors (dimension 384, float32), as the issue allows for the index size.
Run directly: python -m infercore.benchmarks.bench_rag [--quick] [--n N] [--ttft]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import numpy as np

import infercore
from infercore.bench import Case

_WORDS = ("the index stores vectors while the scheduler batches requests and kernels read memory at high "
          "bandwidth so that answers arrive with citations and measured latency on shared cores").split()


def make_docs(n_docs: int, sents_per_doc: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n_docs):
        sents = [" ".join(rng.choice(_WORDS, int(rng.integers(8, 20)))).capitalize() + "."
                 for _ in range(sents_per_doc)]
        docs.append(" ".join(sents[: sents_per_doc // 2]) + "\n\n" + " ".join(sents[sents_per_doc // 2:]))
    return docs


def ingest_rate(embedder, n_docs: int) -> dict[str, float]:
    from infercore.rag import RAG

    docs = make_docs(n_docs, 24)
    with tempfile.TemporaryDirectory() as d:
        rag = RAG(d, embedder, chunk_tokens=128, overlap_tokens=16)
        t = time.perf_counter()
        for i, text in enumerate(docs):
            rag.ingest_text(text, f"doc{i}", {"i": i % 7})
        dt = time.perf_counter() - t
        chunks = rag.store.num_chunks()
        rag.store.close()
    return {"docs": n_docs, "chunks": chunks, "seconds": dt, "chunks_per_s": chunks / dt}


def query_latency(embedder, n: int, queries: int = 50, k: int = 4) -> dict[str, float]:
    rng = np.random.default_rng(1)
    index = infercore.VectorIndex(embedder.dim, "cosine", "float32")
    step = 100_000
    for s in range(0, n, step):
        v = rng.standard_normal((min(step, n - s), embedder.dim), dtype=np.float32)
        index.add(v)
    qs = [f"how does the scheduler batch request number {i}?" for i in range(queries)]
    embedder.encode(qs[:2])
    emb_t, search_t, total = [], [], []
    for q in qs:
        t0 = time.perf_counter()
        vec = embedder.encode([q])
        t1 = time.perf_counter()
        index.search(vec, k)
        t2 = time.perf_counter()
        emb_t.append(t1 - t0)
        search_t.append(t2 - t1)
        total.append(t2 - t0)
    total.sort()
    p99 = total[min(len(total) - 1, int(0.99 * len(total)))]
    return {"n": n, "p50_ms": statistics.median(total) * 1e3, "p99_ms": p99 * 1e3,
            "embed_p50_ms": statistics.median(emb_t) * 1e3, "search_p50_ms": statistics.median(search_t) * 1e3}


def answer_ttft(embedder, repeats: int = 3) -> dict[str, float]:
    """TTFT of the answer step on the bundled docs (k=3 sources, SmolLM2)."""
    import os

    from infercore.rag import RAG

    data = os.path.join(os.path.dirname(infercore.__file__), "rag", "data")
    with tempfile.TemporaryDirectory() as d:
        rag = RAG(d, embedder)
        rag.ingest([data])
        ttft, retr = [], []
        qs = ["How many tokens does a KV cache block hold?", "What is the source of truth in a RAG store?",
              "How are int8 weights quantized?", "What does infercore bench print?", "How are texts batched?"]
        for q in qs[:repeats]:  # distinct questions: a repeated prompt would hit the prefix cache
            a = rag.answer(q, k=3, compute_metrics=False)
            ttft.append(a.timings.get("ttft_s", float("nan")))
            retr.append(a.timings["retrieve_s"])
        rag.store.close()
    return {"ttft_p50_ms": statistics.median(ttft) * 1e3, "retrieve_p50_ms": statistics.median(retr) * 1e3}


def cases(quick: bool) -> list[Case]:
    from infercore.embed import Embedder

    emb = Embedder("minilm")
    n = 100_000 if quick else 1_000_000
    lat = query_latency(emb, n, queries=20 if quick else 100)
    ing = ingest_rate(emb, 10 if quick else 100)
    rng = np.random.default_rng(2)
    index = infercore.VectorIndex(emb.dim)
    index.add(rng.standard_normal((n, emb.dim), dtype=np.float32))
    q = emb.encode(["how does the scheduler batch requests?"])
    return [Case("rag", "query", f"N={n}", "fp32", "infercore", lambda: index.search(emb.encode(["query text"]), 4),
                 bytes=4.0 * n * emb.dim, extra={k: round(v, 3) for k, v in {**lat, **ing}.items()}),
            Case("rag", "search", f"N={n}", "fp32", "infercore", lambda: index.search(q, 4), bytes=4.0 * n * emb.dim)]


def main(argv: list[str]) -> None:
    from infercore.embed import Embedder

    emb = Embedder("minilm")
    quick = "--quick" in argv
    n = int(argv[argv.index("--n") + 1]) if "--n" in argv else (100_000 if quick else 1_000_000)
    print(f"cpu isa {infercore.get_isa()}, threads {infercore.get_num_threads()}")
    ing = ingest_rate(emb, 10 if quick else 100)
    print(f"ingest: {ing['docs']} docs, {ing['chunks']} chunks in {ing['seconds']:.1f}s = "
          f"{ing['chunks_per_s']:.1f} chunks/s")
    lat = query_latency(emb, n, queries=20 if quick else 100)
    print(f"query over N={n}: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms "
          f"(embed p50 {lat['embed_p50_ms']:.1f} ms, search p50 {lat['search_p50_ms']:.1f} ms)")
    if "--ttft" in argv:
        t = answer_ttft(emb)
        print(f"answer step: retrieve p50 {t['retrieve_p50_ms']:.1f} ms, TTFT p50 {t['ttft_p50_ms']:.0f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
