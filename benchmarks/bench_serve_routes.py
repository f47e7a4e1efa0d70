"""Embeddings and RAG through the server vs in process, on this machine (loopback; the client
shares the cores with the server).

    python -m infercore.benchmarks.bench_serve_routes embed --texts 512 --concurrency 8
    python -m infercore.benchmarks.bench_serve_routes rag --repeats 3

embed: texts/s of Embedder.encode(all) in process; of one POST /v1/embeddings with all texts;
and of one-text requests from `concurrency` clients (the server batches concurrent requests).
rag: latency of RAG.answer in process vs POST /v1/rag/query (SmolLM2 + MiniLM over the bundled
documents, greedy, the CLI's demo questions), after one untimed pass so both phases see the same
warm prefix cache.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from typing import Any


def _serve(app: Any) -> Any:
    import contextlib
    import socket
    import threading

    import uvicorn

    @contextlib.contextmanager
    def ctx() -> Any:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        t.start()
        while not server.started:
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            t.join(30)
            sock.close()

    return ctx()


def bench_embed(n: int, concurrency: int) -> dict[str, float]:
    import httpx
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    from infercore import LLM, Embedder
    from infercore.serve import build_app

    emb = Embedder("minilm")
    words = "the quick brown fox jumps over the lazy dog while paged attention stores keys and values".split()
    texts = [" ".join(words[(i + j) % len(words)] for j in range(8 + i % 16)) for i in range(n)]
    emb.encode(texts[:64])  # warm up
    t = time.perf_counter()
    emb.encode(texts)
    out = {"in_process_texts_per_s": n / (time.perf_counter() - t)}
    llm = LLM(tiny_llama_dir(tempfile.mkdtemp(prefix="ic-bench-") + "/m"), kv_cache_dtype="float32",
              kv_cache_bytes=1 << 22)  # fmt: skip
    app = build_app(llm, model_name="tiny", embedder=emb, max_body_bytes=1 << 24, max_queue=4 * n)
    with _serve(app) as url, httpx.Client(base_url=url, timeout=300) as h:
        h.post("/v1/embeddings", json={"model": "minilm", "input": texts[:64]})
        for fmt in ("float", "base64"):
            t = time.perf_counter()
            r = h.post("/v1/embeddings", json={"model": "minilm", "input": texts, "encoding_format": fmt})
            assert r.status_code == 200
            out[f"server_one_request_{fmt}_texts_per_s"] = n / (time.perf_counter() - t)

        async def clients() -> float:
            q = list(texts)
            async with httpx.AsyncClient(base_url=url, timeout=300) as ah:
                async def worker() -> None:
                    while q:
                        text = q.pop()
                        r = await ah.post("/v1/embeddings", json={"model": "minilm", "input": text,
                                                                  "encoding_format": "base64"})  # fmt: skip
                        assert r.status_code == 200

                t = time.perf_counter()
                await asyncio.gather(*[worker() for _ in range(concurrency)])
                return time.perf_counter() - t

        passes = app.state.embed_batcher.passes
        out[f"server_{concurrency}_clients_one_text_texts_per_s"] = n / asyncio.run(clients())
        out["forward_passes_for_concurrent_requests"] = app.state.embed_batcher.passes - passes
    return out


def bench_rag(repeats: int) -> dict[str, float]:
    import os

    import httpx

    from infercore import LLM, Embedder
    from infercore.cli.rag_cmd import DEMO_QUESTIONS
    from infercore.rag import RAG
    from infercore.serve import build_app

    data = os.path.join(os.path.dirname(__import__("infercore.rag", fromlist=["x"]).__file__), "data")
    emb, llm = Embedder("minilm"), LLM("smollm2", max_num_seqs=4)
    rag = RAG(tempfile.mkdtemp(prefix="ic-bench-rag-"), emb, llm=llm)
    rag.ingest([data])
    for q in DEMO_QUESTIONS:  # warm-up: both timed phases then find the prompts in the prefix cache
        rag.answer(q, k=4)
    inproc = []
    for _ in range(repeats):
        for q in DEMO_QUESTIONS:
            t = time.perf_counter()
            rag.answer(q, k=4)
            inproc.append(time.perf_counter() - t)
    served, cov = [], []
    with _serve(build_app(llm, model_name="smollm2", rag=rag)) as url, httpx.Client(base_url=url, timeout=300) as h:
        for _ in range(repeats):
            for q in DEMO_QUESTIONS:
                t = time.perf_counter()
                r = h.post("/v1/rag/query", json={"query": q, "k": 4})
                served.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
                cov.append(r.json()["metrics"].get("citation_coverage", float("nan")))
    return {"in_process_median_s": statistics.median(inproc), "server_median_s": statistics.median(served),
            "in_process_max_s": max(inproc), "server_max_s": max(served), "queries": len(served),
            "mean_citation_coverage": statistics.fmean(cov)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    e = sub.add_parser("embed")
    e.add_argument("--texts", type=int, default=512)
    e.add_argument("--concurrency", type=int, default=8)
    r = sub.add_parser("rag")
    r.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    res = bench_embed(args.texts, args.concurrency) if args.what == "embed" else bench_rag(args.repeats)
    for k, v in res.items():
        print(f"{k:45s} {v:10.3f}" if isinstance(v, float) else f"{k:45s} {v:10d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
