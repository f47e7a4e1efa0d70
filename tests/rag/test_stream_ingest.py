"""Streamed ingestion of large plain-text files: same chunks as chunking each segment in memory,
bounded memory, all-or-nothing transactions, skip of unchanged documents."""

from __future__ import annotations

import gc
import hashlib
import os
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from infercore.benchmarks.bench_rag_stream import HashedNgramEmbedder

from infercore.rag import RAG, DocumentError, chunk_text, load_file
from infercore.rag.loaders import MAX_FILE_BYTES
from infercore.rag.stream import Utf8FileReader, iter_text_segments, split_segments

BOM = b"\xef\xbb\xbf"
WORDS = ("paged attention block table cache prefix scheduler kernel memory vector index café naïve über "
         "東京 データ 😀 résumé").split()
NEEDLE = "The zebra quokka ostrich codeword is marmalade sunrise."
SEG = 16_000  # characters per segment in these tests
READ = 4093  # bytes per read: prime, so reads end inside multi-byte characters


class CountingEmbedder(HashedNgramEmbedder):
    """The hashed n-gram embedder, counting encode calls; raises on call number `fail_on`."""

    def __init__(self, dim: int = 64, fail_on: int | None = None, on_call=None) -> None:
        super().__init__(dim)
        self.calls = 0
        self.fail_on = fail_on
        self.on_call = on_call

    def encode(self, texts, **kw):
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        if self.calls == self.fail_on:
            raise RuntimeError(f"embedder failed on call {self.calls}")
        return super().encode(texts, **kw)


def make_text(n_paras: int, seed: int = 0, needle: bool = False) -> str:
    rng = np.random.default_rng(seed)
    paras = []
    for i in range(n_paras):
        sents = [" ".join(rng.choice(WORDS, int(rng.integers(4, 16)))).capitalize() + "."
                 for _ in range(int(rng.integers(2, 9)))]
        sep = "\r\n\r\n" if i % 5 == 0 else ("\n" if i % 7 == 0 else "\n\n")
        paras.append(f"Part {i}. " + " ".join(sents) + sep)
    if needle:
        paras.insert(len(paras) - 3, NEEDLE + "\n\n")
    return "".join(paras)


def write(path, text: str, bom: bool = True) -> None:
    path.write_bytes((BOM if bom else b"") + text.encode("utf-8"))


def stream_rag(store, emb, **kw) -> RAG:
    r = RAG(store, emb, chunk_tokens=kw.pop("chunk_tokens", 48), overlap_tokens=kw.pop("overlap_tokens", 8),
            stream_threshold_bytes=kw.pop("stream_threshold_bytes", 0), segment_chars=kw.pop("segment_chars", SEG))
    r.read_bytes = READ
    return r


def reference(rag: RAG, text: str) -> list[tuple[str, int, int]]:
    out = []
    for off, seg in split_segments(text, rag.segment_chars):
        out += [(c.text, off + c.start, off + c.end) for c in chunk_text(seg, rag._count, rag.chunk_tokens,
                                                                          rag.overlap_tokens)]
    return out


def stored_chunks(rag: RAG, doc_id: str) -> list[tuple[str, int, int]]:
    return rag.store.db.execute("SELECT c.text, dc.start, dc.end FROM doc_chunks dc JOIN chunks c "
                                "ON c.chunk_id = dc.chunk_id WHERE dc.doc_id=? ORDER BY dc.seq", (doc_id,)).fetchall()


def snapshot(rag: RAG) -> dict:
    db = rag.store.db
    return {"docs": db.execute("SELECT doc_id, content_hash, metadata, n_chars, length(text) FROM documents "
                               "ORDER BY doc_id").fetchall(),
            "chunks": db.execute("SELECT chunk_id, content_hash FROM chunks ORDER BY chunk_id").fetchall(),
            "doc_chunks": db.execute("SELECT * FROM doc_chunks ORDER BY doc_id, seq").fetchall(),
            "doc_segments": db.execute("SELECT doc_id, seq, start, length(text) FROM doc_segments "
                                       "ORDER BY doc_id, seq").fetchall(),
            "generation": rag.store.generation(), "index": sorted(rag.store.index._row_of)}


