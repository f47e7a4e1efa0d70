"""Timing, the bandwidth probe and suite discovery."""

from __future__ import annotations

import gc
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable

from .._native import _C
from .._system import get_isa, get_num_threads
from .case import Case, Result, is_ours

SUITES = ("norm", "gelu", "topk", "linear", "attention", "guardrails", "embed", "rag", "generate", "chains", "serve",
          "structured", "activation", "sample")


def load_suite(name: str, quick: bool) -> list[Case]:
    if name not in SUITES:
        raise ValueError(f"suite: expected one of {SUITES}, got {name!r}")
    mod = importlib.import_module(f"infercore.benchmarks.bench_{name}")
    return list(mod.cases(quick))


def measure_bandwidth(quick: bool) -> float:
    """Streaming-read GB/s with every pool thread, on a buffer far larger than the last-level
    cache (1 GiB; 256 MiB with quick). Median of the passes after the first."""
    nbytes = (256 << 20) if quick else (1 << 30)
    passes = list(_C.read_bandwidth_gbps(nbytes, 6 if quick else 8))
    return float(statistics.median(passes[1:]))


def time_case(case: Case, quick: bool) -> tuple[float, float, int]:
    """(median, min, repeats) in seconds: warm up, then repeat for >= min_repeats calls and
    ~0.3 s (1 s without quick), capped at 200 calls."""
    if case.setup is not None:
        case.setup()
    case.fn()  # warm-up (first-touch, JIT, caches)
    budget = 0.3 if quick else 1.0
    times: list[float] = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        while len(times) < case.min_repeats or (time.perf_counter() - start < budget and len(times) < 200):
            t0 = time.perf_counter()
            case.fn()
            times.append(time.perf_counter() - t0)
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(times), min(times), len(times)


def run_cases(cases: Iterable[Case], bandwidth_gbps: float, quick: bool, progress=None) -> list[Result]:
    results: list[Result] = []
    for case in cases:
        if progress is not None:
            progress(case)
        med, mn, reps = time_case(case, quick)
        gbps = case.bytes / med / 1e9 if case.bytes else None
        extra = dict(case.extra)
        if case.items:
            extra[f"{case.unit}/s"] = round(case.items / med, 2)
        if case.after is not None:
            extra.update(case.after())
        results.append(
            row := Result(
                key=case.key,
                suite=case.suite,
                op=case.op,
                shape=case.shape,
                dtype=case.dtype,
                impl=case.impl,
                backend=case.backend,
                isa=get_isa() if is_ours(case.impl) and case.backend == "cpu" else "-",
                threads=get_num_threads(),
                median_s=med,
                min_s=mn,
                repeats=reps,
                gbps=gbps,
                gflops=case.flops / med / 1e9 if case.flops else None,
                pct_bandwidth=100.0 * gbps / bandwidth_gbps if gbps and bandwidth_gbps > 0 else None,
                extra=extra,
                vs_dtype=case.vs_dtype,
            )
        )
        if os.environ.get("INFERCORE_BENCH_STREAM") == "1":  # a run cut off by a time limit keeps its rows
            print(f"[row] {row.op} {row.shape} {row.dtype} {row.impl} {row.backend} {row.median_s * 1e6:.1f}us "
                  f"GB/s={row.gbps and round(row.gbps, 1)} GFLOP/s={row.gflops and round(row.gflops, 1)} {row.extra}",
                  file=sys.stderr, flush=True)  # fmt: skip
    _fill_ratios(results)
    return results


def gpu_only_entry(suite: str, description: str | None, gpu_main: Callable[[bool], None]) -> None:
    """`python -m infercore.benchmarks.bench_<suite> --gpu-only [--quick]`: the suite's GPU table
    alone (its CPU table is `infercore bench <suite>`)."""
    import argparse

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--gpu-only", action="store_true", help=f"only the GPU cases (CPU: infercore bench {suite})")
    args = ap.parse_args()
    if not args.gpu_only:
        ap.error(f"run the CPU table with `infercore bench {suite}`; this entry point takes --gpu-only")
    gpu_main(args.quick)


def _fill_ratios(results: list[Result]) -> None:
    groups: dict[tuple[str, str, str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.suite, r.op, r.shape, r.dtype), []).append(r)
    for rows in groups.values():
        for ours in (r for r in rows if is_ours(r.impl)):
            for peer in (r for r in rows if not is_ours(r.impl)):
                name = peer.impl if peer.backend == ours.backend else f"{peer.impl}:{peer.backend}"
                ours.speedup_vs[name] = peer.median_s / ours.median_s
    # Cross-dtype rows (Case.vs_dtype): the same impl in another dtype, e.g. fp8 KV against float16.
    by_dtype = {(r.suite, r.op, r.shape, r.impl, r.backend, r.dtype): r for r in results}
    for r in results:
        if r.vs_dtype and r.vs_dtype != r.dtype:
            base = by_dtype.get((r.suite, r.op, r.shape, r.impl, r.backend, r.vs_dtype))
            if base is not None:
                r.speedup_vs[r.vs_dtype] = base.median_s / r.median_s
