from __future__ import annotations

import json
import os

import pytest

from infercore.evals.datasets import read_jsonl
from infercore.evals.rag import read_questions
from infercore.evals.report import write_report
from infercore.evals.results import EvalResults
from infercore.evals.suite import DATA_DIR, SUITES_DIR, EvalSuite, SuiteError

GOOD = """name: t
version: 2
model: smollm2
stages:
  regression:
    tasks:
      - name: mmlu
        type: multiple_choice
        data: builtin:mc.jsonl
        limit: 3
  safety: {}
"""


def load(text: str, tmp_path=None) -> EvalSuite:
    return EvalSuite.from_yaml(text, source="s.yaml", base_dir=str(tmp_path or "."))


def test_good_suite_and_defaults():
    s = load(GOOD)
    assert s.version == "2" and s.model == "smollm2" and list(s.stages) == ["regression", "safety"]
    t = s.stages["regression"].tasks[0]
    assert t.limit == 3 and t.options["normalize"] == "char" and t.data == os.path.join(DATA_DIR, "mc.jsonl")
    assert s.stages["safety"].options["data"] == [os.path.join(DATA_DIR, "safety.jsonl")]


@pytest.mark.parametrize("name", ["smoke", "tiny"])
def test_shipped_suites_load(name):
    s = EvalSuite.load(os.path.join(SUITES_DIR, f"{name}.yaml"))
    assert s.name == name and s.sha256


@pytest.mark.parametrize(("text", "line", "fragment"), [
    (GOOD.replace("        limit: 3", "        limit: three"), 10, "limit: expected a positive int"),
    (GOOD.replace("        limit: 3", "        limt: 3"), 10, "limt: unknown key"),
    (GOOD.replace("model: smollm2", "model: smollm2\ncolour: red"), 4, "suite.colour: unknown key"),
    (GOOD.replace("type: multiple_choice", "type: essay"), 8, "unknown task type 'essay'"),
    (GOOD.replace("builtin:mc.jsonl", "builtin:nope.jsonl"), 9, "no built-in data named"),
    (GOOD.replace("builtin:mc.jsonl", "missing/file.jsonl"), 9, "does not exist"),
    (GOOD.replace("  safety: {}", "  safety: {}\n  speed: {}"), 12, "stages.speed: unknown key"),
    (GOOD.replace("  safety: {}", "  safety:\n    limit: -1"), 12, "limit: expected a positive int"),
    (GOOD.replace("  safety: {}", "  safety:\n    thresholds: {block_rate: {atleast: 1}}"), 12, "atleast"),
    (GOOD.replace("  safety: {}", "  safety:\n    thresholds: {block_rate: {min: high}}"), 12, "expected a number"),
    (GOOD.replace("version: 2", "version: [1]"), 2, "suite.version"),
    (GOOD.replace("name: t", "name: t\nname: u"), 2, "duplicate key 'name'"),
    (GOOD.replace("        limit: 3", "        limit: 3\n        normalize: bytes"), 11, "normalize"),
])
def test_errors_name_the_line(text, line, fragment):
    with pytest.raises(SuiteError) as e:
        load(text)
    msg = str(e.value)
    assert f"s.yaml:{line}:" in msg or f"line {line}" in msg, msg
    assert fragment in msg, msg


def test_malformed_yaml_has_line_and_column():
    # the unclosed "[" opened on line 7; YAML notices at the ":" of line 8 and reports that line
    with pytest.raises(SuiteError, match=r"s.yaml: line 8, column \d+: malformed YAML"):
        load(GOOD.replace("      - name: mmlu", "      - name: [mmlu"))
    with pytest.raises(ValueError, match=r"line 3"):  # SuiteError is a ValueError
        load("name: t\nversion: 1\nmodel: 'unterminated\n")


def test_missing_and_empty():
    with pytest.raises(SuiteError, match=r"s.yaml:1: .*missing required key 'stages'"):
        load("name: t\nversion: 1\nmodel: m\n")
    with pytest.raises(SuiteError, match="empty"):
        load("")
    with pytest.raises(SuiteError, match="expected a mapping"):
        load("- just\n- a list\n")
    with pytest.raises(SuiteError, match="needs 'data'"):
        load(GOOD.replace("        data: builtin:mc.jsonl\n", ""))
    with pytest.raises(SuiteError, match="cannot read suite"):
        EvalSuite.load("/nonexistent/suite.yaml")


