"""`RAG`: ingest -> chunk -> embed -> store; retrieve (dense, filters, MMR, BM25 hybrid);
answer with numbered sources and `[n]` citations mapped back to document spans."""

from __future__ import annotations

import dataclasses
import numbers
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._fileio import check_path
from .chunking import chunk_text
from .loaders import STREAM_EXTS, SUPPORTED_EXTS, DocumentError, load_file
from .retrieval import BM25, mmr, reciprocal_rank_fusion
from .store import Hit, RAGStore, content_hash
from .stream import DEFAULT_READ_BYTES, DEFAULT_SEGMENT_CHARS, Utf8FileReader, check_segment_chars, iter_text_segments

STREAM_THRESHOLD_BYTES = 16 << 20  # plain-text files larger than this are ingested as a stream

PROMPT_VERSION = "rag-answer-v1"
SYSTEM_PROMPT = (
    "Answer the question in one or two short sentences using only the numbered sources. "
    "End every sentence with the number of its source in brackets, like [1]. "
    "If the sources do not answer the question, reply: Not in the documents."
)
# one worked example (not from the user's documents) showing the citation format
EXAMPLE = (
    [{"role": "user", "content": "Sources:\n[1] The Moon orbits the Earth every 27 days.\n"
                                 "[2] Mars has two small moons.\n\nQuestion: How many moons does Mars have?"},
     {"role": "assistant", "content": "Mars has two small moons [2]."}]
)
ABSTAIN_TEXT = "Not in the documents."
_CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# cited_answer_regex bounds: the pattern grows with each (the decoding automaton expands every {m,n})
MAX_SOURCES = 1000
MAX_SENTENCES = 100
MAX_SENTENCE_CHARS = 4096  # the largest {m,n} repeat infercore's regex engine takes


@dataclass
class Citation:
    marker: int  # the n in [n]
    valid: bool  # n names a source that was given
    answer_start: int  # span of the marker in the answer text
    answer_end: int
    sentence: int  # index of the answer sentence holding it
    doc_id: str | None = None
    chunk_id: int | None = None
    start: int | None = None  # character span of the cited chunk in its document
    end: int | None = None
    posthoc: bool = False  # added by `attribute_sentences`, not written by the model


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    contexts: list[Hit]
    scores: list[float]
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    abstained: bool = False
    prompt_version: str = PROMPT_VERSION
    constrained: bool = False  # decoded under cited_answer_regex (every sentence cites a source)