def assert_consistent(rag: RAG) -> None:
    db = rag.store.db
    assert not db.in_transaction
    orphans = db.execute("SELECT COUNT(*) FROM chunks WHERE chunk_id NOT IN (SELECT chunk_id FROM doc_chunks)")
    assert orphans.fetchone()[0] == 0
    ids = sorted(r[0] for r in db.execute("SELECT chunk_id FROM chunks"))
    assert sorted(rag.store.index._row_of) == ids


# ---------------------------------------------------------------------------------------------- reader


@settings(max_examples=40, deadline=None)
@given(parts=st.lists(st.sampled_from(["a", "bc ", " ", "\n", "\r\n", "\n\n", ". ", "é", "東京", "😀", "。", "x" * 50]),
                      max_size=900),
       read=st.integers(4, 64), bom=st.booleans())
def test_reader_segments_match_in_memory_split(tmp_path_factory, parts, read, bom):
    text = "".join(parts)
    path = tmp_path_factory.mktemp("r") / "t.txt"
    write(path, text, bom)
    reader = Utf8FileReader(path, read)
    got = list(iter_text_segments(reader, 1024))
    assert got == list(split_segments(text, 1024))
    assert "".join(s for _, s in got) == text and all(len(s) <= 1024 for _, s in got)
    assert [o for o, _ in got] == [sum(len(s) for _, s in got[:i]) for i in range(len(got))]
    assert reader.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert (reader.n_bytes, reader.n_chars, reader.has_text) == (len(text.encode()), len(text), not text.isspace()
                                                                 and text != "")


def test_segments_cut_at_boundaries():
    text = make_text(400)
    segs = list(split_segments(text, SEG))
    assert len(segs) > 5
    for _, s in segs[:-1]:
        assert SEG // 2 <= len(s) <= SEG and s.endswith("\n")  # paragraph or line break in the window's second half
    words = "word " * 5000
    assert all(s.endswith(" ") for _, s in list(split_segments(words, 2000))[:-1])
    jp = "東京は日本の首都です。" * 1000
    assert all(s.endswith("。") for _, s in list(split_segments(jp, 2000))[:-1])
    solid = "x" * 5000
    assert [len(s) for _, s in split_segments(solid, 2000)] == [2000, 2000, 1000]


def test_reader_errors_name_file_and_offset(tmp_path):
    p = tmp_path / "bad.txt"
    data = BOM + ("é" * 3000).encode() + b"ok \xff tail"
    p.write_bytes(data)
    bad_at = data.index(b"\xff")
    for read in (4, 7, 4093, 1 << 20):
        with pytest.raises(DocumentError, match=rf"bad.txt: not valid UTF-8 at byte {bad_at}\b"):
            Utf8FileReader(p, read).scan()
    with pytest.raises(DocumentError, match=rf"bad.txt: not valid UTF-8 at byte {bad_at}\b"):
        load_file(p)  # the in-memory path counts offsets the same way (from the file start, BOM included)
    p.write_bytes(b"abc \xe2\x82")  # ends inside a character
    with pytest.raises(DocumentError, match=r"at byte 4\b"):
        Utf8FileReader(p, 5).scan()
    p.write_bytes(b"text " * 3000 + b"\x00 binary")
    with pytest.raises(DocumentError, match=r"bad.txt: .*binary.*NUL byte at byte 15000"):
        Utf8FileReader(p, 4093).scan()
    with pytest.raises(DocumentError, match=r"NUL byte at byte 15000"):
        load_file(p)
    with pytest.raises(DocumentError, match=r"missing.txt: cannot read"):
        Utf8FileReader(tmp_path / "missing.txt").scan()
    with pytest.raises(ValueError, match=r"read_bytes"):
        Utf8FileReader(p, 2)
    with pytest.raises(ValueError, match=r"segment_chars"):
        list(split_segments("abc", 10))


# ---------------------------------------------------------------------------------------------- pipeline


