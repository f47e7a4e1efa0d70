"""Step, Sequential and Router: versioned chains over LLM.generate, with a run record and spans.

A chain run is a dict `state` that starts as the inputs; each step renders its prompt version from the
state's variables, calls the model, parses the text and stores the result under its output_key.
Every run returns a ChainRun recording the chain name/version, and per model call the prompt name and
version, model, sampling params and token usage; run_log= appends it as one JSON line.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._fileio import check_path
from ..engine.sampling_params import SamplingParams
from ..prompts.template import PromptVersion, compile_template, normalize_variables
from . import tracing as T

_SAMPLING_FIELDS = {f.name for f in dataclasses.fields(SamplingParams) if not f.name.startswith("_")}


class ChainError(RuntimeError):
    """A step failed (model call, output parser, or a limit); the message names the step."""


@dataclass
class CallRecord:
    step: str
    prompt: str | None  # "name@vN"
    model: str
    params: dict[str, Any]
    input_tokens: int
    output_tokens: int
    finish_reason: str | None
    latency_ms: float
    text: str


@dataclass
class ChainRun:
    run_id: str
    chain: str
    chain_version: str
    inputs: dict[str, Any]
    output: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    calls: list[CallRecord] = field(default_factory=list)
    status: str = "ok"  # ok | error | max_steps | timeout
    error: str | None = None
    started_at: str = ""
    duration_ms: float = 0.0
    trace_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return json.loads(json.dumps(d, default=repr))


class RunContext:
    def __init__(self, tracer: Any, run: ChainRun, deadline: float | None) -> None:
        self.tracer, self.run, self.deadline = tracer, run, deadline


def _model_name(llm: Any, model_config: Mapping[str, Any], explicit: str | None) -> str:
    if explicit is not None and not isinstance(explicit, str):
        raise TypeError(f"model: expected a str or None, got {type(explicit).__name__}")
    if explicit:
        return explicit
    if model_config.get("model"):
        return str(model_config["model"])
    return str(getattr(llm, "model_name", None) or getattr(llm, "name", None) or type(llm).__name__)


def sampling_from_config(model_config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
                         ) -> SamplingParams:  # fmt: skip
    """SamplingParams from a prompt's model_config ("model" is not a sampling field) plus overrides."""
    if not isinstance(model_config, Mapping):
        raise TypeError(f"model_config: expected a mapping of SamplingParams fields, got {type(model_config).__name__}")
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"overrides: expected a mapping of SamplingParams fields, got {type(overrides).__name__}")
    merged = {k: v for k, v in model_config.items() if k != "model"}
    merged.update(overrides or {})
    unknown = set(merged) - _SAMPLING_FIELDS
    if unknown:
        raise ValueError(f"params: {sorted(unknown)} are not SamplingParams fields")
    return SamplingParams(**merged)


def call_model(ctx: RunContext, step: str, llm: Any, prompt: PromptVersion | None, text_or_messages: Any,
               params: SamplingParams, model: str, operation: str | None = None) -> str:  # fmt: skip
    """One traced model call; appends its CallRecord to the run. A list is chat messages (llm.chat);
    a str or {"prompt_token_ids": [...]} goes to llm.generate."""
    chat = isinstance(text_or_messages, list)
    op = operation or ("chat" if chat else "text_completion")
    attrs = {T.OPERATION: op, T.PROVIDER: "infercore", T.REQUEST_MODEL: model,
             T.REQUEST_TEMPERATURE: params.temperature, T.REQUEST_TOP_P: params.top_p,
             T.REQUEST_MAX_TOKENS: params.max_tokens, T.REQUEST_SEED: params.seed,
             T.PROMPT_NAME: prompt.name if prompt else None, T.PROMPT_VERSION: prompt.version if prompt else None,
             "infercore.step": step}  # fmt: skip
    with ctx.tracer.span(f"{op} {model}", attrs) as sp:
        t0 = time.perf_counter()
        if chat:
            out = llm.chat(text_or_messages, params)[0]
        else:
            out = llm.generate(text_or_messages, params)[0]
        dt = (time.perf_counter() - t0) * 1e3
        comp = out.outputs[0]
        sp.set_attributes({T.USAGE_INPUT_TOKENS: len(out.prompt_token_ids), T.USAGE_OUTPUT_TOKENS: len(comp.token_ids),
                           T.RESPONSE_FINISH_REASONS: [comp.finish_reason or "unknown"]})  # fmt: skip
    ctx.run.calls.append(CallRecord(step, prompt.ref if prompt else None, model,
                                    {k: v for k, v in dataclasses.asdict(params).items() if not k.startswith("_")},
                                    len(out.prompt_token_ids), len(comp.token_ids), comp.finish_reason, dt,
                                    comp.text))  # fmt: skip
    return comp.text


