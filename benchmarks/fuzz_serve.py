"""Fuzz the OpenAI-compatible server with schemathesis (4.x) against its generated OpenAPI
schema, in-process over the ASGI transport: positive and negative examples for every operation,
on a tiny random model with a short context (bounded work per request), the embeddings and RAG
routes when MiniLM is installed, the default guard and an API key. Fails on any 5xx, on a 4xx
not in OpenAI's error shape, and if /health stops answering.

    python -m infercore.benchmarks.fuzz_serve --examples 200       # a soak: ~examples x ops x 2 calls
    (tests/serve/test_fuzz_schemathesis.py runs the same with a few examples per operation)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from typing import Any

API_KEY = "fuzz-key"


def fuzz_app(workdir: str, *, max_model_len: int = 256) -> Any:
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    from infercore import LLM
    from infercore.guardrails import Guard
    from infercore.serve import build_app

    d = tiny_llama_dir(os.path.join(workdir, "tiny"))
    llm = LLM(d, kv_cache_dtype="float32", kv_cache_bytes=1 << 22, max_num_seqs=8, max_model_len=max_model_len)
    embedder = rag = None
    try:
        from infercore import Embedder

        embedder = Embedder("minilm")
    except (FileNotFoundError, ValueError):
        pass
    if embedder is not None:
        from infercore.rag import RAG

        rag = RAG(os.path.join(workdir, "store"), embedder, llm=llm, chunk_tokens=16, overlap_tokens=4)
        rag.ingest_text("Paged attention stores keys and values in fixed-size blocks.", "a", {"topic": "kv"})
    return build_app(llm, model_name="tiny", api_key=API_KEY, guard=Guard.default(), embedder=embedder, rag=rag,
                     max_body_bytes=1 << 16, max_queue=8)  # fmt: skip


def check_response(case: Any, r: Any) -> None:
    where = f"{case.method} {case.path} body={str(case.body)[:300]!r}"
    if r.status_code >= 500:
        raise AssertionError(f"{where}: {r.status_code} {r.text[:500]}")
    if r.status_code >= 400 and case.path not in ("/ready", "/health"):  # those answer 503 with their own body
        err = json.loads(r.text)["error"]
        if not (isinstance(err["message"], str) and err["message"] and err["type"]):
            raise AssertionError(f"{where}: error not in OpenAI's shape: {r.text[:300]}")


def _run_one(strategy: Any, counts: collections.Counter, max_examples: int, derandomize: bool) -> None:
    from hypothesis import HealthCheck, given, settings

    @given(case=strategy)
    @settings(max_examples=max_examples, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def one(case: Any) -> None:
        r = case.call(headers={"Authorization": f"Bearer {API_KEY}"})
        counts[r.status_code] += 1
        check_response(case, r)

    one()


def run_fuzz(app: Any, max_examples: int, *, seed_derandomize: bool = True) -> dict[str, collections.Counter]:
    """Every operation x {positive, negative} examples; returns status counts per operation."""
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.python.asgi import shutdown_lifespans

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    counts: dict[str, collections.Counter] = {}
    try:
        for result in schema.get_all_operations():
            op = result.ok()
            name = f"{op.method.upper()} {op.path}"
            counts[name] = collections.Counter()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    _run_one(op.as_strategy(generation_mode=mode), counts[name], max_examples, seed_derandomize)
                except Unsatisfiable:
                    if mode is GenerationMode.POSITIVE:
                        raise  # only an operation without inputs has no invalid example (GET /health)
        health = schema["/health"]["GET"].Case().call()
        if health.status_code != 200:
            raise AssertionError(f"/health answered {health.status_code} after the fuzz run")
    finally:
        shutdown_lifespans()
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=100, help="examples per operation and mode")
    ap.add_argument("--random", action="store_true", help="a fresh random run (default: derandomized)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ic-fuzz-") as d:
        counts = run_fuzz(fuzz_app(d), args.examples, seed_derandomize=not args.random)
    total = sum(sum(c.values()) for c in counts.values())
    for name, c in counts.items():
        print(f"{name:28s} {dict(sorted(c.items()))}")
    print(f"{total} requests in {time.perf_counter() - t0:.1f} s, no 5xx, server healthy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
