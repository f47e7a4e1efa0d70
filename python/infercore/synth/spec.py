"""A declarative synthetic-data spec (YAML): slots with value distributions, templates, fields and
an optional LLM rendering step.

    name: support_requests          # required
    version: 1
    seed: 1234                      # default seed (the CLI's --seed overrides it)
    slots:                          # sampled in order; a slot may depend on an earlier one
      lang:    {type: categorical, values: [en, ja], weights: [3, 1]}
      intent:  {type: categorical, by: lang, values: {en: [refund, login], ja: [返金, ログイン]}}
      n_items: {type: int, min: 1, max: 5}
      price:   {type: float, min: 1, max: 100, round: 2}
      tags:    {type: sample, values: [a, b, c, d], k: [1, 3]}      # k items without replacement
      label:   {type: map, from: intent, map: {refund: 1, login: 0, 返金: 1, ログイン: 0}}
      source:  {type: const, value: synth}
    templates:                      # one is drawn per example among those whose `when` matches
      - {template: "I need a {{ intent }} for {{ n_items }} items.", weight: 2, when: {lang: en}}
      - {template: "{{ intent }}をお願いします。", when: {lang: ja}}
    fields:                         # extra output fields: {slot: NAME} copies a slot's value,
      label: {slot: label}          # a string is a template (it may use `text`; an empty result
                                    # leaves the field out of that row), other YAML is literal
      lang: "{{ lang }}"
    llm:                            # optional: the rendered template becomes the prompt
      model: smollm2
      chat: true
      system: "You write short customer messages."
      max_tokens: 48
      temperature: 0.8
      top_p: 0.95
      first_line: true
    keep_slots: true                # add {"slots": {...}} to every row

Templates are Jinja2 in the immutable sandbox with StrictUndefined; a template that names a slot
the spec does not declare is a ValueError when the spec loads. Filters for obfuscations and edge
cases: b64, rot13, fullwidth, spaced, leet, zero_width, confusable, mixed_case, typos, luhn (append a
check digit), obfuscate(name) (the transform a slot names, "plain" = none).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._fileio import check_path
from .yamlio import line_of, load_yaml_with_lines

SLOT_TYPES = ("categorical", "int", "float", "sample", "const", "map")
TOP_KEYS = ("name", "version", "seed", "description", "slots", "templates", "fields", "llm", "keep_slots")
LLM_KEYS = ("model", "chat", "system", "max_tokens", "temperature", "top_p", "top_k", "stop", "first_line",
            "batch_size", "repetition_penalty")
RESERVED = ("index", "text", "prompt", "id")


class _Where:
    """Builds error messages that name the spec path and its YAML line."""

    def __init__(self, source: str, lines: dict[tuple[str, ...], int]) -> None:
        self.source, self.lines = source, lines

    def __call__(self, *path: Any) -> str:
        p = tuple(str(x) for x in path)
        line = line_of(self.lines, p) if self.lines else None
        dotted = ".".join(p) or "spec"
        return f"{self.source}: {dotted}" + (f" (line {line})" if line else "")


@dataclass(frozen=True)
class Slot:
    name: str
    type: str
    values: Any = None
    weights: Any = None
    by: str | None = None
    lo: float | int | None = None
    hi: float | int | None = None
    k: tuple[int, int] = (1, 1)
    round: int | None = None
    src: str | None = None
    mapping: Mapping[Any, Any] | None = None
    value: Any = None

    def sample(self, rng: random.Random, assigned: Mapping[str, Any]) -> Any:
        t = self.type
        if t == "const":
            return self.value
        if t == "map":
            key = assigned[self.src]
            key = _hashable(key)
            if key not in self.mapping:
                raise ValueError(f"slot {self.name!r}: value {key!r} of slot {self.src!r} is not in its map")
            return self.mapping[key]
        if t == "int":
            return rng.randint(int(self.lo), int(self.hi))
        if t == "float":
            x = rng.uniform(float(self.lo), float(self.hi))
            return round(x, self.round) if self.round is not None else x
        values, weights = self.values, self.weights
        if self.by is not None:
            key = _hashable(assigned[self.by])
            if key not in values:
                raise ValueError(f"slot {self.name!r}: no values for {self.by}={key!r}")
            values = values[key]
            weights = weights.get(key) if weights is not None else None
        if t == "categorical":
            return values[rng.choices(range(len(values)), weights=weights)[0]] if weights else rng.choice(values)
        k = rng.randint(*self.k)  # sample
        return rng.sample(list(values), min(k, len(values)))


@dataclass(frozen=True)
class TemplateChoice:
    source: str
    weight: float = 1.0
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def matches(self, slots: Mapping[str, Any]) -> bool:
        return all(_hashable(slots.get(k)) in vals for k, vals in self.when.items())


@dataclass(frozen=True)
class LLMStep:
    model: str = "smollm2"
    chat: bool = True
    system: str | None = None
    max_tokens: int = 64
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    first_line: bool = False
    batch_size: int = 32


@dataclass
class Spec:
    name: str
    slots: list[Slot]
    templates: list[TemplateChoice]
    fields: dict[str, Any]
    version: int | str = 1
    seed: int = 0
    description: str = ""
    llm: LLMStep | None = None
    keep_slots: bool = True
    source: str = "<spec>"

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike[str], *, is_text: bool = False) -> Spec:
        """From a YAML file path (or YAML text with is_text=True)."""
        if is_text:
            text, source = str(path_or_text), "<spec>"
        else:
            source = check_path(path_or_text, "spec")
            try:
                with open(source, encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                raise ValueError(f"spec: cannot read {source!r}: {e.strerror}") from None
        data, lines = load_yaml_with_lines(text, source)
        return cls.from_dict(data, source=source, lines=lines)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<spec>", lines: dict[tuple[str, ...], int] | None = None) -> Spec:
        w = _Where(source, lines or {})
        if not isinstance(data, Mapping):
            raise ValueError(f"{w()}: expected a mapping at the top level, got {type(data).__name__}")
        for k in data:
            if k not in TOP_KEYS:
                raise ValueError(f"{w(k)}: unknown key; expected one of {list(TOP_KEYS)}")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{w('name')}: expected a non-empty string")
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"{w('seed')}: expected an int, got {seed!r}")
        version = data.get("version", 1)
        if not isinstance(version, (int, str)) or isinstance(version, bool):
            raise ValueError(f"{w('version')}: expected an int or a string")
        slots = _parse_slots(data.get("slots") or {}, w)
        templates = _parse_templates(data.get("templates"), w, {s.name for s in slots})
        fields = data.get("fields") or {}
        if not isinstance(fields, Mapping):
            raise ValueError(f"{w('fields')}: expected a mapping of field name -> value")
        for k in fields:
            if not isinstance(k, str) or k in ("id", "text", "slots"):
                raise ValueError(f"{w('fields', k)}: field name must be a string other than id/text/slots")
        llm = _parse_llm(data["llm"], w) if data.get("llm") is not None else None
        keep = data.get("keep_slots", True)
        if not isinstance(keep, bool):
            raise ValueError(f"{w('keep_slots')}: expected true or false")
        spec = cls(name=name, slots=slots, templates=templates, fields=dict(fields), version=version, seed=seed,
                   description=str(data.get("description") or ""), llm=llm, keep_slots=keep, source=source)
        from .render import Renderer

        Renderer(spec, where=w)  # compiles every template now: unknown slots fail at load time
        return spec

    @property
    def slot_names(self) -> list[str]:
        return [s.name for s in self.slots]


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _num(v: Any, where: str, kind: type) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float) if kind is float else int):
        raise ValueError(f"{where}: expected {'a number' if kind is float else 'an int'}, got {v!r}")
    return v


def _weights(ws: Any, n: int, where: str) -> list[float] | None:
    if ws is None:
        return None
    if not isinstance(ws, list) or len(ws) != n:
        raise ValueError(f"{where}: expected a list of {n} weights (one per value)")
    for x in ws:
        _num(x, where, float)
        if x < 0:
            raise ValueError(f"{where}: weights must be >= 0, got {x}")
    if sum(ws) <= 0:
        raise ValueError(f"{where}: weights must not all be 0")
    return [float(x) for x in ws]


def _values(vs: Any, where: str) -> list[Any]:
    if not isinstance(vs, list) or not vs:
        raise ValueError(f"{where}: expected a non-empty list of values")
    return vs


def _parse_slots(raw: Any, w: _Where) -> list[Slot]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{w('slots')}: expected a mapping of slot name -> distribution")
    out: list[Slot] = []
    seen: list[str] = []
    allowed = {"type", "values", "weights", "by", "min", "max", "k", "round", "from", "map", "value", "description"}
    for name, d in raw.items():
        if not isinstance(name, str) or not name.isidentifier() or name in RESERVED:
            raise ValueError(f"{w('slots', name)}: slot name must be an identifier other than {list(RESERVED)}")
        if not isinstance(d, Mapping):
            raise ValueError(f"{w('slots', name)}: expected a mapping with a 'type'")
        bad = set(d) - allowed
        if bad:
            raise ValueError(f"{w('slots', name, sorted(bad)[0])}: unknown key; expected some of {sorted(allowed)}")
        t = d.get("type")
        if t not in SLOT_TYPES:
            raise ValueError(f"{w('slots', name, 'type')}: expected one of {list(SLOT_TYPES)}, got {t!r}")
        kw: dict[str, Any] = {"name": name, "type": t}
        if t in ("categorical", "sample"):
            by = d.get("by")
            if by is not None:
                if by not in seen:
                    raise ValueError(f"{w('slots', name, 'by')}: {by!r} is not a slot declared before {name!r}")
                vals = d.get("values")
                if not isinstance(vals, Mapping) or not vals:
                    raise ValueError(f"{w('slots', name, 'values')}: with 'by', expected a mapping of "
                                     f"{by} value -> list of values")
                values = {_hashable(k): _values(v, w("slots", name, "values", k)) for k, v in vals.items()}
                ws = d.get("weights")
                if ws is not None and not isinstance(ws, Mapping):
                    raise ValueError(f"{w('slots', name, 'weights')}: with 'by', expected a mapping like 'values'")
                weights = None if ws is None else {
                    _hashable(k): _weights(v, len(values.get(_hashable(k), [])), w("slots", name, "weights", k))
                    for k, v in ws.items()}
                kw.update(values=values, weights=weights, by=by)
            else:
                values = _values(d.get("values"), w("slots", name, "values"))
                kw.update(values=values, weights=_weights(d.get("weights"), len(values), w("slots", name, "weights")))
            if t == "sample":
                k = d.get("k", 1)
                k = [k, k] if isinstance(k, int) and not isinstance(k, bool) else k
                if (not isinstance(k, list) or len(k) != 2 or not all(isinstance(x, int) and not isinstance(x, bool)
                                                                     for x in k) or not 0 <= k[0] <= k[1]):
                    raise ValueError(f"{w('slots', name, 'k')}: expected an int or [min, max] with 0 <= min <= max")
                kw["k"] = (k[0], k[1])
        elif t in ("int", "float"):
            kind = int if t == "int" else float
            lo = _num(d.get("min"), w("slots", name, "min"), kind)
            hi = _num(d.get("max"), w("slots", name, "max"), kind)
            if lo > hi:
                raise ValueError(f"{w('slots', name, 'min')}: min {lo} > max {hi}")
            kw.update(lo=lo, hi=hi)
            if d.get("round") is not None:
                kw["round"] = _num(d["round"], w("slots", name, "round"), int)
        elif t == "map":
            src = d.get("from")
            if src not in seen:
                raise ValueError(f"{w('slots', name, 'from')}: {src!r} is not a slot declared before {name!r}")
            m = d.get("map")
            if not isinstance(m, Mapping) or not m:
                raise ValueError(f"{w('slots', name, 'map')}: expected a non-empty mapping")
            kw.update(src=src, mapping={_hashable(k): v for k, v in m.items()})
        else:
            if "value" not in d:
                raise ValueError(f"{w('slots', name)}: a const slot needs 'value'")
            kw["value"] = d["value"]
        out.append(Slot(**kw))
        seen.append(name)
    return out


def _parse_templates(raw: Any, w: _Where, slot_names: set[str]) -> list[TemplateChoice]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{w('templates')}: expected a non-empty list of templates")
    out = []
    for i, t in enumerate(raw):
        if isinstance(t, str):
            t = {"template": t}
        if not isinstance(t, Mapping):
            raise ValueError(f"{w('templates', i)}: expected a string or a mapping with 'template'")
        bad = set(t) - {"template", "weight", "when"}
        if bad:
            raise ValueError(f"{w('templates', i, sorted(bad)[0])}: unknown key; expected template, weight, when")
        src = t.get("template")
        if not isinstance(src, str):
            raise ValueError(f"{w('templates', i, 'template')}: expected a string")
        weight = _num(t.get("weight", 1.0), w("templates", i, "weight"), float)
        if weight <= 0:
            raise ValueError(f"{w('templates', i, 'weight')}: expected > 0")
        when_raw = t.get("when") or {}
        if not isinstance(when_raw, Mapping):
            raise ValueError(f"{w('templates', i, 'when')}: expected a mapping of slot -> value or list of values")
        when = {}
        for k, v in when_raw.items():
            if k not in slot_names:
                raise ValueError(f"{w('templates', i, 'when', k)}: unknown slot {k!r}; declared: {sorted(slot_names)}")
            vals = v if isinstance(v, list) else [v]
            when[k] = tuple(_hashable(x) for x in vals)
        out.append(TemplateChoice(src, float(weight), when))
    return out


def _parse_llm(raw: Any, w: _Where) -> LLMStep:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{w('llm')}: expected a mapping")
    for k in raw:
        if k not in LLM_KEYS:
            raise ValueError(f"{w('llm', k)}: unknown key; expected some of {list(LLM_KEYS)}")
    kw = dict(raw)
    if "stop" in kw:
        s = kw["stop"]
        kw["stop"] = (s,) if isinstance(s, str) else tuple(s or ())
    types = {"model": str, "chat": bool, "system": (str, type(None)), "max_tokens": int, "temperature": (int, float),
             "top_p": (int, float), "top_k": int, "repetition_penalty": (int, float), "first_line": bool,
             "batch_size": int}
    for k, typ in types.items():
        if k in kw and (not isinstance(kw[k], typ) or (isinstance(kw[k], bool) and typ is not bool)):
            raise ValueError(f"{w('llm', k)}: wrong type {type(kw[k]).__name__}")
    if kw.get("max_tokens", 1) < 1 or kw.get("batch_size", 1) < 1:
        raise ValueError(f"{w('llm')}: max_tokens and batch_size must be >= 1")
    return LLMStep(**kw)
