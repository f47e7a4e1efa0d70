from __future__ import annotations

import os
import shutil
import sqlite3

import numpy as np
import pytest

from infercore.rag import RAG, DocumentError, RAGStore, StoreError, parse_citations
from infercore.rag.store import GEN_NAME, INDEX_NAME

DOC_A = ("Paged attention stores keys and values in fixed-size blocks. A block table maps each sequence "
         "to its blocks.\n\nPrefix caching hashes full blocks so that shared prompts reuse memory.")
DOC_B = ("The embedder runs all-MiniLM-L6-v2 on packed batches without padding. Mean pooling averages "
         "token states.\n\nInt8 weights use per-channel scales.")
DOC_C = "Bananas are yellow fruit rich in potassium. They grow in tropical climates."


@pytest.fixture
def rag(tmp_path, embedder):
    r = RAG(tmp_path / "store", embedder, chunk_tokens=24, overlap_tokens=6)
    r.ingest_text(DOC_A, "a", {"topic": "kv", "lang": "en"})
    r.ingest_text(DOC_B, "b", {"topic": "embed", "lang": "en"})
    r.ingest_text(DOC_C, "c", {"topic": "fruit", "lang": "en"})
    return r


def test_retrieve_filters_and_spans(rag):
    hits = rag.retrieve("How are keys and values stored?", k=2)
    assert hits[0].doc_id == "a" and hits[0].score > 0.3
    assert DOC_A[hits[0].start:hits[0].end] == hits[0].text
    only = rag.retrieve("How are keys and values stored?", k=5, filter={"topic": "fruit"})
    assert only and {h.doc_id for h in only} == {"c"}
    assert rag.retrieve("keys", k=3, filter={"topic": "nothing"}) == []
    anyof = rag.retrieve("keys", k=10, filter={"topic": ["fruit", "embed"]})
    assert {h.doc_id for h in anyof} == {"b", "c"}
    by_fn = rag.retrieve("keys", k=10, filter=lambda m: m["topic"] != "kv")
    assert "a" not in {h.doc_id for h in by_fn}


def test_hybrid_and_mmr(rag):
    hyb = rag.retrieve("potassium", k=2, hybrid=True)
    assert hyb[0].doc_id == "c"
    assert all(-1.0 <= h.score <= 1.0 for h in hyb)
    div = rag.retrieve("blocks memory", k=3, use_mmr=True, mmr_lambda=0.3)
    assert len({h.chunk_id for h in div}) == 3


def test_dedup_skip_replace_delete(rag, tmp_path):
    n = rag.store.num_chunks()
    st = rag.ingest_text(DOC_A, "a-copy", {"topic": "kv"})
    assert st["new_chunks"] == 0 and st["deduplicated"] == st["chunks"] > 0
    assert rag.store.num_chunks() == n
    assert rag.ingest_text(DOC_C, "c", {"topic": "fruit", "lang": "en"})["status"] == "unchanged"
    st = rag.ingest_text(DOC_C.replace("yellow", "green"), "c", {"topic": "fruit"})
    assert st["status"] == "replaced" and st["removed"] >= 1
    assert "green" in rag.retrieve("banana colour", k=1)[0].text
    assert rag.delete("a") is True and rag.delete("a") is False
    assert len(rag.store.index) == rag.store.num_chunks()
    # chunks shared with a-copy survive the delete of a
    assert rag.retrieve("block table", k=1)[0].doc_id == "a-copy"
    rag.delete("a-copy")
    assert all(h.doc_id != "a-copy" for h in rag.retrieve("block table", k=5))


def test_reopen_and_crash_recovery(rag, tmp_path, embedder):
    path = rag.store.path
    rag.store.close()
    r2 = RAG(path, embedder, chunk_tokens=24, overlap_tokens=6)
    assert len(r2.store) == 3 and len(r2.store.index) == r2.store.num_chunks()
    # simulate a crash after the SQLite commit but before the index save: keep the old index files
    shutil.copy(os.path.join(path, INDEX_NAME), tmp_path / "old.idx")
    shutil.copy(os.path.join(path, GEN_NAME), tmp_path / "old.gen")
    r2.ingest_text("Completely new text about GPUs and tensor cores.", "d")
    r2.store.close()
    shutil.copy(tmp_path / "old.idx", os.path.join(path, INDEX_NAME))
    shutil.copy(tmp_path / "old.gen", os.path.join(path, GEN_NAME))
    r3 = RAG(path, embedder)
    assert len(r3.store.index) == r3.store.num_chunks()
    assert r3.retrieve("tensor cores", k=1)[0].doc_id == "d"
    # a corrupt index file is rebuilt from SQLite too
    r3.store.close()
    with open(os.path.join(path, INDEX_NAME), "r+b") as fh:
        fh.truncate(10)
    r4 = RAG(path, embedder)
    assert r4.retrieve("tensor cores", k=1)[0].doc_id == "d"
    r4.store.close()


