"""`infercore rag ingest|ask|eval|demo`: the RAG pipeline from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any

DEMO_QUESTIONS = (
    "How many tokens does a KV cache block hold?",
    "What happens to the vector index if it is stale after a crash?",
    "How are int8 weights and activations quantized?",
)


def _rag(store: str, llm: Any = None, *, create: bool = False) -> Any:
    """The RAG over --store; only `ingest` creates a missing store."""
    from infercore.rag import RAG
    from infercore.rag.store import require_store

    if not create:
        require_store(store, "--store")
    return RAG(store, llm=llm)


def _filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        f = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--filter: not valid JSON: {e}") from None
    if not isinstance(f, dict):
        raise ValueError("--filter: expected a JSON object of metadata key -> value")
    return f


def print_answer(question: str, ans: Any, out: Any = sys.stdout) -> None:
    w = out.write
    w(f"Q: {question}\nA: {ans.text}\n")
    cited = {c.marker for c in ans.citations if c.valid and not c.posthoc}
    post = {c.marker for c in ans.citations if c.posthoc}
    if ans.contexts:
        w("sources:\n")
        for i, (h, s) in enumerate(zip(ans.contexts, ans.scores, strict=True), start=1):
            mark = "*" if i in cited else "+" if i in post else " "
            name = h.metadata.get("source") or h.doc_id
            w(f" {mark}[{i}] {name} chars {h.start}-{h.end} (cos {s:.3f}): {h.text[:90]!r}\n")
    if post:
        w("  (* cited by the model, + attributed post hoc by embedding similarity)\n")
        for c in ans.citations:
            if c.posthoc:
                w(f"  sentence {c.sentence + 1} -> [{c.marker}] (post hoc)\n")
    bad = [c.marker for c in ans.citations if not c.valid]
    if bad:
        w(f"invalid citations (no such source): {bad}\n")
    m = {k: v for k, v in ans.metrics.items() if k != "sentence_support"}
    if m:
        w("metrics: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items()) + "\n")
    w("timings: " + ", ".join(f"{k}={v * 1000:.0f}ms" for k, v in ans.timings.items()) + "\n\n")


def cmd_ingest(args: argparse.Namespace) -> int:
    rag = _rag(args.store, create=True)
    meta = _filter(args.metadata) if args.metadata else None
    results = rag.ingest(args.paths, metadata=meta, show_progress_bar=True if args.progress else None)
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"{len(results)} documents ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}); "
          f"store {args.store}: {len(rag.store)} documents, {rag.store.num_chunks()} chunks")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    rag = _rag(args.store)
    ans = rag.answer(args.question, k=args.k, filter=_filter(args.filter), use_mmr=args.mmr, hybrid=args.hybrid,
                     min_score=args.min_score, attribute=args.attribute)
    if args.json:
        print(json.dumps(answer_to_dict(ans), indent=1, ensure_ascii=False))
    else:
        print_answer(args.question, ans)
    return 0


def answer_to_dict(ans: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {"text": ans.text, "abstained": ans.abstained, "citations": [asdict(c) for c in ans.citations],
            "contexts": [asdict(h) for h in ans.contexts], "scores": ans.scores, "metrics": ans.metrics,
            "timings": ans.timings, "prompt_version": ans.prompt_version}


def cmd_eval(args: argparse.Namespace) -> int:
    from infercore.evals.rag import evaluate_questions

    rag = _rag(args.store)
    rows, agg = evaluate_questions(rag, args.questions, k=args.k, min_score=args.min_score)
    if args.json:
        print(json.dumps({"aggregate": agg, "rows": rows}, indent=1, ensure_ascii=False))
        return 0
    keys = ("citation_coverage", "groundedness", "hallucination_rate", "citation_precision", "context_precision")
    print(f"{'question':50s} " + " ".join(f"{k[:12]:>12s}" for k in keys))
    for r in rows:
        cells = " ".join(f"{r[k]:12.3f}" if k in r else f"{'-':>12s}" for k in keys)
        print(f"{r['question'][:50]:50s} {cells}{'  (abstained)' if r.get('abstained') else ''}")
    print(f"{'MEAN':50s} " + " ".join(f"{agg[k]:12.3f}" if k in agg else f"{'-':>12s}" for k in keys))
    print(f"answers {int(agg['answers'])}, abstained {int(agg['abstained'])}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from infercore.rag import RAG

    data = os.path.join(os.path.dirname(os.path.dirname(__file__)), "rag", "data")
    with tempfile.TemporaryDirectory(prefix="infercore-rag-demo-") as store:
        rag = RAG(store)
        results = rag.ingest([data])
        print(f"ingested {len(results)} bundled documents ({rag.store.num_chunks()} chunks) from {data}\n")
        for q in args.questions or DEMO_QUESTIONS:
            print_answer(q, rag.answer(q, k=args.k, attribute=True))
        rag.store.close()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("rag", help="retrieval-augmented answers with citations and metrics")
    rs = p.add_subparsers(dest="rag_command", required=True)
    pi = rs.add_parser("ingest", help="add .txt/.md/.html/.pdf files or directories to a store")
    pi.add_argument("paths", nargs="+")
    pi.add_argument("--store", required=True, help="store directory (created if missing)")
    pi.add_argument("--metadata", help="JSON object added to every document's metadata")
    pi.add_argument("--progress", action="store_true", help="always show a progress bar")
    pi.set_defaults(func=cmd_ingest)
    for name, fn, hlp in (("ask", cmd_ask, "answer one question from a store"),
                          ("eval", cmd_eval, "answer a JSONL question set and print aggregate metrics")):
        q = rs.add_parser(name, help=hlp)
        q.add_argument("question" if name == "ask" else "questions",
                       help="the question" if name == "ask" else
                       'JSONL: {"question": ..., "relevant_docs": [doc ids or file names] (optional)}')
        q.add_argument("--store", required=True)
        q.add_argument("-k", type=int, default=4, help="chunks to retrieve (default 4)")
        q.add_argument("--min-score", type=float, default=0.3, help="abstain below this cosine (default 0.3)")
        q.add_argument("--json", action="store_true")
        if name == "ask":
            q.add_argument("--filter", help='metadata filter as JSON, e.g. {"ext": ".md"}')
            q.add_argument("--mmr", action="store_true", help="diversify with maximal marginal relevance")
            q.add_argument("--hybrid", action="store_true", help="fuse BM25 and dense rankings (RRF)")
            q.add_argument("--attribute", action="store_true",
                           help="add post-hoc citations (by embedding similarity) to sentences the model left uncited")
        q.set_defaults(func=fn)
    pd = rs.add_parser("demo", help="ingest the bundled docs into a temp store and answer 3 questions")
    pd.add_argument("questions", nargs="*", help="questions (default: 3 about infercore)")
    pd.add_argument("-k", type=int, default=3)
    pd.set_defaults(func=cmd_demo)