def test_stream_ingest_matches_reference_and_retrieves_last_segment(tmp_path):
    text = make_text(900, needle=True)
    assert len(text.encode()) > 200_000
    path = tmp_path / "big.md"
    write(path, text)
    # some reads end inside a multi-byte character
    data = path.read_bytes()
    assert any(0x80 <= data[k] < 0xC0 for k in range(READ, len(data), READ))
    rag = stream_rag(tmp_path / "s", CountingEmbedder())
    res = rag.ingest([path])[0]
    assert res["status"] == "added" and res["streamed"] and res["new_chunks"] + res["deduplicated"] == res["chunks"]
    doc = os.path.abspath(path)
    segs = list(split_segments(text, SEG))
    ref = reference(rag, text)
    assert stored_chunks(rag, doc) == ref and len(ref) == res["chunks"]
    assert len(segs) >= 10
    assert rag.embedder.calls == len(segs)  # one encode per segment
    assert all(text[s:e] == t for t, s, e in ref)
    assert rag.store.document_text(doc) == text
    assert list(rag.store.iter_document_text(doc)) == [s for _, s in segs]  # one row per segment
    assert rag.store.document_hash(doc) == hashlib.sha256(text.encode()).hexdigest()
    assert rag.store.documents()[0]["n_chars"] == len(text)
    hit = rag.retrieve(NEEDLE, k=1)[0]
    assert NEEDLE in hit.text and hit.start >= segs[-1][0] and text[hit.start:hit.end] == hit.text
    assert_consistent(rag)
    rag.store.close()
    again = stream_rag(tmp_path / "s", CountingEmbedder())
    assert NEEDLE in again.retrieve(NEEDLE, k=1)[0].text
    assert_consistent(again)


def test_unchanged_skipped_across_modes_and_replace(tmp_path):
    text = make_text(300, seed=1)
    path = tmp_path / "doc.txt"
    write(path, text)
    emb = CountingEmbedder()
    whole = RAG(tmp_path / "s", emb, chunk_tokens=48, overlap_tokens=8)  # default threshold: ingested whole
    assert "streamed" not in whole.ingest([path])[0]
    h = whole.store.document_hash(os.path.abspath(path))
    whole.store.close()
    rag = stream_rag(tmp_path / "s", emb)
    emb.calls = 0
    assert rag.ingest([path])[0]["status"] == "unchanged"  # same content hash streamed or whole
    assert emb.calls == 0 and rag.store.document_hash(os.path.abspath(path)) == h
    res = rag.ingest([path], metadata={"team": "kv"})[0]  # metadata changed: re-ingested
    assert res["status"] == "replaced" and emb.calls > 0
    assert rag.store.document_metadata(os.path.abspath(path))["team"] == "kv"
    emb.calls = 0
    assert rag.ingest([path], metadata={"team": "kv"})[0]["status"] == "unchanged" and emb.calls == 0
    write(path, make_text(200, seed=2))
    res = rag.ingest([path], metadata={"team": "kv"})[0]
    assert res["status"] == "replaced" and res["removed"] > 0
    doc = os.path.abspath(path)
    assert stored_chunks(rag, doc) == reference(rag, make_text(200, seed=2))
    assert rag.store.document_text(doc) == make_text(200, seed=2)
    assert_consistent(rag)
    # replaced by a whole (in-memory) ingest, then deleted: no segment rows are left behind
    rag.ingest_text("A short replacement text.", doc)
    assert rag.store.document_text(doc) == "A short replacement text."
    count = "SELECT COUNT(*) FROM doc_segments"
    assert rag.store.db.execute(count).fetchone()[0] == 0
    rag.ingest([path])
    assert rag.store.db.execute(count).fetchone()[0] > 1
    assert rag.delete(doc) and rag.store.db.execute(count).fetchone()[0] == 0
    assert rag.store.document_text(doc) is None
    assert_consistent(rag)


def test_store_made_before_streaming_gets_segments_table(tmp_path):
    rag = stream_rag(tmp_path / "s", CountingEmbedder())
    rag.ingest_text("An old document.", "old")
    rag.store.db.execute("DROP TABLE doc_segments")
    rag.store.close()
    path = tmp_path / "doc.txt"
    write(path, make_text(100))
    again = stream_rag(tmp_path / "s", CountingEmbedder())
    assert again.ingest([path])[0]["status"] == "added"
    assert again.store.document_text("old") == "An old document."
    assert again.store.document_text(os.path.abspath(path)) == make_text(100)


def _prepare_v1(tmp_path, emb):
    v1 = make_text(400, seed=3, needle=True)
    path = tmp_path / "doc.txt"
    write(path, v1)
    rag = stream_rag(tmp_path / "s", emb)
    rag.ingest_text("Unrelated small document about bananas and potassium.", "other")
    rag.ingest([path])
    return rag, path, v1


