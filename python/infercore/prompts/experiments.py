"""A/B tests and staged rollouts of prompt versions, with their state in the registry.

Assignment hashes (experiment name, request key) with SHA-256 into [0, 1): the same key always gets
the same arm, in any process, after any restart, and independently of other experiments. Outcomes
are appended (under the registry lock, fsynced) to state/<kind>-<name>.jsonl; definitions and rollout
state are committed to the registry's Git history.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .registry import PromptRegistry
from .template import PromptVersion, check_name


def bucket(namespace: str, key: str) -> float:
    """Uniform in [0, 1) from SHA-256 of namespace + key (stable everywhere, unlike hash())."""
    if not isinstance(key, str):
        raise TypeError(f"key: expected a string, got {type(key).__name__}")
    h = hashlib.sha256(f"{namespace}\x00{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


_MIN_BOOT, _MAX_BOOT = 100, 100_000  # bootstrap resamples (the eval gate's policy allows the same range)


def _norm_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def two_proportion_z(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p) for H0: p1 == p2, pooled standard error. s1 of n1 and s2 of n2 are counts:
    ints with 0 <= s <= n and n >= 1 (a ValueError/TypeError naming the argument otherwise)."""
    for sname, s, nname, n in (("s1", s1, "n1", n1), ("s2", s2, "n2", n2)):
        for k, v in ((sname, s), (nname, n)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{k}: expected an int count, got {type(v).__name__}")
        if n < 1:
            raise ValueError(f"{nname}: expected a number of trials >= 1, got {n}")
        if not 0 <= s <= n:
            raise ValueError(f"{sname}: expected successes in [0, {nname}={n}], got {s}")
    s1, n1, s2, n2 = int(s1), int(n1), int(s2), int(n2)
    p = (s1 + s2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (s2 / n2 - s1 / n1) / se
    return z, 2 * (1 - _norm_cdf(abs(z)))


def bootstrap_diff(a: np.ndarray, b: np.ndarray, alpha: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile interval of mean(b) - mean(a): the eval gate's bootstrap, which resamples in
    chunks of bounded size (one n_boot x outcomes index array was 8 * n_boot bytes per outcome:
    80 GB for 100k resamples of 100k outcomes)."""
    from ..evals.gate import bootstrap_ci  # evals imports nothing from here; keeps import time down

    _, lo, hi = bootstrap_ci(b, a, confidence=1.0 - alpha, resamples=n_boot, seed=seed)
    return lo, hi


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class _OutcomeLog:
    def __init__(self, registry: PromptRegistry, kind: str, name: str) -> None:
        self.registry = registry
        self.file = os.path.join(registry.state_dir(), f"{kind}-{name}.jsonl")

    def append(self, *recs: Mapping[str, Any]) -> None:
        line = "".join(json.dumps(rec, sort_keys=True) + "\n" for rec in recs).encode()
        fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)  # one write() of a line with O_APPEND: lines from processes never interleave
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.file):
            return []
        out = []
        with open(self.file, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    if not line.endswith("\n"):  # a writer killed mid-line: ignore the torn tail
                        continue
                    raise ValueError(f"{self.file}:{i + 1}: corrupted outcome record") from None
                out.append(rec)
        return out


def _outcome_value(success: bool | None, score: float | None) -> float:
    if (success is None) == (score is None):
        raise ValueError("success, score: give exactly one of them")
    if success is not None:
        if not isinstance(success, (bool, np.bool_)):
            raise TypeError(f"success: expected a bool, got {type(success).__name__}")
        return 1.0 if success else 0.0
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise TypeError(f"score: expected a finite number, got {score!r}")
    return float(score)


class ABTest:
    """ABTest(registry, "summarize-test", prompt="summarize", arms={"a": 3, "b": 4}, weights={"a": .5, "b": .5}).

    arms: arm -> version (int, "v3", or an alias resolved now) or a PromptVersion. The definition is
    committed on first use; opening an existing test with different arms or weights is a ValueError.
    The first arm is the control in results().
    """

    def __init__(
        self,
        registry: PromptRegistry,
        name: str,
        arms: Mapping[str, int | str | PromptVersion],
        *,
        prompt: str | None = None,
        weights: Mapping[str, float] | Sequence[float] | None = None,
    ) -> None:
        if not isinstance(registry, PromptRegistry):
            raise TypeError(f"registry: expected a PromptRegistry, got {type(registry).__name__}")
        self.registry, self.name = registry, check_name(name, "name")
        if not isinstance(arms, Mapping) or len(arms) < 2:
            raise ValueError("arms: expected a dict of at least two arm -> prompt version")
        resolved: dict[str, PromptVersion] = {}
        for arm, ref in arms.items():
            check_name(arm, "arms")
            if isinstance(ref, PromptVersion):
                resolved[arm] = ref
            else:
                if prompt is None:
                    raise ValueError("prompt: needed when arms are given as version numbers or aliases")
                resolved[arm] = registry.resolve(prompt, ref)
        if weights is None:
            w = [1.0] * len(resolved)
        elif isinstance(weights, Mapping):
            if set(weights) != set(resolved):
                raise ValueError(f"weights: keys {sorted(weights)} differ from arms {sorted(resolved)}")
            w = [weights[a] for a in resolved]
        else:
            w = list(weights)
            if len(w) != len(resolved):
                raise ValueError(f"weights: {len(w)} weights for {len(resolved)} arms")
        if any(isinstance(x, bool) or not isinstance(x, (int, float)) or not x >= 0 for x in w) or sum(w) <= 0:
            raise ValueError("weights: expected non-negative numbers with a positive sum")
        total = float(sum(w))
        self.arms = resolved
        self.weights = {a: x / total for a, x in zip(resolved, w, strict=True)}
        self._cum = np.cumsum([self.weights[a] for a in resolved])
        self._names = list(resolved)
        doc = {"name": name, "arms": {a: pv.ref for a, pv in resolved.items()},
               "weights": self.weights}  # fmt: skip
        with registry.locked():
            old = registry.read_state("experiments", name)
            if old is None:
                registry._commit(
                    {f"experiments/{name}.json": json.dumps({**doc, "created_at": _now()}, indent=1,
                                                            sort_keys=True).encode() + b"\n"},
                    f"experiment {name}: start {doc['arms']}\n\nInfercore-Action: experiment")  # fmt: skip
            elif not isinstance(old, dict) or {k: old.get(k) for k in doc} != json.loads(json.dumps(doc)):
                raise ValueError(f"name: experiment {name!r} already exists with a different definition")
        self._log = _OutcomeLog(registry, "experiment", name)

    def assign(self, key: str) -> str:
        """The arm for a request key (user or session id)."""
        u = bucket(self.name, key)
        i = int(np.searchsorted(self._cum, u, side="right"))
        return self._names[min(i, len(self._names) - 1)]

    def prompt_for(self, key: str) -> PromptVersion:
        return self.arms[self.assign(key)]

    def record(self, key: str, *, success: bool | None = None, score: float | None = None) -> str:
        """Record an outcome for the key's arm; returns the arm."""
        value = _outcome_value(success, score)
        arm = self.assign(key)
        self._log.append({"key": key, "arm": arm, "value": value, "binary": success is not None, "t": _now()})
        return arm

    def record_many(self, outcomes: Sequence[tuple[str, bool | float]]) -> None:
        """[(key, success bool or score float), ...] in one append and one fsync."""
        recs = []
        for i, item in enumerate(outcomes):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise TypeError(f"outcomes[{i}]: expected a (key, success or score) pair")
            key, v = item
            binary = isinstance(v, (bool, np.bool_))
            value = _outcome_value(bool(v) if binary else None, None if binary else v)
            recs.append({"key": key, "arm": self.assign(key), "value": value, "binary": binary, "t": _now()})
        if recs:
            self._log.append(*recs)

    def results(self, *, alpha: float = 0.05, method: str = "auto", n_boot: int = 2000, seed: int = 0
                ) -> dict[str, Any]:  # fmt: skip
        """Per-arm n / mean, each arm vs the control (first arm), and a winner only when significant.

        method: "z" (two-proportion z-test, binary outcomes), "bootstrap" (percentile interval of the
        difference of means) or "auto" (z when every outcome is binary). With more than two arms
        alpha is Bonferroni-corrected over the comparisons."""
        if method not in ("auto", "z", "bootstrap"):
            raise ValueError(f"method: expected 'auto', 'z' or 'bootstrap', got {method!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise ValueError(f"alpha: expected a value in (0, 1), got {alpha!r}")
        if isinstance(n_boot, bool) or not isinstance(n_boot, int) or not _MIN_BOOT <= n_boot <= _MAX_BOOT:
            raise ValueError(f"n_boot: expected an int in [{_MIN_BOOT}, {_MAX_BOOT}], got {n_boot!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed: expected an int >= 0, got {seed!r}")
        recs = self._log.read()
        values = {a: np.array([r["value"] for r in recs if r["arm"] == a], dtype=np.float64) for a in self._names}
        binary = all(r.get("binary") for r in recs)
        if method == "auto":
            method = "z" if binary else "bootstrap"
        if method == "z" and not binary:
            raise ValueError("method: 'z' needs success/failure outcomes; use 'bootstrap' for scores")
        arms = {a: {"prompt": self.arms[a].ref, "n": len(v), "mean": float(v.mean()) if len(v) else None,
                    "weight": self.weights[a]} for a, v in values.items()}  # fmt: skip
        control = self._names[0]
        a_alpha = alpha / max(1, len(self._names) - 1)
        comps, better = [], []
        for arm in self._names[1:]:
            va, vb = values[control], values[arm]
            comp: dict[str, Any] = {"arm": arm, "vs": control, "method": method}
            if len(va) < 2 or len(vb) < 2:
                comp.update(significant=False, reason="fewer than 2 outcomes in an arm")
            elif method == "z":
                z, p = two_proportion_z(int(va.sum()), len(va), int(vb.sum()), len(vb))
                comp.update(diff=float(vb.mean() - va.mean()), z=z, p_value=p, significant=p < a_alpha)
            else:
                lo, hi = bootstrap_diff(va, vb, a_alpha, n_boot, seed)
                comp.update(diff=float(vb.mean() - va.mean()), interval=[lo, hi], significant=lo > 0 or hi < 0)
            comps.append(comp)
            if comp["significant"]:
                better.append(arm if comp["diff"] > 0 else None)
        sig = [c for c in comps if c["significant"]]
        winner = None
        if sig:
            if all(c["diff"] < 0 for c in sig) and len(sig) == len(comps):
                winner = control  # the control beat every other arm significantly
            elif any(c["diff"] > 0 for c in sig):
                winner = max((c for c in sig if c["diff"] > 0), key=lambda c: c["diff"])["arm"]
        return {"name": self.name, "alpha": alpha, "method": method, "arms": arms, "comparisons": comps,
                "winner": winner, "significant": winner is not None}  # fmt: skip


Gate = Callable[[dict[str, Any]], bool] | Mapping[str, float]


class Rollout:
    """Rollout(registry, "summarize", candidate=4, stages=[0.05, 0.25, 1.0], gate={"min_success_rate": 0.9}).

    Routes stages[i] of the traffic (by key hash) to the candidate, the rest to the stable version
    (default: the current `alias`, else the latest version before the candidate). advance() moves to
    the next stage only when the gate passes on the stage's metrics; past the last stage the rollout
    completes and `alias` points at the candidate. rollback() sends all traffic to stable and records
    why. Gate: a callable(metrics) -> bool, or thresholds {"min_<metric>": x, "max_<metric>": y}.
    Metrics come from record() (success_rate, mean_score, n for the candidate since the stage began)
    merged with the metrics passed to advance().
    """

    def __init__(
        self,
        registry: PromptRegistry,
        name: str,
        candidate: int | str | PromptVersion,
        *,
        stages: Sequence[float] = (0.05, 0.25, 1.0),
        stable: int | str | PromptVersion | None = None,
        gate: Gate | None = None,
        alias: str = "production",
        rollout_id: str | None = None,
    ) -> None:
        if not isinstance(registry, PromptRegistry):
            raise TypeError(f"registry: expected a PromptRegistry, got {type(registry).__name__}")
        self.registry, self.name = registry, check_name(name, "name")
        self.alias = check_name(alias, "alias")
        self.candidate = candidate if isinstance(candidate, PromptVersion) else registry.resolve(name, candidate)
        if stable is None:
            aliases = registry.aliases(name)
            if alias in aliases and aliases[alias] != self.candidate.version:
                stable = aliases[alias]
            else:
                earlier = [v for v in registry.versions(name) if v < self.candidate.version]
                if not earlier:
                    raise ValueError("stable: no stable version (no alias and no version before the candidate)")
                stable = earlier[-1]
        self.stable = stable if isinstance(stable, PromptVersion) else registry.resolve(name, stable)
        if self.stable.version == self.candidate.version:
            raise ValueError("stable: the stable version and the candidate are the same")
        st = list(stages)
        if not st or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 1 for s in st):
            raise ValueError("stages: expected traffic shares in (0, 1]")
        if any(b <= a for a, b in itertools.pairwise(st)) or st[-1] != 1.0:
            raise ValueError("stages: expected strictly increasing shares ending at 1.0")
        if gate is not None and not callable(gate) and not isinstance(gate, Mapping):
            raise TypeError("gate: expected a callable(metrics) -> bool or a thresholds dict")
        if isinstance(gate, Mapping):
            for k, v in gate.items():
                if not isinstance(k, str) or not k.startswith(("min_", "max_")) or "\x00" in k or \
                        isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):  # fmt: skip
                    raise ValueError(f"gate: threshold {k!r} must be 'min_<metric>' or 'max_<metric>' -> finite number")
        self.stages, self.gate = [float(s) for s in st], gate
        self.id = check_name(rollout_id or f"{name}-v{self.candidate.version}", "rollout_id")
        state = registry.read_state("rollouts", self.id)
        if state is None:
            self._state = {"prompt": name, "stable": self.stable.version, "candidate": self.candidate.version,
                           "stages": self.stages, "stage": 0, "status": "running", "alias": alias,
                           "stage_started": _now(),
                           "events": [{"action": "start", "stage": 0, "t": _now()}]}  # fmt: skip
            registry.write_state("rollouts", self.id, self._state, f"start at {self.stages[0]:.0%}")
        else:
            if not isinstance(state, dict) or state.get("candidate") != self.candidate.version or \
                    state.get("stable") != self.stable.version or state.get("stages") != self.stages:  # fmt: skip
                raise ValueError(f"rollout_id: rollout {self.id!r} exists with a different definition")
            self._state = state
        self._log = _OutcomeLog(registry, "rollout", self.id)

    # ---------------------------------------------------------------- state
    @property
    def status(self) -> str:
        return self._state["status"]

    @property
    def stage(self) -> int:
        return self._state["stage"]

    @property
    def share(self) -> float:
        """Traffic share of the candidate now."""
        if self.status == "rolled_back":
            return 0.0
        if self.status == "completed":
            return 1.0
        return self.stages[self.stage]

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self._state["events"])

    def refresh(self) -> None:
        self._state = self.registry.read_state("rollouts", self.id)

    def choose(self, key: str) -> PromptVersion:
        """The prompt version that serves this request key."""
        return self.candidate if bucket(f"rollout:{self.id}", key) < self.share else self.stable

    def prompt_for(self, key: str) -> PromptVersion:
        """Same as choose(): the version serving this key (the interface Step uses for selectors)."""
        return self.choose(key)

    def record(self, key: str, *, success: bool | None = None, score: float | None = None) -> PromptVersion:
        value = _outcome_value(success, score)
        pv = self.choose(key)
        self._log.append({"key": key, "version": pv.version, "value": value, "binary": success is not None,
                          "stage": self.stage, "t": _now()})  # fmt: skip
        return pv

    def metrics(self) -> dict[str, Any]:
        """Candidate outcomes recorded in the current stage."""
        recs = [r for r in self._log.read() if r["version"] == self.candidate.version and r["stage"] == self.stage]
        vals = np.array([r["value"] for r in recs], dtype=np.float64)
        out: dict[str, Any] = {"n": len(vals)}
        if len(vals):
            out["mean_score"] = float(vals.mean())
            if all(r["binary"] for r in recs):
                out["success_rate"] = float(vals.mean())
                out["error_rate"] = 1.0 - out["success_rate"]
        return out

    def _gate_passes(self, metrics: dict[str, Any]) -> tuple[bool, str]:
        if self.gate is None:
            return True, "no gate"
        if callable(self.gate):
            ok = self.gate(metrics)
            if not isinstance(ok, (bool, np.bool_)):
                raise TypeError(f"gate: the callable must return a bool, got {type(ok).__name__}")
            return bool(ok), "gate callable " + ("passed" if ok else "failed")
        fails = []
        for k, thr in self.gate.items():
            metric = k[4:]
            v = metrics.get(metric)
            if v is None:
                fails.append(f"{metric} missing")
            elif k.startswith("min_") and v < thr:
                fails.append(f"{metric}={v:.4g} < {thr}")
            elif k.startswith("max_") and v > thr:
                fails.append(f"{metric}={v:.4g} > {thr}")
        return not fails, "; ".join(fails) or "thresholds met"

    def _save(self, message: str) -> None:
        self.registry.write_state("rollouts", self.id, self._state, message)

    def advance(self, metrics: Mapping[str, Any] | None = None) -> bool:
        """Go to the next stage if the gate passes; returns whether it advanced. The check is recorded."""
        if self.status != "running":
            raise ValueError(f"rollout {self.id!r} is {self.status}; it cannot advance")
        m = {**self.metrics(), **dict(metrics or {})}
        ok, why = self._gate_passes(m)
        ev = {"action": "advance" if ok else "gate_failed", "stage": self.stage, "reason": why,
              "metrics": {k: v for k, v in m.items() if isinstance(v, (int, float, str, bool))}, "t": _now()}
        if ok:
            if self.stage + 1 >= len(self.stages):
                self._state["status"] = "completed"
                ev["action"] = "complete"
            else:
                self._state["stage"] += 1
                self._state["stage_started"] = _now()
        self._state["events"].append(ev)
        self._save(f"{ev['action']} ({why}) -> {self.share:.0%}")
        if self._state["status"] == "completed":
            self.registry.set_alias(self.name, self.alias, self.candidate.version)
        return ok

    def rollback(self, reason: str) -> None:
        """All traffic back to the stable version; the reason is recorded in the state and the commit."""
        if not isinstance(reason, str) or not reason.strip() or "\x00" in reason:
            raise ValueError("reason: expected a non-empty string saying why (without NUL characters)")
        if self.status == "rolled_back":
            raise ValueError(f"rollout {self.id!r} is already rolled back")
        was_completed = self.status == "completed"
        self._state["status"] = "rolled_back"
        self._state["events"].append({"action": "rollback", "stage": self.stage, "reason": reason, "t": _now()})
        self._save(f"rollback: {reason}")
        if was_completed:
            self.registry.set_alias(self.name, self.alias, self.stable.version)
