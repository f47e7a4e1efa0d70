"""`RAGStore`: documents, chunks and embeddings in one directory.

Layout: `store.sqlite` (the source of truth: documents, deduplicated chunks with their embeddings,
document->chunk spans, metadata, content hashes) and `vectors.idx` (a `VectorIndex` over chunk ids,
a cache of the embeddings in SQLite). Every ingest/delete is one SQLite transaction; the index file
is written afterwards (atomically: temp file, fsync, rename) together with the SQLite generation
it reflects. On open, an index whose generation differs from SQLite's (a crash between commit and
save), or that is missing or corrupt, is rebuilt from SQLite, so the two are always consistent.

Streamed documents (`put_document_stream`, for files too large to hold in memory) are written
segment by segment inside that one transaction, so a failure part way leaves the previous version
(or nothing), never half a document. Their full text is stored one row per segment in
`doc_segments` (documents.text is '' for them), so no single value holds the whole text: SQLite
builds every value of a row in memory (a zeroblob filled through a blob handle stays lazy only
when it ends the record) and caps one value at 1 GB. `document_text` / `iter_document_text` read
either form. After the commit the new vectors are read back from SQLite into the index in batches
of INDEX_BATCH, not stacked at once. `doc_segments` is created on open in stores made before it.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._fileio import check_path
from ..search import VectorIndex

SCHEMA_VERSION = 1
DB_NAME = "store.sqlite"
INDEX_NAME = "vectors.idx"
GEN_NAME = "vectors.gen"
INDEX_BATCH = 1024  # vectors per read-back batch when a streamed document is added to the index
MAX_DIM = 1 << 16  # embedding width; real embedders are far below

_SEGMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS doc_segments (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    start INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (doc_id, seq));
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, source TEXT, content_hash TEXT NOT NULL, metadata TEXT NOT NULL,
    text TEXT NOT NULL, n_chars INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id INTEGER PRIMARY KEY, content_hash TEXT NOT NULL UNIQUE, text TEXT NOT NULL,
    embedding BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS doc_chunks (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    chunk_id INTEGER NOT NULL REFERENCES chunks(chunk_id), start INTEGER NOT NULL, end INTEGER NOT NULL,
    PRIMARY KEY (doc_id, seq));
CREATE INDEX IF NOT EXISTS doc_chunks_chunk ON doc_chunks(chunk_id);
""" + _SEGMENTS_SCHEMA


class StoreError(ValueError):
    """A store directory that cannot be opened or used; the message names the file."""


def require_store(path: str | os.PathLike[str], name: str) -> None:
    """StoreError naming `name` unless `path` holds a store: reading commands must not create an
    empty one at a mistyped path (and answer every question with "not in the documents")."""
    p = check_path(path, name)
    if not os.path.isfile(os.path.join(p, DB_NAME)):
        raise StoreError(f"{name}: {p} is not a RAG store ({DB_NAME} not found; build one with `infercore rag ingest`)")


def _doc_id(doc_id: object) -> str:
    """Document ids are str (ingest uses the absolute path); anything else is a caller's mistake."""
    if not isinstance(doc_id, str):
        raise TypeError(f"doc_id: expected a str, got {type(doc_id).__name__}")
    return doc_id


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Hit:
    chunk_id: int
    score: float
    text: str
    doc_id: str
    start: int  # character span of the chunk in its document's text
    end: int
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None