def _assert_v1_intact(rag, tmp_path, before, v1, path):
    assert snapshot(rag) == before
    assert_consistent(rag)
    assert stored_chunks(rag, os.path.abspath(path)) == reference(rag, v1)
    rag.store.close()
    reopened = stream_rag(tmp_path / "s", CountingEmbedder())
    assert snapshot(reopened) == before
    assert_consistent(reopened)
    assert NEEDLE in reopened.retrieve(NEEDLE, k=1)[0].text
    return reopened


def test_embedder_error_on_third_segment_leaves_previous_version(tmp_path):
    emb = CountingEmbedder()
    rag, path, v1 = _prepare_v1(tmp_path, emb)
    before = snapshot(rag)
    write(path, make_text(600, seed=4))
    emb.calls, emb.fail_on = 0, 3
    with pytest.raises(RuntimeError, match=r"call 3"):
        rag.ingest([path])
    assert emb.calls == 3
    reopened = _assert_v1_intact(rag, tmp_path, before, v1, path)
    # the store is usable afterwards: the new version goes in whole
    reopened.embedder.fail_on = None
    assert reopened.ingest([path])[0]["status"] == "replaced"
    assert stored_chunks(reopened, os.path.abspath(path)) == reference(reopened, make_text(600, seed=4))
    assert_consistent(reopened)


def test_invalid_utf8_late_segment_leaves_previous_version(tmp_path):
    emb = CountingEmbedder()
    rag, path, v1 = _prepare_v1(tmp_path, emb)
    before = snapshot(rag)
    v2 = make_text(600, seed=5).encode()
    bad_at = len(v2) - 5000  # in the last segments
    path.write_bytes(BOM + v2[:bad_at] + b"\xc3\x28" + v2[bad_at + 2:])
    emb.calls = 0
    with pytest.raises(DocumentError, match=rf"doc.txt: not valid UTF-8 at byte {bad_at + 3}\b"):
        rag.ingest([path])
    assert emb.calls == 0  # found by the first pass, before any embedding
    assert snapshot(rag) == before

    # the same bad byte met mid-transaction: the file is corrupted after the first pass, while the
    # second pass is embedding its 2nd segment
    path.write_bytes(BOM + v2)

    def corrupt(call):
        if call == 2:
            with open(path, "r+b") as fh:
                fh.seek(3 + bad_at)
                fh.write(b"\xc3\x28")

    emb.calls, emb.on_call = 0, corrupt
    with pytest.raises(DocumentError, match=rf"doc.txt: not valid UTF-8 at byte {bad_at + 3}\b"):
        rag.ingest([path])
    assert emb.calls > 3  # several segments were embedded (and written) before the error
    _assert_v1_intact(rag, tmp_path, before, v1, path)


def test_file_changed_between_passes_is_rejected(tmp_path):
    emb = CountingEmbedder()
    rag, path, v1 = _prepare_v1(tmp_path, emb)
    before = snapshot(rag)
    v2 = make_text(600, seed=6).encode()
    path.write_bytes(v2)

    def edit(call):  # same size, valid UTF-8, different text
        if call == 2:
            with open(path, "r+b") as fh:
                fh.seek(len(v2) - 100)
                fh.write(b"Z")

    emb.calls, emb.on_call = 0, edit
    with pytest.raises(DocumentError, match=r"doc.txt: the file changed while it was being ingested"):
        rag.ingest([path])
    _assert_v1_intact(rag, tmp_path, before, v1, path)


def _traced_ingest(tmp_path, name: str, n_paras: int) -> tuple[int, int, int]:
    text = make_text(n_paras, seed=7)
    path = tmp_path / f"{name}.txt"
    write(path, text)
    rag = stream_rag(tmp_path / name, CountingEmbedder(dim=16), chunk_tokens=200, overlap_tokens=20)
    warm = tmp_path / f"{name}-warm.txt"  # first-use caches (regexes, SQLite statements) are not the ingest's
    write(warm, make_text(60, seed=9))
    rag.ingest([warm], show_progress_bar=False)
    del text
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        res = rag.ingest([path], show_progress_bar=False)[0]
        cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res["streamed"]
    rag.store.close()
    return peak - base, cur - base, os.path.getsize(path)


