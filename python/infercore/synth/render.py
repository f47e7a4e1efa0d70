"""Renders one example of a spec: slots sampled from the example's own seeded generator, a template
drawn among those whose `when` matches, then the output fields."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .transforms import all_filters

if TYPE_CHECKING:
    from .spec import Spec


def example_rng(seed: int, index: int) -> random.Random:
    """The generator of example `index`: independent of n and of the other examples, so the first k
    examples of a run with n > k are the k examples of a run with n = k."""
    digest = hashlib.sha256(f"infercore.synth:{seed}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def example_seed(seed: int, index: int, salt: str) -> int:
    digest = hashlib.sha256(f"infercore.synth:{seed}:{index}:{salt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class Renderer:
    def __init__(self, spec: Spec, where: Callable[..., str] | None = None) -> None:
        import jinja2
        import jinja2.meta

        from ..models.chat_template import _environment

        where = where or (lambda *p: f"{spec.source}: {'.'.join(map(str, p))}")
        self.spec = spec
        self._rng: random.Random | None = None
        env = _environment()
        env.undefined = jinja2.StrictUndefined
        env.globals.pop("strftime_now", None)  # the clock would break reproducibility
        env.filters.update(all_filters(self._current_rng))
        self.env = env
        slots = set(spec.slot_names)
        known = slots | {"index"} | set(env.globals)
        self.templates = [self._compile(t.source, known, where, "templates", i, "template")
                          for i, t in enumerate(spec.templates)]
        field_known = known | {"text", "prompt"}
        self.fields: dict[str, tuple[str, Any]] = {}
        for name, v in spec.fields.items():
            if isinstance(v, dict) and set(v) == {"slot"}:
                if v["slot"] not in slots:
                    raise ValueError(f"{where('fields', name, 'slot')}: unknown slot {v['slot']!r}; "
                                     f"declared slots: {sorted(slots)}")
                self.fields[name] = ("slot", v["slot"])
            elif isinstance(v, str):
                self.fields[name] = ("template", self._compile(v, field_known, where, "fields", name))
            else:
                self.fields[name] = ("literal", v)
        self.system = None
        if spec.llm is not None and spec.llm.system is not None:
            self.system = self._compile(spec.llm.system, known, where, "llm", "system")

    def _current_rng(self) -> random.Random:
        if self._rng is None:
            raise RuntimeError("random filters are only available while rendering an example")
        return self._rng

    def _compile(self, src: str, known: set[str], where: Callable[..., str], *path: Any) -> Any:
        import jinja2
        import jinja2.meta

        try:
            used = jinja2.meta.find_undeclared_variables(self.env.parse(src))
            compiled = self.env.from_string(src)
        except jinja2.TemplateError as e:
            raise ValueError(f"{where(*path)}: invalid Jinja2: {e}") from None
        unknown = sorted(used - known)
        if unknown:
            declared = sorted(self.spec.slot_names)
            raise ValueError(f"{where(*path)}: unknown slot(s) {unknown}; declared slots: {declared}")
        return compiled

    def _render(self, compiled: Any, ctx: dict[str, Any], what: str) -> str:
        import jinja2

        try:
            return compiled.render(**ctx)
        except jinja2.TemplateError as e:  # includes UndefinedError and SecurityError
            raise ValueError(f"{self.spec.source}: {what}: render failed: {e}") from None

    def sample(self, seed: int, index: int) -> tuple[dict[str, Any], str, str | None]:
        """(slot values, rendered template, rendered system prompt or None) of example `index`."""
        rng = example_rng(seed, index)
        slots: dict[str, Any] = {}
        for s in self.spec.slots:
            slots[s.name] = s.sample(rng, slots)
        choices = [i for i, t in enumerate(self.spec.templates) if t.matches(slots)]
        if not choices:
            raise ValueError(f"{self.spec.source}: templates: none matches the sampled slots {slots}")
        weights = [self.spec.templates[i].weight for i in choices]
        ti = choices[rng.choices(range(len(choices)), weights=weights)[0]]
        self._rng = rng
        try:
            ctx = {**slots, "index": index}
            text = self._render(self.templates[ti], ctx, f"templates[{ti}]")
            system = self._render(self.system, ctx, "llm.system") if self.system is not None else None
        finally:
            self._rng = None
        return slots, text, system

    def fields_for(self, slots: dict[str, Any], index: int, text: str, prompt: str | None, seed: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self._rng = random.Random(example_seed(seed, index, "fields"))
        try:
            ctx = {**slots, "index": index, "text": text, "prompt": prompt}
            for name, (kind, v) in self.fields.items():
                if kind == "slot":
                    out[name] = slots[v]
                elif kind == "template":
                    value = self._render(v, ctx, f"fields.{name}")
                    if value != "":  # a template field that renders empty is left out of the row
                        out[name] = value
                else:
                    out[name] = v
        finally:
            self._rng = None
        return out
