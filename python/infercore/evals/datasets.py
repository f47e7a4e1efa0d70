"""Task files: JSONL, one object per line, validated against the task type's schema.

multiple_choice  {"question": str, "choices": [str, ...] (2-10), "answer": int index or letter "A".., "id"?, "subject"?}
exact_match      {"question": str, "answer": str or [str, ...] (accepted answers), "id"?}
code             {"task_id": str, "prompt": str (signature + docstring), "test": str (defines check(candidate)
                  or plain asserts), "entry_point": str, "canonical_solution"?: str}
judge_agreement  {"question": str, "answer": str, "human_label": "good" | "bad", "id"?}
single_answer,   {"question": str, "reference": str, "answer"?: str (used when the task says answers: given), "id"?}
pairwise
safety           {"text": str, "label": 1 (attack) | 0 (benign), "rail"?: str (injection/harmful/pii/none), ...}
performance      {"prompt": str}

Extra keys are kept (metadata). A bad line is a ValueError naming the file, the line and the field.
"""

from __future__ import annotations

import json
from typing import Any

from .._fileio import check_path

_S, _L, _I = (str,), (list,), (int,)
SCHEMAS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "multiple_choice": {"question": (_S, True), "choices": (_L, True), "answer": ((int, str), True), "id": (_S, False),
                        "subject": (_S, False)},
    "exact_match": {"question": (_S, True), "answer": ((str, list), True), "id": (_S, False)},
    "code": {"task_id": (_S, True), "prompt": (_S, True), "test": (_S, True), "entry_point": (_S, True),
             "canonical_solution": (_S, False)},
    "judge_agreement": {"question": (_S, True), "answer": (_S, True), "human_label": (_S, True), "id": (_S, False)},
    "single_answer": {"question": (_S, True), "reference": (_S, True), "answer": (_S, False), "id": (_S, False)},
    "pairwise": {"question": (_S, True), "reference": (_S, True), "answer": (_S, False), "id": (_S, False)},
    "safety": {"text": (_S, True), "label": (_I, True), "rail": (_S, False)},
    "performance": {"prompt": (_S, True)},
}  # fmt: skip
LETTERS = "ABCDEFGHIJ"


def _tn(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _check_row(kind: str, row: dict[str, Any], where: str) -> dict[str, Any]:
    for key, (types, required) in SCHEMAS[kind].items():
        if key not in row:
            if required:
                raise ValueError(f"{where}: missing field {key!r} (a {kind} row needs {_required(kind)})")
            continue
        v = row[key]
        if isinstance(v, bool) or not isinstance(v, types):
            raise ValueError(f"{where}: field {key!r} must be {' or '.join(t.__name__ for t in types)}, got {_tn(v)}")
        if isinstance(v, str) and not v.strip() and key not in ("answer",):
            raise ValueError(f"{where}: field {key!r} is empty")
    if kind == "multiple_choice":
        ch = row["choices"]
        if not 2 <= len(ch) <= len(LETTERS) or not all(isinstance(c, str) and c.strip() for c in ch):
            raise ValueError(f"{where}: 'choices' must be 2-{len(LETTERS)} non-empty strings")
        a = row["answer"]
        idx = LETTERS.find(a.strip().upper()) if isinstance(a, str) and len(a.strip()) == 1 else a
        if not isinstance(idx, int) or not 0 <= idx < len(ch):
            raise ValueError(f"{where}: 'answer' must be a choice index 0..{len(ch) - 1} or a letter "
                             f"A..{LETTERS[len(ch) - 1]}, got {a!r}")
        row = {**row, "answer": idx}
    elif kind == "exact_match":
        a = row["answer"]
        answers = [a] if isinstance(a, str) else a
        if not answers or not all(isinstance(x, str) and x.strip() for x in answers):
            raise ValueError(f"{where}: 'answer' must be a non-empty string or a list of them")
        row = {**row, "answer": answers}
    elif kind == "judge_agreement":
        if row["human_label"] not in ("good", "bad"):
            raise ValueError(f"{where}: 'human_label' must be \"good\" or \"bad\", got {row['human_label']!r}")
    elif kind == "safety":
        if row["label"] not in (0, 1):
            raise ValueError(f"{where}: 'label' must be 1 (attack) or 0 (benign), got {row['label']!r}")
    elif kind == "code" and not row["entry_point"].isidentifier():
        raise ValueError(f"{where}: 'entry_point' must be a Python identifier, got {row['entry_point']!r}")
    return row


def _required(kind: str) -> str:
    return ", ".join(k for k, (_, req) in SCHEMAS[kind].items() if req)


def read_jsonl(path: str, kind: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a task file, validated; `limit` keeps the first N (files are read in order)."""
    if kind not in SCHEMAS:
        raise ValueError(f"kind: expected one of {sorted(SCHEMAS)}, got {kind!r}")
    path = check_path(path, "path")
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except OSError as e:
        raise ValueError(f"{path}: cannot read task file: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: task file is not UTF-8") from None
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object, got {_tn(row)}")
        rows.append(_check_row(kind, row, where))
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows
