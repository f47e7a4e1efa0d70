"""Bad arguments to the RAG pieces get a ValueError / TypeError naming the argument, raised before
any work is done (no hang on a huge count, no half-made store, no sqlite error)."""

from __future__ import annotations

import numpy as np
import pytest
from infercore.benchmarks.bench_rag_stream import HashedNgramEmbedder

from infercore.rag import (
    BM25,
    RAG,
    RAGStore,
    build_messages,
    cited_answer_regex,
    mmr,
    parse_citations,
    reciprocal_rank_fusion,
)
from infercore.rag.pipeline import MAX_SENTENCE_CHARS, MAX_SENTENCES, MAX_SOURCES
from infercore.rag.store import MAX_DIM


@pytest.fixture
def rag(tmp_path):
    r = RAG(tmp_path / "store", HashedNgramEmbedder(64), chunk_tokens=24, overlap_tokens=6)
    r.ingest_text("Paged attention stores keys and values in blocks. Bananas are yellow.", "a")
    return r


def test_reciprocal_rank_fusion_k():
    for bad in (-1, -5, float("nan"), float("inf"), 10**400, "60", None, True):
        with pytest.raises(ValueError, match="k"):
            reciprocal_rank_fusion([[1, 2, 3, 4, 5, 6, 7]], k=bad)  # -1: ZeroDivisionError, -5: wrong order
    assert reciprocal_rank_fusion([[1, 2], [2, 1]], k=0) == [(1, 1.5), (2, 1.5)]
    assert [d for d, _ in reciprocal_rank_fusion([[3, 1], [1]], k=2.5)] == [1, 3]


def test_cited_answer_regex_counts():
    # the first bound used to hang (a join over range(10**12)); values just past the bounds stay fast
    for kw, name in (({"num_sources": MAX_SOURCES + 1}, "num_sources"), ({"num_sources": 2.5}, "num_sources"),
                     ({"num_sources": 3, "max_sentences": 0}, "max_sentences"),
                     ({"num_sources": 3, "max_sentences": MAX_SENTENCES + 1}, "max_sentences"),
                     ({"num_sources": 3, "max_chars": -1}, "max_chars"),
                     ({"num_sources": 3, "max_chars": MAX_SENTENCE_CHARS + 1}, "max_chars"),
                     ({"num_sources": True}, "num_sources")):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            cited_answer_regex(**kw)
    assert "1000" in cited_answer_regex(MAX_SOURCES, MAX_SENTENCES, MAX_SENTENCE_CHARS)


def test_bm25_arguments():
    for kw in ({"k1": float("nan")}, {"k1": -1}, {"k1": float("inf")}, {"b": 1.5}, {"b": float("nan")},
               {"b": -0.1}):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(kw))):
            BM25(["a b", "b c"], **kw)
    with pytest.raises(TypeError, match="texts"):
        BM25([1, 2])
    with pytest.raises(TypeError, match="texts"):
        BM25("one text")  # not one document per character
    with pytest.raises(TypeError, match="query"):
        BM25(["a b"]).scores(None)
    s = BM25(["a b", "b c"], k1=0, b=1).scores("a")
    assert s[0] > 0 and s[1] == 0


def test_mmr_arguments():
    q, cand = np.ones(4, np.float32) / 2, np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="k"):
        mmr(q, cand, k=-1)
    with pytest.raises(ValueError, match="candidates"):
        mmr(q, None, 2)
    with pytest.raises(ValueError, match="candidates"):
        mmr(q, np.array(1.0), 2)
    with pytest.raises(ValueError, match="query"):
        mmr(np.ones(3), cand, 2)
    assert len(mmr(q, cand, 2)) == 2 and mmr(q, np.zeros((0, 4)), 2) == []


def test_messages_and_citations_need_hits(rag):
    hits = rag.retrieve("keys and values", k=1)
    with pytest.raises(TypeError, match="contexts"):
        build_messages("q", "abc")
    with pytest.raises(TypeError, match="contexts"):
        build_messages("q", [*hits, "abc"])
    with pytest.raises(TypeError, match="question"):
        build_messages(None, hits)
    with pytest.raises(TypeError, match="contexts"):
        parse_citations("x [1]", ["a"])
    with pytest.raises(TypeError, match="text"):
        parse_citations(None, hits)
    assert parse_citations("x [1]", hits)[0].doc_id == "a"
    assert "[1] " in build_messages("q", hits)[-1]["content"]


def test_rag_and_store_arguments(tmp_path, rag):
    with pytest.raises(TypeError, match="embedder"):
        RAG(tmp_path / "r", "abc")
    with pytest.raises(ValueError, match="path"):
        RAGStore("", 64)
    with pytest.raises(TypeError, match="path"):
        RAGStore(3, 64)
    for bad, err in ((float("inf"), TypeError), (64.0, TypeError), (0, ValueError), (MAX_DIM + 1, ValueError)):
        with pytest.raises(err, match="dim"):
            RAGStore(tmp_path / "s", bad)
    for bad in ([1, 2], float("nan"), 2**63):
        with pytest.raises(TypeError, match="embedder_name"):
            RAGStore(tmp_path / "s", 64, embedder_name=bad)
    assert not (tmp_path / "s").exists()  # nothing half-made: a later open with good arguments works
    RAGStore(tmp_path / "s", 64, embedder_name="hashed").close()
    for bad in ([1], {}, 2**63, None):
        with pytest.raises(TypeError, match="doc_id"):
            rag.delete(bad)
        with pytest.raises(TypeError, match="doc_id"):
            rag.store.document_text(bad)
        with pytest.raises(TypeError, match="doc_id"):
            rag.store.iter_document_text(bad)
    assert rag.store.document_text("a").startswith("Paged") and rag.delete("a") and rag.delete("a") is False
    with pytest.raises(TypeError, match="paths"):
        rag.ingest("a.txt")  # one path, not its characters
    with pytest.raises(TypeError, match="paths"):
        rag.ingest([3])
    with pytest.raises(ValueError, match="path"):
        rag.ingest_stream("")
