"""Printing, saving, comparing and plotting benchmark results."""

from __future__ import annotations

import json
import platform
import re
from dataclasses import asdict
from typing import Any

from .._fileio import atomic_write
from .case import Result, is_ours


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(results: list[Result], bandwidth_gbps: float, cpu: str) -> str:
    head = ("op", "shape", "dtype", "impl", "backend", "isa", "thr", "median ms", "GB/s", "%BW", "GFLOP/s", "vs peers")
    rows = [head]
    for r in results:
        peers = ", ".join(f"{k} {v:.2f}x" for k, v in r.speedup_vs.items())
        extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.extra.items())
        rows.append(
            (
                r.op,
                r.shape,
                r.dtype,
                r.impl,
                r.backend,
                r.isa,
                str(r.threads),
                f"{r.median_s * 1e3:.3f}",
                _fmt(r.gbps, ".1f"),
                _fmt(r.pct_bandwidth, ".0f"),
                _fmt(r.gflops, ".1f"),
                (peers + (" " if peers and extra else "") + extra) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"CPU: {cpu} | streaming read (same run): {bandwidth_gbps:.1f} GB/s"]
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(results: list[Result], bandwidth_gbps: float, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": 1,
        "machine": {"cpu": info["cpu"].get("brand", ""), "isa": info["cpu"]["isa"], "node": platform.node()},
        "threads": info["threads"],
        "bandwidth_gbps": bandwidth_gbps,
        "results": [asdict(r) for r in results],
    }


def save_json(doc: dict[str, Any], path: str) -> None:
    """Atomic: a crash never leaves a half-written file."""
    atomic_write(path, json.dumps(doc, indent=1).encode())


def load_json(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"baseline: no such file {path!r}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"baseline: {path!r} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ValueError(f"baseline: {path!r} is not an infercore bench result (no 'results' list)")
    return doc


def compare(results: list[Result], baseline: dict[str, Any], tolerance: float) -> tuple[list[str], list[str]]:
    """Lines describing each infercore case against the baseline, and the regressions among them.

    A regression is a median more than `tolerance` (fraction) slower than the baseline's median
    for the same key. Peers are not judged: they are not our code.
    """
    base = {r["key"]: r for r in baseline["results"] if isinstance(r, dict) and "key" in r}
    lines, regressions = [], []
    for r in results:
        if not is_ours(r.impl) or r.key not in base:
            continue
        old = float(base[r.key]["median_s"])
        change = r.median_s / old - 1.0 if old > 0 else 0.0
        line = f"{r.key}: {old * 1e3:.3f} ms -> {r.median_s * 1e3:.3f} ms ({change:+.1%})"
        lines.append(line)
        if change > tolerance:
            regressions.append(line)
    return lines, regressions


def plot(results: list[Result], path: str) -> None:
    """Bar chart of GB/s (or GFLOP/s) per case, grouped by op and shape."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'infercore[bench]'") from None
    labels = [f"{r.op} {r.shape} {r.dtype}\n{r.impl}:{r.backend}" for r in results]
    values = [r.gbps if r.gbps is not None else (r.gflops or 0.0) for r in results]
    colors = ["tab:blue" if is_ours(r.impl) else "tab:gray" for r in results]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(results)), 4.5))
    ax.bar(range(len(results)), values, color=colors)
    ax.set_xticks(range(len(results)), labels, rotation=90, fontsize=7)
    ax.set_ylabel("GB/s (or GFLOP/s where no bytes are set)")
    ax.set_title("infercore bench (blue: infercore, gray: peers)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    _plot_concurrency(plt, results, path)


def _plot_concurrency(plt, results: list[Result], path: str) -> str | None:
    """Aggregate tokens/s vs concurrent streams (the generate suite's "decode xN" cases), saved
    beside the bar chart as <path>-concurrency.png; None when the run has no such cases."""
    # "decode xN" rows only ("decode x16 sampled" is the same concurrency with sampling, not a point)
    matches = [(re.fullmatch(r"decode x(\d+)", r.op), r) for r in results if r.suite == "generate"]
    points = sorted((int(m.group(1)), float(r.extra["tok/s"])) for m, r in matches if m and r.extra.get("tok/s"))
    if not points:
        return None
    out = (path[:-4] if path.endswith(".png") else path) + "-concurrency.png"
    fig, ax = plt.subplots(figsize=(6, 4))
    xs, ys = zip(*points, strict=True)
    ax.plot(xs, ys, marker="o", label="infercore (aggregate)")
    ax.plot(xs, [ys[0] * x for x in xs], linestyle=":", color="gray", label="linear in streams")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("tokens/s")
    ax.set_title("decode throughput vs concurrency")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    print(f"wrote {out}")
    return out
