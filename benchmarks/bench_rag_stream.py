"""Streamed RAG ingest of one huge plain-text file: wall time, chunks/s and peak RSS (VmHWM).

`HashedNgramEmbedder` is a cheap deterministic embedder (hashed byte trigrams, numpy only, no
model) for measuring everything but the neural encoder, and for tests. Each measurement runs in
the current process, so run it in a fresh one for a meaningful VmHWM:

    python -m infercore.benchmarks.bench_rag_stream gen /tmp/big.txt --mb 200
    python -m infercore.benchmarks.bench_rag_stream ingest /tmp/big.txt [--embedder hash|minilm]
        [--segment-chars N] [--whole]

`ingest` prints one JSON line: bytes, chunks, seconds, chunks/s, MB/s, VmHWM before the ingest
(after imports and store creation) and after it. --whole ingests the file with load_file +
ingest_text instead (in-memory, for comparison; refused over 64 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from typing import Any

import numpy as np

# token-ish units like BERT's basic tokenizer: a CJK character, a run of letters/digits, a punctuation mark
_TOK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]+|[^\w\s]|_")


class HashedNgramEmbedder:
    """L2-normalised counts of hashed byte trigrams of the lower-cased UTF-8 text, `dim` buckets.
    Real, deterministic vectors (texts sharing words score higher), no model, ~10 us per text.
    count_tokens approximates a BERT basic tokenizer (words, punctuation, CJK characters)."""

    name = "hashed-ngram"
    max_seq_length = 512

    def __init__(self, dim: int = 256) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim & (dim - 1):
            raise ValueError(f"dim: expected a power of two >= 2, got {dim!r}")
        self.dim = dim
        self._shift = 32 - (dim.bit_length() - 1)

    def count_tokens(self, text: str) -> int:
        return len(_TOK.findall(text))

    def encode(self, texts: str | list[str], batch_size: int = 64, normalize: bool = True,
               show_progress_bar: bool | None = None) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            b = np.frombuffer(f" {t.lower()} ".encode(), np.uint8).astype(np.uint32)
            if b.size < 3:
                continue
            key = (b[:-2] << 16) | (b[1:-1] << 8) | b[2:]
            bucket = (key * np.uint32(2654435761)) >> np.uint32(self._shift)  # Knuth multiplicative hash
            out[i] = np.bincount(bucket, minlength=self.dim)
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


_WORDS = ("the index stores vectors while a scheduler batches requests and kernels read memory at high bandwidth "
          "so answers arrive with citations measured latency shared cores café naïve über façade 東京 日本語 "
          "データ 😀 résumé").split()


def write_text_file(path: str, n_bytes: int, seed: int = 0) -> int:
    """Write ~n_bytes of UTF-8 prose (numbered paragraphs of sentences, multi-byte words, CRLF
    line ends in every 7th paragraph) without holding it in memory. Returns the bytes written."""
    rng = np.random.default_rng(seed)
    pool = [" ".join(rng.choice(_WORDS, int(rng.integers(6, 22)))).capitalize() + "."
            for _ in range(4096)]
    written, para = 0, 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        while written < n_bytes:
            block = []
            for _ in range(256):
                idx = rng.integers(0, len(pool), int(rng.integers(3, 12)))
                nl = "\r\n\r\n" if para % 7 == 0 else "\n\n"
                block.append(f"Paragraph {para}. " + " ".join(pool[i] for i in idx) + nl)
                para += 1
            data = "".join(block)
            fh.write(data)
            written += len(data.encode())
    return written


def vm_hwm_mb() -> float:
    """Peak resident set size of this process so far (Linux /proc/self/status VmHWM), MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ingest_file(path: str, embedder: Any, segment_chars: int | None = None, whole: bool = False,
                chunk_tokens: int = 200, overlap_tokens: int = 40) -> dict[str, Any]:
    from infercore.rag import RAG, load_file

    kw = {} if segment_chars is None else {"segment_chars": segment_chars}
    with tempfile.TemporaryDirectory() as d:
        rag = RAG(d, embedder, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens, stream_threshold_bytes=0,
                  **kw)
        store = rag.store
        apply_index = store._apply_index_from_db
        marks: dict[str, float] = {}

        def timed_apply(*a: Any) -> None:  # the index update after the commit: note VmHWM before it
            marks["hwm_commit"], marks["t_commit"] = vm_hwm_mb(), time.perf_counter()
            apply_index(*a)

        store._apply_index_from_db = timed_apply
        hwm0 = vm_hwm_mb()
        t = time.perf_counter()
        if whole:
            st = rag.ingest_text(load_file(path), os.path.abspath(path))
        else:
            st = rag.ingest_stream(path)
        dt = time.perf_counter() - t
        hwm1 = vm_hwm_mb()
        n = store.num_chunks()
        index_mb = len(store.index) * store.dim * 4 / 2**20
        store.close()
    size = os.path.getsize(path)
    out = {"file_bytes": size, "mode": "whole" if whole else "stream", "segment_chars": rag.segment_chars,
           "chunks": st["chunks"], "stored_chunks": n, "seconds": round(dt, 2),
           "chunks_per_s": round(st["chunks"] / dt, 1), "mb_per_s": round(size / 2**20 / dt, 2),
           "vm_hwm_before_mb": round(hwm0, 1), "vm_hwm_after_mb": round(hwm1, 1),
           "index_vectors_mb": round(index_mb, 1)}
    if marks:
        out["vm_hwm_at_commit_mb"] = round(marks["hwm_commit"], 1)  # read+chunk+embed+SQLite, before the index
        out["seconds_to_commit"] = round(marks["t_commit"] - t, 2)
    return out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench_rag_stream", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("path")
    g.add_argument("--mb", type=float, default=200)
    i = sub.add_parser("ingest")
    i.add_argument("path")
    i.add_argument("--embedder", choices=("hash", "minilm"), default="hash")
    i.add_argument("--segment-chars", type=int, default=None)
    i.add_argument("--whole", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "gen":
        print(json.dumps({"path": args.path, "bytes": write_text_file(args.path, int(args.mb * 2**20))}))
        return
    if args.embedder == "minilm":
        from infercore.embed import Embedder

        emb: Any = Embedder("minilm")
    else:
        emb = HashedNgramEmbedder()
    print(json.dumps({"embedder": args.embedder, **ingest_file(args.path, emb, args.segment_chars, args.whole)}))


if __name__ == "__main__":
    main(sys.argv[1:])
