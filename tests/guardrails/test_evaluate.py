"""The quality targets, checked on the shipped evaluation set (benchmarks/data/guardrails)."""

from pathlib import Path

import pytest

from infercore.guardrails.evaluate import evaluate, format_table, main

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "guardrails"


@pytest.fixture(scope="module")
def report():
    return evaluate(DATA)


def test_injection_targets(report):
    m = report["injection"]
    assert m["positives"] >= 300 and m["negatives"] >= 200
    assert m["recall"] >= 0.9 and m["fpr_benign"] <= 0.05
    assert m["recall_by"]["lang=ja"] >= 0.85


def test_pii_structured_recall(report):
    by = report["pii"]["recall_by"]
    for ent in ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP", "SSN", "MY_NUMBER"):
        assert by[f"entity={ent}"] >= 0.97, ent
    assert report["pii"]["fpr_benign"] <= 0.02


def test_harmful_targets(report):
    assert report["harmful"]["recall"] >= 0.9 and report["harmful"]["fpr_benign"] <= 0.05


def test_table_and_cli(report, capsys, tmp_path):
    assert "injection" in format_table(report)
    assert main([str(DATA), "--json", str(tmp_path / "r.json")]) == 0
    assert "precision" in capsys.readouterr().out
    assert main([str(tmp_path / "nope")]) == 2
