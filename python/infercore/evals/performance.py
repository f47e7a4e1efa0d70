"""Stage 4, performance SLO: a bounded load run against the engine through `AsyncLLM`.

`requests` requests (prompts cycled from the prompt file), at most `concurrency` in flight, each
generating exactly `max_tokens` tokens (ignore_eos, so runs are comparable). Timings are taken by
the client (this coroutine), as a user of the server would see them:

TTFT  submit -> first output token; ITL: gap between consecutive output tokens (a step that
delivers k tokens counts k gaps of equal size); e2e: submit -> last token. Reported as
`ttft_p50_s`, `ttft_p95_s`, `ttft_p99_s`, `itl_*`, `e2e_*` (numpy's linear-interpolation
percentile; samples = all measured latencies, statistic "pNN"); `throughput_tok_s` = generated
tokens / wall time of the run and `request_throughput_rps` (no per-item samples: a rate of the
whole run); `error_rate` = failed requests (exception, abort, or past `timeout_s`) / requests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from .datasets import read_jsonl
from .results import Metric

DEFAULT_PROMPTS = [
    "Explain what a KV cache is in two sentences.",
    "Write a haiku about the sea.",
    "List three uses of a hash map.",
    "What is the capital of Japan? Answer briefly.",
    "Summarize the plot of Romeo and Juliet in one sentence.",
    "Give one tip for writing clear emails.",
    "Translate 'good morning' into French.",
    "Why is the sky blue? Keep it short.",
]
PERCENTILES = (50, 95, 99)


async def _request(allm: Any, ids: list[int], sp: Any, rid: str, timeout_s: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    first = last = None
    ntok = 0
    itls: list[float] = []
    finish = None

    async def consume() -> None:
        nonlocal first, last, ntok, finish
        async for out in allm.generate(ids, sp, request_id=rid):
            now = time.perf_counter()
            n = len(out.outputs[0].token_ids)
            if n > ntok:
                if first is None:
                    first = now
                    if n > 1:
                        itls.extend([0.0] * (n - 1))
                else:
                    itls.extend([(now - last) / (n - ntok)] * (n - ntok))
                last, ntok = now, n
            finish = out.outputs[0].finish_reason

    try:
        await asyncio.wait_for(consume(), timeout_s)
    except asyncio.TimeoutError:
        return {"ok": False, "error": f"timeout after {timeout_s}s", "tokens": ntok}
    except Exception as e:  # a failed request is a data point, not a crash
        return {"ok": False, "error": repr(e)[:200], "tokens": ntok}
    if first is None or finish == "abort":
        return {"ok": False, "error": f"finished without tokens ({finish})", "tokens": ntok}
    return {"ok": True, "ttft": first - t0, "e2e": last - t0, "itl": itls, "tokens": ntok}


async def load_run(allm: Any, prompts: list[list[int]], *, requests: int, concurrency: int, max_tokens: int,
                   timeout_s: float = 120.0) -> tuple[list[dict[str, Any]], float]:
    """(per-request records, wall seconds) of a bounded closed-loop load run."""
    from ..engine.sampling_params import SamplingParams

    sp = SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> dict[str, Any]:
        async with sem:
            return await _request(allm, prompts[i % len(prompts)], sp, f"eval-perf-{i}", timeout_s)

    t0 = time.perf_counter()
    recs = await asyncio.gather(*(one(i) for i in range(requests)))
    return list(recs), time.perf_counter() - t0


def latency_metrics(prefix: str, values: list[float]) -> dict[str, Metric]:
    if not values:
        return {f"{prefix}_p{p}_s": Metric(float("nan"), False, [], f"p{p}") for p in PERCENTILES}
    arr = np.asarray(values, dtype=np.float64)
    return {f"{prefix}_p{p}_s": Metric(float(np.percentile(arr, p)), False, values, f"p{p}") for p in PERCENTILES}


def summarize(recs: list[dict[str, Any]], wall: float) -> dict[str, Metric]:
    ok = [r for r in recs if r["ok"]]
    m: dict[str, Metric] = {}
    m.update(latency_metrics("ttft", [r["ttft"] for r in ok]))
    m.update(latency_metrics("itl", [x for r in ok for x in r["itl"]]))
    m.update(latency_metrics("e2e", [r["e2e"] for r in ok]))
    tokens = sum(r["tokens"] for r in recs)
    m["throughput_tok_s"] = Metric(tokens / wall if wall > 0 else 0.0, True)
    m["request_throughput_rps"] = Metric(len(ok) / wall if wall > 0 else 0.0, True)
    errs = [0.0 if r["ok"] else 1.0 for r in recs]
    m["error_rate"] = Metric(sum(errs) / len(errs), False, errs)
    return m


def run_performance(ctx: Any, stage: Any) -> tuple[dict[str, Metric], dict[str, Any]]:
    from ..engine.async_llm import AsyncLLM

    o = stage.options
    texts = [r["prompt"] for r in read_jsonl(o["prompts"], "performance")] if o.get("prompts") else DEFAULT_PROMPTS
    llm = ctx.llm
    prompts = []
    for t in texts:
        if llm.chat_template is not None:
            prompts.append(llm.tokenizer.encode(llm.render_chat([{"role": "user", "content": t}]),
                                                add_special_tokens=False))
        else:
            prompts.append(llm.tokenizer.encode(t, add_special_tokens=True))
    allm = AsyncLLM.from_llm(llm)
    try:
        recs, wall = asyncio.run(load_run(allm, prompts, requests=o["requests"], concurrency=o["concurrency"],
                                          max_tokens=o["max_tokens"], timeout_s=o["timeout_s"]))
    finally:
        allm.shutdown()
    for i, r in enumerate(recs):
        ctx.cost.add(prompt_tokens=len(prompts[i % len(prompts)]), generated_tokens=r["tokens"], calls=1)
    m = summarize(recs, wall)
    details = {"requests": o["requests"], "concurrency": o["concurrency"], "max_tokens": o["max_tokens"],
               "load_wall_s": wall, "errors": [r["error"] for r in recs if not r["ok"]][:10]}
    return m, details
