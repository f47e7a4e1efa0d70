"""YAML loading that keeps line numbers, so a spec error can say where it is."""

from __future__ import annotations

from typing import Any


def load_yaml_with_lines(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """(data, {path: 1-based line}) for a YAML document; malformed YAML -> ValueError naming the line."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ValueError(f"{source}:{where}: malformed YAML: {problem}") from None
    lines: dict[tuple[str, ...], int] = {}
    if node is not None:
        _index(node, (), lines)
    return data, lines


def _index(node: Any, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    import yaml

    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = str(k.value)
            out[(*path, key)] = k.start_mark.line + 1
            _index(v, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _index(v, (*path, str(i)), out)


def line_of(lines: dict[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    p = tuple(path)
    while p:
        if p in lines:
            return lines[p]
        p = p[:-1]
    return lines.get(())
