"""Failure playbook for model/prompt degradation: watch rolling quality, roll the served version back.

    watch = QualityWatch(Thresholds.from_gate_policy("deploy/gate.yaml"), window=50, min_samples=20)
    breach = watch.observe_answer(coverage, hallucination)      # None, or a Breach once per cooldown
    if breach: rollback_alias(registry, "qa", "production", breach.describe())

QualityWatch keeps the last `window` RAG answers (citation coverage, hallucination rate) and the last
`error_window` API responses (server errors: 5xx). It reports a Breach when, over a full enough window
(>= min_samples; >= error_min_samples for errors), the mean crosses its threshold:
  citation coverage < min, hallucination rate > max, error rate > max
with the reference thresholds (0.80, 0.05, 0.01), the same numbers as deploy/gate.yaml and the
Prometheus alert rules. One bad answer cannot roll back: the window must hold min_samples answers
and their *mean* must cross. After a breach the watch is quiet for `cooldown_s` and its windows are
cleared (the restored version is judged on its own answers, not on the bad version's).
429 (overload) is not counted as an error here: overload is a capacity problem (scale out), not a
sign that the served version degraded.

rollback_alias moves an alias back to the version it pointed at before, as one Git commit in the
prompt registry carrying the reason (PromptRegistry.set_alias(reason=...)). Versions that were
rolled back from (recorded in the reason as "rollback from vN") are never restored again.

EventLog records each playbook event as a structured log line, in memory (for an endpoint) and,
when given a path, as a JSON line appended to a file.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from .._fileio import check_path

log = logging.getLogger("infercore.playbooks")

# the reference thresholds (deploy/gate.yaml, deploy/prometheus/rules.yml)
CITATION_COVERAGE_MIN = 0.80
HALLUCINATION_RATE_MAX = 0.05
ERROR_RATE_MAX = 0.01
_ROLLED_FROM = re.compile(r"rollback from v([0-9]+)")


def _fraction(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"{what}: expected a number in [0, 1], got {v!r}")
    return float(v)


def _positive_int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{what}: expected a positive int, got {v!r}")
    return v


@dataclasses.dataclass(frozen=True)
class Thresholds:
    citation_coverage_min: float = CITATION_COVERAGE_MIN
    hallucination_rate_max: float = HALLUCINATION_RATE_MAX
    error_rate_max: float = ERROR_RATE_MAX

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _fraction(getattr(self, f.name), f.name)

    @classmethod
    def from_gate_policy(cls, path: str | os.PathLike[str]) -> Thresholds:
        """The absolute limits of a gate policy file (deploy/gate.yaml: metrics.<key>.min / .max);
        keys it does not set keep the reference values."""
        import yaml

        path = check_path(path, "path")
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
        metrics = doc.get("metrics") if isinstance(doc, dict) else None
        if not isinstance(metrics, dict):
            raise ValueError(f"path: {path} has no `metrics:` mapping (a gate policy file)")
        kw: dict[str, float] = {}
        for key, bound, field in (("quality.citation_coverage", "min", "citation_coverage_min"),
                                  ("quality.hallucination_rate", "max", "hallucination_rate_max"),
                                  ("performance.error_rate", "max", "error_rate_max")):  # fmt: skip
            spec = metrics.get(key)
            if isinstance(spec, dict) and bound in spec:
                kw[field] = _fraction(spec[bound], f"{path}: metrics.{key}.{bound}")
        return cls(**kw)


@dataclasses.dataclass(frozen=True)
class Breach:
    reason: str  # "citation_coverage" | "hallucination_rate" | "error_rate"
    value: float  # the window mean that crossed
    threshold: float
    samples: int  # observations in the window

    def describe(self) -> str:
        op = "<" if self.reason == "citation_coverage" else ">"
        return f"{self.reason} {self.value:.3f} {op} {self.threshold:.3f} over the last {self.samples} observations"


class QualityWatch:
    """Rolling windows of answer quality and server errors; see the module docstring. Thread-safe."""

    def __init__(self, thresholds: Thresholds | None = None, *, window: int = 50, min_samples: int = 20,
                 error_window: int = 200, error_min_samples: int = 100, cooldown_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if thresholds is not None and not isinstance(thresholds, Thresholds):
            raise TypeError(f"thresholds: expected a Thresholds, got {type(thresholds).__name__}")
        self.thresholds = thresholds or Thresholds()
        self.window = _positive_int(window, "window")
        self.min_samples = _positive_int(min_samples, "min_samples")
        self.error_window = _positive_int(error_window, "error_window")
        self.error_min_samples = _positive_int(error_min_samples, "error_min_samples")
        if self.min_samples > self.window:
            raise ValueError(f"min_samples: {min_samples} is more than window ({window})")
        if self.error_min_samples > self.error_window:
            raise ValueError(f"error_min_samples: {error_min_samples} is more than error_window ({error_window})")
        if isinstance(cooldown_s, bool) or not isinstance(cooldown_s, (int, float)) or cooldown_s < 0:
            raise ValueError(f"cooldown_s: expected a number >= 0, got {cooldown_s!r}")
        self.cooldown_s = float(cooldown_s)
        self.clock = clock
        self._lock = threading.Lock()
        self._answers: collections.deque[tuple[float, float]] = collections.deque(maxlen=self.window)
        self._requests: collections.deque[bool] = collections.deque(maxlen=self.error_window)
        self._quiet_until = float("-inf")

    # ------------------------------------------------------------------ observations
    def observe_answer(self, citation_coverage: float, hallucination_rate: float) -> Breach | None:
        row = (_fraction(citation_coverage, "citation_coverage"), _fraction(hallucination_rate, "hallucination_rate"))
        with self._lock:
            self._answers.append(row)
            return self._check()

    def observe_response(self, status: int) -> Breach | None:
        """One API response by HTTP status; 5xx counts as an error."""
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"status: expected an HTTP status code, got {status!r}")
        with self._lock:
            self._requests.append(status >= 500)
            return self._check()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**self._means(), "answers": len(self._answers), "responses": len(self._requests),
                    "cooling_down": self.clock() < self._quiet_until}  # fmt: skip

    def reset(self) -> None:
        with self._lock:
            self._answers.clear()
            self._requests.clear()

    # ------------------------------------------------------------------ internals
    def _means(self) -> dict[str, float | None]:
        n, m = len(self._answers), len(self._requests)
        return {"citation_coverage": sum(r[0] for r in self._answers) / n if n else None,
                "hallucination_rate": sum(r[1] for r in self._answers) / n if n else None,
                "error_rate": sum(self._requests) / m if m else None}  # fmt: skip

    def _check(self) -> Breach | None:
        if self.clock() < self._quiet_until:
            return None
        t, means = self.thresholds, self._means()
        breach = None
        if len(self._answers) >= self.min_samples:
            n = len(self._answers)
            if means["citation_coverage"] < t.citation_coverage_min:  # type: ignore[operator]
                breach = Breach("citation_coverage", means["citation_coverage"], t.citation_coverage_min, n)  # type: ignore[arg-type]
            elif means["hallucination_rate"] > t.hallucination_rate_max:  # type: ignore[operator]
                breach = Breach("hallucination_rate", means["hallucination_rate"], t.hallucination_rate_max, n)  # type: ignore[arg-type]
        if breach is None and len(self._requests) >= self.error_min_samples:
            if means["error_rate"] > t.error_rate_max:  # type: ignore[operator]
                breach = Breach("error_rate", means["error_rate"], t.error_rate_max, len(self._requests))  # type: ignore[arg-type]
        if breach is not None:
            self._quiet_until = self.clock() + self.cooldown_s
            self._answers.clear()
            self._requests.clear()
        return breach


# ---------------------------------------------------------------------- registry rollback
def previous_version(registry: Any, name: str, alias: str) -> tuple[int | None, int | None]:
    """(current target, version to restore) of `alias`: the newest earlier target that is neither the
    current one nor a version some rollback moved away from. (current, None) when there is none."""
    current = registry.aliases(name).get(alias)
    if current is None:
        return None, None
    hist = registry.history(name)  # newest first
    rejected = {current} | {int(m.group(1)) for h in hist if h.get("alias") == alias
                            for m in [_ROLLED_FROM.search(h.get("reason") or "")] if m}  # fmt: skip
    for h in hist:
        if h.get("alias") == alias and h.get("version") is not None and h["version"] not in rejected:
            return current, h["version"]
    return current, None


class AliasMovedError(ValueError):
    """The alias no longer points at the version the caller judged (someone else moved it first)."""


def rollback_alias(registry: Any, name: str, alias: str, reason: str, *, expect_from: int | None = None
                   ) -> tuple[int, int]:  # fmt: skip
    """Move `alias` of `name` back to its previous version (one commit whose message holds `reason`).
    Returns (from, to); ValueError when the alias is unset or has no earlier version to restore.
    expect_from: roll back only if the alias is still at this version (AliasMovedError otherwise), so
    several servers (Ray replicas) that saw the same bad version roll it back once, not once each."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"reason: expected a non-empty string, got {reason!r}")
    # (the registry's write lock is not reentrant, so this reads outside it: a concurrent move of the
    # same alias between the read and the commit is overwritten by the rollback, which is logged)
    current, target = previous_version(registry, name, alias)
    if current is None:
        raise ValueError(f"alias: {name!r} has no alias {alias!r} to roll back")
    if expect_from is not None and current != expect_from:
        raise AliasMovedError(f"alias: {name}@{alias} is at v{current}, not v{expect_from}; not rolled back again")
    if target is None:
        raise ValueError(f"alias: {name}@{alias} is at v{current} and has no earlier version to restore")
    registry.set_alias(name, alias, target, reason=f"rollback from v{current}: {reason.strip()}")
    return current, target


# ---------------------------------------------------------------------- events
class EventLog:
    """Playbook events: a structured log record, the last `keep` in memory, and (with `path`) one JSON
    line each appended to a file. Thread-safe."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, keep: int = 1000) -> None:
        self.path = check_path(path, "path") if path is not None else None
        if self.path is not None:
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                raise ValueError(f"path: the directory {parent} does not exist")
            if os.path.isdir(self.path):
                raise ValueError(f"path: {self.path} is a directory, expected a file to append events to")
        self._lock = threading.Lock()
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=_positive_int(keep, "keep"))
        self._seq = 0

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"kind: expected a non-empty string, got {kind!r}")
        with self._lock:
            self._seq += 1
            ev = {"seq": self._seq, "time": time.time(), "kind": kind, **fields}
            line = json.dumps(ev, sort_keys=True, default=str)
            self._events.append(json.loads(line))
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
        log.warning("playbook event %s", line, extra={"infercore_event": ev})
        return ev

    def events(self, kind: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._events if e["seq"] > since and (kind is None or e["kind"] == kind)]


__all__ = ["AliasMovedError", "Breach", "EventLog", "QualityWatch", "Thresholds", "previous_version", "rollback_alias"]
