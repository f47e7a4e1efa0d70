"""ToolAgent: a loop of model tool call -> execution -> observation, with step and time limits.

Tools are typed Python functions declared with @tool; their JSON schema comes from the signature
(int -> integer, float -> number, str -> string, bool -> boolean, list[X] -> array, dict -> object,
Literal -> enum, Optional -> not required). The model answers with one JSON object per turn:
{"tool": NAME, "arguments": {...}} or {"answer": TEXT}. A reply that is not such an object, an unknown
tool, invalid arguments or an exception inside a tool become an observation fed back to the model,
never a crash. When the model supports structured output (an infercore `LLM` with a tokenizer),
each reply is decoded under the JSON schema of exactly those objects (`call_schema`), so even the
135M default model always emits a well-formed call to a real tool with typed arguments. Without
constrained decoding (constrained=False, a response_prefix, or a model without it) a small model
often emits invalid JSON: the loop then ends at max_steps with status "max_steps".
"""

from __future__ import annotations

import inspect
import json
import re
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..engine.sampling_params import SamplingParams
from . import tracing as T
from .core import ChainError, RunContext, Runnable, _check_key, _model_name, call_model

_PRIMS = {int: "integer", float: "number", str: "string", bool: "boolean"}


def _schema(tp: Any, where: str) -> tuple[dict[str, Any], bool]:
    """(JSON schema, optional?) of a type hint."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return _schema(rest[0], where)[0], True
        return {"anyOf": [_schema(a, where)[0] for a in rest]}, type(None) in args
    if origin is typing.Literal:
        return {"enum": list(args)}, False
    if tp in _PRIMS:
        return {"type": _PRIMS[tp]}, False
    if tp in (list, tuple) or origin in (list, tuple, Sequence):
        s: dict[str, Any] = {"type": "array"}
        if args and args[-1] is not Ellipsis:
            s["items"] = _nullable_schema(args[0], where)
        return s, False
    if tp is dict or origin in (dict, Mapping):
        return {"type": "object"}, False
    if tp is Any:
        return {}, False
    raise TypeError(f"{where}: type hint {tp!r} has no JSON-schema mapping (use int, float, str, bool, list, dict)")


def _nullable_schema(tp: Any, where: str) -> dict[str, Any]:
    """The schema of a nested type hint (a list item), allowing null when the hint is Optional."""
    s, optional = _schema(tp, where)
    if not optional:
        return s
    return {"anyOf": [*s.get("anyOf", [s]), {"type": "null"}]}


def _param_docs(doc: str) -> dict[str, str]:
    """'name: text' lines under an Args: section of a docstring."""
    out, in_args = {}, False
    for line in doc.splitlines():
        s = line.strip()
        if s.lower() in ("args:", "arguments:", "parameters:"):
            in_args = True
            continue
        if in_args:
            m = re.match(r"^(\w+)\s*(?:\([^)]*\))?:\s*(.+)$", s)
            if m:
                out[m.group(1)] = m.group(2)
            elif not s:
                in_args = False
    return out


class Tool:
    """A function the agent may call, with its JSON schema (OpenAI function-calling shape)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, description: str | None = None) -> None:
        if not callable(fn):
            raise TypeError("fn: expected a function")
        self.fn = fn
        self.name = name or fn.__name__
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", self.name):
            raise ValueError(f"name: {self.name!r} is not a valid tool name")
        doc = inspect.getdoc(fn) or ""
        self.description = description or (doc.split("\n\n")[0].strip() if doc else self.name)
        hints = typing.get_type_hints(fn)
        pdocs = _param_docs(doc)
        props: dict[str, Any] = {}
        required = []
        self._nullable: set[str] = set()  # parameters that take None (an Optional hint or a None default)
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"{self.name}: *args/**kwargs cannot be described by a JSON schema")
            if p.name not in hints:
                raise TypeError(f"{self.name}: parameter {p.name!r} needs a type hint")
            s, optional = _schema(hints[p.name], f"{self.name}.{p.name}")
            if p.name in pdocs:
                s["description"] = pdocs[p.name]
            if optional or p.default is None:
                self._nullable.add(p.name)
            if p.default is not inspect.Parameter.empty:
                if isinstance(p.default, (str, int, float, bool, type(None))):
                    s["default"] = p.default
            elif not optional:
                required.append(p.name)
            props[p.name] = s
        self.parameters = {"type": "object", "properties": props, "required": required,
                           "additionalProperties": False}  # fmt: skip

    @property
    def schema(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}  # fmt: skip

    def validate(self, arguments: Any) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise ValueError(f"arguments: expected a JSON object, got {type(arguments).__name__}")
        props = self.parameters["properties"]
        unknown = set(arguments) - set(props)
        if unknown:
            raise ValueError(f"unknown arguments {sorted(unknown)}; parameters are {sorted(props)}")
        missing = [r for r in self.parameters["required"] if r not in arguments]
        if missing:
            raise ValueError(f"missing required arguments {missing}")
        for k, v in arguments.items():
            if v is None and k in self._nullable:
                continue
            _check_value(props[k], v, k)
        return arguments

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def _check_value(s: Mapping[str, Any], v: Any, where: str) -> None:
    if "enum" in s and v not in s["enum"]:
        raise ValueError(f"argument {where!r}: {v!r} is not one of {s['enum']}")
    if "anyOf" in s:
        for alt in s["anyOf"]:
            try:
                _check_value(alt, v, where)
                return
            except ValueError:
                continue
        raise ValueError(f"argument {where!r}: {v!r} matches none of the allowed types")
    t = s.get("type")
    ok = {"integer": isinstance(v, int) and not isinstance(v, bool), "null": v is None,
          "number": isinstance(v, (int, float)) and not isinstance(v, bool),
          "string": isinstance(v, str), "boolean": isinstance(v, bool), "array": isinstance(v, list),
          "object": isinstance(v, dict), None: True}.get(t, True)  # fmt: skip
    if not ok:  # None too: only an Optional hint (or a None default) lets None through
        raise ValueError(f"argument {where!r}: expected {t}, got {type(v).__name__}")
    if t == "array" and "items" in s:
        for i, x in enumerate(v):
            _check_value(s["items"], x, f"{where}[{i}]")


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None) -> Any:
    """Decorator: @tool or @tool(name=..., description=...) -> a Tool."""
    if fn is None:
        return lambda f: Tool(f, name, description)
    return Tool(fn, name, description)


