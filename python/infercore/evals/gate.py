"""The eval gate: deploy or roll back a candidate, from its results file, a baseline's and a policy.

Metric keys the default policy reads (`<stage>.<metric>` in a results file, see results.py; the
evaluator writes them with these names, `samples` per item and the `statistic` shown):

    quality.citation_coverage    higher is better, mean of per-answer coverage      >= 0.80
    quality.hallucination_rate   lower is better, mean of per-answer 0/1 flags      <= 0.05
    performance.e2e_p99_s        lower is better, statistic "p99", samples = the
                                 per-request end-to-end latencies in seconds        <= 3.0
    performance.error_rate       lower is better, mean of per-request 0/1 errors    <= 0.01

Two kinds of check per metric rule (gate_policy.MetricRule):
  * threshold: the candidate's value against `min` / `max` (the monitoring thresholds of the LLMOps
    reference by default).
  * non_inferiority: the candidate may be worse than the baseline by at most the margin. A seeded
    bootstrap gives a confidence interval of candidate - baseline on the metric's statistic (paired
    when both files ran the same suite version with the same item count and the statistic is a mean,
    so item i is the same item in both; unpaired otherwise). For a higher-is-better metric the check
    passes when the interval's lower bound is above -margin (or at/above 0), mirrored for lower-is-
    better. So a candidate that is a bit worse within the noise still deploys when the noise is
    smaller than the margin, a candidate only a bit better is not needed to "win", and a candidate
    whose interval reaches past the margin does not deploy on a lucky point estimate. Without samples
    on either side the values alone are compared with the margin, and the check says so.

A metric the policy needs that a results file lacks fails its check (unless the rule says
`required: false`). decide() never raises on what the results contain; reading a results file from
another format version raises results.ResultsFormatError (at load time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .gate_policy import DEFAULT_RULES, MAX_RESAMPLES, MIN_RESAMPLES, GatePolicy, MetricRule, PolicyError
from .results import _STAT_RE, STAGES, EvalResults, Metric

__all__ = ["DEFAULT_RULES", "Check", "GateDecision", "GatePolicy", "MetricRule", "PolicyError", "bootstrap_ci",
           "decide"]  # fmt: skip

_MIN_SAMPLES = 2
_MAX_CELLS = 2_000_000  # resamples x items evaluated at once (bounds the bootstrap's memory)


@dataclass
class Check:
    stage: str
    metric: str
    kind: str  # "threshold", "non_inferiority" or "missing"
    passed: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.stage}.{self.metric}"

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "metric": self.metric, "kind": self.kind, "passed": self.passed,
                "detail": self.detail, **({"data": self.data} if self.data else {})}  # fmt: skip


@dataclass
class GateDecision:
    deploy: bool
    checks: list[Check]
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def verdict(self) -> str:
        return "deploy" if self.deploy else "rollback"

    def reason(self) -> str:
        """One line: why (for commit messages and notifications)."""
        if self.deploy:
            return f"all {len(self.checks)} gate checks passed"
        fails = "; ".join(f"{c.key} {c.kind}: {c.detail}" for c in self.failed)
        return f"{len(self.failed)} of {len(self.checks)} gate checks failed: {fails}"

    def explain(self) -> str:
        """The decision, stage by stage."""
        out = [f"gate decision: {'DEPLOY' if self.deploy else 'ROLL BACK'}"]
        by_stage: dict[str, list[Check]] = {}
        for c in self.checks:
            by_stage.setdefault(c.stage, []).append(c)
        for stage in [*STAGES, *sorted(set(by_stage) - set(STAGES))]:
            checks = by_stage.get(stage, [])
            if not checks:
                out.append(f"{stage}: no checks in the policy")
                continue
            ok = sum(c.passed for c in checks)
            out.append(f"{stage}: {ok}/{len(checks)} passed")
            for c in checks:
                out.append(f"  {'PASS' if c.passed else 'FAIL'}  {c.metric:<24} {c.kind:<16} {c.detail}")
        for n in self.notes:
            out.append(f"note: {n}")
        out.append(("deploy: " if self.deploy else "roll back: ") + self.reason())
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.verdict, "deploy": self.deploy, "reason": self.reason(),
                "checks": [c.to_json() for c in self.checks], "notes": list(self.notes)}  # fmt: skip


# ---------------------------------------------------------------------------------------------- stats
def _statistic(x: np.ndarray, statistic: str) -> np.ndarray:
    """mean or pNN along the last axis."""
    if statistic == "mean":
        return x.mean(axis=-1)
    return np.percentile(x, float(statistic[1:]), axis=-1)


def bootstrap_ci(
    candidate: np.ndarray | list[float],
    baseline: np.ndarray | list[float],
    *,
    statistic: str = "mean",
    paired: bool = False,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(observed, low, high): percentile bootstrap interval of stat(candidate) - stat(baseline).

    statistic: "mean" or "pNN" (a percentile, e.g. "p99"), as in a results file. resamples: in
    [100, 100000], the range a gate policy allows. paired: resample item indices jointly (the arrays
    must be the same length, item i the same item)."""
    if not isinstance(statistic, str):
        raise TypeError(f"statistic: expected 'mean' or 'pNN' (a string), got {type(statistic).__name__}")
    if not _STAT_RE.fullmatch(statistic):
        raise ValueError(f"statistic: expected 'mean' or 'pNN' (e.g. 'p99'), got {statistic!r}")
    c = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if c.ndim != 1 or b.ndim != 1 or len(c) < 1 or len(b) < 1:
        raise ValueError("candidate, baseline: expected non-empty 1-D sample arrays")
    if paired and len(c) != len(b):
        raise ValueError(f"paired: needs equal lengths, got {len(c)} and {len(b)}")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a value in (0, 1), got {confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or not MIN_RESAMPLES <= resamples <= MAX_RESAMPLES:
        raise ValueError(f"resamples: expected an int in [{MIN_RESAMPLES}, {MAX_RESAMPLES}], got {resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
    rng = np.random.default_rng(seed)
    observed = float(_statistic(c, statistic) - _statistic(b, statistic))
    chunk = max(1, _MAX_CELLS // max(len(c), len(b)))
    diffs = []
    done = 0
    while done < resamples:
        n = min(chunk, resamples - done)
        if paired:
            idx = rng.integers(0, len(c), size=(n, len(c)))
            diffs.append(_statistic(c[idx], statistic) - _statistic(b[idx], statistic))
        else:
            ic = rng.integers(0, len(c), size=(n, len(c)))
            ib = rng.integers(0, len(b), size=(n, len(b)))
            diffs.append(_statistic(c[ic], statistic) - _statistic(b[ib], statistic))
        done += n
    d = np.concatenate(diffs)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    return observed, float(lo), float(hi)


# ---------------------------------------------------------------------------------------------- checks
def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _threshold_check(rule: MetricRule, m: Metric) -> Check:
    v = m.value
    data = {"value": None if not math.isfinite(v) else v, "min": rule.min, "max": rule.max}
    if not math.isfinite(v):
        return Check(rule.stage, rule.metric, "threshold", False, "the candidate's value is missing (null/NaN)", data)
    fails, oks = [], []
    if rule.min is not None:
        (oks if v >= rule.min else fails).append(f"{'>=' if v >= rule.min else '<'} min {_fmt(rule.min)}")
    if rule.max is not None:
        (oks if v <= rule.max else fails).append(f"{'<=' if v <= rule.max else '>'} max {_fmt(rule.max)}")
    return Check(rule.stage, rule.metric, "threshold", not fails, f"{_fmt(v)} " + ", ".join(fails or oks), data)


def _samples(m: Metric) -> np.ndarray | None:
    if m.samples is None:
        return None
    return np.asarray(m.samples, dtype=np.float64)


def _noninferiority_check(rule: MetricRule, cand: Metric, base: Metric, candidate: EvalResults,
                          baseline: EvalResults, policy: GatePolicy) -> Check:  # fmt: skip
    def fail(detail: str, **data: Any) -> Check:
        return Check(rule.stage, rule.metric, "non_inferiority", False, detail, data)

    hib = rule.higher_is_better
    if hib is None:
        if cand.higher_is_better != base.higher_is_better:
            return fail("candidate and baseline disagree on whether higher is better "
                        "(set higher_is_better in the policy)")  # fmt: skip
        hib = cand.higher_is_better
    if cand.statistic != base.statistic:
        return fail(f"candidate's statistic {cand.statistic!r} differs from the baseline's {base.statistic!r}")
    if not math.isfinite(base.value):
        return fail("the baseline's value is missing (null/NaN)")
    if not math.isfinite(cand.value):
        return fail("the candidate's value is missing (null/NaN)")
    margin = rule.margin_for(base.value)
    direction = "higher is better" if hib else "lower is better"
    data: dict[str, Any] = {"candidate": cand.value, "baseline": base.value, "margin": margin,
                            "higher_is_better": hib, "statistic": cand.statistic}  # fmt: skip
    cs, bs = _samples(cand), _samples(base)
    why_no_ci = None
    if cs is None or bs is None:
        lacking = " and ".join(n for n, s in (("candidate", cs), ("baseline", bs)) if s is None)
        why_no_ci = f"the {lacking} {'has' if ' and ' not in lacking else 'have'} no samples"
    else:
        paired = (cand.statistic == "mean" and len(cs) == len(bs) and bool(candidate.suite_name)
                  and (candidate.suite_name, candidate.suite_version) == (baseline.suite_name, baseline.suite_version))
        if paired:
            keep = np.isfinite(cs) & np.isfinite(bs)
            cs, bs = cs[keep], bs[keep]
        else:
            cs, bs = cs[np.isfinite(cs)], bs[np.isfinite(bs)]
        if len(cs) < _MIN_SAMPLES or len(bs) < _MIN_SAMPLES:
            why_no_ci = f"fewer than {_MIN_SAMPLES} finite samples (candidate {len(cs)}, baseline {len(bs)})"
    if why_no_ci is not None:
        diff = cand.value - base.value
        worse = -diff if hib else diff
        ok = worse < margin or worse <= 0
        data.update(diff=diff, method="values")
        detail = (f"candidate - baseline = {diff:+.4g} ({direction}), margin {_fmt(margin)}: "
                  f"{'within' if ok else 'beyond'} the margin; {why_no_ci}, so the values alone were compared "
                  "(no confidence interval)")  # fmt: skip
        return Check(rule.stage, rule.metric, "non_inferiority", ok, detail, data)
    observed, lo, hi = bootstrap_ci(cs, bs, statistic=cand.statistic, paired=paired, confidence=policy.confidence,
                                    resamples=policy.resamples, seed=policy.seed)  # fmt: skip
    # the worst plausible worsening: lower bound for higher-is-better, upper bound otherwise
    bound = lo if hib else hi
    worst = -bound if hib else bound
    ok = worst < margin or worst <= 0
    if (hib and lo > 0) or (not hib and hi < 0):
        versus = "significantly better"
    elif (hib and hi < 0) or (not hib and lo > 0):
        versus = "significantly worse"
    else:
        versus = "no significant difference"
    method = f"{'paired' if paired else 'unpaired'} bootstrap"
    data.update(diff=observed, ci=[lo, hi], method=method, n_candidate=len(cs), n_baseline=len(bs),
                resamples=policy.resamples, seed=policy.seed)  # fmt: skip
    bound_name = "lower" if hib else "upper"
    verdict = (f"{bound_name} bound within the margin" if ok
               else f"{bound_name} bound past the margin: inferiority not ruled out")  # fmt: skip
    detail = (f"candidate - baseline = {observed:+.4g}, {policy.confidence:.0%} CI [{lo:+.4g}, {hi:+.4g}] "
              f"({method}, n={len(cs)}/{len(bs)}; {direction}; {versus}); margin {_fmt(margin)}: {verdict}")
    if (hi - lo) / 2 > margin:
        data["underpowered"] = True
    if not ok and data.get("underpowered"):
        detail += " (the interval is wider than the margin: more items, or a wider margin, would resolve it)"
    return Check(rule.stage, rule.metric, "non_inferiority", ok, detail, data)


def decide(candidate: EvalResults, baseline: EvalResults | None, policy: GatePolicy | None = None) -> GateDecision:
    """Check the candidate against the policy's thresholds and, with a baseline, its margins.

    baseline None: absolute thresholds only (said in the notes)."""
    if not isinstance(candidate, EvalResults):
        raise TypeError(f"candidate: expected EvalResults, got {type(candidate).__name__}")
    if baseline is not None and not isinstance(baseline, EvalResults):
        raise TypeError(f"baseline: expected EvalResults or None, got {type(baseline).__name__}")
    policy = GatePolicy.default() if policy is None else policy
    if not isinstance(policy, GatePolicy):
        raise TypeError(f"policy: expected a GatePolicy, got {type(policy).__name__}")
    checks: list[Check] = []
    notes: list[str] = []
    if baseline is None:
        notes.append("no baseline: absolute thresholds only, no non-inferiority checks")
    elif (candidate.suite_name, candidate.suite_version) != (baseline.suite_name, baseline.suite_version):
        notes.append(f"candidate ran suite {candidate.suite_name!r} v{candidate.suite_version}, the baseline "
                     f"{baseline.suite_name!r} v{baseline.suite_version}: samples are compared unpaired")
    for rule in policy.rules:
        cand = candidate.metric(rule.stage, rule.metric)
        if cand is None:
            if rule.required:
                checks.append(Check(rule.stage, rule.metric, "missing", False,
                                    f"the candidate's results have no metric {rule.key} "
                                    f"(stages present: {', '.join(sorted(candidate.stages)) or 'none'})"))
            else:
                notes.append(f"{rule.key}: not in the candidate's results; skipped (required: false)")
            continue
        if rule.min is not None or rule.max is not None:
            checks.append(_threshold_check(rule, cand))
        if not rule.has_margin:
            continue
        if baseline is None:
            continue
        base = baseline.metric(rule.stage, rule.metric)
        if base is None:
            if rule.required:
                checks.append(Check(rule.stage, rule.metric, "missing", False,
                                    f"the baseline's results have no metric {rule.key} to compare with "
                                    "(regenerate the baseline with this suite)"))
            else:
                notes.append(f"{rule.key}: not in the baseline's results; non-inferiority skipped (required: false)")
            continue
        checks.append(_noninferiority_check(rule, cand, base, candidate, baseline, policy))
    if not checks:
        notes.append("the policy produced no checks")
    deploy = bool(checks) and all(c.passed for c in checks)
    return GateDecision(deploy, checks, notes)