def inline_prompt(name: str, template: str, variables: Mapping[str, Any] | None = None,
                  model_config: Mapping[str, Any] | None = None) -> PromptVersion:  # fmt: skip
    """An unregistered prompt (version 0) for quick chains; register it to get a real version."""
    declared = normalize_variables(variables) if variables is not None else None
    compiled, used = compile_template(template, declared)
    if declared is None:
        declared = {v: {"type": "any"} for v in sorted(used)}
    return PromptVersion(name, 0, template, declared, dict(model_config or {}), {}, "inline", "", None, compiled)


class Runnable:
    """Base of steps and chains: run(inputs) -> ChainRun; _invoke(state, ctx) -> output."""

    name: str
    version: str = "0"
    output_key: str

    def _invoke(self, state: dict[str, Any], ctx: RunContext) -> Any:
        raise NotImplementedError

    def run(self, inputs: Mapping[str, Any] | None = None, *, tracer: Any = None, run_log: str | os.PathLike[str]
            | None = None, timeout_s: float | None = None) -> ChainRun:  # fmt: skip
        """Run once. tracer: a tracing.Tracer (None: no spans). run_log: append the ChainRun as a JSON
        line. timeout_s: wall-clock budget checked before each model call. Errors are recorded in the
        ChainRun (status "error") and re-raised as ChainError."""
        if inputs is not None and not isinstance(inputs, Mapping):
            raise TypeError(f"inputs: expected a dict, got {type(inputs).__name__}")
        if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                      or timeout_s <= 0):  # fmt: skip
            raise ValueError(f"timeout_s: expected a positive number, got {timeout_s!r}")
        if run_log is not None:  # checked before the run: an int would be taken as a file descriptor
            run_log = check_path(run_log, "run_log")
        tracer = tracer if tracer is not None else T.NullTracer()
        state = dict(inputs or {})
        run = ChainRun(secrets.token_hex(8), self.name, str(self.version), dict(state),
                       started_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"))
        ctx = RunContext(tracer, run, None if timeout_s is None else time.monotonic() + timeout_s)
        t0 = time.perf_counter()
        err: BaseException | None = None
        with tracer.span(f"chain {self.name}", {T.OPERATION: "chain", T.CHAIN_NAME: self.name,
                                                 T.CHAIN_VERSION: str(self.version), T.RUN_ID: run.run_id}) as sp:
            run.trace_id = getattr(sp, "trace_id", None)
            try:
                run.output = self._invoke(state, ctx)
            except ChainError as e:
                err = e
                run.status, run.error = "error", str(e)
                sp.set_attribute("error.type", type(e.__cause__ or e).__name__)
                sp.set_status("ERROR", str(e))
            if run.status not in ("ok", "error"):
                sp.set_attribute("infercore.run.status", run.status)
        run.state = state
        run.duration_ms = (time.perf_counter() - t0) * 1e3
        if run_log is not None:
            with open(run_log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(run.to_dict(), ensure_ascii=False) + "\n")
        if err is not None:
            raise err
        return run


def _check_key(key: Any, arg: str, *, optional: bool = False) -> None:
    """A state key argument: a non-empty str (or None when optional)."""
    if key is None and optional:
        return
    if not isinstance(key, str):
        raise TypeError(f"{arg}: expected a non-empty string{' or None' if optional else ''}, got {type(key).__name__}")
    if not key:
        raise ValueError(f"{arg}: expected a non-empty string, got ''")


def _check_deadline(ctx: RunContext, step: str) -> None:
    if ctx.deadline is not None and time.monotonic() > ctx.deadline:
        ctx.run.status = "timeout"
        raise ChainError(f"step {step!r}: the run's time limit was reached")


class Step(Runnable):
    """A prompt version + a model call + an output parser.

    prompt: a PromptVersion (from a PromptRegistry, or inline_prompt()); its variables are taken from
    the run state. Or a selector with prompt_for(key) -> PromptVersion (an ABTest or a Rollout): each
    run then uses the version chosen for state[key_field] (a user or session id), and records it.
    llm: an infercore.LLM (anything with generate/chat returning RequestOutputs).
    params: SamplingParams fields overriding the prompt's model_config. parser: text -> value.
    """

    def __init__(self, name: str, prompt: PromptVersion | Any, llm: Any, *,
                 parser: Callable[[str], Any] | None = None, params: Mapping[str, Any] | None = None,
                 output_key: str | None = None, model: str | None = None, chat: bool | None = None,
                 key_field: str = "user_id") -> None:  # fmt: skip
        if not isinstance(name, str) or not name:
            raise ValueError("name: expected a non-empty string")
        _check_key(output_key, "output_key", optional=True)
        _check_key(key_field, "key_field")
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"params: expected a mapping of SamplingParams fields, got {type(params).__name__}")
        self.selector, self.key_field = None, key_field
        if not isinstance(prompt, PromptVersion):
            if not callable(getattr(prompt, "prompt_for", None)):
                raise TypeError(f"prompt: expected a PromptVersion, ABTest or Rollout, got {type(prompt).__name__}")
            self.selector = prompt
            arms = getattr(prompt, "arms", None)
            prompt = next(iter(arms.values())) if arms else prompt.stable  # the default shown before any key
        if not callable(getattr(llm, "generate", None)):
            raise TypeError("llm: expected an object with generate() (an infercore.LLM)")
        if parser is not None and not callable(parser):
            raise TypeError("parser: expected a callable(text) -> value")
        self.name, self.prompt, self.llm, self.parser = name, prompt, llm, parser
        self.output_key = output_key or name
        self.params = sampling_from_config(prompt.model_config, params)  # validated once, at build time
        self.param_overrides = dict(params or {})
        self._explicit_model = model
        self.model = _model_name(llm, prompt.model_config, model)
        self.chat_override = chat
        self.chat = prompt.is_chat if chat is None else bool(chat)
        self.version = str(prompt.version)

    def _select(self, state: Mapping[str, Any]) -> tuple[PromptVersion, SamplingParams, str, bool]:
        if self.selector is None:
            return self.prompt, self.params, self.model, self.chat
        key = state.get(self.key_field)
        if not isinstance(key, str):
            raise ValueError(f"state[{self.key_field!r}]: a prompt selector needs a string request key")
        pv = self.selector.prompt_for(key)
        chat = pv.is_chat if self.chat_override is None else bool(self.chat_override)
        return (pv, sampling_from_config(pv.model_config, self.param_overrides),
                _model_name(self.llm, pv.model_config, self._explicit_model), chat)

    def _invoke(self, state: dict[str, Any], ctx: RunContext) -> Any:
        _check_deadline(ctx, self.name)
        try:
            pv, params, model, chat = self._select(state)
            values = {k: state[k] for k in pv.variables if k in state}
            rendered: Any = pv.render_messages(values) if chat else pv.render(values)
            text = call_model(ctx, self.name, self.llm, pv, rendered, params, model)
        except (ValueError, TypeError) as e:
            raise ChainError(f"step {self.name!r}: {e}") from e
        if self.parser is None:
            out: Any = text
        else:
            try:
                out = self.parser(text)
            except Exception as e:  # a parser is user code: any failure is this step's failure
                raise ChainError(f"step {self.name!r}: output parser failed: {type(e).__name__}: {e}") from e
        state[self.output_key] = out
        return out