def test_relative_paths_resolve_against_the_suite(tmp_path):
    rows = [{"question": "2+2?", "choices": ["3", "4"], "answer": 1}]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = tmp_path / "suite.yaml"
    p.write_text(GOOD.replace("builtin:mc.jsonl", "mine.jsonl"))
    s = EvalSuite.load(p)
    assert s.stages["regression"].tasks[0].data == str(tmp_path / "mine.jsonl")


@pytest.mark.parametrize(("kind", "line", "fragment"), [
    ("multiple_choice", '{"question": "q", "choices": ["a"], "answer": 0}', "'choices' must be 2-10"),
    ("multiple_choice", '{"question": "q", "choices": ["a", "b"], "answer": "C"}', "'answer' must be a choice"),
    ("multiple_choice", '{"question": "q", "choices": ["a", "b"]}', "missing field 'answer'"),
    ("exact_match", '{"question": "q", "answer": 3}', "field 'answer' must be str or list"),
    ("code", '{"task_id": "t", "prompt": "p", "test": "t", "entry_point": "not valid"}', "identifier"),
    ("judge_agreement", '{"question": "q", "answer": "a", "human_label": "ok"}', "human_label"),
    ("safety", '{"text": "t", "label": 2}', "'label' must be 1"),
    ("safety", '{"text": "t", "label": true}', "field 'label' must be int"),
    ("safety", '["not", "an", "object"]', "expected a JSON object"),
    ("safety", '{"text": "t", "label": 1', "not valid JSON"),
])
def test_user_jsonl_bad_line_is_reported(tmp_path, kind, line, fragment):
    p = tmp_path / "data.jsonl"
    good = {"multiple_choice": '{"question": "q", "choices": ["a", "b"], "answer": "B"}',
            "exact_match": '{"question": "q", "answer": "a"}',
            "code": '{"task_id": "t", "prompt": "p", "test": "t", "entry_point": "f"}',
            "judge_agreement": '{"question": "q", "answer": "a", "human_label": "good"}',
            "safety": '{"text": "t", "label": 0}'}[kind]
    p.write_text(good + "\n\n" + line + "\n")
    with pytest.raises(ValueError) as e:
        read_jsonl(str(p), kind)
    assert f"{p}:3:" in str(e.value) and fragment in str(e.value), str(e.value)
    p.write_text(good + "\n")
    assert len(read_jsonl(str(p), kind)) == 1


@pytest.mark.parametrize(("name", "kind", "n"), [
    ("mc.jsonl", "multiple_choice", 40), ("exact_match.jsonl", "exact_match", 20), ("code.jsonl", "code", 15),
    ("judge_human.jsonl", "judge_agreement", 30), ("quality.jsonl", "single_answer", 10),
    ("safety.jsonl", "safety", 50),
])
def test_shipped_data_is_valid(name, kind, n):
    rows = read_jsonl(os.path.join(DATA_DIR, name), kind)
    assert len(rows) == n
    if kind == "multiple_choice":  # answers spread over the positions, so a position bias cannot score high
        counts = [sum(r["answer"] == i for r in rows) for i in range(4)]
        assert max(counts) - min(counts) <= 1
    if kind == "judge_agreement":
        assert sum(r["human_label"] == "good" for r in rows) == 15


def test_path_arguments_are_checked(tmp_path):
    f = tmp_path / "owned.jsonl"
    f.write_text('{"question": "q", "answer": "a"}\n')
    fd = os.open(f, os.O_RDONLY)  # an int path was opened as this descriptor, read, and closed
    try:
        with pytest.raises(TypeError, match="path"):
            read_jsonl(fd, "exact_match")
        with pytest.raises(TypeError, match="path"):
            read_questions(fd)
        with pytest.raises(TypeError, match="path"):
            EvalSuite.load(fd)
        with pytest.raises(TypeError, match="out_md"):
            write_report(EvalResults("s", "1"), fd, plots=False)
        os.fstat(fd)  # still open
    finally:
        os.close(fd)
    with pytest.raises(ValueError, match="path"):
        read_jsonl("", "exact_match")
    with pytest.raises(ValueError, match="path"):
        read_questions("a\x00b")
    with pytest.raises(ValueError, match="path"):
        EvalSuite.load("")
    with pytest.raises(ValueError, match="out_md"):
        write_report(EvalResults("s", "1"), "", plots=False)