def test_failed_ingest_leaves_store_intact(rag, tmp_path):
    before = rag.store.num_chunks()
    good = tmp_path / "good.md"
    good.write_text("Good file about schedulers and continuous batching.", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa not utf8")
    with pytest.raises(DocumentError, match=r"bad.txt"):
        rag.ingest([good, bad])
    assert rag.store.num_chunks() > before  # good.md was committed before the error
    assert rag.retrieve("continuous batching", k=1)[0].doc_id == os.path.abspath(good)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(DocumentError, match=r"empty.txt.*empty"):
        rag.ingest([empty])
    with pytest.raises(DocumentError, match=r"nope"):
        rag.ingest([tmp_path / "nope"])
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "rows.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(DocumentError, match=r"wrong: no \.txt.*files"):  # was "0 documents"
        rag.ingest([tmp_path / "wrong"])


def test_store_errors(tmp_path, embedder):
    with pytest.raises(StoreError, match=r"no store"):
        RAGStore(tmp_path / "none", create=False)
    with pytest.raises(ValueError, match=r"dim"):
        RAGStore(tmp_path / "nodim")
    bad = tmp_path / "corrupt"
    bad.mkdir()
    (bad / "store.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match=r"store.sqlite"):
        RAGStore(bad)
    newer = tmp_path / "newer"
    RAGStore(newer, 384).close()
    db = sqlite3.connect(newer / "store.sqlite")
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=r"newer"):
        RAGStore(newer)
    with pytest.raises(ValueError, match=r"embeddings"):
        RAGStore(tmp_path / "d2", 384).put_document("x", "t", [("t", 0, 1)], np.zeros((1, 3), np.float32))
    r = RAG(tmp_path / "s", embedder)
    with pytest.raises(ValueError, match=r"query"):
        r.retrieve("")
    with pytest.raises(ValueError, match=r"k"):
        r.retrieve("q", k=0)
    with pytest.raises(TypeError, match=r"filter"):
        r.retrieve("q", filter=3)
    with pytest.raises(ValueError, match=r"doc_id"):
        r.ingest_text("text", "")
    with pytest.raises(ValueError, match=r"chunk_tokens"):
        RAG(tmp_path / "s2", embedder, chunk_tokens=1000)


def test_parse_citations(rag):
    hits = rag.retrieve("blocks", k=2)
    text = "Blocks hold keys [1]. Shared prompts reuse memory [1, 2]. Made up [7]."
    cites = parse_citations(text, hits)
    assert [(c.marker, c.valid, c.sentence) for c in cites] == [(1, True, 0), (1, True, 1), (2, True, 1),
                                                                (7, False, 2)]
    assert cites[0].doc_id == hits[0].doc_id and cites[0].chunk_id == hits[0].chunk_id
    assert (cites[0].start, cites[0].end) == (hits[0].start, hits[0].end)
    assert text[cites[3].answer_start:cites[3].answer_end] == "[7]"


def test_abstains_below_min_score(rag):
    ans = rag.answer("What is the capital of Peru?", min_score=0.9)
    assert ans.abstained and ans.text == "Not in the documents." and ans.citations == []


def test_posthoc_attribution(rag):
    from infercore.evals.rag import GROUNDED_THRESHOLD
    from infercore.rag.pipeline import attribute_sentences

    hits = rag.retrieve("How are keys and values stored?", k=3)
    text = "Paged attention stores keys and values in fixed-size blocks. Bananas are blue and fly [1]."
    own = parse_citations(text, hits)
    extra = attribute_sentences(text, hits, own, rag.embedder, GROUNDED_THRESHOLD)
    assert len(extra) == 1 and extra[0].posthoc and extra[0].sentence == 0
    assert hits[extra[0].marker - 1].doc_id == "a"
