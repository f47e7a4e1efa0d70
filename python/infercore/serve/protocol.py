"""Request bodies of the OpenAI API (the subset we serve), validated strictly: wrong types and
unknown fields are 400s, OpenAI features we cannot honour (tools, logit bias, suffix) are refused
rather than silently ignored. response_format json_object / json_schema run under constrained
decoding (infercore.structured): the reply is JSON that validates against the schema. vLLM's extra
sampling fields (top_k, min_p, repetition_penalty, min_tokens, ignore_eos, skip_special_tokens) are
accepted."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_N = 16
MAX_STOP = 16


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TextPart(_Body):
    type: Literal["text"]
    text: str


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(_Body):
    include_usage: bool = False


class ResponseFormat(_Body):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class _Sampling(_Body):
    model: str
    n: int = Field(1, ge=1, le=MAX_N)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # vLLM extensions
    top_k: int = Field(0, ge=-1)
    min_p: float = Field(0.0, ge=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, gt=0.0)
    min_tokens: int = Field(0, ge=0)
    ignore_eos: bool = False
    skip_special_tokens: bool = True


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=20)
    best_of: int | None = Field(None, ge=1, le=MAX_N)
    suffix: str | None = None


class UnsupportedError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def check_supported(req: _Sampling) -> None:
    """Refuse fields we parse but cannot honour (raises UnsupportedError)."""
    if req.logit_bias:
        raise UnsupportedError("logit_bias", "logit_bias: not supported by this server")
    if isinstance(req.stop, list) and len(req.stop) > MAX_STOP:
        raise UnsupportedError("stop", f"stop: at most {MAX_STOP} stop sequences")
    if isinstance(req, ChatCompletionRequest):
        if req.tools:
            raise UnsupportedError("tools", "tools: tool calling is not supported by this server")
        if req.tool_choice not in (None, "none", "auto"):
            raise UnsupportedError("tool_choice", "tool_choice: tool calling is not supported by this server")
        rf = req.response_format
        if rf is not None and rf.type == "json_schema":
            if not isinstance(rf.json_schema, dict) or not isinstance(rf.json_schema.get("schema"), (dict, bool)):
                raise UnsupportedError("response_format", "response_format: type 'json_schema' needs "
                                       "json_schema.schema (an object), e.g. {'name': 'x', 'schema': {...}}")
        if rf is not None and rf.type != "json_schema" and rf.json_schema is not None:
            raise UnsupportedError("response_format", f"response_format: json_schema is only valid with type "
                                   f"'json_schema', not {rf.type!r}")
        if req.top_logprobs and not req.logprobs:
            raise UnsupportedError("top_logprobs", "top_logprobs: requires logprobs=true")
    if isinstance(req, CompletionRequest):
        if req.suffix:
            raise UnsupportedError("suffix", "suffix: not supported by this server")
        if req.best_of is not None and req.best_of != req.n:
            raise UnsupportedError("best_of", "best_of: only best_of == n is supported")
        if req.echo and req.logprobs is not None:
            raise UnsupportedError("echo", "echo: cannot be combined with logprobs (no prompt logprobs)")
        if isinstance(req.prompt, list) and len(req.prompt) == 0:
            raise UnsupportedError("prompt", "prompt: expected at least one prompt")


_TYPE_TAG = re.compile(r"^(str|int|float|bool|none|list\[.*\]|dict\[.*\]|literal\[.*\])$")


def response_schema(req: _Sampling) -> dict[str, Any] | bool | None:
    """The JSON schema a chat request's response_format asks for (None: free text)."""
    rf = getattr(req, "response_format", None)
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_object":
        return {"type": "object"}
    return rf.json_schema["schema"]


def describe(err: ValidationError) -> tuple[str, str | None]:
    """(message, param) of the first validation error, OpenAI-style."""
    e = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in e.get("loc", ()) if not str(p).startswith(("function-", "union["))
                   and not _TYPE_TAG.match(str(p)))  # union members: "input.list[int].0" -> "input.0"
    msg = e.get("msg", "invalid value")
    if e.get("type") == "extra_forbidden":
        msg = "unrecognized request argument"
    return (f"{loc}: {msg}" if loc else msg), (loc or None)
