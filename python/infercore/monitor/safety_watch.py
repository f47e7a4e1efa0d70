"""Failure playbook for safety violations: a rising guardrail block rate per rail raises an alert and
writes a review report for the people who maintain the rules.

    watch = SafetyWatch(window=200, min_samples=50)
    alert = watch.observe("input", guard_result)          # every Guard check; None or a SafetyAlert
    if alert: paths = write_review(alert, "reviews/")     # Markdown + JSON

Rates: for each rail, blocks by that rail / guardrail checks, over the last `window` checks (the
current rate) and over the `baseline_window` checks before them (the baseline; or a fixed rate per
rail from `baseline_rates`). A rail alerts when, with at least `min_samples` checks in the window
and `min_blocks` blocks by it,

    current >= max(baseline * factor, baseline + min_delta)

i.e. the rate at least doubled (factor 2) and rose by at least 5 points (min_delta 0.05), so a rail
that blocks 0.1% of traffic does not alert on 0.3%. A rail that alerted is quiet for `cooldown_s`.
Before the baseline window holds `min_samples` checks the baseline is `default_baseline` (0.0).

The report names the rule that fired (the violation's reason) with counts, and a few samples. A
sample is never the raw text: it is a window of `sample_chars` around the violation, with PII
(emails, phones, cards, ...) replaced by typed placeholders, so a report can be shared for review.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._fileio import check_path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def redact_sample(text: str, span: tuple[int, int] | None = None, *, chars: int = 160) -> str:
    """A window of about `chars` characters of `text` (around `span` when given) with PII replaced
    by <TYPE> placeholders and control characters flattened."""
    from ..guardrails.pii import find_entities

    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    out, last = [], 0
    for e in find_entities(text):
        out.append(text[last:e.start])
        out.append(f"<{e.type}>")
        last = e.end
    out.append(text[last:])
    red = "".join(out)
    # map the span into the redacted text approximately: centre on the same relative position
    if span is not None and text:
        centre = int(((span[0] + span[1]) / 2) / max(len(text), 1) * len(red))
    else:
        centre = 0
    start = max(0, min(centre - chars // 2, len(red) - chars))
    piece = red[start:start + chars]
    piece = " ".join(piece.split())
    return ("..." if start > 0 else "") + piece + ("..." if start + chars < len(red) else "")


@dataclasses.dataclass
class SafetyAlert:
    rail: str
    rate: float  # blocks by the rail / checks, over the window
    baseline: float
    threshold: float  # the rate that triggered: max(baseline * factor, baseline + min_delta)
    checks: int  # checks in the window
    blocks: int  # blocks by the rail in the window
    directions: dict[str, int]  # blocks by direction (input, output, context)
    patterns: list[dict[str, Any]]  # [{"reason": ..., "count": n}] most frequent first
    samples: list[dict[str, Any]]  # [{"direction", "reason", "text"}] redacted, newest first
    time: float = dataclasses.field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SafetyWatch:
    """Rolling block rates per rail; see the module docstring. Thread-safe."""

    def __init__(self, *, window: int = 200, min_samples: int = 50, baseline_window: int = 2000,
                 baseline_rates: Mapping[str, float] | None = None, default_baseline: float = 0.0,
                 factor: float = 2.0, min_delta: float = 0.05, min_blocks: int = 3, cooldown_s: float = 600.0,
                 max_samples: int = 5, sample_chars: int = 160, top: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        for name, v in (("window", window), ("min_samples", min_samples), ("baseline_window", baseline_window),
                        ("min_blocks", min_blocks), ("max_samples", max_samples), ("sample_chars", sample_chars),
                        ("top", top)):  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        if min_samples > window:
            raise ValueError(f"min_samples: {min_samples} is more than window ({window})")
        for name, v in (("factor", factor), ("min_delta", min_delta), ("default_baseline", default_baseline),
                        ("cooldown_s", cooldown_s)):  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"{name}: expected a number >= 0, got {v!r}")
        if factor < 1:
            raise ValueError(f"factor: expected a number >= 1, got {factor!r}")
        rates = dict(baseline_rates or {})
        for rail, r in rates.items():
            if not isinstance(rail, str) or isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r <= 1:
                raise ValueError(f"baseline_rates: expected rail name -> rate in [0, 1], got {rail!r}: {r!r}")
        self.window, self.min_samples, self.baseline_window = window, min_samples, baseline_window
        self.baseline_rates = {k: float(v) for k, v in rates.items()}
        self.default_baseline, self.factor, self.min_delta = float(default_baseline), float(factor), float(min_delta)
        self.min_blocks, self.cooldown_s = min_blocks, float(cooldown_s)
        self.max_samples, self.sample_chars, self.top = max_samples, sample_chars, top
        self.clock = clock
        self._lock = threading.Lock()
        # one entry per check: (direction, blocking rail or None, reason or None)
        self._recent: collections.deque[tuple[str, str | None, str | None]] = collections.deque()
        self._baseline: collections.deque[str | None] = collections.deque(maxlen=baseline_window)
        self._samples: dict[str, collections.deque[dict[str, Any]]] = {}
        self._quiet_until: dict[str, float] = {}

    def observe(self, direction: str, result: Any) -> SafetyAlert | None:
        """One guardrail check (`result`: a GuardResult). Returns an alert for the rail that blocked it
        when that rail's rate crossed; at most one alert per call."""
        status = getattr(result, "status", None)
        if status not in ("passed", "modified", "blocked"):
            raise TypeError(f"result: expected a GuardResult, got {type(result).__name__}")
        rail = reason = None
        if status == "blocked":
            v = result.violations[-1] if result.violations else None
            rail = v.rail if v is not None else "unknown"
            reason = v.reason if v is not None else "blocked"
            sample = {"direction": direction, "reason": reason,
                      "text": redact_sample(result.text, v.span if v is not None else None, chars=self.sample_chars)}
        with self._lock:
            self._recent.append((direction, rail, reason))
            if len(self._recent) > self.window:
                self._baseline.append(self._recent.popleft()[1])
            if rail is None:
                return None
            self._samples.setdefault(rail, collections.deque(maxlen=self.max_samples)).append(sample)
            return self._check(rail)

    def rates(self) -> dict[str, float]:
        """The current block rate of every rail seen blocking."""
        with self._lock:
            n = len(self._recent)
            rails = {r for _, r, _ in self._recent if r is not None} | set(self._samples)
            return {r: (sum(1 for _, x, _ in self._recent if x == r) / n if n else 0.0) for r in sorted(rails)}

    def baseline(self, rail: str) -> float:
        with self._lock:
            return self._baseline_of(rail)

    def _baseline_of(self, rail: str) -> float:
        if rail in self.baseline_rates:
            return self.baseline_rates[rail]
        if len(self._baseline) >= self.min_samples:
            return sum(1 for x in self._baseline if x == rail) / len(self._baseline)
        return self.default_baseline

    def _check(self, rail: str) -> SafetyAlert | None:
        n = len(self._recent)
        if n < self.min_samples or self.clock() < self._quiet_until.get(rail, float("-inf")):
            return None
        rows = [(d, why) for d, r, why in self._recent if r == rail]
        if len(rows) < self.min_blocks:
            return None
        rate, base = len(rows) / n, self._baseline_of(rail)
        threshold = max(base * self.factor, base + self.min_delta)
        if rate < threshold:
            return None
        self._quiet_until[rail] = self.clock() + self.cooldown_s
        patterns = collections.Counter(why for _, why in rows).most_common(self.top)
        return SafetyAlert(rail, rate, base, threshold, n, len(rows), dict(collections.Counter(d for d, _ in rows)),
                           [{"reason": r, "count": c} for r, c in patterns],
                           list(reversed(self._samples.get(rail, ()))))  # fmt: skip


