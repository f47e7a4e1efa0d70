"""EvalSuite: what `infercore eval run` evaluates, read from YAML.

    name: smoke
    version: "1"
    model: smollm2                       # LLM name or path (overridable: eval run --model)
    model_options: {kv_cache_dtype: float16}
    prompts:                             # optional: prompt versions under evaluation
      registry: prompts/                 # a PromptRegistry directory (relative to this file)
      versions: {qa: production}         # name -> version number or alias
    guardrails: default                  # "default", a Guard config file, or an inline config
    seed: 0
    stages:
      regression:
        tasks:
          - {name: mmlu, type: multiple_choice, data: builtin:mc.jsonl, limit: 20, normalize: char}
          - {name: exact, type: exact_match, data: builtin:exact_match.jsonl, max_tokens: 24}
          - {name: code, type: code, data: builtin:code.jsonl, timeout_s: 5, memory_mb: 512}
        thresholds: {mmlu_accuracy: {min: 0.25}}
      quality:
        judge: {model: same, max_tokens: 48}      # "same" = the evaluated model
        tasks:
          - {name: judge, type: judge_agreement, data: builtin:judge_human.jsonl}
          - {name: helpful, type: single_answer, data: builtin:quality.jsonl, prompt: qa}
          - {name: vs_ref, type: pairwise, data: builtin:quality.jsonl}
          - {name: rag, type: rag, docs: builtin:rag_docs, questions: builtin:rag_questions}
      safety: {data: [builtin:safety.jsonl]}
      performance: {requests: 16, concurrency: 4, max_tokens: 32}

Paths: "builtin:NAME" is a file shipped in infercore/evals/data (builtin:rag_docs and
builtin:rag_questions are the RAG package's sample documents and questions); other relative paths
are relative to the suite file. Thresholds: metric name -> {min: x} and/or {max: x}; they are
checked after the run and recorded in the stage's details (the gate applies its own policy).

Metric names: regression `<task>_accuracy` (multiple_choice), `<task>_exact_match`,
`<task>_pass_at_1` (code); quality `<task>_kappa`, `<task>_agreement` (judge_agreement),
`<task>_score` (single_answer, rubric score scaled to [0, 1]), `<task>_win_rate` (pairwise), each
judge task also `<task>_judge_failure_rate`; the rag task adds `citation_coverage`, `groundedness`,
`hallucination_rate`, `citation_precision`, `abstention_rate`; safety `block_rate`,
`false_positive_rate` (+ `pii_redaction_rate`); performance `ttft_p50_s` ... `e2e_p99_s`,
`itl_p50_s` ..., `throughput_tok_s`, `error_rate`.

Every error names the file and line: malformed YAML, an unknown key, a wrong type.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .._fileio import check_path
from .results import STAGES

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")
SUITES_DIR = os.path.join(os.path.dirname(__file__), "suites")
_RAG_DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "rag", "data")
BUILTIN_SPECIAL = {"rag_docs": _RAG_DATA, "rag_questions": os.path.join(_RAG_DATA, "questions.jsonl"),
                   "nemo_config": os.path.join(os.path.dirname(_RAG_DATA), "..", "guardrails", "nemo_config")}

TASK_TYPES = {
    "regression": ("multiple_choice", "exact_match", "code"),
    "quality": ("judge_agreement", "single_answer", "pairwise", "rag"),
}
# key -> (types, default); "path" values are resolved against the suite file
_COMMON_TASK = {"name": (str, None), "type": (str, None), "data": ("path", None), "limit": ("posint", None)}
_TASK_KEYS: dict[str, dict[str, tuple[Any, Any]]] = {
    "multiple_choice": {"normalize": (str, "char"), "prompt_style": (str, "cloze")},
    "exact_match": {"max_tokens": ("posint", 32), "chat": (bool, True), "match": (str, "exact")},
    "code": {"max_tokens": ("posint", 192), "timeout_s": ("posnum", 5.0), "memory_mb": ("posint", 512),
             "mode": (str, "completion")},
    "judge_agreement": {"pass_score": ("posnum", 3.0)},
    "single_answer": {"max_tokens": ("posint", 96), "rubric": (str, None), "prompt": (str, None),
                      "answers": (str, "generate")},
    "pairwise": {"max_tokens": ("posint", 96), "prompt": (str, None)},
    "rag": {"docs": ("path", None), "questions": ("path", None), "k": ("posint", 4), "min_score": ("num", 0.3)},
}
_REQUIRED_TASK = {"multiple_choice": ("data",), "exact_match": ("data",), "code": ("data",),
                  "judge_agreement": ("data",), "single_answer": ("data",), "pairwise": ("data",),
                  "rag": ("docs", "questions")}  # fmt: skip


class SuiteError(ValueError):
    """A suite file that does not parse or does not match the schema; the message has file:line."""


# ---------------------------------------------------------------------------- YAML with line numbers
class _MDict(dict):
    line: int = 0
    key_lines: dict[str, int]


class _MList(list):
    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _MDict:
    out = _MDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    loader.flatten_mapping(node)
    for knode, vnode in node.value:
        key = loader.construct_object(knode, deep=True)
        if not isinstance(key, str):
            raise SuiteError(f"line {knode.start_mark.line + 1}: keys must be strings, got {key!r}")
        if key in out:
            raise SuiteError(f"line {knode.start_mark.line + 1}: duplicate key {key!r}")
        out[key] = loader.construct_object(vnode, deep=True)
        out.key_lines[key] = knode.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _MList:
    out = _MList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [n.start_mark.line + 1 for n in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def parse_yaml(text: str, source: str = "<suite>") -> Any:
    """YAML -> data whose dicts/lists remember their line numbers; errors carry source:line."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except SuiteError as e:
        raise SuiteError(f"{source}: {e}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        msg = f"{source}: {line}: malformed YAML: {e.problem or e.context}"
        if e.context and e.context_mark is not None and e.problem_mark is not None:
            msg += f" ({e.context} at line {e.context_mark.line + 1}, column {e.context_mark.column + 1})"
        raise SuiteError(msg) from None
    except yaml.YAMLError as e:
        raise SuiteError(f"{source}: malformed YAML: {e}") from None


class _Ctx:
    def __init__(self, source: str, base_dir: str) -> None:
        self.source, self.base_dir = source, base_dir

    def err(self, line: int, path: str, msg: str) -> SuiteError:
        return SuiteError(f"{self.source}:{line}: {path}: {msg}")

    def line_of(self, obj: Any, key: str | int | None = None) -> int:
        if isinstance(obj, _MDict) and isinstance(key, str):
            return obj.key_lines.get(key, obj.line)
        if isinstance(obj, _MList) and isinstance(key, int) and key < len(obj.item_lines):
            return obj.item_lines[key]
        return getattr(obj, "line", 0)

    def mapping(self, obj: Any, path: str, line: int, allowed: tuple[str, ...] | dict[str, Any]) -> _MDict:
        if not isinstance(obj, Mapping):
            raise self.err(line, path, f"expected a mapping, got {_tname(obj)}")
        for k in obj:
            if k not in allowed:
                raise self.err(self.line_of(obj, k), f"{path}.{k}", f"unknown key; expected one of {sorted(allowed)}")
        return obj  # type: ignore[return-value]

    def value(self, obj: Mapping, key: str, path: str, kind: Any) -> Any:
        v = obj[key]
        line = self.line_of(obj, key)
        where = f"{path}.{key}"
        if kind == "posint":
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise self.err(line, where, f"expected a positive int, got {v!r}")
        elif kind == "posnum":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise self.err(line, where, f"expected a positive number, got {v!r}")
            v = float(v)
        elif kind == "num":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self.err(line, where, f"expected a number, got {v!r}")
            v = float(v)
        elif kind == "path":
            if not isinstance(v, str) or not v:
                raise self.err(line, where, f"expected a path string, got {v!r}")
            v = self.resolve(v, line, where)
        elif kind is bool:
            if not isinstance(v, bool):
                raise self.err(line, where, f"expected true or false, got {v!r}")
        elif kind is str:
            if not isinstance(v, str):
                raise self.err(line, where, f"expected a string, got {_tname(v)}")
        elif kind == "mapping":
            if not isinstance(v, Mapping):
                raise self.err(line, where, f"expected a mapping, got {_tname(v)}")
            v = _plain(v)
        return v

    def resolve(self, p: str, line: int, where: str) -> str:
        if p.startswith("builtin:"):
            name = p[len("builtin:"):]
            full = BUILTIN_SPECIAL.get(name) or os.path.join(DATA_DIR, name)
            if not os.path.exists(full) or os.sep in name or name.startswith("."):
                raise self.err(line, where, f"no built-in data named {name!r} (see {DATA_DIR})")
            return full
        full = p if os.path.isabs(p) else os.path.join(self.base_dir, p)
        if not os.path.exists(full):
            raise self.err(line, where, f"{p!r} does not exist (resolved to {full})")
        return full


def _tname(v: Any) -> str:
    return "null" if v is None else {dict: "mapping", _MDict: "mapping", list: "list", _MList: "list"}.get(
        type(v), type(v).__name__)


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


# ---------------------------------------------------------------------------- the suite
@dataclass
class Task:
    name: str
    type: str
    options: dict[str, Any]
    limit: int | None = None
    data: str | None = None


@dataclass
class Stage:
    name: str
    tasks: list[Task] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class EvalSuite:
    name: str
    version: str
    model: str
    stages: dict[str, Stage]
    model_options: dict[str, Any] = field(default_factory=dict)
    prompt_registry: str | None = None
    prompt_versions: dict[str, Any] = field(default_factory=dict)
    guardrails: Any = "default"
    seed: int = 0
    source: str = "<suite>"
    sha256: str = ""

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EvalSuite:
        path = check_path(path, "path")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise SuiteError(f"{path}: cannot read suite: {e.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SuiteError(f"{path}: suite is not UTF-8") from None
        s = cls.from_yaml(text, source=path, base_dir=os.path.dirname(os.path.abspath(path)))
        return s

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<suite>", base_dir: str = ".") -> EvalSuite:
        doc = parse_yaml(text, source)
        ctx = _Ctx(source, base_dir)
        top = ("name", "version", "model", "model_options", "prompts", "guardrails", "seed", "stages")
        if doc is None:
            raise SuiteError(f"{source}:1: the suite is empty; expected a mapping with keys {list(top)}")
        ctx.mapping(doc, "suite", 1, top)
        for k in ("name", "version", "model", "stages"):
            if k not in doc:
                raise ctx.err(getattr(doc, "line", 1), "suite", f"missing required key {k!r}")
        name = ctx.value(doc, "name", "suite", str)
        ver = doc["version"]
        if isinstance(ver, bool) or not isinstance(ver, (str, int, float)):
            raise ctx.err(ctx.line_of(doc, "version"), "suite.version", f"expected a string or number, got {ver!r}")
        model = ctx.value(doc, "model", "suite", str)
        model_options = ctx.value(doc, "model_options", "suite", "mapping") if "model_options" in doc else {}
        seed = 0
        if "seed" in doc:
            seed = doc["seed"]
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise ctx.err(ctx.line_of(doc, "seed"), "suite.seed", f"expected a non-negative int, got {seed!r}")
        registry, pversions = None, {}
        if "prompts" in doc:
            pr = ctx.mapping(doc["prompts"], "suite.prompts", ctx.line_of(doc, "prompts"), ("registry", "versions"))
            if "registry" in pr:
                registry = ctx.value(pr, "registry", "suite.prompts", "path")
            if "versions" in pr:
                pversions = ctx.value(pr, "versions", "suite.prompts", "mapping")
                for k, v in pversions.items():
                    if isinstance(v, bool) or not isinstance(v, (int, str)):
                        raise ctx.err(ctx.line_of(pr["versions"], k), f"suite.prompts.versions.{k}",
                                      f"expected a version number or alias, got {v!r}")
                if registry is None:
                    raise ctx.err(ctx.line_of(doc, "prompts"), "suite.prompts",
                                  "versions need a registry path (prompts.registry)")
        guard: Any = "default"
        if "guardrails" in doc:
            g = doc["guardrails"]
            line = ctx.line_of(doc, "guardrails")
            if isinstance(g, str):
                guard = g if g == "default" else ctx.resolve(g, line, "suite.guardrails")
            elif isinstance(g, Mapping):
                guard = _plain(g)
            else:
                raise ctx.err(line, "suite.guardrails", f"expected 'default', a config path or a mapping, got {g!r}")
        stages_doc = ctx.mapping(doc["stages"], "suite.stages", ctx.line_of(doc, "stages"), STAGES)
        if not stages_doc:
            raise ctx.err(ctx.line_of(doc, "stages"), "suite.stages", f"expected at least one of {list(STAGES)}")
        stages = {sn: _stage(ctx, sn, stages_doc[sn], ctx.line_of(stages_doc, sn)) for sn in stages_doc}
        rag_tasks = [t for st in stages.values() for t in st.tasks if t.type == "rag"]
        if len(rag_tasks) > 1:
            raise SuiteError(f"{source}: only one rag task per suite (its metrics are unprefixed)")
        return cls(name=name, version=str(ver), model=model, stages=stages, model_options=model_options,
                   prompt_registry=registry, prompt_versions=pversions, guardrails=guard, seed=seed,
                   source=source, sha256=hashlib.sha256(text.encode()).hexdigest())


_STAGE_KEYS = {
    "regression": {"tasks": None, "thresholds": None},
    "quality": {"tasks": None, "thresholds": None, "judge": None},
    "safety": {"data": None, "limit": ("posint", None), "thresholds": None, "nemo_config": ("path", None)},
    "performance": {"requests": ("posint", 16), "concurrency": ("posint", 4), "max_tokens": ("posint", 32),
                    "prompts": ("path", None), "thresholds": None, "timeout_s": ("posnum", 120.0)},
}
_JUDGE_KEYS = {"model": (str, "same"), "max_tokens": ("posint", 48), "model_options": ("mapping", {})}


def _stage(ctx: _Ctx, sname: str, sdoc: Any, line: int) -> Stage:
    path = f"suite.stages.{sname}"
    if sdoc is None:
        sdoc = _MDict()
        sdoc.line, sdoc.key_lines = line, {}
    keys = _STAGE_KEYS[sname]
    ctx.mapping(sdoc, path, line, tuple(keys))
    st = Stage(sname)
    for k, spec in keys.items():
        if spec is not None:
            st.options[k] = ctx.value(sdoc, k, path, spec[0]) if k in sdoc else spec[1]
    if "thresholds" in sdoc:
        st.thresholds = _thresholds(ctx, sdoc["thresholds"], f"{path}.thresholds", ctx.line_of(sdoc, "thresholds"))
    if sname == "quality":
        jd = sdoc.get("judge", {}) or {}
        ctx.mapping(jd, f"{path}.judge", ctx.line_of(sdoc, "judge"), tuple(_JUDGE_KEYS))
        st.options["judge"] = {k: ctx.value(jd, k, f"{path}.judge", spec[0]) if k in jd else spec[1]
                               for k, spec in _JUDGE_KEYS.items()}
    if sname == "safety":
        data = sdoc.get("data", ["builtin:safety.jsonl"])
        dline = ctx.line_of(sdoc, "data")
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list) or not data or not all(isinstance(d, str) for d in data):
            raise ctx.err(dline, f"{path}.data", f"expected a path or a list of paths, got {data!r}")
        st.options["data"] = [ctx.resolve(d, dline, f"{path}.data") for d in data]
    if sname in TASK_TYPES:
        if "tasks" not in sdoc:
            raise ctx.err(getattr(sdoc, "line", line), path, "missing required key 'tasks'")
        tasks = sdoc["tasks"]
        tline = ctx.line_of(sdoc, "tasks")
        if not isinstance(tasks, list) or not tasks:
            raise ctx.err(tline, f"{path}.tasks", "expected a non-empty list of tasks")
        seen: set[str] = set()
        for i, tdoc in enumerate(tasks):
            t = _task(ctx, sname, tdoc, f"{path}.tasks[{i}]", ctx.line_of(tasks, i))
            if t.name in seen:
                raise ctx.err(ctx.line_of(tasks, i), f"{path}.tasks[{i}].name", f"duplicate task name {t.name!r}")
            seen.add(t.name)
            st.tasks.append(t)
    return st


def _thresholds(ctx: _Ctx, doc: Any, path: str, line: int) -> dict[str, dict[str, float]]:
    if not isinstance(doc, Mapping):
        raise ctx.err(line, path, f"expected a mapping of metric -> {{min: x, max: y}}, got {_tname(doc)}")
    out = {}
    for metric, spec in doc.items():
        mline = ctx.line_of(doc, metric)
        ctx.mapping(spec, f"{path}.{metric}", mline, ("min", "max"))
        if not spec:
            raise ctx.err(mline, f"{path}.{metric}", "expected min and/or max")
        out[metric] = {k: ctx.value(spec, k, f"{path}.{metric}", "num") for k in spec}
    return out


def _task(ctx: _Ctx, sname: str, tdoc: Any, path: str, line: int) -> Task:
    if not isinstance(tdoc, Mapping):
        raise ctx.err(line, path, f"expected a task mapping, got {_tname(tdoc)}")
    for k in ("name", "type"):
        if k not in tdoc:
            raise ctx.err(getattr(tdoc, "line", line), path, f"missing required key {k!r}")
    name = ctx.value(tdoc, "name", path, str)
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ctx.err(ctx.line_of(tdoc, "name"), f"{path}.name", f"expected letters, digits, '_' or '-', got {name!r}")
    typ = ctx.value(tdoc, "type", path, str)
    if typ not in TASK_TYPES[sname]:
        raise ctx.err(ctx.line_of(tdoc, "type"), f"{path}.type",
                      f"unknown task type {typ!r} for stage {sname}; expected one of {list(TASK_TYPES[sname])}")
    keys = {**_COMMON_TASK, **_TASK_KEYS[typ]}
    ctx.mapping(tdoc, path, line, tuple(keys))
    for req in _REQUIRED_TASK[typ]:
        if req not in tdoc:
            raise ctx.err(getattr(tdoc, "line", line), path, f"task type {typ!r} needs {req!r}")
    opts = {k: (ctx.value(tdoc, k, path, spec[0]) if k in tdoc else spec[1]) for k, spec in _TASK_KEYS[typ].items()}
    choices = {"normalize": ("sum", "token", "char"), "prompt_style": ("cloze", "letters"),
               "match": ("exact", "contains"), "answers": ("generate", "given"),
               "mode": ("completion", "chat")}
    for k, allowed in choices.items():
        if k in opts and opts[k] not in allowed:
            raise ctx.err(ctx.line_of(tdoc, k), f"{path}.{k}", f"expected one of {list(allowed)}, got {opts[k]!r}")
    data = ctx.value(tdoc, "data", path, "path") if "data" in tdoc else None
    limit = ctx.value(tdoc, "limit", path, "posint") if "limit" in tdoc else None
    return Task(name=name, type=typ, options=opts, limit=limit, data=data)
