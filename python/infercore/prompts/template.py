"""A prompt version: a sandboxed Jinja2 template with declared, typed variables.

Templates are data from the registry (untrusted, like chat templates): they render in the same
immutable sandbox as model chat templates, with StrictUndefined, so a variable the caller did not
give is a ValueError instead of an empty string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..models.chat_template import ChatTemplateError, _environment, _jinja

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "list": (list, tuple),
    "dict": (dict,), "any": (object,),
}  # fmt: skip
ROLES = ("system", "user", "assistant", "tool")


class PromptRenderError(ValueError):
    """A variable is missing, has the wrong type, is not declared, or the template failed."""


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what}: expected a string, got {type(value).__name__}")
    if not NAME_RE.match(value) or ".." in value:
        raise ValueError(f"{what}: {value!r} must match {NAME_RE.pattern} (letters, digits, '_', '.', '-')")
    return value


def normalize_variables(variables: Any) -> dict[str, dict[str, Any]]:
    """{"topic": "str", "n": {"type": "int", "default": 3}} -> {"topic": {"type": "str"}, "n": {...}}."""
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise TypeError(f"variables: expected a dict of name -> type or spec, got {type(variables).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in variables.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"variables: {name!r} is not a valid variable name")
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, Mapping):
            raise TypeError(f"variables[{name!r}]: expected a type name or a dict, got {type(spec).__name__}")
        unknown = set(spec) - {"type", "default", "description"}
        if unknown:
            raise ValueError(f"variables[{name!r}]: unknown keys {sorted(unknown)}")
        typ = spec.get("type", "any")
        if typ not in TYPES:
            raise ValueError(f"variables[{name!r}]: type {typ!r} is not one of {sorted(TYPES)}")
        entry: dict[str, Any] = {"type": typ}
        if "default" in spec:
            _check_type(name, typ, spec["default"])
            try:
                json.dumps(spec["default"])
            except (TypeError, ValueError):
                raise TypeError(f"variables[{name!r}]: default must be JSON-serializable") from None
            entry["default"] = spec["default"]
        if "description" in spec:
            entry["description"] = str(spec["description"])
        out[name] = entry
    return out


def _check_type(name: str, typ: str, value: Any) -> None:
    ok = isinstance(value, TYPES[typ])
    if typ in ("int", "float") and isinstance(value, bool):
        ok = False
    if not ok:
        raise PromptRenderError(f"variable {name!r}: expected {typ}, got {type(value).__name__}")


def _texts(template: Any) -> list[str]:
    """The Jinja sources of a template: a string, or a list of {"role", "content"} messages."""
    if isinstance(template, str):
        return [template]
    if isinstance(template, (list, tuple)) and template:
        out = []
        for i, m in enumerate(template):
            if not isinstance(m, Mapping) or set(m) != {"role", "content"}:
                raise ValueError(f"template[{i}]: expected {{'role': ..., 'content': ...}}")
            if m["role"] not in ROLES:
                raise ValueError(f"template[{i}]: role {m['role']!r} is not one of {ROLES}")
            if not isinstance(m["content"], str):
                raise TypeError(f"template[{i}]: content must be a string")
            out.append(m["content"])
        return out
    raise TypeError("template: expected a string or a non-empty list of {'role', 'content'} messages")


def compile_template(template: Any, variables: dict[str, dict[str, Any]] | None) -> tuple[list[Any], set[str]]:
    """Compile every part in the strict sandbox; returns (compiled parts, variables the template reads)."""
    jinja2 = _jinja()
    import jinja2.meta  # noqa: F811 - the submodule, not loaded by _jinja()

    env = _environment()
    env.undefined = jinja2.StrictUndefined
    compiled, used = [], set()
    for i, src in enumerate(_texts(template)):
        try:
            used |= jinja2.meta.find_undeclared_variables(env.parse(src))
            compiled.append(env.from_string(src))
        except jinja2.TemplateError as e:
            raise ValueError(f"template: invalid Jinja2 (part {i}): {e}") from None
    if variables is not None:
        undeclared = used - set(variables) - set(env.globals)
        if undeclared:
            raise ValueError(f"variables: the template uses undeclared variables {sorted(undeclared)}")
    return compiled, used


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version of a registered prompt."""

    name: str
    version: int
    template: str | tuple[dict[str, str], ...]
    variables: dict[str, dict[str, Any]]
    model_config: dict[str, Any]
    metadata: dict[str, Any]
    message: str = ""
    created_at: str = ""
    commit: str | None = None
    _compiled: list[Any] = field(default_factory=list, repr=False, compare=False)

    @property
    def is_chat(self) -> bool:
        return not isinstance(self.template, str)

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"

    def _values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        extra = set(values) - set(self.variables)
        if extra:
            raise PromptRenderError(
                f"{self.ref}: unknown variables {sorted(extra)} (declared: {sorted(self.variables)})")
        out = {}
        for name, spec in self.variables.items():
            if name in values:
                _check_type(name, spec["type"], values[name])
                out[name] = values[name]
            elif "default" in spec:
                out[name] = spec["default"]
            else:
                raise PromptRenderError(f"{self.ref}: missing variable {name!r}")
        return out

    def _render_parts(self, values: Mapping[str, Any]) -> list[str]:
        jinja2 = _jinja()
        ctx = self._values(values)
        compiled = self._compiled or compile_template(self.template, self.variables)[0]
        out = []
        for part in compiled:
            try:
                out.append(part.render(**ctx))
            except jinja2.exceptions.UndefinedError as e:
                raise PromptRenderError(f"{self.ref}: {e}") from None
            except jinja2.exceptions.SecurityError as e:
                raise PromptRenderError(f"{self.ref}: the template tried an unsafe operation: {e}") from None
            except ChatTemplateError as e:
                raise PromptRenderError(f"{self.ref}: {e}") from None
            except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
                raise PromptRenderError(f"{self.ref}: rendering failed: {type(e).__name__}: {e}") from None
        return out

    def render(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        """The prompt text. A chat prompt renders as its messages' contents joined by blank lines."""
        return "\n\n".join(self._render_parts({**(values or {}), **kwargs}))

    def render_messages(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> list[dict[str, str]]:
        """Chat messages; a plain text prompt becomes one user message."""
        parts = self._render_parts({**(values or {}), **kwargs})
        if not self.is_chat:
            return [{"role": "user", "content": parts[0]}]
        return [{"role": m["role"], "content": c} for m, c in zip(self.template, parts, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version,
            "template": self.template if isinstance(self.template, str) else [dict(m) for m in self.template],
            "variables": self.variables, "model_config": self.model_config, "metadata": self.metadata,
            "message": self.message, "created_at": self.created_at,
        }  # fmt: skip