def write_review(alert: SafetyAlert, directory: str | os.PathLike[str]) -> tuple[str, str]:
    """Write `safety-review-<rail>-<UTC time>.md` and `.json` into `directory` (created); their paths."""
    if not isinstance(alert, SafetyAlert):
        raise TypeError(f"alert: expected a SafetyAlert, got {type(alert).__name__}")
    d = check_path(directory, "directory")
    os.makedirs(d, exist_ok=True)
    when = datetime.datetime.fromtimestamp(alert.time, datetime.timezone.utc)
    stem = os.path.join(d, f"safety-review-{_SAFE.sub('_', alert.rail)}-{when.strftime('%Y%m%dT%H%M%S%fZ')}")
    doc = {"kind": "safety_review", "generated_at": when.isoformat(), **alert.to_dict()}
    with open(stem + ".json", "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    lines = [f"# Safety review: rail `{alert.rail}`", "",
             f"Generated {when.isoformat()} because the block rate rose.", "",
             "| | value |", "|---|---|",
             f"| block rate (last {alert.checks} checks) | {alert.rate:.3f} ({alert.blocks} blocked) |",
             f"| baseline rate | {alert.baseline:.3f} |",
             f"| alert threshold | {alert.threshold:.3f} |",
             f"| blocks by direction | {', '.join(f'{k}: {v}' for k, v in sorted(alert.directions.items()))} |",
             "", "## Top blocked patterns (rule reasons)", "", "| count | reason |", "|---:|---|"]  # fmt: skip
    lines += [f"| {p['count']} | {_md(p['reason'])} |" for p in alert.patterns]
    lines += ["", "## Samples (redacted, newest first)", ""]
    lines += [f"- **{s['direction']}** ({_md(s['reason'])}): `{s['text'].replace('`', chr(39))}`"
              for s in alert.samples]
    lines += ["", "Review: is the rule right to block these (an attack wave: keep it), or is it catching legitimate "
              "traffic (a false-positive spike: narrow the rule)?", ""]  # fmt: skip
    with open(stem + ".md", "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return stem + ".md", stem + ".json"


def _md(s: str) -> str:
    return " ".join(str(s).split()).replace("|", "\\|")


__all__ = ["SafetyAlert", "SafetyWatch", "redact_sample", "write_review"]
