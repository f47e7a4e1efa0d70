from __future__ import annotations

import itertools

import pytest

from infercore.rag import DocumentError, chunk_text, html_to_text, load_file, split_sentences


def words(texts):
    return [len(t.split()) for t in texts]


def test_chunks_respect_budget_spans_and_overlap():
    sents = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60)]
    text = " ".join(sents[:30]) + "\n\n" + " ".join(sents[30:])
    chunks = chunk_text(text, words, max_tokens=40, overlap_tokens=10)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert len(c.text.split()) <= 40
        assert c.text[0].isupper() and c.text.endswith(".")  # sentence boundaries
    # overlap: each chunk starts inside the previous one
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start <= a.end
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_long_sentence_and_cjk_are_split():
    text = "word " * 500
    chunks = chunk_text(text, words, max_tokens=50, overlap_tokens=0)
    assert all(len(c.text.split()) <= 50 for c in chunks) and len(chunks) == 10
    jp = "東京は日本の首都です。" * 50
    jc = chunk_text(jp, lambda ts: [len(t) for t in ts], max_tokens=40, overlap_tokens=0)
    assert all(len(c.text) <= 40 for c in jc) and "".join(c.text for c in jc) == jp


def test_chunk_bad_args():
    with pytest.raises(TypeError, match=r"text"):
        chunk_text(b"x", words)
    with pytest.raises(ValueError, match=r"max_tokens"):
        chunk_text("x", words, max_tokens=2)
    with pytest.raises(ValueError, match=r"overlap_tokens"):
        chunk_text("x", words, max_tokens=20, overlap_tokens=15)
    assert chunk_text("   \n\n  ", words) == []


def test_split_sentences():
    t = "One. Two! Three?\n\nFour 四。五"
    assert [t[s:e] for s, e in split_sentences(t)] == ["One.", "Two!", "Three?", "Four 四。", "五"]


def test_loaders(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\nBody é", encoding="utf-8")
    assert load_file(tmp_path / "a.md") == "# Title\n\nBody é"
    (tmp_path / "b.html").write_text("<html><head><style>x{}</style></head><body><p>Hello &amp; bye</p>"
                                     "<script>evil()</script><p>Second</p></body></html>", encoding="utf-8")
    assert load_file(tmp_path / "b.html") == "Hello & bye\n\nSecond"
    assert html_to_text("<div>a<br>b</div>") == "a\n\nb"
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DocumentError, match=r"latin1.txt.*UTF-8"):
        load_file(tmp_path / "latin1.txt")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(DocumentError, match=r"bin.txt.*binary"):
        load_file(tmp_path / "bin.txt")
    (tmp_path / "x.docx").write_bytes(b"PK")
    with pytest.raises(DocumentError, match=r"x.docx.*unsupported"):
        load_file(tmp_path / "x.docx")
    with pytest.raises(DocumentError, match=r"missing.txt"):
        load_file(tmp_path / "missing.txt")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(DocumentError, match=r"bad.pdf"):
        load_file(tmp_path / "bad.pdf")


def _tiny_pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, o in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + o + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_pdf(tmp_path):
    pytest.importorskip("pypdf")
    (tmp_path / "doc.pdf").write_bytes(_tiny_pdf("Paged attention uses blocks."))
    assert "Paged attention uses blocks." in load_file(tmp_path / "doc.pdf")
