"""Run an `EvalSuite` stage by stage into `EvalResults` (the file `infercore gate` reads).

Each stage records its wall time and its cost in details["cost"]: model calls, prompt and generated
tokens, forward tokens of log-likelihood scoring, sandbox seconds. Threshold checks of the suite are
recorded in details["checks"] (pass / fail / missing per metric); they do not stop the run.
`versions` names everything evaluated: the model (name, path, sha256 of its files), the judge model,
the prompt versions, the guardrail config (and its sha256), every data file's sha256, the suite's
sha256 and infercore's version.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

from .results import STAGES, EvalResults, Metric, StageResult
from .suite import EvalSuite


class Cost:
    def __init__(self) -> None:
        self.counts: dict[str, float] = {}

    def add(self, **kw: float) -> None:
        for k, v in kw.items():
            self.counts[k] = self.counts.get(k, 0) + v

    def to_json(self) -> dict[str, float]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in sorted(self.counts.items())}


def file_sha256(path: str) -> str:
    """sha256 of a file, or of a directory's files (relative names and contents, sorted)."""
    h = hashlib.sha256()
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(root, f)
                h.update(os.path.relpath(p, path).encode() + b"\0")
                h.update(bytes.fromhex(file_sha256(p)))
        return h.hexdigest()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_version(name: str) -> dict[str, Any]:
    from ..models import resolve_model

    try:
        path = str(resolve_model(name))
    except ValueError:
        path = name
    out: dict[str, Any] = {"name": name, "path": path}
    if os.path.exists(path):
        out["sha256"] = file_sha256(path)
    return out