def cited_answer_regex(num_sources: int, max_sentences: int = 2, max_chars: int = 150) -> str:
    """The shape constrained decoding gives an answer: 1..max_sentences sentences, each ending in
    one or two source markers then a period ("Mars has two moons [2]."), or the abstain text.
    A sentence may not contain '.', '!', '?' or brackets (so no decimals either: a decimal point
    let a looping model run "32.32.32..." inside one sentence), so it cannot run on past its
    citation."""
    for name, v, hi in (("num_sources", num_sources, MAX_SOURCES), ("max_sentences", max_sentences, MAX_SENTENCES),
                        ("max_chars", max_chars, MAX_SENTENCE_CHARS)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ValueError(f"{name}: expected an int in [1, {hi}], got {v!r}")
    n = "|".join(str(i) for i in range(1, num_sources + 1))
    sentence = rf"[^.!?\[\]\n]{{1,{max_chars}}} \[(?:{n})\](?:\[(?:{n})\])?\."
    return rf"{re.escape(ABSTAIN_TEXT)}|{sentence}(?: {sentence}){{0,{max_sentences - 1}}}"


def _check_contexts(contexts: object) -> None:
    if not isinstance(contexts, (list, tuple)):
        raise TypeError(f"contexts: expected a list of Hit, got {type(contexts).__name__}")
    for h in contexts:
        if not isinstance(h, Hit):
            raise TypeError(f"contexts: expected a list of Hit, got a {type(h).__name__} item")


def build_messages(question: str, contexts: list[Hit]) -> list[dict[str, str]]:
    if not isinstance(question, str):
        raise TypeError(f"question: expected a str, got {type(question).__name__}")
    _check_contexts(contexts)
    sources = "\n\n".join(f"[{i}] {h.text}" for i, h in enumerate(contexts, start=1))
    return [{"role": "system", "content": SYSTEM_PROMPT}, *EXAMPLE,
            {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question}"}]


def trim_repetition(text: str) -> str:
    """Cut the answer before its first sentence that repeats an earlier one (small models loop)."""
    from .chunking import split_sentences

    seen: set[str] = set()
    for s, e in split_sentences(text):
        key = " ".join(_CITE.sub("", text[s:e]).lower().split())
        if key in seen:
            return text[:s].rstrip()
        seen.add(key)
    return text


def parse_citations(text: str, contexts: list[Hit]) -> list[Citation]:
    """Every [n] (and [n, m]) marker in `text`, mapped to the n-th context (1-based); numbers that
    name no given source are kept with valid=False."""
    from .chunking import split_sentences

    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    _check_contexts(contexts)
    sents = split_sentences(text)
    out = []
    for m in _CITE.finditer(text):
        sent = next((i for i, (s, e) in enumerate(sents) if s <= m.start() < e + 1), max(len(sents) - 1, 0))
        for num in m.group(1).split(","):
            n = int(num)
            ok = 1 <= n <= len(contexts)
            h = contexts[n - 1] if ok else None
            out.append(Citation(n, ok, m.start(), m.end(), sent, h.doc_id if h else None, h.chunk_id if h else None,
                                h.start if h else None, h.end if h else None))
    return out


def attribute_sentences(text: str, contexts: list[Hit], citations: list[Citation], embedder: Any,
                        threshold: float) -> list[Citation]:
    """Post-hoc attribution (as in ALCE's post-hoc citation baseline): for each answer sentence the
    model left without a valid citation, cite the retrieved chunk that supports it best (highest
    sentence-level cosine, `evals.rag.support_matrix`) when that reaches `threshold`.
    Returned citations have posthoc=True; the answer text is not changed and the
    answer metrics ignore them (they measure the model's own citations)."""
    from ..evals.rag import _MARK, answer_sentences, support_matrix

    sents = answer_sentences(text)
    cited = {c.sentence for c in citations if c.valid}
    from .chunking import split_sentences

    all_sents = split_sentences(text)
    todo = [(s, e) for s, e in sents if next((i for i, se in enumerate(all_sents) if se[0] == s), -1) not in cited]
    if not todo or not contexts:
        return []
    sim = support_matrix([_MARK.sub("", text[s:e]) for s, e in todo], [h.text for h in contexts], embedder)
    out = []
    for row, (s, e) in zip(sim, todo, strict=True):
        j = int(np.argmax(row))
        if row[j] >= threshold:
            h = contexts[j]
            sent = next(i for i, se in enumerate(all_sents) if se[0] == s)
            out.append(Citation(j + 1, True, e, e, sent, h.doc_id, h.chunk_id, h.start, h.end, posthoc=True))
    return out


class RAG:
    """A retrieval-augmented pipeline over one store directory.

    embedder: an `Embedder` (default: Embedder("minilm")); llm: an `LLM` (default LLM("smollm2"),
    loaded on the first `answer`). chunk_tokens / overlap_tokens: chunk size and overlap in
    embedder tokens (chunk_tokens must fit the embedder's max_seq_length minus 2). Token counts
    come from the embedder's tokenizer (`tokenizer.backend`), or its `count_tokens(text)` if it has none.

    Plain-text files (loaders.STREAM_EXTS) larger than `stream_threshold_bytes` are ingested as a
    stream (`ingest_stream`): read, chunked, embedded and written `segment_chars` characters at a
    time, so memory does not grow with the file; chunks do not cross segment boundaries (each
    segment is chunked on its own, spans are still offsets in the whole document). The attribute
    `read_bytes` is the size of each file read while streaming.
    """

    def __init__(self, store: str | os.PathLike[str] | RAGStore, embedder: Any = None, llm: Any = None, *,
                 chunk_tokens: int = 200, overlap_tokens: int = 40,
                 stream_threshold_bytes: int = STREAM_THRESHOLD_BYTES,
                 segment_chars: int = DEFAULT_SEGMENT_CHARS) -> None:
        if embedder is None:
            from ..embed import Embedder

            embedder = Embedder("minilm")
        dim = getattr(embedder, "dim", None)
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) \
                or not callable(getattr(embedder, "encode", None)):
            raise TypeError(f"embedder: expected an Embedder (an int `dim` and `encode(texts)`), "
                            f"got {type(embedder).__name__}")
        self.embedder = embedder
        if isinstance(store, RAGStore):
            self.store = store
        else:
            name = os.path.basename(getattr(embedder, "path", "")) or type(embedder).__name__
            self.store = RAGStore(store, embedder.dim, embedder_name=name)
        if self.store.dim != embedder.dim:
            raise ValueError(f"embedder: dim {embedder.dim} does not match the store's dim {self.store.dim}")
        limit = getattr(embedder, "max_seq_length", 512) - 2
        if not isinstance(chunk_tokens, int) or not 8 <= chunk_tokens <= limit:
            raise ValueError(f"chunk_tokens: expected an int in [8, {limit}], got {chunk_tokens!r}")
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        if isinstance(stream_threshold_bytes, bool) or not isinstance(stream_threshold_bytes, int) \
                or stream_threshold_bytes < 0:
            raise ValueError(f"stream_threshold_bytes: expected an int >= 0, got {stream_threshold_bytes!r}")
        check_segment_chars(segment_chars)
        self.stream_threshold_bytes = stream_threshold_bytes
        self.segment_chars = segment_chars
        self.read_bytes = min(DEFAULT_READ_BYTES, segment_chars)
        self._llm = llm

    @property
    def llm(self) -> Any:
        if self._llm is None:
            from ..engine.llm import LLM

            self._llm = LLM("smollm2")
        return self._llm

    # ------------------------------------------------------------------ ingest
    def _count(self, texts: Any) -> list[int]:
        backend = getattr(getattr(self.embedder, "tokenizer", None), "backend", None)
        if backend is None:  # an embedder without a tokenizers backend: its own count_tokens(text)
            return [self.embedder.count_tokens(t) for t in texts]
        enc = backend.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in enc]

    def ingest_text(self, text: str, doc_id: str, metadata: dict[str, Any] | None = None,
                    source: str | None = None) -> dict[str, Any]:
        """Add or replace one document. Unchanged text+metadata is skipped ("status": "unchanged")."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        if not isinstance(doc_id, str) or not doc_id:
            raise ValueError(f"doc_id: expected a non-empty str, got {doc_id!r}")
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata: expected a dict, got {type(metadata).__name__}")
        if not text.strip():
            raise DocumentError(f"{source or doc_id}: empty document (no text to index)")
        old = self.store.document_hash(doc_id)
        old_meta = self.store.document_metadata(doc_id)
        if old == content_hash(text) and old_meta == (metadata or {}):
            return {"doc_id": doc_id, "status": "unchanged"}
        chunks = chunk_text(text, self._count, self.chunk_tokens, self.overlap_tokens)
        emb = self.embedder.encode([c.text for c in chunks], show_progress_bar=False)
        stats = self.store.put_document(doc_id, text, [(c.text, c.start, c.end) for c in chunks], emb,
                                        metadata, source)
        return {"doc_id": doc_id, "status": "replaced" if old else "added", **stats}

    def ingest(self, paths: Iterable[str | os.PathLike[str]], metadata: dict[str, Any] | None = None,
               show_progress_bar: bool | None = None) -> list[dict[str, Any]]:
        """Ingest files (directories are walked for supported extensions). The document id is the
        absolute path; metadata gets "source" and "ext". Each document is its own transaction: an
        error on one file raises DocumentError naming it after the previous files were committed."""
        if isinstance(paths, (str, bytes, os.PathLike)):
            raise TypeError(f"paths: expected a list of paths, got one {type(paths).__name__} (pass [path])")
        files: list[str] = []
        for p in paths:
            p = check_path(p, "paths")
            if os.path.isdir(p):
                found = [os.path.join(root, n) for root, _, names in sorted(os.walk(p)) for n in sorted(names)
                         if n.lower().endswith(SUPPORTED_EXTS)]
                if not found:  # as LlamaIndex's directory reader: a wrong directory is not "0 documents"
                    raise DocumentError(f"{p}: no {', '.join(SUPPORTED_EXTS)} files in this directory")
                files += found
            elif os.path.exists(p):
                files.append(p)
            else:
                raise DocumentError(f"{p}: no such file or directory")
        show = show_progress_bar if show_progress_bar is not None else len(files) > 20
        results = []
        for i, f in enumerate(files):
            if self._should_stream(f):
                results.append(self.ingest_stream(f, metadata, show_progress_bar=show_progress_bar is not False))
            else:
                text = load_file(f)
                meta = {"source": os.path.basename(f), "ext": os.path.splitext(f)[1].lower(), **(metadata or {})}
                results.append(self.ingest_text(text, os.path.abspath(f), meta, source=f))
            if show:
                sys.stderr.write(f"\ringest: {i + 1}/{len(files)} files")
        if show:
            sys.stderr.write("\n")
        return results

    def _should_stream(self, path: str) -> bool:
        if not path.lower().endswith(STREAM_EXTS):
            return False
        try:
            return os.path.getsize(path) > self.stream_threshold_bytes
        except OSError as e:
            raise DocumentError(f"{path}: cannot read: {e.strerror}") from None

    def ingest_stream(self, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None, *,
                      doc_id: str | None = None, show_progress_bar: bool = False) -> dict[str, Any]:
        """Add or replace one plain-text file of any size with bounded memory (what `ingest` does for
        files over `stream_threshold_bytes`). A first pass reads the file to validate it (UTF-8,
        no NUL bytes, not empty) and hash it: an unchanged document (same hash and metadata) is
        skipped before anything is embedded. The second pass reads, chunks and embeds one segment
        at a time and writes it inside one store transaction for the whole document: an error
        anywhere (a bad byte, the embedder, the file changing between the passes) leaves the
        store as it was. doc_id defaults to the absolute path; metadata gets "source" and "ext"."""
        path = check_path(path, "path")
        ext = os.path.splitext(path)[1].lower()
        if ext not in STREAM_EXTS:
            raise DocumentError(f"{path}: {ext or '(no extension)'!r} files cannot be streamed; "
                                f"streamable: {STREAM_EXTS}")
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata: expected a dict, got {type(metadata).__name__}")
        doc_id = doc_id if doc_id is not None else os.path.abspath(path)
        if not isinstance(doc_id, str) or not doc_id:
            raise ValueError(f"doc_id: expected a non-empty str, got {doc_id!r}")
        meta = {"source": os.path.basename(path), "ext": ext, **(metadata or {})}
        scan = Utf8FileReader(path, self.read_bytes).scan()
        if not scan.has_text:
            raise DocumentError(f"{path}: empty document (no text to index)")
        old = self.store.document_hash(doc_id)
        if old == scan.sha256 and self.store.document_metadata(doc_id) == meta:
            return {"doc_id": doc_id, "status": "unchanged"}
        reader = Utf8FileReader(path, self.read_bytes)
        total_mb = scan.n_bytes / 2**20

        def parts() -> Iterable[tuple[str, list[tuple[str, int, int]], np.ndarray]]:
            for off, seg in iter_text_segments(reader, self.segment_chars):
                if reader.n_bytes > scan.n_bytes or reader.n_chars > scan.n_chars:
                    break  # the file grew since the first pass: reported below
                chunks = chunk_text(seg, self._count, self.chunk_tokens, self.overlap_tokens)
                if chunks:
                    emb = np.asarray(self.embedder.encode([c.text for c in chunks], show_progress_bar=False))
                else:
                    emb = np.zeros((0, self.store.dim), np.float32)
                yield seg, [(c.text, off + c.start, off + c.end) for c in chunks], emb
                if show_progress_bar:
                    sys.stderr.write(f"\ringest: {os.path.basename(path)} {reader.n_bytes / 2**20:.1f}/"
                                     f"{total_mb:.1f} MB")
            if reader.sha256 != scan.sha256:
                raise DocumentError(f"{path}: the file changed while it was being ingested; nothing was stored")
            if show_progress_bar:
                sys.stderr.write("\n")

        stats = self.store.put_document_stream(doc_id, parts(), doc_hash=scan.sha256, n_chars=scan.n_chars,
                                               metadata=meta, source=path)
        return {"doc_id": doc_id, "status": "replaced" if old else "added", "streamed": True, **stats}

    def delete(self, doc_id: str) -> bool:
        return self.store.delete_document(doc_id)

    # ------------------------------------------------------------------ retrieve
    def retrieve(self, query: str, k: int = 4, *, filter: Any = None, use_mmr: bool = False,
                 mmr_lambda: float = 0.5, hybrid: bool = False, fetch_k: int | None = None) -> list[Hit]:
        """Top-k chunks by cosine (scores are cosines). filter: metadata dict or callable, applied
        inside the vector search as an id mask. use_mmr: re-rank fetch_k candidates for diversity.
        hybrid: fuse dense and BM25 rankings with reciprocal rank fusion (scores stay cosines)."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query: expected a non-empty str")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k: expected a positive int, got {k!r}")
        fetch = fetch_k or (4 * k if (use_mmr or hybrid) else k)
        allowed = self.store.allowed_chunks(filter)
        if allowed is not None and allowed.size == 0:
            return []
        q = self.embedder.encode([query])[0]
        scores, ids = self.store.index.search(q[None], fetch, filter=allowed)
        keep = ids[0] >= 0
        dense_ids, dense_scores = ids[0][keep].tolist(), scores[0][keep].tolist()
        cos = dict(zip(dense_ids, dense_scores, strict=True))
        order = dense_ids
        if hybrid:
            all_ids, bm25 = self._bm25()
            bm = bm25.scores(query)
            if allowed is not None:
                bm = np.where(np.isin(all_ids, allowed), bm, 0.0)
            top = np.argsort(-bm, kind="stable")[:fetch]
            lexical = [int(all_ids[i]) for i in top if bm[i] > 0]
            order = [c for c, _ in reciprocal_rank_fusion([dense_ids, lexical])]
            missing = [c for c in order if c not in cos]
            if missing:
                vecs = self.store.embeddings(missing)
                cos.update(zip(missing, (vecs @ q).tolist(), strict=True))
        if use_mmr and order:
            cand = order[:fetch]
            picked = mmr(q, self.store.embeddings(cand), k, mmr_lambda)
            order = [cand[i] for i in picked]
        order = order[:k]
        return self.store.hits(order, [cos[c] for c in order])

    def _bm25(self) -> tuple[np.ndarray, BM25]:
        """BM25 over every stored chunk, rebuilt when the store's generation changes."""
        gen = self.store.generation()
        cache = self.store._bm25_cache
        if cache is None or cache[0] != gen:
            ids, texts = self.store.all_chunk_texts()
            cache = self.store._bm25_cache = (gen, (ids, BM25(texts)))
        return cache[1]

    # ------------------------------------------------------------------ answer
    def answer(self, question: str, k: int = 4, *, filter: Any = None, use_mmr: bool = False,
               hybrid: bool = False, min_score: float = 0.3, sampling_params: Any = None,
               compute_metrics: bool = True, attribute: bool = False, cite: str = "auto") -> Answer:
        """Retrieve, then generate with numbered sources. If no chunk reaches `min_score` cosine the
        pipeline abstains with "Not in the documents." and calls no LLM. attribute=True adds post-hoc
        citations (posthoc=True) to sentences the model left uncited; metrics ignore those.

        cite: "constrained" decodes under `cited_answer_regex`, so every sentence ends with a
        marker of a real source (the model still chooses which; citation precision and
        groundedness measure whether it chose well); "free" lets the model write anything;
        "auto" (default) is "constrained" when the model supports structured output and the
        sampling params carry no grammar of their own."""
        if cite not in ("auto", "constrained", "free"):
            raise ValueError(f"cite: expected 'auto', 'constrained' or 'free', got {cite!r}")
        # NaN compared false against every score: it never abstained, whatever was retrieved
        if isinstance(min_score, bool) or not isinstance(min_score, numbers.Real) or not -1 <= min_score <= 1:
            raise ValueError(f"min_score: expected a cosine in [-1, 1], got {min_score!r}")
        t0 = time.perf_counter()
        contexts = self.retrieve(question, k, filter=filter, use_mmr=use_mmr, hybrid=hybrid)
        t1 = time.perf_counter()
        timings = {"retrieve_s": t1 - t0}
        if not contexts or max(h.score for h in contexts) < min_score:
            return Answer(ABSTAIN_TEXT, [], contexts, [h.score for h in contexts],
                          {"abstained": True}, timings, abstained=True)
        from ..engine.sampling_params import SamplingParams

        supports = getattr(getattr(self.llm, "engine", None), "guides", None) is not None
        if cite == "constrained" and not supports:
            raise ValueError("cite: 'constrained' needs a model with structured-output support (an infercore LLM)")
        constrain = cite == "constrained" or (cite == "auto" and supports)
        # a constrained answer is <= 2 sentences of <= 150 characters: 192 tokens close nearly all of them
        sp = sampling_params or SamplingParams(temperature=0.0, max_tokens=192 if constrain else 96)
        if constrain and sp.json_schema is None and sp.regex is None:
            sp = dataclasses.replace(sp, regex=cited_answer_regex(len(contexts)))
        out = self.llm.chat(build_messages(question, contexts), sp)[0]
        t2 = time.perf_counter()
        text = trim_repetition(out.outputs[0].text.strip())
        timings["generate_s"] = t2 - t1
        ttft = out.metrics.time_to_first_token if out.metrics is not None else None
        if ttft is not None:
            timings["ttft_s"] = float(ttft)
        citations = parse_citations(text, contexts)
        ans = Answer(text, citations, contexts, [h.score for h in contexts], {}, timings,
                     abstained=text.startswith(ABSTAIN_TEXT), constrained=sp.regex is not None)
        if compute_metrics:
            from ..evals.rag import answer_metrics

            ans.metrics = answer_metrics(ans, self.embedder)
            timings["metrics_s"] = time.perf_counter() - t2
        if attribute and not ans.abstained:
            from ..evals.rag import GROUNDED_THRESHOLD

            extra = attribute_sentences(text, contexts, citations, self.embedder, GROUNDED_THRESHOLD)
            ans.citations = citations + extra
            ans.metrics["posthoc_citations"] = len(extra)
        timings["total_s"] = time.perf_counter() - t0
        return ans
