"""Reading a large plain-text document as a stream of segments, with memory bounded by the
segment size rather than the file size.

`Utf8FileReader` reads a file `read_bytes` at a time through an incremental UTF-8 decoder: a
multi-byte character split between two reads is completed by the next one, a BOM is dropped
only at the very start of the file, NUL bytes and invalid UTF-8 raise `DocumentError` naming
the file and the byte offset (counted from the start of the file, BOM included). While reading
it hashes the bytes after the BOM with SHA-256: that is exactly `store.content_hash(text)` of the
decoded text (valid UTF-8 round-trips byte for byte), so a document gets the same content hash
whether it was ingested whole or streamed.

`iter_text_segments` cuts the decoded text into segments of at most `segment_chars` characters,
each ending at the best boundary in the second half of its window: a paragraph break, else a
line break, else a sentence end, else whitespace, else (a run of that many characters without
any) exactly at the limit. The cut depends only on the text, never on where reads ended, so
`split_segments` (the same cuts on an in-memory string) gives identical segments. The RAG
pipeline chunks each segment separately: chunks never cross a segment boundary.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from collections.abc import Iterator

from .._fileio import check_path
from .loaders import DocumentError, binary_error, utf8_error

DEFAULT_SEGMENT_CHARS = 1 << 20  # ~1 M characters (1-4 MB of UTF-8) per segment
DEFAULT_READ_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"

# `match` from the middle of the window: the greedy (?s).* runs to the window's end and backs off
# to the LAST place the rest matches (one linear pass; `match`, not `search`, so no retries)
_LAST_PARA = re.compile(r"(?s).*\n[^\S\n]*\n")
_LAST_SENT = re.compile(r"(?s).*(?:[.!?](?=\s)|[。！？])")
_LAST_SPACE = re.compile(r"(?s).*\s")


class Utf8FileReader:
    """Iterate over the decoded text of a UTF-8 file in blocks (see the module docstring). After a
    complete iteration: `sha256` (hex digest of the bytes after the BOM), `n_bytes` (their count),
    `n_chars` (decoded characters) and `has_text` (any non-whitespace character). `n_bytes`
    counts the bytes consumed so far while iterating."""

    def __init__(self, path: str | os.PathLike[str], read_bytes: int = DEFAULT_READ_BYTES) -> None:
        if isinstance(read_bytes, bool) or not isinstance(read_bytes, int) or read_bytes < 4:
            raise ValueError(f"read_bytes: expected an int >= 4, got {read_bytes!r}")
        self.path = check_path(path, "path")
        self.read_bytes = read_bytes
        self.sha256: str | None = None
        self.n_bytes = 0
        self.n_chars = 0
        self.has_text = False

    def __iter__(self) -> Iterator[str]:
        path = self.path
        dec = codecs.getincrementaldecoder("utf-8")("strict")
        h = hashlib.sha256()
        self.sha256, self.n_bytes, self.n_chars, self.has_text = None, 0, 0, False
        pos = 0  # bytes of the file consumed (BOM included)
        try:
            fh = open(path, "rb")  # closed by the `with` below; open errors mapped here
        except OSError as e:
            raise DocumentError(f"{path}: cannot read: {e.strerror}") from None
        with fh:
            first = True
            while True:
                try:
                    data = fh.read(self.read_bytes)
                except OSError as e:
                    raise DocumentError(f"{path}: cannot read: {e.strerror}") from None
                if first:
                    first = False
                    if data.startswith(_BOM):
                        data, pos = data[3:], 3
                if not data:
                    break
                nul = data.find(b"\x00")
                if nul >= 0:
                    raise binary_error(path, pos + nul)
                pending = len(dec.getstate()[0])  # bytes of a character the previous read split
                try:
                    text = dec.decode(data)
                except UnicodeDecodeError as e:  # e.start counts from the pending bytes
                    raise utf8_error(path, pos - pending + e.start) from None
                h.update(data)
                pos += len(data)
                self.n_bytes += len(data)
                self.n_chars += len(text)
                if not self.has_text and text and not text.isspace():
                    self.has_text = True
                if text:
                    yield text
            pending = len(dec.getstate()[0])
            try:
                dec.decode(b"", final=True)
            except UnicodeDecodeError as e:  # the file ends inside a character
                raise utf8_error(path, pos - pending + e.start) from None
        self.sha256 = h.hexdigest()

    def scan(self) -> Utf8FileReader:
        """Read the whole file once (validating and hashing); returns self."""
        for _ in self:
            pass
        return self


def _cut(text: str, start: int, limit: int) -> int:
    """End of the segment starting at `start` (the text goes on past `limit`): see the module docstring."""
    lo = start + (limit - start) // 2
    m = _LAST_PARA.match(text, lo, limit)
    if m:
        return m.end()
    i = text.rfind("\n", lo, limit)
    if i >= 0:
        return i + 1
    for pat in (_LAST_SENT, _LAST_SPACE):
        m = pat.match(text, lo, limit)
        if m:
            return m.end()
    return limit


def check_segment_chars(segment_chars: int) -> None:
    if isinstance(segment_chars, bool) or not isinstance(segment_chars, int) or segment_chars < 1024:
        raise ValueError(f"segment_chars: expected an int >= 1024, got {segment_chars!r}")


def split_segments(text: str, segment_chars: int = DEFAULT_SEGMENT_CHARS) -> Iterator[tuple[int, str]]:
    """(character offset, segment) pairs covering `text`, cut as `iter_text_segments` cuts a file."""
    check_segment_chars(segment_chars)
    off = 0
    while len(text) - off > segment_chars:
        cut = _cut(text, off, off + segment_chars)
        yield off, text[off:cut]
        off = cut
    if off < len(text):
        yield off, text[off:]


def iter_text_segments(reader: Utf8FileReader, segment_chars: int = DEFAULT_SEGMENT_CHARS
                       ) -> Iterator[tuple[int, str]]:
    """(character offset in the document, segment) pairs read from `reader`. At most one segment
    plus one read block of text is held at a time."""
    check_segment_chars(segment_chars)
    buf, off = "", 0
    for block in reader:
        buf = buf + block if buf else block
        while len(buf) > segment_chars:
            cut = _cut(buf, 0, segment_chars)
            yield off, buf[:cut]
            off += cut
            buf = buf[cut:]
    if buf:
        yield off, buf
