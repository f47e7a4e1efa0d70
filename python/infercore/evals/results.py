"""The evaluation results file: what `infercore eval run` writes and `infercore gate` reads.

One JSON object (format tag `FORMAT`):

    {
      "format": "infercore.eval.results/1",
      "infercore_version": "0.1.0",
      "suite": {"name": "smoke", "version": "3"},
      "created": "2026-11-26T01:02:03Z",
      "versions": {"model": "smollm2", "prompts": {"qa": 4}, "guardrails": "default", ...},
      "stages": {
        "regression": {
          "wall_s": 12.5,
          "metrics": {
            "mmlu_accuracy": {"value": 0.41, "higher_is_better": true, "samples": [1, 0, 1, ...]},
            ...
          }
        },
        "quality": {...}, "safety": {...}, "performance": {...}
      }
    }

A metric's `value` is the number thresholds are checked against; `samples` (optional) are the
per-item values whose statistic the value is (mean for scores and rates; the raw latencies for a
percentile), kept so the gate can bootstrap a confidence interval of the candidate-minus-baseline
difference. `statistic` names how `value` follows from `samples`: "mean" (default) or "pNN"
(e.g. "p99"), so a bootstrap resamples the right statistic.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._fileio import atomic_write, check_path

FORMAT = "infercore.eval.results/1"
STAGES = ("regression", "quality", "safety", "performance")
_STAT_RE = re.compile(r"^(mean|p(\d{1,2}(?:\.\d+)?))$")


class ResultsFormatError(ValueError):
    """A results file that is not a valid `infercore.eval.results/1` document."""


@dataclass
class Metric:
    value: float
    higher_is_better: bool = True
    samples: list[float] | None = None
    statistic: str = "mean"

    def __post_init__(self) -> None:
        if not isinstance(self.value, (int, float)) or isinstance(self.value, bool):
            raise TypeError(f"Metric value must be a number, got {type(self.value).__name__}")
        if not _STAT_RE.match(self.statistic):
            raise ValueError(f"Metric statistic must be 'mean' or 'pNN' (e.g. 'p99'), got {self.statistic!r}")
        if self.samples is not None:
            self.samples = [float(x) for x in self.samples]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": _finite_or_none(self.value), "higher_is_better": self.higher_is_better}
        if self.statistic != "mean":
            out["statistic"] = self.statistic
        if self.samples is not None:
            out["samples"] = [_finite_or_none(x) for x in self.samples]
        return out


@dataclass
class StageResult:
    metrics: dict[str, Metric] = field(default_factory=dict)
    wall_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"wall_s": self.wall_s, "metrics": {k: m.to_json() for k, m in self.metrics.items()}}
        if self.details:
            out["details"] = self.details
        return out


@dataclass
class EvalResults:
    suite_name: str
    suite_version: str
    versions: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, StageResult] = field(default_factory=dict)
    created: str = ""
    infercore_version: str = ""

    def __post_init__(self) -> None:
        if not self.created:
            self.created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if not self.infercore_version:
            from .. import __version__

            self.infercore_version = __version__

    def metric(self, stage: str, name: str) -> Metric | None:
        st = self.stages.get(stage)
        return None if st is None else st.metrics.get(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "infercore_version": self.infercore_version,
            "suite": {"name": self.suite_name, "version": self.suite_version},
            "created": self.created,
            "versions": self.versions,
            "stages": {k: v.to_json() for k, v in self.stages.items()},
        }

    def save(self, path: str) -> None:
        atomic_write(check_path(path, "path"), (json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n").encode())


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def _need(obj: Any, key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise ResultsFormatError(f"{where}: missing key {key!r}")
    val = obj[key]
    if not isinstance(val, typ):
        raise ResultsFormatError(f"{where}.{key}: expected {typ}, got {type(val).__name__}")
    return val


def from_json(doc: Any, *, source: str = "results") -> EvalResults:
    """Validate and parse a results document; a file from another format version is rejected."""
    if not isinstance(doc, Mapping):
        raise ResultsFormatError(f"{source}: expected a JSON object, got {type(doc).__name__}")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise ResultsFormatError(f"{source}: format is {fmt!r}, this infercore reads {FORMAT!r} "
                                 "(re-run `infercore eval run` with this version to regenerate it)")
    suite = _need(doc, "suite", Mapping, source)
    stages_doc = _need(doc, "stages", Mapping, source)
    stages: dict[str, StageResult] = {}
    for sname, sdoc in stages_doc.items():
        where = f"{source}.stages.{sname}"
        mdoc = _need(sdoc, "metrics", Mapping, where)
        metrics: dict[str, Metric] = {}
        for mname, m in mdoc.items():
            mw = f"{where}.metrics.{mname}"
            val = _need(m, "value", (int, float, type(None)), mw)
            samples = m.get("samples")
            if samples is not None and not isinstance(samples, list):
                raise ResultsFormatError(f"{mw}.samples: expected a list")
            try:
                metrics[mname] = Metric(
                    value=float("nan") if val is None else float(val),
                    higher_is_better=bool(m.get("higher_is_better", True)),
                    samples=None if samples is None else [float("nan") if x is None else float(x) for x in samples],
                    statistic=str(m.get("statistic", "mean")),
                )
            except (TypeError, ValueError) as e:
                raise ResultsFormatError(f"{mw}: {e}") from None
        stages[sname] = StageResult(metrics=metrics, wall_s=float(sdoc.get("wall_s", 0.0)),
                                    details=dict(sdoc.get("details", {})))
    return EvalResults(
        suite_name=str(suite.get("name", "")),
        suite_version=str(suite.get("version", "")),
        versions=dict(doc.get("versions", {})),
        stages=stages,
        created=str(doc.get("created", "")),
        infercore_version=str(doc.get("infercore_version", "")),
    )


def load(path: str) -> EvalResults:
    """Read a results file; a missing file is FileNotFoundError, a malformed one ResultsFormatError."""
    path = check_path(path, "path")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"results file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ResultsFormatError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None
    return from_json(doc, source=path)