class Sequential(Runnable):
    """Runs steps in order over one state; the output is the last step's."""

    def __init__(self, name: str, steps: list[Runnable], *, version: str = "1") -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("name: expected a non-empty string")
        if not isinstance(steps, (list, tuple)) or not steps:
            raise ValueError("steps: expected a non-empty list of steps or chains")
        for i, s in enumerate(steps):
            if not isinstance(s, Runnable):
                raise TypeError(f"steps[{i}]: expected a Step or chain, got {type(s).__name__}")
        self.name, self.steps, self.version = name, list(steps), str(version)
        self.output_key = steps[-1].output_key

    def _invoke(self, state: dict[str, Any], ctx: RunContext) -> Any:
        out = None
        for s in self.steps:
            if isinstance(s, Step):
                out = s._invoke(state, ctx)
            else:
                with ctx.tracer.span(f"chain {s.name}", {T.OPERATION: "chain", T.CHAIN_NAME: s.name,
                                                         T.CHAIN_VERSION: str(s.version)}):  # fmt: skip
                    out = s._invoke(state, ctx)
                state[s.output_key] = out
        return out


# ---------------------------------------------------------------- routing
class KeywordClassifier:
    """Route by keywords: the route whose keywords occur most often in state[field] (case-insensitive)."""

    def __init__(self, keywords: Mapping[str, list[str]], *, field: str = "input") -> None:
        if not isinstance(keywords, Mapping) or not keywords:
            raise ValueError("keywords: expected a dict route -> list of keywords")
        for r, ks in keywords.items():
            if not isinstance(ks, (list, tuple)) or not all(isinstance(k, str) and k for k in ks):
                raise ValueError(f"keywords[{r!r}]: expected a list of non-empty strings, got {ks!r}")
        _check_key(field, "field")
        self.keywords = {r: [k.lower() for k in ks] for r, ks in keywords.items()}
        self.field = field

    def __call__(self, state: Mapping[str, Any]) -> str | None:
        text = str(state.get(self.field, "")).lower()
        scores = {r: sum(text.count(k) for k in ks) for r, ks in self.keywords.items()}
        best = max(scores, key=lambda r: scores[r])
        return best if scores[best] > 0 else None


