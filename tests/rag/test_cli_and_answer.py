from __future__ import annotations

import json
import os

import pytest

from infercore.cli.main import main
from infercore.rag import RAG

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "python", "infercore", "rag", "data")


def test_cli_ingest_ask_abstain_and_errors(tmp_path, capsys):
    store = str(tmp_path / "s")
    assert main(["rag", "ingest", DATA, "--store", store]) == 0
    out = capsys.readouterr().out
    assert "4 documents (4 added)" in out
    assert main(["rag", "ingest", DATA, "--store", store]) == 0
    assert "4 unchanged" in capsys.readouterr().out
    assert main(["rag", "ask", "Who painted the Mona Lisa?", "--store", store, "--min-score", "0.9", "--json"]) == 0
    ans = json.loads(capsys.readouterr().out)
    assert ans["abstained"] and ans["text"] == "Not in the documents." and ans["contexts"]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe bad")
    assert main(["rag", "ingest", str(bad), "--store", store]) == 2
    assert "bad.txt" in capsys.readouterr().err
    assert main(["rag", "ask", "q", "--store", store, "--filter", "[1]"]) == 2
    assert "--filter" in capsys.readouterr().err
    typo = tmp_path / "s2"  # ask/eval made an empty store here and answered "Not in the documents."
    for argv in (["rag", "ask", "q", "--store", str(typo)], ["rag", "eval", "--store", str(typo), DATA]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "--store" in err and "not a RAG store" in err
        assert not typo.exists()


def test_answer_with_llm(tmp_path):
    from infercore.rag import ABSTAIN_TEXT

    rag = RAG(tmp_path / "s")
    rag.ingest([DATA])
    q = "How many tokens does a KV cache block hold?"
    ans = rag.answer(q, k=3)
    assert not ans.abstained and ans.text and ans.text != ABSTAIN_TEXT
    assert len(ans.contexts) == 3 and ans.scores == sorted(ans.scores, reverse=True)
    assert {"retrieve_s", "generate_s", "total_s"} <= set(ans.timings)
    for key in ("citation_coverage", "groundedness", "hallucination_rate", "sentences"):
        assert key in ans.metrics
    for c in ans.citations:
        assert c.valid == (1 <= c.marker <= 3)
        if c.valid:
            assert c.doc_id == ans.contexts[c.marker - 1].doc_id


def test_constrained_citations_cover_every_sentence(tmp_path):
    import re

    from infercore.engine.sampling_params import SamplingParams
    from infercore.rag import cited_answer_regex

    rag = RAG(tmp_path / "s")
    rag.ingest([DATA])
    ans = rag.answer("How many tokens does a KV cache block hold?", k=3,
                     sampling_params=SamplingParams(temperature=0.0, max_tokens=160))  # fmt: skip
    assert ans.constrained
    assert re.fullmatch(cited_answer_regex(3), ans.text), ans.text
    if not ans.abstained:
        assert ans.metrics["citation_coverage"] == 1.0  # by construction: every sentence ends in a marker
        assert all(c.valid for c in ans.citations)
    free = rag.answer("How many tokens does a KV cache block hold?", k=3, cite="free")
    assert not free.constrained


def test_cited_answer_regex_shape():
    import re

    import pytest

    from infercore.rag import cited_answer_regex

    pat = cited_answer_regex(3)
    assert re.fullmatch(pat, "Mars has two moons [2].")
    assert re.fullmatch(pat, "A block holds 16 tokens [1][3]. It is paged [2].")
    assert re.fullmatch(pat, "Not in the documents.")
    for bad in ("Mars has two moons.", "Mars [4].", "One. Two [1].", "A [1]. B [2]. C [3].", "x [1]"):
        assert not re.fullmatch(pat, bad), bad
    with pytest.raises(ValueError, match="num_sources"):
        cited_answer_regex(0)


def test_min_score_must_be_a_cosine(tmp_path):
    rag = RAG(tmp_path / "s")
    for bad in (float("nan"), float("inf"), 1.5, -2, "0.3", True):  # NaN never abstained
        with pytest.raises(ValueError, match="min_score"):
            rag.answer("q", min_score=bad)
    assert rag.answer("q", min_score=1.0).abstained  # an empty store: nothing reaches any score
