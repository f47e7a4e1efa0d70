"""`infercore serve --ray` options: the same app as a Ray Serve deployment with replicas and
request-queue-based autoscaling (serve/ray_app.py). Parsing only: ray is imported when --ray is used."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ._argtypes import positive_float, positive_int


def parse_autoscale(value: str | None) -> tuple[int, int] | None:
    """"MIN:MAX" -> (min, max) with 0 <= min <= max and max >= 1; None stays None."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*([0-9]+)\s*:\s*([0-9]+)\s*", str(value))
    if not m:
        raise ValueError(f"--autoscale: expected MIN:MAX (e.g. 1:4), got {value!r}")
    lo, hi = int(m.group(1)), int(m.group(2))
    if hi < 1 or lo > hi:
        raise ValueError(f"--autoscale: expected 0 <= MIN <= MAX and MAX >= 1, got {value!r}")
    return lo, hi


def autoscaling_config(replicas: int, autoscale: str | None, target_ongoing: float, upscale_delay_s: float = 10.0,
                       downscale_delay_s: float = 120.0) -> dict[str, Any] | None:
    """Ray Serve's autoscaling_config for --autoscale MIN:MAX (None: a fixed `replicas` count).
    Ray Serve scales on ongoing requests per replica (running + queued at the replica): it adds
    replicas while the mean over the look-back window exceeds `target_ongoing`, removes them while
    it is below. `replicas` is the initial count, clamped into [MIN, MAX]."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"--replicas: expected a positive int, got {replicas!r}")
    if isinstance(target_ongoing, bool) or not isinstance(target_ongoing, (int, float)) or target_ongoing <= 0:
        raise ValueError(f"--target-ongoing-requests: expected a number > 0, got {target_ongoing!r}")
    bounds = parse_autoscale(autoscale)
    if bounds is None:
        return None
    lo, hi = bounds
    return {"min_replicas": lo, "max_replicas": hi, "initial_replicas": min(max(replicas, lo), hi),
            "target_ongoing_requests": float(target_ongoing), "upscale_delay_s": float(upscale_delay_s),
            "downscale_delay_s": float(downscale_delay_s)}  # fmt: skip


def add_arguments(s: argparse.ArgumentParser) -> None:
    g = s.add_argument_group("scale-out on Ray Serve")
    g.add_argument("--ray", action="store_true", help="serve through Ray Serve (pip install 'infercore[ray]')")
    g.add_argument("--ray-address", help="Ray cluster to join (default: start a local one)")
    g.add_argument("--replicas", type=positive_int, default=1, help="replicas (initial count with --autoscale)")
    g.add_argument("--autoscale", metavar="MIN:MAX", help="autoscale between MIN and MAX replicas on ongoing "
                   "requests per replica")
    g.add_argument("--target-ongoing-requests", type=positive_float, default=8.0, help="autoscaling target: ongoing "
                   "(running + queued) requests per replica")
    g.add_argument("--max-ongoing-requests", type=positive_int, default=64, help="requests Ray Serve sends to one "
                   "replica at once (match --max-num-seqs + --max-queue)")
    g.add_argument("--replica-cpus", type=positive_float, default=1.0, help="CPUs Ray reserves per replica")