class EmbeddingClassifier:
    """Route by cosine similarity of state[field] to each route's description.

    encode: texts -> float array [n, d] (e.g. infercore.Embedder(...).encode). min_similarity: below
    it the router takes its default route."""

    def __init__(self, encode: Callable[[list[str]], Any], descriptions: Mapping[str, str], *, field: str = "input",
                 min_similarity: float = -1.0) -> None:  # fmt: skip
        import numpy as np

        if not callable(encode):
            raise TypeError("encode: expected a callable(list[str]) -> array")
        if not isinstance(descriptions, Mapping) or not descriptions:
            raise ValueError("descriptions: expected a dict route -> description")
        for r, d in descriptions.items():
            if not isinstance(d, str):
                raise TypeError(f"descriptions[{r!r}]: expected a str, got {type(d).__name__}")
        _check_key(field, "field")
        if (isinstance(min_similarity, bool) or not isinstance(min_similarity, (int, float))
                or not -1.0 <= min_similarity <= 1.0):  # fmt: skip
            raise ValueError(f"min_similarity: expected a cosine in [-1, 1], got {min_similarity!r}")
        self.encode, self.routes, self.field, self.min_similarity = encode, list(descriptions), field, min_similarity
        self._np = np
        self._centroids = self._unit(np.asarray(encode(list(descriptions.values())), dtype=np.float32))

    def _unit(self, x: Any) -> Any:
        return x / self._np.maximum(self._np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    def __call__(self, state: Mapping[str, Any]) -> str | None:
        q = self._unit(self._np.asarray(self.encode([str(state.get(self.field, ""))]), dtype=self._np.float32))[0]
        sims = self._centroids @ q
        i = int(sims.argmax())
        return self.routes[i] if sims[i] >= self.min_similarity else None


class LLMClassifier:
    """Ask the model which route fits; the first route name in its reply wins (greedy, few tokens)."""

    TEMPLATE = ("Classify the request into one of these categories:\n{% for r, d in routes %}- {{ r }}: {{ d }}\n"
                "{% endfor %}Request: {{ input }}\nAnswer with the category name only.\nCategory:")  # fmt: skip

    def __init__(self, llm: Any, descriptions: Mapping[str, str], *, field: str = "input",
                 max_tokens: int = 8, model: str | None = None) -> None:  # fmt: skip
        if not isinstance(descriptions, Mapping) or not descriptions:
            raise ValueError("descriptions: expected a dict route -> description")
        _check_key(field, "field")
        self.llm, self.descriptions, self.field = llm, dict(descriptions), field
        self.prompt = inline_prompt("router-classifier", self.TEMPLATE, {"routes": "list", "input": "any"})
        self.params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
        self.model = _model_name(llm, {}, model)
        self.ctx: RunContext | None = None

    def classify(self, state: Mapping[str, Any], ctx: RunContext) -> str | None:
        text = self.prompt.render(routes=list(self.descriptions.items()), input=str(state.get(self.field, "")))
        reply = call_model(ctx, "router", self.llm, None, text, self.params, self.model).lower()
        hits = [(reply.find(r.lower()), r) for r in self.descriptions if r.lower() in reply]
        return min(hits)[1] if hits else None


class Router(Runnable):
    """Runs the one route the classifier picks. classifier: KeywordClassifier, EmbeddingClassifier,
    LLMClassifier or any callable(state) -> route name or None (None -> default). Without a
    classifier, descriptions= (route -> text) and encode= (e.g. Embedder.encode) give the default:
    embedding similarity to the route descriptions."""

    def __init__(self, name: str, routes: Mapping[str, Runnable], classifier: Any = None, *,
                 default: str | None = None, version: str = "1", descriptions: Mapping[str, str] | None = None,
                 encode: Callable[[list[str]], Any] | None = None) -> None:  # fmt: skip
        if not isinstance(name, str) or not name:
            raise ValueError("name: expected a non-empty string")
        if not isinstance(routes, Mapping) or not routes:
            raise ValueError("routes: expected a dict route name -> step or chain")
        if classifier is None:
            if descriptions is None or encode is None:
                raise ValueError("classifier: give a classifier, or descriptions= and encode= for the default "
                                 "embedding classifier")  # fmt: skip
            if not isinstance(descriptions, Mapping):
                raise TypeError(f"descriptions: expected a dict route -> description, "
                                f"got {type(descriptions).__name__}")
            if set(descriptions) != set(routes):
                raise ValueError(f"descriptions: keys {sorted(descriptions)} differ from routes {sorted(routes)}")
            classifier = EmbeddingClassifier(encode, descriptions)
        for r, s in routes.items():
            if not isinstance(s, Runnable):
                raise TypeError(f"routes[{r!r}]: expected a Step or chain, got {type(s).__name__}")
        if not callable(classifier) and not isinstance(classifier, LLMClassifier):
            raise TypeError("classifier: expected a classifier object or a callable(state) -> route")
        if default is not None and default not in routes:
            raise ValueError(f"default: {default!r} is not one of the routes {sorted(routes)}")
        self.name, self.routes, self.classifier, self.default = name, dict(routes), classifier, default
        self.version, self.output_key = str(version), name

    def _invoke(self, state: dict[str, Any], ctx: RunContext) -> Any:
        with ctx.tracer.span(f"route {self.name}", {T.OPERATION: "route", T.CHAIN_NAME: self.name}) as sp:
            if isinstance(self.classifier, LLMClassifier):
                _check_deadline(ctx, self.name)
                try:
                    route = self.classifier.classify(state, ctx)
                except (ValueError, TypeError) as e:
                    raise ChainError(f"router {self.name!r}: classifier failed: {e}") from e
            else:
                route = self.classifier(state)
            if route is None:
                route = self.default
            if route not in self.routes:
                raise ChainError(f"router {self.name!r}: classifier chose {route!r}, not one of {sorted(self.routes)}"
                                 " and there is no default")  # fmt: skip
            sp.set_attribute("infercore.route", route)
        state[f"{self.name}.route"] = route
        target = self.routes[route]
        out = target._invoke(state, ctx)
        state[self.output_key] = out
        return out
