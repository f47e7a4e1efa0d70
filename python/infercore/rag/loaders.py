"""Read documents into text: .txt/.md (UTF-8), .html/.htm (visible text), .pdf (pypdf).

Plain-text kinds (STREAM_EXTS) of any size can also be read as a stream of segments with bounded
memory (stream.py: `Utf8FileReader`, `iter_text_segments`; `RAG.ingest_stream`); HTML and PDF are
loaded whole and refused above MAX_FILE_BYTES. Byte offsets in errors count from the file start.
"""

from __future__ import annotations

import html
import os
import re
from html.parser import HTMLParser

from .._fileio import check_path

TEXT_EXTS = (".txt", ".md", ".markdown", ".rst")
HTML_EXTS = (".html", ".htm")
PDF_EXTS = (".pdf",)
SUPPORTED_EXTS = TEXT_EXTS + HTML_EXTS + PDF_EXTS
STREAM_EXTS = TEXT_EXTS  # kinds that can be ingested as a stream of segments (no size limit)
MAX_FILE_BYTES = 64 << 20  # larger files of the other kinds are refused (split such a document first)


class DocumentError(ValueError):
    """A file that cannot be ingested; the message names the file."""


class _TextExtractor(HTMLParser):
    _SKIP: frozenset[str] = frozenset({"script", "style", "head", "noscript", "template"})
    _BLOCK: frozenset[str] = frozenset({
        "p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "pre",
              "blockquote", "ul", "ol", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    p = _TextExtractor()
    p.feed(markup)
    p.close()
    text = html.unescape("".join(p.parts))
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\s*\n\s*\n\s*", "\n\n", text).strip()


def binary_error(path: str, offset: int) -> DocumentError:
    return DocumentError(f"{path}: looks like a binary file (NUL byte at byte {offset}), not text")


def utf8_error(path: str, offset: int) -> DocumentError:
    return DocumentError(f"{path}: not valid UTF-8 at byte {offset} (re-encode the file as UTF-8)")


def _decode(data: bytes, path: str) -> str:
    """UTF-8 text (a leading BOM dropped). Byte offsets in errors count from the start of the file."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise binary_error(path, nul)
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return str(memoryview(data)[bom:], "utf-8")
    except UnicodeDecodeError as e:
        raise utf8_error(path, bom + e.start) from None


def load_file(path: str | os.PathLike[str]) -> str:
    """The document's text. Raises DocumentError naming the file on anything unreadable."""
    path = check_path(path, "path")
    ext = os.path.splitext(path)[1].lower()
    if ext not in SUPPORTED_EXTS:
        raise DocumentError(f"{path}: unsupported file type {ext or '(none)'!r}; supported: {SUPPORTED_EXTS}")
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise DocumentError(f"{path}: {size} bytes is over the {MAX_FILE_BYTES} byte limit per document")
        if ext in PDF_EXTS:
            return _load_pdf(path)
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise DocumentError(f"{path}: cannot read: {e.strerror}") from None
    text = _decode(data, path)
    return html_to_text(text) if ext in HTML_EXTS else text


def _load_pdf(path: str) -> str:
    try:
        from pypdf import PdfReader
    except ImportError:
        raise DocumentError(f"{path}: reading PDF needs the 'pypdf' package: pip install pypdf") from None
    try:
        reader = PdfReader(path)
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except Exception as e:  # pypdf raises many types on corrupt files
        raise DocumentError(f"{path}: cannot read PDF: {type(e).__name__}: {e}") from None
    return "\n\n".join(p for p in pages if p)