class RAGStore:
    """Open (or create) a store directory. `dim` is required to create one; an existing store keeps
    its dim and embedder name (checked against the arguments when given)."""

    def __init__(self, path: str | os.PathLike[str], dim: int | None = None, *, embedder_name: str | None = None,
                 create: bool = True) -> None:
        self.path = check_path(path, "path")
        if dim is not None:  # checked before anything is created: a bad one must not leave a half-made store
            if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
                raise TypeError(f"dim: expected an int, got {type(dim).__name__}")
            if not 1 <= dim <= MAX_DIM:
                raise ValueError(f"dim: expected an int in [1, {MAX_DIM}], got {dim}")
        if embedder_name is not None and not isinstance(embedder_name, str):
            raise TypeError(f"embedder_name: expected a str, got {type(embedder_name).__name__}")
        self.db_path = os.path.join(self.path, DB_NAME)
        self.index_path = os.path.join(self.path, INDEX_NAME)
        exists = os.path.exists(self.db_path)
        if not exists:
            if not create:
                raise StoreError(f"{self.path}: no store here ({DB_NAME} not found)")
            if dim is None:
                raise ValueError("dim: required to create a new store")
            os.makedirs(self.path, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = FULL")
            if not exists:
                self.db.executescript(_SCHEMA)
            with self._tx():
                meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
                if exists and int(meta.get("schema_version", "0")) <= SCHEMA_VERSION:
                    self.db.execute(_SEGMENTS_SCHEMA)  # stores made before streamed ingestion
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.db_path}: not a usable SQLite store ({e})") from None
        if not exists:
            meta = {"schema_version": str(SCHEMA_VERSION), "dim": str(int(dim)), "embedder": embedder_name or "",
                    "generation": "0"}
            with self._tx():
                self.db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        try:
            version = int(meta["schema_version"])
            self.dim = int(meta["dim"])
        except (KeyError, ValueError):
            raise StoreError(f"{self.db_path}: missing or corrupt meta table") from None
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.db_path}: store schema version {version} is newer than this infercore "
                             f"supports ({SCHEMA_VERSION}); upgrade infercore")
        if dim is not None and int(dim) != self.dim:
            raise ValueError(f"dim: {dim} does not match the store's dim {self.dim} ({self.db_path})")
        self.embedder_name = meta.get("embedder") or None
        if embedder_name and self.embedder_name and embedder_name != self.embedder_name:
            raise ValueError(f"embedder_name: {embedder_name!r} differs from the store's {self.embedder_name!r}")
        self.index = self._open_index()
        self._bm25_cache: tuple[int, Any] | None = None

    # ------------------------------------------------------------------ transactions and index
    def _tx(self) -> Any:
        db = self.db

        class _Tx:
            def __enter__(self_inner) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, et: Any, ev: Any, tb: Any) -> None:
                db.execute("COMMIT" if et is None else "ROLLBACK")

        return _Tx()

    def generation(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def _bump(self) -> None:
        self.db.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key='generation'")

    def _open_index(self) -> VectorIndex:
        gen_file = os.path.join(self.path, GEN_NAME)
        try:
            with open(gen_file, encoding="ascii") as fh:
                saved_gen = int(fh.read().strip())
            if saved_gen == self.generation():
                index = VectorIndex.load(self.index_path, mmap=False)
                if index.dim == self.dim:
                    return index
        except (OSError, ValueError):
            pass  # missing or corrupt index, or stale: rebuild below from SQLite (the source of truth)
        return self.rebuild_index()

    def rebuild_index(self) -> VectorIndex:
        """Rebuild `vectors.idx` from the embeddings stored in SQLite."""
        self.index = VectorIndex(self.dim, "cosine", "float32")
        self._apply_index_from_db(-1, np.zeros(0, np.int64))
        return self.index

    def _save_index(self) -> None:
        self.index.save(self.index_path)
        gen_file = os.path.join(self.path, GEN_NAME)
        tmp = gen_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(str(self.generation()))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, gen_file)

    # ------------------------------------------------------------------ writes
    def document_hash(self, doc_id: str) -> str | None:
        row = self.db.execute("SELECT content_hash FROM documents WHERE doc_id=?", (_doc_id(doc_id),)).fetchone()
        return row[0] if row else None

    def document_metadata(self, doc_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT metadata FROM documents WHERE doc_id=?", (_doc_id(doc_id),)).fetchone()
        return json.loads(row[0]) if row else None

    def put_document(self, doc_id: str, text: str, chunks: list[tuple[str, int, int]], embeddings: np.ndarray,
                     metadata: dict[str, Any] | None = None, source: str | None = None) -> dict[str, int]:
        """Insert or replace one document and its chunks in one transaction. chunks: (text, start, end);
        embeddings: float32 [len(chunks), dim]. Identical chunk texts are stored once."""
        if not isinstance(doc_id, str) or not doc_id:
            raise ValueError("doc_id: expected a non-empty str")
        emb = self._check_embeddings(chunks, embeddings)
        meta_json = json.dumps(metadata or {}, sort_keys=True, ensure_ascii=False)
        added: list[tuple[int, np.ndarray]] = []
        with self._tx():
            self.db.execute("DELETE FROM doc_chunks WHERE doc_id=?", (doc_id,))
            self.db.execute("DELETE FROM doc_segments WHERE doc_id=?", (doc_id,))
            self.db.execute("INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                            (doc_id, source, content_hash(text), meta_json, text, len(text)))
            reused = self._insert_chunks(doc_id, 0, chunks, emb, added)
            orphans = self._delete_orphans()
            self._bump()
        self._apply_index(added, orphans)
        return {"chunks": len(chunks), "new_chunks": len(added), "deduplicated": reused, "removed": len(orphans)}

    def put_document_stream(self, doc_id: str,
                            parts: Iterable[tuple[str, Sequence[tuple[str, int, int]], np.ndarray]], *,
                            doc_hash: str, n_chars: int, metadata: dict[str, Any] | None = None,
                            source: str | None = None) -> dict[str, int]:
        """Insert or replace one document given as consecutive parts (segment text, its chunks
        (text, start, end) with spans in the whole document, embeddings [len(chunks), dim]),
        consumed one at a time inside ONE transaction: if `parts` raises (or the segments do not
        add up to `n_chars` characters) nothing is changed and the error propagates. `doc_hash`
        is the document's content hash (sha256 hex of its UTF-8 text), known before the text is
        read. Working memory: one part at a time, plus 8 bytes per chunk the replaced version
        leaves orphaned; the index is then updated from SQLite in batches of INDEX_BATCH."""
        if not isinstance(doc_id, str) or not doc_id:
            raise ValueError("doc_id: expected a non-empty str")
        if isinstance(n_chars, bool) or not isinstance(n_chars, int) or n_chars < 0:
            raise ValueError(f"n_chars: expected an int >= 0, got {n_chars!r}")
        meta_json = json.dumps(metadata or {}, sort_keys=True, ensure_ascii=False)
        n_chunks = new = reused = 0
        with self._tx():
            first_new = self.db.execute("SELECT COALESCE(MAX(chunk_id), 0) FROM chunks").fetchone()[0]
            self.db.execute("DELETE FROM doc_chunks WHERE doc_id=?", (doc_id,))
            self.db.execute("DELETE FROM doc_segments WHERE doc_id=?", (doc_id,))
            self.db.execute("INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, '', ?)",
                            (doc_id, source, doc_hash, meta_json, n_chars))
            pos = 0
            for seq, (seg, chunks, embeddings) in enumerate(parts):
                emb = self._check_embeddings(chunks, embeddings)
                if not isinstance(seg, str) or pos + len(seg) > n_chars:
                    raise ValueError(f"parts: segments longer than n_chars={n_chars}")
                self.db.execute("INSERT INTO doc_segments VALUES (?, ?, ?, ?)", (doc_id, seq, pos, seg))
                pos += len(seg)
                r = self._insert_chunks(doc_id, n_chunks, chunks, emb, None)
                n_chunks += len(chunks)
                reused += r
                new += len(chunks) - r
            if pos != n_chars:
                raise ValueError(f"parts: {pos} characters of text, expected n_chars={n_chars}")
            orphans = self._delete_orphans()
            self._bump()
        self._apply_index_from_db(first_new, orphans)
        return {"chunks": n_chunks, "new_chunks": new, "deduplicated": reused, "removed": len(orphans)}

    def _check_embeddings(self, chunks: Sequence[Any], embeddings: np.ndarray) -> np.ndarray:
        emb = np.asarray(embeddings, np.float32)
        if emb.shape != (len(chunks), self.dim):
            raise ValueError(f"embeddings: expected shape ({len(chunks)}, {self.dim}), got {emb.shape}")
        return emb

    def _insert_chunks(self, doc_id: str, seq0: int, chunks: Sequence[tuple[str, int, int]], emb: np.ndarray,
                       added: list[tuple[int, np.ndarray]] | None) -> int:
        """Insert doc_chunks rows from seq0 on (and the chunks not stored yet). Returns how many were reused."""
        reused = 0
        for seq, ((ctext, s, e), vec) in enumerate(zip(chunks, emb, strict=True), start=seq0):
            h = content_hash(ctext)
            row = self.db.execute("SELECT chunk_id FROM chunks WHERE content_hash=?", (h,)).fetchone()
            if row is None:
                cid = self.db.execute("INSERT INTO chunks (content_hash, text, embedding) VALUES (?, ?, ?)",
                                      (h, ctext, vec.tobytes())).lastrowid
                if added is not None:
                    added.append((cid, vec))
            else:
                cid = row[0]
                reused += 1
            self.db.execute("INSERT INTO doc_chunks VALUES (?, ?, ?, ?, ?)", (doc_id, seq, cid, s, e))
        return reused

    def delete_document(self, doc_id: str) -> bool:
        """Delete a document (and chunks no other document uses). False if it was not stored."""
        _doc_id(doc_id)
        with self._tx():
            n = self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,)).rowcount
            orphans = self._delete_orphans() if n else []
            if n:
                self._bump()
        if n:
            self._apply_index([], orphans)
        return bool(n)

    def _delete_orphans(self) -> np.ndarray:
        orphan = "FROM chunks WHERE chunk_id NOT IN (SELECT chunk_id FROM doc_chunks)"
        ids = np.fromiter((r[0] for r in self.db.execute(f"SELECT chunk_id {orphan}")), np.int64)
        if ids.size:
            self.db.execute(f"DELETE {orphan}")
        return ids

    def _remove_from_index(self, removed: np.ndarray) -> None:
        live = [i for i in removed.tolist() if i in self.index._row_of]
        if live:
            self.index.remove(live)

    def _apply_index(self, added: list[tuple[int, np.ndarray]], removed: np.ndarray) -> None:
        self._remove_from_index(removed)
        if added:
            self.index.add(np.stack([v for _, v in added]), np.array([c for c, _ in added], np.int64))
        self._save_index()
        self._bm25_cache = None

    def _apply_index_from_db(self, after_id: int, removed: np.ndarray) -> None:
        """Add the chunks with chunk_id > after_id (the ones a transaction just inserted) to the
        index, reading their embeddings back from SQLite INDEX_BATCH at a time."""
        self._remove_from_index(removed)
        n = self.db.execute("SELECT COUNT(*) FROM chunks WHERE chunk_id > ?", (after_id,)).fetchone()[0]
        if n:
            self.index.reserve(self.index._snap.n + n)  # one allocation, not repeated doubling
            cur = self.db.execute("SELECT chunk_id, embedding FROM chunks WHERE chunk_id > ? ORDER BY chunk_id",
                                  (after_id,))
            while rows := cur.fetchmany(INDEX_BATCH):
                vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), self.dim)
                self.index.add(vecs, np.fromiter((r[0] for r in rows), np.int64, len(rows)))
        self._save_index()
        self._bm25_cache = None

    # ------------------------------------------------------------------ reads
    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def num_chunks(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def document_text(self, doc_id: str) -> str | None:
        """The stored full text of a document (None if not stored), all of it in memory; use
        `iter_document_text` for a streamed document too large for that."""
        row = self.db.execute("SELECT 1 FROM documents WHERE doc_id=?", (_doc_id(doc_id),)).fetchone()
        return None if row is None else "".join(self.iter_document_text(doc_id))

    def iter_document_text(self, doc_id: str) -> Iterable[str]:
        """A document's text in pieces: its segments if it was streamed, else the whole text."""
        return self._iter_text(_doc_id(doc_id))  # checked now, not at the first next()

    def _iter_text(self, doc_id: str) -> Iterable[str]:
        row = self.db.execute("SELECT text FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        if row is not None and row[0]:
            yield row[0]
            return
        cur = self.db.execute("SELECT text FROM doc_segments WHERE doc_id=? ORDER BY seq", (doc_id,))
        while rows := cur.fetchmany(1):
            yield rows[0][0]

    def documents(self) -> list[dict[str, Any]]:
        return [{"doc_id": d, "source": s, "metadata": json.loads(m), "n_chars": n}
                for d, s, m, n in self.db.execute("SELECT doc_id, source, metadata, n_chars FROM documents")]

    def allowed_chunks(self, filter: dict[str, Any] | Callable[[dict[str, Any]], bool] | None) -> np.ndarray | None:
        """Chunk ids of documents whose metadata matches: a dict (every key equal; a list value
        means 'any of') or a callable on the metadata dict. None = no filter."""
        if filter is None:
            return None
        if isinstance(filter, dict):
            def match(meta: dict[str, Any]) -> bool:
                return all((meta.get(k) in v) if isinstance(v, (list, tuple, set)) else meta.get(k) == v
                           for k, v in filter.items())
        elif callable(filter):
            match = filter
        else:
            raise TypeError(f"filter: expected a dict or a callable, got {type(filter).__name__}")
        docs = [d for d, m in self.db.execute("SELECT doc_id, metadata FROM documents") if match(json.loads(m))]
        if not docs:
            return np.zeros(0, np.int64)
        q = ",".join("?" * len(docs))
        rows = self.db.execute(f"SELECT DISTINCT chunk_id FROM doc_chunks WHERE doc_id IN ({q})", docs)
        return np.array([r[0] for r in rows], np.int64)

    def hits(self, chunk_ids: Iterable[int], scores: Iterable[float], allowed: np.ndarray | None = None) -> list[Hit]:
        """Resolve chunk ids to text and their (first matching) document and span."""
        out = []
        allowed_set = None if allowed is None else set(allowed.tolist())
        for cid, sc in zip(chunk_ids, scores, strict=True):
            cid = int(cid)
            if allowed_set is not None and cid not in allowed_set:
                continue
            text = self.db.execute("SELECT text FROM chunks WHERE chunk_id=?", (cid,)).fetchone()
            if text is None:
                continue
            rows = self.db.execute(
                "SELECT dc.doc_id, dc.start, dc.end, d.metadata, d.source FROM doc_chunks dc "
                "JOIN documents d ON d.doc_id = dc.doc_id WHERE dc.chunk_id=? ORDER BY dc.doc_id, dc.seq",
                (cid,)).fetchall()
            if not rows:
                continue
            doc, s, e, meta, src = rows[0]
            out.append(Hit(cid, float(sc), text[0], doc, int(s), int(e), json.loads(meta), src))
        return out

    def embeddings(self, chunk_ids: Iterable[int]) -> np.ndarray:
        vecs = []
        for cid in chunk_ids:
            row = self.db.execute("SELECT embedding FROM chunks WHERE chunk_id=?", (int(cid),)).fetchone()
            if row is None:
                raise KeyError(f"chunk_ids: {cid} not in the store")
            vecs.append(np.frombuffer(row[0], np.float32))
        return np.stack(vecs) if vecs else np.zeros((0, self.dim), np.float32)

    def all_chunk_texts(self) -> tuple[np.ndarray, list[str]]:
        rows = self.db.execute("SELECT chunk_id, text FROM chunks ORDER BY chunk_id").fetchall()
        return np.array([r[0] for r in rows], np.int64), [r[1] for r in rows]

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RAGStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
