"""What a route module gets from build_app: the server state and the shared request helpers
(auth, body limits, validation, guardrails, admission, engine calls), so each route lives in its
own module and registers itself with `register(app, ctx)`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import APIError
from .protocol import describe


@dataclass
class RouteContext:
    state: Any  # app.py's _State: llm, model_name, metrics, guard, inflight, alm, ...
    auth: Callable[[Any], None]  # raises APIError(401)
    body: Callable[[Any], Awaitable[Any]]  # size limit (413), UTF-8 and JSON (400)
    guard: Callable[[str, str, str], str]  # (direction, text, param) -> text; raises APIError(400) when blocked
    check_text: Callable[[str, str], str]  # lone surrogates -> 400
    check_prompt_len: Callable[[int, str], None]  # empty -> 400, too long -> 413
    params: Callable[..., Any]  # (req, max_tokens, logprobs, prompt_len) -> SamplingParams
    admit: Callable[[int], None]  # 429 when over capacity
    release: Callable[[int], None]
    final: Callable[[list[list[int]], Any], Awaitable[list[Any]]]  # run prompts to the end
    until_done: Callable[[Any, Any], Awaitable[Any]]  # raises ClientGone on disconnect
    safe: Callable[[Any], Any]  # route decorator: unexpected exceptions -> 500 in OpenAI's shape
    err: Callable[..., Any]  # (status, message, param=None, code=None) -> JSONResponse
    # path -> (request model, the model name it serves), for the OpenAPI schema
    bodies: dict[str, tuple[type[BaseModel], str]] = field(default_factory=dict)

    def validate(self, cls: type[BaseModel], body: Any) -> Any:
        """`body` as a `cls`: not an object or invalid fields -> APIError(400) naming the field."""
        if not isinstance(body, dict):
            raise APIError(400, "request body must be a JSON object")
        try:
            return cls.model_validate(body)
        except ValidationError as e:
            msg, param = describe(e)
            raise APIError(400, msg, param=param) from None


__all__ = ["RouteContext"]
