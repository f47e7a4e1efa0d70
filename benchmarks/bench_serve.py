"""Open-loop load on the OpenAI-compatible server over loopback: Poisson arrivals at a fixed
rate (each request is sent at its arrival time whatever the others are doing), streamed
completions with a fixed answer length (ignore_eos), client-side TTFT / ITL / e2e percentiles,
output-token throughput and errors.

    python -m infercore.benchmarks.bench_serve --rates 0.5 1 2 --requests 40 --max-tokens 128
    python -m infercore.benchmarks.bench_serve --url http://127.0.0.1:8000 --model smollm2 ...

Without --url it starts `infercore serve`'s app in this process (uvicorn in a thread) on a free
loopback port, so the load generator and the server share the machine's cores (2 here): the
numbers are a lower bound for a server with the machine to itself. In `infercore bench serve`
the timed call is one whole load run (so median_s is its wall time); the percentiles are in extra.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import threading
import time
from typing import Any

import numpy as np

from infercore.bench import Case

PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a refrigerator works to a ten-year-old.",
    "List some good habits for writing maintainable Python code and explain why.",
    "Describe the water cycle in detail.",
    "Write a product description for a solar-powered backpack.",
    "What are the pros and cons of remote work? Discuss.",
    "Summarize the plot of a heist movie you invent on the spot.",
    "Give step-by-step instructions for baking bread at home.",
]


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    return float(np.percentile(np.asarray(xs), q))


async def _one(client: Any, url: str, body: dict, t_send: float) -> dict[str, Any]:
    ttft, itl, tokens, err = None, [], 0, None
    last = None
    try:
        async with client.stream("POST", url, json=body) as r:
            if r.status_code != 200:
                await r.aread()
                return {"error": r.status_code}
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                msg = json.loads(line[6:])
                if "error" in msg:
                    err = msg["error"].get("code") or "stream_error"
                    continue
                now = time.perf_counter()
                for c in msg.get("choices", []):
                    if c.get("text"):
                        tokens += 1 if c.get("logprobs") is None else len(c["logprobs"]["tokens"])
                        if ttft is None:
                            ttft = now - t_send
                        elif last is not None:
                            itl.append(now - last)
                        last = now
                if msg.get("usage"):
                    tokens = msg["usage"]["completion_tokens"]
    except Exception as e:  # a transport failure counts as an error of this request
        return {"error": type(e).__name__}
    return {"error": err, "ttft": ttft, "itl": itl, "e2e": time.perf_counter() - t_send, "tokens": tokens}


async def run_load(base_url: str, model: str, rate: float, num_requests: int, max_tokens: int,
                   seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """One open-loop run: Poisson arrivals at `rate` requests/s."""
    import httpx

    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, num_requests))
    url = base_url.rstrip("/") + "/v1/completions"
    limits = httpx.Limits(max_connections=num_requests + 4, max_keepalive_connections=num_requests + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
        t0 = time.perf_counter()

        async def fire(i: int) -> dict[str, Any]:
            delay = t0 + arrivals[i] - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = {"model": model, "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens,
                    "ignore_eos": True, "temperature": 0.7, "seed": i, "stream": True,
                    "stream_options": {"include_usage": True}}  # fmt: skip
            return await _one(client, url, body, time.perf_counter())

        results = await asyncio.gather(*[fire(i) for i in range(num_requests)])
        wall = time.perf_counter() - t0
    ok = [r for r in results if not r.get("error")]
    ttft = [r["ttft"] for r in ok if r["ttft"] is not None]
    itl = [x for r in ok for x in r["itl"]]
    e2e = [r["e2e"] for r in ok]
    toks = sum(r["tokens"] for r in ok)
    return {
        "rate_rps": rate, "requests": num_requests, "max_tokens": max_tokens, "ok": len(ok),
        "errors": num_requests - len(ok), "wall_s": wall,
        "ttft_p50_s": _pct(ttft, 50), "ttft_p99_s": _pct(ttft, 99),
        "itl_p50_s": _pct(itl, 50), "itl_p99_s": _pct(itl, 99),
        "e2e_p50_s": _pct(e2e, 50), "e2e_p99_s": _pct(e2e, 99),
        "output_tok_per_s": toks / wall if wall > 0 else 0.0,
        "req_per_s": len(ok) / wall if wall > 0 else 0.0,
        "e2e_mean_s": statistics.fmean(e2e) if e2e else float("nan"),
    }  # fmt: skip


@contextlib.contextmanager
def local_server(llm: Any, model: str):
    """build_app(llm) under uvicorn in a thread on a free 127.0.0.1 port; always shut down."""
    import uvicorn

    from infercore.serve import build_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(build_app(llm, model_name=model, max_queue=1024), log_level="warning"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    while not server.started:
        if not t.is_alive():
            raise RuntimeError("bench_serve: the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        t.join(60)
        sock.close()


def cases(quick: bool) -> list[Case]:
    from infercore import LLM

    state: dict[str, Any] = {}
    rate, n, max_tokens = (1.0, 6, 16) if quick else (1.0, 30, 128)

    def llm() -> Any:
        if "llm" not in state:
            state["llm"] = LLM("smollm2")
        return state["llm"]

    case = Case("serve", "poisson_load", f"rate{rate:g}x{n}", f"out{max_tokens}", "infercore", fn=lambda: None,
                min_repeats=1)  # fmt: skip

    def run() -> None:
        with local_server(llm(), "smollm2") as url:
            stats = asyncio.run(run_load(url, "smollm2", rate, n, max_tokens))
        case.extra.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items()})

    case.fn = run
    return [case]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="an already running server (default: start one in this process)")
    p.add_argument("--model", default="smollm2")
    p.add_argument("--rates", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    p.add_argument("--requests", type=int, default=30)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--slo-p99-s", type=float, default=3.0, help="report the highest rate meeting this e2e P99")
    p.add_argument("--json", help="write the runs as JSON")
    a = p.parse_args(argv)
    runs = []

    def sweep(url: str) -> None:
        for r in a.rates:
            s = asyncio.run(run_load(url, a.model, r, a.requests, a.max_tokens))
            runs.append(s)
            print(f"rate {r:6.2f}/s  ok {s['ok']:3d} err {s['errors']:2d}  TTFT p50 {s['ttft_p50_s']:.3f} "
                  f"p99 {s['ttft_p99_s']:.3f}  ITL p50 {s['itl_p50_s'] * 1e3:.1f} p99 {s['itl_p99_s'] * 1e3:.1f} ms  "
                  f"e2e p50 {s['e2e_p50_s']:.2f} p99 {s['e2e_p99_s']:.2f} s  {s['output_tok_per_s']:.1f} tok/s  "
                  f"{s['req_per_s']:.2f} req/s", flush=True)  # fmt: skip

    if a.url:
        sweep(a.url)
    else:
        from infercore import LLM

        with local_server(LLM(a.model), a.model) as url:
            sweep(url)
    good = [s["rate_rps"] for s in runs if s["errors"] == 0 and s["e2e_p99_s"] <= a.slo_p99_s]
    print(f"highest rate with e2e P99 <= {a.slo_p99_s:g} s and 0 errors: "
          f"{max(good) if good else 'none of those tried'}")  # fmt: skip
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump(runs, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
