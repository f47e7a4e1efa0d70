"""Render a model's chat template (Jinja2) in a sandbox.

Templates come from model files, so they are untrusted: they run in jinja2's
ImmutableSandboxedEnvironment (no attribute escapes like `__class__`, no mutation of our objects,
bounded `range`), and every template error comes back as ValueError.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

_MAX_TEMPLATE_CHARS = 1 << 20


def _jinja() -> Any:
    try:
        import jinja2
        import jinja2.ext
        import jinja2.sandbox
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("chat templates need the 'jinja2' package: pip install jinja2") from e
    return jinja2


class ChatTemplateError(ValueError):
    """The template is malformed, tried something the sandbox forbids, or called raise_exception()."""


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(f"chat template raised: {message}")


def _tojson(
    x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None, sort_keys: bool = False
) -> str:
    # HF templates call tojson without HTML escaping (jinja's default filter escapes <, >, &)
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


def _environment() -> Any:
    jinja2 = _jinja()

    class _Env(jinja2.sandbox.ImmutableSandboxedEnvironment):
        def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
            return not attr.startswith("_") and super().is_safe_attribute(obj, attr, value)

        # the stock sandbox renders an unsafe attribute as an empty Undefined; we refuse the template
        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            raise jinja2.exceptions.SecurityError(
                f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is not allowed"
            )

    class _Namespace(jinja2.utils.Namespace):
        # `{% set ns.__x = ... %}` goes through __setitem__, not through the sandbox's attribute check
        def __init__(*args: Any, **kwargs: Any) -> None:
            self, rest = args[0], args[1:]
            attrs = dict(*rest, **kwargs)
            for k in attrs:
                _Namespace._check(k)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name: str, value: Any) -> None:
            _Namespace._check(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name: Any) -> None:
            if not isinstance(name, str) or name.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"namespace attribute {name!r} is not allowed")

    env = _Env(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[jinja2.ext.loopcontrols],
        undefined=jinja2.Undefined,
        autoescape=False,
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.globals["namespace"] = _Namespace
    return env


class ChatTemplate:
    """A compiled chat template. `render(messages, add_generation_prompt=True)` -> prompt text.

    strict=True renders with StrictUndefined: a variable the caller did not pass is an error instead
    of an empty string (off by default: real templates test `{% if tools %}` without passing tools).
    """

    def __init__(
        self,
        template: str,
        *,
        bos_token: str | None = None,
        eos_token: str | None = None,
        strict: bool = False,
        source: str = "chat_template",
    ) -> None:
        if not isinstance(template, str):
            raise TypeError(f"{source}: expected a template string, got {type(template).__name__}")
        if len(template) > _MAX_TEMPLATE_CHARS:
            raise ValueError(f"{source}: template is {len(template)} characters (max {_MAX_TEMPLATE_CHARS})")
        jinja2 = _jinja()
        self.source = source
        self.template = template
        self.bos_token = bos_token or ""
        self.eos_token = eos_token or ""
        env = _environment()
        if strict:
            env.undefined = jinja2.StrictUndefined
        try:
            self._compiled = env.from_string(template)
        except jinja2.TemplateError as e:
            raise ChatTemplateError(f"{source}: invalid template: {e}") from None

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = False,
        tools: Sequence[Mapping[str, Any]] | None = None,
        **extra: Any,
    ) -> str:
        _check_messages(messages)
        if tools is not None and (isinstance(tools, (str, Mapping)) or not all(isinstance(t, Mapping) for t in tools)):
            raise TypeError("tools: expected a list of JSON-schema dicts")
        jinja2 = _jinja()
        ctx = {
            "messages": [dict(m) for m in messages],
            "add_generation_prompt": bool(add_generation_prompt),
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            **extra,
        }
        if tools is not None:
            ctx["tools"] = [dict(t) for t in tools]
        try:
            return self._compiled.render(**ctx)
        except ChatTemplateError:
            raise
        except jinja2.exceptions.SecurityError as e:
            raise ChatTemplateError(f"{self.source}: the template tried an unsafe operation: {e}") from None
        except jinja2.TemplateError as e:
            raise ChatTemplateError(f"{self.source}: rendering failed: {e}") from None
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, RecursionError) as e:
            # errors raised by template expressions (e.g. 'a' + 1, messages[5]) on untrusted template code
            raise ChatTemplateError(f"{self.source}: rendering failed: {type(e).__name__}: {e}") from None


def _check_messages(messages: Any) -> None:
    if isinstance(messages, (str, Mapping)) or not isinstance(messages, Sequence):
        raise TypeError("messages: expected a list of {'role': ..., 'content': ...} dicts")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise TypeError(f"messages[{i}]: expected a dict, got {type(m).__name__}")
        if not isinstance(m.get("role"), str):
            raise ValueError(f"messages[{i}]: 'role' must be a string")
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise TypeError(f"messages[{i}]: 'content' must be a str, a list of parts, or None")


def render_chat_template(
    template: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    add_generation_prompt: bool = False,
    bos_token: str | None = None,
    eos_token: str | None = None,
    **extra: Any,
) -> str:
    """One-shot convenience around ChatTemplate(template).render(...)."""
    return ChatTemplate(template, bos_token=bos_token, eos_token=eos_token).render(
        messages, add_generation_prompt=add_generation_prompt, **extra
    )
