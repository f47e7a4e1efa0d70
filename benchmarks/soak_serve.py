"""Soak: open-loop Poisson load on a running `infercore serve` for a fixed time, with the server's
RSS sampled from /proc/PID/status, reporting errors, latency percentiles and memory growth.

    infercore serve --model smollm2 --port 8000 --max-queue 1024 &
    python -m infercore.benchmarks.soak_serve --url http://127.0.0.1:8000 --pid $! --rate 0.4 --minutes 10

Memory growth is (median RSS of the last 10% of samples) / (median RSS of the samples in the
first minute after `--warmup-s`) - 1: allocator warm-up and the first batches' buffers are not
counted as growth, a steady leak is. The arrival stream is the same as bench_serve.run_load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time

import numpy as np
from infercore.benchmarks.bench_serve import run_load


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"pid: no VmRSS for process {pid}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True, help="the server process (RSS is sampled)")
    p.add_argument("--model", default="smollm2")
    p.add_argument("--rate", type=float, required=True, help="requests/s (Poisson)")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--sample-s", type=float, default=5.0)
    p.add_argument("--warmup-s", type=float, default=60.0)
    p.add_argument("--json", help="write the summary and the RSS samples as JSON")
    a = p.parse_args(argv)
    if a.rate <= 0 or a.minutes <= 0:
        raise SystemExit("--rate and --minutes must be > 0")
    n = max(1, round(a.rate * a.minutes * 60))
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sampler() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - t0, rss_bytes(a.pid)))
            stop.wait(a.sample_s)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    stats = asyncio.run(run_load(a.url, a.model, a.rate, n, a.max_tokens, seed=1))
    stop.set()
    th.join()
    base = [r for t, r in samples if a.warmup_s <= t < a.warmup_s + 60] or [samples[0][1]]
    tail = [r for _, r in samples[-max(1, len(samples) // 10):]]
    growth = float(np.median(tail)) / float(np.median(base)) - 1.0
    summary = {**stats, "minutes": a.minutes, "rss_start_mb": samples[0][1] / 2**20,
               "rss_base_mb": float(np.median(base)) / 2**20, "rss_end_mb": float(np.median(tail)) / 2**20,
               "rss_max_mb": max(r for _, r in samples) / 2**20, "rss_growth": growth}  # fmt: skip
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()}, indent=1))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump({"summary": summary, "rss": samples}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
