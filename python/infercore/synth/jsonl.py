"""JSONL in and out: one object per line, UTF-8, written byte-for-byte reproducibly."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._fileio import check_path


def dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) + "\n"


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | os.PathLike[str]) -> int:
    p = Path(check_path(path, "path"))
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(p, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(dumps(r))
            n += 1
    return n


def write_split(rows: list[dict[str, Any]], directory: str | os.PathLike[str], field: str) -> dict[str, int]:
    """Rows grouped by rows[field] into DIRECTORY/<value>.jsonl (order kept within a file)."""
    directory = check_path(directory, "directory")
    groups: dict[str, list[dict[str, Any]]] = {}
    for i, r in enumerate(rows):
        if field not in r:
            raise ValueError(f"split_by: row {i} has no field {field!r}")
        v = str(r[field])
        if not v or "/" in v or v.startswith("."):
            raise ValueError(f"split_by: row {i}: {field}={v!r} is not usable as a file name")
        groups.setdefault(v, []).append(r)
    Path(directory).mkdir(parents=True, exist_ok=True)
    return {v: write_jsonl(g, Path(directory) / f"{v}.jsonl") for v, g in sorted(groups.items())}


def read_jsonl(path: str | os.PathLike[str], field: str = "text") -> list[dict[str, Any]]:
    """Rows of a JSONL file; each must be an object whose `field` is a string."""
    path = check_path(path, "path")
    if not isinstance(field, str):
        raise TypeError(f"field: expected a str, got {type(field).__name__}")
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise ValueError(f"input: cannot read {path!r}: {e.strerror}") from None
    rows = []
    with f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {ln}: not valid JSON ({e.msg})") from None
            if not isinstance(r, dict):
                raise ValueError(f"{path}: line {ln}: expected a JSON object, got {type(r).__name__}")
            if not isinstance(r.get(field), str):
                raise ValueError(f"{path}: line {ln}: field {field!r} missing or not a string")
            rows.append(r)
    return rows