class EvalContext:
    """What the stage runners share: the suite, the model (loaded once), the guard, the prompts."""

    def __init__(self, suite: EvalSuite, *, llm: Any = None, judge_complete: Any = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.suite = suite
        self._llm = llm
        self._guard = None
        self.judge_complete = judge_complete
        self.progress = progress or (lambda msg: None)
        self.cost = Cost()
        self.prompts: dict[str, Any] = {}
        if suite.prompt_registry:
            from ..prompts import PromptRegistry

            reg = PromptRegistry(suite.prompt_registry, create=False)
            self.prompts = {n: reg.resolve(n, ref) for n, ref in suite.prompt_versions.items()}

    @property
    def llm(self) -> Any:
        if self._llm is None:
            from ..engine.llm import LLM

            self._llm = LLM(self.suite.model, **self.suite.model_options)
        return self._llm

    @property
    def guard(self) -> Any:
        if self._guard is None:
            from ..guardrails import Guard

            g = self.suite.guardrails
            self._guard = Guard.default() if g == "default" else Guard.from_config(g)
        return self._guard

    def render_prompt(self, name: str | None, question: str) -> list[dict[str, str]]:
        """The conversation for a question: through the registered prompt `name` (variable
        `question`), or the question as the only user turn."""
        if name is None:
            return [{"role": "user", "content": question}]
        if name not in self.prompts:
            raise ValueError(f"prompt: {name!r} is not among the suite's prompt versions {sorted(self.prompts)}")
        pv = self.prompts[name]
        if "question" not in pv.variables:
            raise ValueError(f"prompt: {pv.ref} has no 'question' variable (declared: {sorted(pv.variables)})")
        if pv.is_chat:
            return pv.render_messages(question=question)
        return [{"role": "user", "content": pv.render(question=question)}]


def _data_key(path: str) -> str:
    from .suite import BUILTIN_SPECIAL, DATA_DIR

    for name, p in BUILTIN_SPECIAL.items():
        if os.path.abspath(path) == os.path.abspath(p):
            return f"builtin:{name}"
    if os.path.dirname(os.path.abspath(path)) == os.path.abspath(DATA_DIR):
        return f"builtin:{os.path.basename(path)}"
    return path


def _versions(suite: EvalSuite, ctx: EvalContext, model_override: str | None) -> dict[str, Any]:
    from .. import __version__

    data: dict[str, str] = {}
    for st in suite.stages.values():
        paths = [p for t in st.tasks for p in (t.data, t.options.get("docs"), t.options.get("questions")) if p]
        if st.name == "safety":
            paths += st.options["data"]
        if st.name == "performance" and st.options.get("prompts"):
            paths.append(st.options["prompts"])
        for p in paths:
            data[_data_key(p)] = file_sha256(p)
    v: dict[str, Any] = {
        "infercore": __version__, "python": platform.python_version(),
        "suite": {"name": suite.name, "version": suite.version, "sha256": suite.sha256},
        "model": model_version(model_override or suite.model), "data": data,
    }
    if "quality" in suite.stages:
        jm = suite.stages["quality"].options["judge"]["model"]
        v["judge"] = "same as model" if jm == "same" else model_version(jm)
    if ctx.prompts:
        v["prompts"] = {n: {"version": pv.version, "ref": pv.ref, "commit": pv.commit} for n, pv in ctx.prompts.items()}
    if "safety" in suite.stages or any(t.type == "rag" for s in suite.stages.values() for t in s.tasks):
        g = suite.guardrails
        if g == "default":
            v["guardrails"] = {"config": "default"}
        elif isinstance(g, str):
            v["guardrails"] = {"config": g, "sha256": file_sha256(g)}
        else:
            v["guardrails"] = {"config": "inline",
                               "sha256": hashlib.sha256(json.dumps(g, sort_keys=True).encode()).hexdigest()}
    return v


def check_thresholds(metrics: dict[str, Metric], thresholds: dict[str, dict[str, float]]) -> dict[str, str]:
    out = {}
    for name, spec in thresholds.items():
        m = metrics.get(name)
        if m is None or not math.isfinite(m.value):
            out[name] = "missing"
            continue
        ok = ("min" not in spec or m.value >= spec["min"]) and ("max" not in spec or m.value <= spec["max"])
        out[name] = "pass" if ok else "fail"
    return out


def _run_stage(ctx: EvalContext, stage: Any) -> tuple[dict[str, Metric], dict[str, Any]]:
    if stage.name == "regression":
        from .regression import RUNNERS

        metrics, details = {}, {}
        for t in stage.tasks:
            m, d = RUNNERS[t.type](ctx, t)
            metrics.update(m)
            details[t.name] = d
        return metrics, {"tasks": details}
    if stage.name == "quality":
        from .judge import Judge, llm_complete
        from .quality import run_agreement, run_pairwise, run_rag, run_single

        jo = stage.options["judge"]
        complete = ctx.judge_complete
        if complete is None:
            if jo["model"] == "same":
                jllm = ctx.llm
            else:
                from ..engine.llm import LLM

                jllm = LLM(jo["model"], **jo["model_options"])
            complete = llm_complete(jllm, jo["max_tokens"], ctx.cost)
        judge = Judge(complete)
        metrics, details = {}, {}
        for t in stage.tasks:
            if t.type == "rag":
                m, d = run_rag(ctx, t)
            else:
                fn = {"judge_agreement": run_agreement, "single_answer": run_single, "pairwise": run_pairwise}[t.type]
                m, d = fn(ctx, t, judge)
            metrics.update(m)
            details[t.name] = d
            ctx.progress(f"quality: {t.name} done")
        return metrics, {"tasks": details, "judge": jo["model"]}
    if stage.name == "safety":
        from .safety import run_safety

        return run_safety(ctx, stage)
    from .performance import run_performance

    return run_performance(ctx, stage)


def run_suite(suite: EvalSuite, *, stages: Sequence[str] | None = None, model: str | None = None, llm: Any = None,
              judge_complete: Any = None, progress: Callable[[str], None] | None = None) -> EvalResults:
    """Run the suite's stages (all, or the named subset, in the canonical order). model: evaluate
    this model instead of the suite's; llm: an already loaded LLM to use (tests)."""
    if stages is not None:
        bad = [s for s in stages if s not in suite.stages]
        if bad:
            raise ValueError(f"stages: {bad} not in the suite (it has {list(suite.stages)})")
    if model is not None:
        suite.model = model
    ctx = EvalContext(suite, llm=llm, judge_complete=judge_complete, progress=progress)
    res = EvalResults(suite.name, suite.version, versions=_versions(suite, ctx, model))
    todo = [s for s in STAGES if s in suite.stages and (stages is None or s in stages)]
    for sname in todo:
        stage = suite.stages[sname]
        ctx.cost = Cost()
        ctx.progress(f"stage {sname}: start")
        load_s = None
        if sname != "safety" and ctx._llm is None:  # loading the model is a one-off, not the stage's cost
            t_load = time.perf_counter()
            _ = ctx.llm
            load_s = round(time.perf_counter() - t_load, 3)
        t0 = time.perf_counter()
        metrics, details = _run_stage(ctx, stage)
        wall = time.perf_counter() - t0
        details = {**details, "cost": ctx.cost.to_json()}
        if load_s is not None:
            details["model_load_s"] = load_s
        if stage.thresholds:
            details["thresholds"] = stage.thresholds
            details["checks"] = check_thresholds(metrics, stage.thresholds)
        res.stages[sname] = StageResult(metrics=metrics, wall_s=round(wall, 3), details=details)
        ctx.progress(f"stage {sname}: {wall:.1f}s")
    return res