def first_json_object(text: str) -> Any:
    """The first JSON object in text (models wrap it in prose or code fences), else ValueError."""
    dec = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = dec.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    raise ValueError("no JSON object in the reply")


SYSTEM = ("You are an agent that can call tools. Tools (JSON schemas):\n{tools}\n"
          'To call a tool reply with only {{"tool": "<name>", "arguments": {{...}}}}. '
          'When you know the answer reply with only {{"answer": "<text>"}}.')  # fmt: skip


class ToolAgent(Runnable):
    """ToolAgent(name, llm, tools, max_steps=5, max_time_s=60): answers state[input_key] using tools."""

    def __init__(self, name: str, llm: Any, tools: Sequence[Tool | Callable[..., Any]], *, max_steps: int = 5,
                 max_time_s: float = 60.0, system: str | None = None, params: Mapping[str, Any] | None = None,
                 input_key: str = "input", model: str | None = None, version: str = "1",
                 response_prefix: str | None = None, constrained: bool | None = None,
                 answer_max_chars: int | None = 1000) -> None:  # fmt: skip
        if not isinstance(name, str) or not name:
            raise ValueError("name: expected a non-empty string")
        _check_key(input_key, "input_key")
        if isinstance(tools, (str, bytes)) or not isinstance(tools, Sequence):
            raise TypeError(f"tools: expected a list of @tool functions, got {type(tools).__name__}")
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"params: expected a mapping of SamplingParams fields, got {type(params).__name__}")
        if system is not None and not isinstance(system, str):
            raise TypeError(f"system: expected a str or None, got {type(system).__name__}")
        if not callable(getattr(llm, "generate", None)):
            raise TypeError("llm: expected an object with generate() (an infercore.LLM)")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps: expected an int >= 1, got {max_steps!r}")
        if isinstance(max_time_s, bool) or not isinstance(max_time_s, (int, float)) or max_time_s <= 0:
            raise ValueError(f"max_time_s: expected a positive number, got {max_time_s!r}")
        self.tools: dict[str, Tool] = {}
        for i, t in enumerate(tools):
            t = t if isinstance(t, Tool) else Tool(t) if callable(t) else None
            if t is None:
                raise TypeError(f"tools[{i}]: expected a @tool function")
            if t.name in self.tools:
                raise ValueError(f"tools[{i}]: duplicate tool name {t.name!r}")
            self.tools[t.name] = t
        self.name, self.llm, self.max_steps, self.max_time_s = name, llm, max_steps, float(max_time_s)
        self.version, self.output_key, self.input_key = str(version), name, input_key
        if answer_max_chars is not None and (isinstance(answer_max_chars, bool) or not isinstance(answer_max_chars, int)
                                             or answer_max_chars < 1):
            raise ValueError(f"answer_max_chars: expected an int >= 1 or None, got {answer_max_chars!r}")
        self.answer_max_chars = answer_max_chars
        supports = getattr(getattr(llm, "engine", None), "guides", None) is not None
        if constrained and response_prefix is not None:
            raise ValueError("constrained: a response_prefix already starts the reply; use one or the other")
        if constrained and not supports:
            raise ValueError("constrained: this model has no structured-output support (an infercore LLM with a "
                             "tokenizer is needed)")  # fmt: skip
        self.constrained = supports and response_prefix is None if constrained is None else bool(constrained)
        extra = {"json_schema": self.call_schema} if self.constrained else {}
        self.params = SamplingParams(**{"temperature": 0.0, "max_tokens": 128, **extra, **dict(params or {})})
        tool_list = json.dumps([t.schema for t in self.tools.values()], ensure_ascii=False)
        self.system = (system or SYSTEM).replace("{tools}", tool_list).replace("{{", "{").replace("}}", "}")
        self.model = _model_name(llm, {}, model)
        if response_prefix is not None and (not isinstance(response_prefix, str) or not response_prefix):
            raise ValueError("response_prefix: expected a non-empty string")
        has_chat = getattr(llm, "chat_template", None) and getattr(llm, "tokenizer", None)
        if response_prefix is not None and not has_chat:
            raise ValueError("response_prefix: needs a model with a chat template and a tokenizer")
        self.response_prefix = response_prefix

    @property
    def call_schema(self) -> dict[str, Any]:
        """JSON schema of one reply: a call of one of the tools with its arguments, or an answer."""
        calls = [{"type": "object", "properties": {"tool": {"const": t.name}, "arguments": t.parameters},
                  "required": ["tool", "arguments"]} for t in self.tools.values()]  # fmt: skip
        text: dict[str, Any] = {"type": "string"}
        if self.answer_max_chars is not None:  # a looping model cannot run the answer past this
            text["maxLength"] = self.answer_max_chars
        answer = {"type": "object", "properties": {"answer": text}, "required": ["answer"]}
        return {"anyOf": [*calls, answer]}

    def execute(self, reply: str, ctx: RunContext | None = None, call_id: str = "call_0") -> tuple[str, Any]:
        """Interpret one model reply: ("answer", text) | ("observation", tool result or error text)."""
        tracer = ctx.tracer if ctx is not None else T.NullTracer()
        try:
            obj = first_json_object(reply)
        except ValueError as e:
            return "observation", f"error: {e}; reply with one JSON object"
        if "answer" in obj:
            return "answer", obj["answer"]
        name = obj.get("tool")
        if name not in self.tools:
            return "observation", f"error: unknown tool {name!r}; available: {sorted(self.tools)}"
        t = self.tools[name]
        with tracer.span(f"execute_tool {name}", {T.OPERATION: "execute_tool", T.TOOL_NAME: name,
                                                  T.TOOL_CALL_ID: call_id}) as sp:  # fmt: skip
            try:
                args = t.validate(obj.get("arguments", {}))
                result = t.fn(**args)
            except Exception as e:  # a tool is user code: its failure is fed back to the model
                sp.set_attribute("error.type", type(e).__name__)
                return "observation", f"error: tool {name} raised {type(e).__name__}: {e}"
        try:
            return "observation", json.dumps(result, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return "observation", str(result)

    def _prompt(self, messages: list[dict[str, str]]) -> Any:
        if self.response_prefix is not None:
            # the assistant turn starts with the prefix (e.g. '{"'), steering the model into JSON
            text = self.llm.render_chat(messages, add_generation_prompt=True) + self.response_prefix
            return {"prompt_token_ids": self.llm.tokenizer.encode(text, add_special_tokens=False)}
        if getattr(self.llm, "chat_template", None):
            return messages
        # models without a chat template get a plain transcript
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def _invoke(self, state: dict[str, Any], ctx: RunContext) -> Any:
        question = state.get(self.input_key)
        if not isinstance(question, str):
            raise ChainError(f"agent {self.name!r}: state[{self.input_key!r}] must be a string")
        deadline = time.monotonic() + self.max_time_s
        if ctx.deadline is not None:
            deadline = min(deadline, ctx.deadline)
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": question}]
        with ctx.tracer.span(f"invoke_agent {self.name}", {T.OPERATION: "invoke_agent", T.AGENT_NAME: self.name,
                                                           T.REQUEST_MODEL: self.model}) as sp:  # fmt: skip
            for step in range(self.max_steps):
                if time.monotonic() > deadline:
                    ctx.run.status = "timeout"
                    sp.set_attribute("infercore.agent.stop", "timeout")
                    return None
                try:
                    reply = call_model(ctx, f"{self.name}[{step}]", self.llm, None, self._prompt(messages),
                                       self.params, self.model, operation="chat")  # fmt: skip
                    reply = (self.response_prefix or "") + reply
                except (ValueError, TypeError) as e:
                    raise ChainError(f"agent {self.name!r}: model call failed: {e}") from e
                kind, value = self.execute(reply, ctx, call_id=f"call_{step}")
                sp.set_attribute("infercore.agent.steps", step + 1)
                if kind == "answer":
                    sp.set_attribute("infercore.agent.stop", "answer")
                    state[self.output_key] = value
                    return value
                messages += [{"role": "assistant", "content": reply},
                             {"role": "user", "content": f"Observation: {value}"}]
            ctx.run.status = "max_steps"
            sp.set_attribute("infercore.agent.stop", "max_steps")
            return None
