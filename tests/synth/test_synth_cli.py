from __future__ import annotations

import json

import pytest

from infercore.cli.main import main


def _read(p):
    return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines()]


def test_generate_filter_report_end_to_end(spec_path, tmp_path, capsys):
    a, b, clean = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "clean.jsonl"
    assert main(["synth", "generate", str(spec_path), "--n", "300", "--out", str(a), "--seed", "3", "-q"]) == 0
    assert main(["synth", "generate", str(spec_path), "--n", "300", "--out", str(b), "--seed", "3", "-q"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert "wrote 300 examples of toy (seed 3)" in capsys.readouterr().out
    rej, stats = tmp_path / "rejects.jsonl", tmp_path / "stats.json"
    assert main(["synth", "filter", str(a), "--out", str(clean), "--threshold", "0.8", "--guard", "--lang", "en", "ja",
                 "--rejects", str(rej), "--report-json", str(stats), "-q"]) == 0
    kept, dropped, st = _read(clean), _read(rej), json.loads(stats.read_text())
    assert len(kept) + len(dropped) == 300 and st["n_out"] == len(kept) and 0 < len(kept) < 300
    assert {s["stage"] for s in st["stages"]} >= {"exact_dedup", "near_dedup", "guard", "language"}
    assert all(d["_reason"] for d in dropped)
    texts = [r["text"] for r in kept]
    assert len(set(texts)) == len(texts)
    md, js = tmp_path / "r.md", tmp_path / "r.json"
    assert main(["synth", "report", str(a), str(clean), "--embedder", "hash", "--out", str(md), "--json", str(js)]) == 0
    rep = json.loads(js.read_text())
    assert set(rep["datasets"]) == {"a", "clean"}
    assert rep["datasets"]["clean"]["exact_dup_rate"] == 0.0 < rep["datasets"]["a"]["exact_dup_rate"]
    assert "| metric | a | clean |" in md.read_text()


def test_split_by_and_embedding_judge(spec_path, tmp_path):
    data, out = tmp_path / "d.jsonl", tmp_path / "split"
    assert main(["synth", "generate", str(spec_path), "--n", "50", "--out", str(data), "-q"]) == 0
    refs = tmp_path / "refs.txt"
    refs.write_text("I need help with refund\nI need help with login\n")
    assert main(["synth", "filter", str(data), "--out", str(out), "--split-by", "lang", "--dedup", "exact",
                 "--judge", "embedding", "--reference", str(refs), "--embedder", "hash", "--min-score", "0.5",
                 "-q"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["en.jsonl"]  # the Japanese rows are far from the English references
    assert all(r["lang"] == "en" and r["score"] >= 0.5 for r in _read(out / "en.jsonl"))


def test_llm_mode_through_the_cli(tmp_path):
    pytest.importorskip("safetensors")
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    model = tiny_llama_dir(str(tmp_path / "tiny"))
    spec = tmp_path / "s.yaml"
    spec.write_text("name: l\nslots: {t: {type: categorical, values: [a, b]}}\ntemplates: ['Say {{ t }}']\n"
                    "llm: {max_tokens: 4, temperature: 1.0}\n")
    o1, o2 = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    for o in (o1, o2):
        assert main(["synth", "generate", str(spec), "--n", "4", "--out", str(o), "--model", model, "-q"]) == 0
    assert o1.read_bytes() == o2.read_bytes() and all("prompt" in r for r in _read(o1))


@pytest.mark.parametrize(("argv", "message"), [
    (["synth", "generate", "{spec}", "--n", "0", "--out", "{tmp}/x.jsonl"], "n: expected a positive"),
    (["synth", "generate", "{tmp}/missing.yaml", "--n", "3", "--out", "{tmp}/x.jsonl"], "cannot read"),
    (["synth", "generate", "{bad}", "--n", "3", "--out", "{tmp}/x.jsonl"], "line 2"),
    (["synth", "filter", "{tmp}/nothing.jsonl", "--out", "{tmp}/y.jsonl"], "cannot read"),
    (["synth", "filter", "{notjson}", "--out", "{tmp}/y.jsonl"], "line 2: not valid JSON"),
    (["synth", "filter", "{good}", "--out", "{tmp}/y.jsonl", "--judge", "embedding"], "--min-score"),
    (["synth", "filter", "{good}", "--out", "{tmp}/y.jsonl", "--threshold", "2"], "threshold"),
])
def test_bad_input_exits_2_with_a_message(spec_path, tmp_path, capsys, argv, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nslots: {a: b: c}\ntemplates: [x]\n")
    notjson = tmp_path / "n.jsonl"
    notjson.write_text('{"text": "ok"}\n{oops\n')
    good = tmp_path / "g.jsonl"
    good.write_text('{"text": "ok"}\n')
    args = [a.format(spec=spec_path, tmp=tmp_path, bad=bad, notjson=notjson, good=good) for a in argv]
    assert main(args) == 2
    assert message in capsys.readouterr().err
