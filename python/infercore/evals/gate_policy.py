"""The gate policy (`gate.yaml`): which metrics the gate checks, against what, and how sure it must be.

    # gate.yaml
    version: 1              # optional; only 1 exists
    extends: defaults       # optional: start from DEFAULT_RULES, then apply the metrics below
    confidence: 0.95        # two-sided bootstrap interval; non-inferiority uses its one bound (97.5% one-sided)
    resamples: 2000         # bootstrap resamples
    seed: 0                 # bootstrap seed: the same inputs always give the same decision
    metrics:
      quality.citation_coverage: {min: 0.80, margin: 0.02}
      performance.e2e_p99_s: {max: 3.0, margin_rel: 0.10}
      regression.mmlu_accuracy: {margin: 0.03, required: false}
      quality.groundedness: null      # with `extends: defaults`: drop a default rule

Each metric key is `<stage>.<metric>` with the stage one of results.STAGES and the metric its name in
the results file. Per metric: `min` / `max` absolute thresholds on the candidate's value; `margin`
(metric units) or `margin_rel` (fraction of the baseline's value) of tolerated worsening against the
baseline; `higher_is_better` overrides the direction the results file declares; `required` (default
true): a missing metric fails the gate (false: it is skipped, and said so).

Errors name the file and line: `gate.yaml:7: metrics.quality.citation_coverage.min: expected a number`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .._fileio import check_path
from .results import STAGES

# The monitoring thresholds of the LLMOps reference (deploy/prometheus/rules.yml alerts on the same
# numbers in production), and non-inferiority margins: how much worse than the baseline a candidate
# may be. A margin must be wider than the suite's noise (about two standard errors of the difference)
# or a tie cannot be told from a regression. A p99 from a thousand requests moves by 10-20% between
# identical runs, hence the wide latency margin (it catches a doubling, the 3 s SLO does the rest);
# the error rate has no margin by default: one error more in a few hundred requests is noise, and its
# 1% ceiling is already tight.
DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "quality.citation_coverage": {"min": 0.80, "margin": 0.02},
    "quality.hallucination_rate": {"max": 0.05, "margin": 0.01},
    "performance.e2e_p99_s": {"max": 3.0, "margin_rel": 0.50},
    "performance.error_rate": {"max": 0.01},
}

MIN_RESAMPLES, MAX_RESAMPLES = 100, 100_000  # bootstrap resamples a policy (and bootstrap_ci) accepts
_RULE_KEYS = {"min", "max", "margin", "margin_rel", "higher_is_better", "required"}
_TOP_KEYS = {"version", "extends", "confidence", "resamples", "seed", "metrics"}


class PolicyError(ValueError):
    """A gate policy that cannot be used; the message names the file and line."""


class _Lined(dict):
    """A YAML mapping that remembers the line of each key (and of itself)."""

    line: int = 0
    lines: dict[Any, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Lined:
    loader.flatten_mapping(node)
    out = _Lined()
    out.line, out.lines = node.start_mark.line + 1, {}
    for knode, vnode in node.value:
        key = loader.construct_object(knode, deep=True)
        line = knode.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise PolicyError(f"{loader.name}:{line}: mapping keys must be plain scalars")
        if key in out:
            raise PolicyError(f"{loader.name}:{line}: duplicate key {key!r}")
        out[key] = loader.construct_object(vnode, deep=True)
        out.lines[key] = line
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class MetricRule:
    stage: str
    metric: str
    min: float | None = None
    max: float | None = None
    margin: float | None = None
    margin_rel: float | None = None
    higher_is_better: bool | None = None
    required: bool = True

    @property
    def key(self) -> str:
        return f"{self.stage}.{self.metric}"

    @property
    def has_margin(self) -> bool:
        return self.margin is not None or self.margin_rel is not None

    def margin_for(self, baseline_value: float) -> float:
        """The tolerated worsening in metric units (margin, or margin_rel of the baseline's value)."""
        if self.margin is not None:
            return self.margin
        return (self.margin_rel or 0.0) * abs(baseline_value)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in ("min", "max", "margin", "margin_rel", "higher_is_better"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        if not self.required:
            out["required"] = False
        return out


@dataclass
class GatePolicy:
    rules: list[MetricRule] = field(default_factory=list)
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    source: str = "<defaults>"

    @classmethod
    def default(cls) -> GatePolicy:
        return cls(rules=[_rule(k, v, "<defaults>", {}) for k, v in DEFAULT_RULES.items()])

    @classmethod
    def load(cls, path: str) -> GatePolicy:
        path = check_path(path, "path")
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"policy file not found: {path}") from None
        except UnicodeDecodeError:
            raise PolicyError(f"{path}: not UTF-8 text") from None
        return cls.from_yaml(text, source=path)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<policy>") -> GatePolicy:
        if not isinstance(text, str):
            raise TypeError(f"text: expected a string, got {type(text).__name__}")
        loader = None
        try:
            loader = _LineLoader(text)  # reads (and checks the characters of) the text here
            loader.name = source
            doc = loader.get_single_data()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f"{source}:{mark.line + 1}" if mark is not None else source
            raise PolicyError(f"{where}: invalid YAML: {e.problem or e.context}") from None
        except yaml.YAMLError as e:  # a reader error: a character YAML does not allow (NUL, a lone surrogate)
            raise PolicyError(f"{source}: invalid YAML: {e}") from None
        finally:
            if loader is not None:
                loader.dispose()
        return cls.from_dict(doc, source=source)

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<policy>") -> GatePolicy:
        if not isinstance(doc, Mapping):
            raise PolicyError(f"{source}:1: expected a mapping with a `metrics` key, got {type(doc).__name__}")
        lines = getattr(doc, "lines", {})

        def at(key: Any) -> str:
            return f"{source}:{lines[key]}" if key in lines else source

        unknown = [k for k in doc if k not in _TOP_KEYS]
        if unknown:
            raise PolicyError(f"{at(unknown[0])}: unknown key {unknown[0]!r} (known: {sorted(_TOP_KEYS)})")
        if doc.get("version", 1) != 1:
            raise PolicyError(f"{at('version')}: version: this infercore reads gate policy version 1, "
                              f"got {doc['version']!r}")  # fmt: skip
        extends = doc.get("extends")
        if extends not in (None, "defaults"):
            raise PolicyError(f"{at('extends')}: extends: the only base is 'defaults', got {extends!r}")
        confidence = doc.get("confidence", 0.95)
        if not _is_num(confidence) or not 0.5 <= confidence < 1:
            raise PolicyError(f"{at('confidence')}: confidence: expected a number in [0.5, 1), got {confidence!r}")
        resamples = doc.get("resamples", 2000)
        if isinstance(resamples, bool) or not isinstance(resamples, int) or \
                not MIN_RESAMPLES <= resamples <= MAX_RESAMPLES:  # fmt: skip
            raise PolicyError(f"{at('resamples')}: resamples: expected an integer in [{MIN_RESAMPLES}, "
                              f"{MAX_RESAMPLES}], got {resamples!r}")  # fmt: skip
        seed = doc.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise PolicyError(f"{at('seed')}: seed: expected an integer >= 0, got {seed!r}")
        metrics = doc.get("metrics")
        if metrics is None and extends is None:
            raise PolicyError(f"{source}:{getattr(doc, 'line', 1)}: missing key 'metrics' "
                              "(or `extends: defaults` to use the default rules)")  # fmt: skip
        if metrics is None:
            metrics = {}
        if not isinstance(metrics, Mapping):
            raise PolicyError(f"{at('metrics')}: metrics: expected a mapping of <stage>.<metric> -> rule")
        rules = {k: _rule(k, v, "<defaults>", {}) for k, v in DEFAULT_RULES.items()} if extends else {}
        mlines = getattr(metrics, "lines", {})
        for key, spec in metrics.items():
            where = f"{source}:{mlines[key]}" if key in mlines else source
            if spec is None:
                if key not in rules:
                    raise PolicyError(f"{where}: metrics.{key}: null removes a default rule, but there is none")
                del rules[key]
                continue
            rules[key] = _rule(key, spec, source, mlines)
        if not rules:
            raise PolicyError(f"{at('metrics')}: metrics: the policy checks nothing")
        return cls(rules=list(rules.values()), confidence=float(confidence), resamples=resamples, seed=seed,
                   source=source)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "confidence": self.confidence, "resamples": self.resamples, "seed": self.seed,
                "metrics": {r.key: r.to_json() for r in self.rules}}  # fmt: skip