def test_memory_bounded_by_segment_not_file(tmp_path):
    peak1, kept1, size1 = _traced_ingest(tmp_path, "one", 700)
    peak4, kept4, size4 = _traced_ingest(tmp_path, "four", 2800)
    assert size4 > 3.9 * size1 and size1 > 150_000
    # the text held as one str (4 bytes per character: it has emoji) would be > 2 MB more at 4x
    assert peak4 - peak1 <= (kept4 - kept1) + 200_000  # the peak grows only by what stays: the vector index
    assert peak1 - kept1 < 40 * SEG  # working memory: a few copies of one segment and its chunks


def test_stream_choice_kinds_and_bad_args(tmp_path):
    emb = CountingEmbedder()
    rag = stream_rag(tmp_path / "s", emb)
    html = tmp_path / "page.html"
    html.write_text("<p>Hello streaming world.</p>", encoding="utf-8")
    assert "streamed" not in rag.ingest([html])[0]  # HTML is loaded whole (under MAX_FILE_BYTES)
    with pytest.raises(DocumentError, match=r"page.html: '.html' files cannot be streamed"):
        rag.ingest_stream(html)
    pdf = tmp_path / "huge.pdf"
    with open(pdf, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(DocumentError, match=r"huge.pdf: .* over the .* byte limit"):
        rag.ingest([pdf])
    huge_txt = tmp_path / "huge.txt"
    with open(huge_txt, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    default = RAG(tmp_path / "s2", emb, chunk_tokens=48, overlap_tokens=8)
    with pytest.raises(DocumentError, match=r"huge.txt: .*NUL byte at byte 0"):  # streamed, not refused by size
        default.ingest([huge_txt])
    blank = tmp_path / "blank.txt"
    blank.write_bytes(BOM + b" \r\n\n  " * 1000)
    with pytest.raises(DocumentError, match=r"blank.txt: empty document"):
        rag.ingest([blank])
    assert len(rag.store) == 1 and len(default.store) == 0
    with pytest.raises(ValueError, match=r"segment_chars"):
        RAG(tmp_path / "s3", emb, segment_chars=100)
    with pytest.raises(ValueError, match=r"stream_threshold_bytes"):
        RAG(tmp_path / "s3", emb, stream_threshold_bytes=-1)
    with pytest.raises(TypeError, match=r"metadata"):
        rag.ingest_stream(blank, metadata=[1])


def test_real_embedder_small_file(tmp_path, embedder):
    text = make_text(60, seed=8, needle=True)
    path = tmp_path / "small.txt"
    write(path, text)
    rag = RAG(tmp_path / "s", embedder, chunk_tokens=64, overlap_tokens=8, stream_threshold_bytes=0,
              segment_chars=2048)
    res = rag.ingest([path])[0]
    assert res["streamed"] and len(list(split_segments(text, 2048))) >= 4
    assert stored_chunks(rag, os.path.abspath(path)) == reference(rag, text)
    hit = rag.retrieve("What is the zebra quokka ostrich codeword?", k=1)[0]
    assert NEEDLE in hit.text and hit.score > 0.3
    assert_consistent(rag)


def test_store_stream_checks_its_parts(tmp_path):
    from infercore.rag import RAGStore

    store = RAGStore(tmp_path / "s", 4)
    one = np.eye(4, dtype=np.float32)[:1]
    res = store.put_document_stream("d", iter([("ab", [("ab", 0, 2)], one), ("cd", [], np.zeros((0, 4)))]),
                                    doc_hash="h", n_chars=4)
    assert res == {"chunks": 1, "new_chunks": 1, "deduplicated": 0, "removed": 0}
    before = snapshot(type("R", (), {"store": store})())
    with pytest.raises(ValueError, match=r"n_chars=5"):
        store.put_document_stream("d", iter([("xyz", [("xyz", 0, 3)], one)]), doc_hash="h2", n_chars=5)
    with pytest.raises(ValueError, match=r"n_chars=2"):
        store.put_document_stream("d", iter([("xyz", [("xyz", 0, 3)], one)]), doc_hash="h2", n_chars=2)
    with pytest.raises(ValueError, match=r"embeddings"):
        store.put_document_stream("d", iter([("xyz", [("xyz", 0, 3)], np.zeros((2, 4)))]), doc_hash="h2",
                                  n_chars=3)
    assert snapshot(type("R", (), {"store": store})()) == before and store.document_text("d") == "abcd"
