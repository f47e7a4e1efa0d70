"""The shipped spec-generated guardrail set is exactly what its documented commands produce."""

from __future__ import annotations

import re
from pathlib import Path

from infercore.cli.main import main
from infercore.guardrails.evaluate import evaluate
from infercore.synth import SPECS_DIR, Spec

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "benchmarks" / "data" / "guardrails" / "synth"


def test_every_shipped_spec_loads():
    specs = sorted(SPECS_DIR.glob("*.yaml"))
    assert specs
    for p in specs:
        assert Spec.from_yaml(p).name == p.stem


def test_guardrail_set_regenerates_byte_for_byte(tmp_path):
    raw, out = tmp_path / "ge.jsonl", tmp_path / "synth"
    assert main(["synth", "generate", str(SPECS_DIR / "guardrail_eval.yaml"), "--n", "1500", "--out", str(raw),
                 "-q"]) == 0
    assert main(["synth", "filter", str(raw), "--dedup", "minhash", "--threshold", "0.9", "--split-by", "set",
                 "--out", str(out), "-q"]) == 0
    names = sorted(p.name for p in SHIPPED.glob("*.jsonl"))
    assert names == ["benign.jsonl", "harmful.jsonl", "injection.jsonl", "pii.jsonl"]
    for n in names:
        assert (out / n).read_bytes() == (SHIPPED / n).read_bytes(), n


def test_guardrail_set_is_usable_by_the_evaluator():
    rep = evaluate(SHIPPED)
    # the harmful classifier's rows are scored on the same set beside the lexicon's
    assert set(rep) == {"injection", "pii", "harmful", "harmful+clf", "harmful_clf_only"}
    assert rep["pii"]["positives"] > 300 and rep["injection"]["positives"] > 300 and rep["harmful"]["positives"] > 80
    assert rep["injection"]["negatives"] > 200


def test_arithmetic_eval_task_regenerates_byte_for_byte(tmp_path):
    from infercore.evals.datasets import read_jsonl

    shipped = ROOT / "python" / "infercore" / "evals" / "data" / "arithmetic.jsonl"
    out = tmp_path / "a.jsonl"
    assert main(["synth", "generate", str(SPECS_DIR / "eval_arithmetic.yaml"), "--n", "40", "--seed", "7",
                 "--out", str(out), "-q"]) == 0  # fmt: skip
    assert out.read_bytes() == shipped.read_bytes()
    rows = read_jsonl(str(shipped), "exact_match")
    assert len(rows) == 40
    for r in rows:  # every answer is the arithmetic the question asks for
        q = r["question"]
        nums = [int(t) for t in re.findall(r"\d+", q)]
        a = int(r["answer"][0])
        assert a in (nums[0] + nums[1], nums[0] - nums[1], nums[0] * nums[1]), (q, a)