def _is_num(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def _rule(key: Any, spec: Any, source: str, lines: Mapping[Any, int]) -> MetricRule:
    where = f"{source}:{lines[key]}" if key in lines else source
    if not isinstance(key, str) or "." not in key:
        raise PolicyError(f"{where}: metrics: key {key!r} must be <stage>.<metric>, e.g. quality.citation_coverage")
    stage, metric = key.split(".", 1)
    if stage not in STAGES:
        raise PolicyError(f"{where}: metrics.{key}: unknown stage {stage!r} (stages: {', '.join(STAGES)})")
    if not metric or any(c.isspace() for c in metric):
        raise PolicyError(f"{where}: metrics.{key}: empty or blank metric name")
    if not isinstance(spec, Mapping):
        raise PolicyError(f"{where}: metrics.{key}: expected a mapping of {sorted(_RULE_KEYS)}, "
                          f"got {type(spec).__name__}")  # fmt: skip
    slines = getattr(spec, "lines", {})

    def at(k: str) -> str:
        return f"{source}:{slines[k]}" if k in slines else where

    for k in spec:
        if k not in _RULE_KEYS:
            raise PolicyError(f"{at(k)}: metrics.{key}: unknown key {k!r} (known: {sorted(_RULE_KEYS)})")
    vals: dict[str, Any] = {}
    for k in ("min", "max", "margin", "margin_rel"):
        if k in spec:
            if not _is_num(spec[k]):
                raise PolicyError(f"{at(k)}: metrics.{key}.{k}: expected a number, got {spec[k]!r}")
            vals[k] = float(spec[k])
    for k in ("margin", "margin_rel"):
        if vals.get(k, 0.0) < 0:
            raise PolicyError(f"{at(k)}: metrics.{key}.{k}: expected a number >= 0, got {spec[k]!r}")
    if "margin" in vals and "margin_rel" in vals:
        raise PolicyError(f"{at('margin_rel')}: metrics.{key}: give margin or margin_rel, not both")
    if "min" in vals and "max" in vals and vals["min"] > vals["max"]:
        raise PolicyError(f"{at('max')}: metrics.{key}: min {vals['min']} is above max {vals['max']}")
    for k in ("higher_is_better", "required"):
        if k in spec and not isinstance(spec[k], bool):
            raise PolicyError(f"{at(k)}: metrics.{key}.{k}: expected true or false, got {spec[k]!r}")
    if not vals:
        raise PolicyError(f"{where}: metrics.{key}: a rule needs at least one of min, max, margin, margin_rel")
    return MetricRule(stage, metric, vals.get("min"), vals.get("max"), vals.get("margin"), vals.get("margin_rel"),
                      spec.get("higher_is_better"), spec.get("required", True))  # fmt: skip
