"""`infercore synth generate|filter|report`: synthetic datasets from a spec, filtered and compared.

    infercore synth generate spec.yaml --n 1000 --out data.jsonl [--seed S] [--split-by FIELD]
    infercore synth filter data.jsonl --out clean.jsonl [--dedup minhash --threshold 0.8] [--guard]
    infercore synth report a.jsonl b.jsonl [--out report.md] [--json report.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ._argtypes import positive_int


def _write(rows: list[dict[str, Any]], out: str, split_by: str | None) -> str:
    from infercore.synth import write_jsonl, write_split

    if split_by:
        counts = write_split(rows, out, split_by)
        return f"{out}/ (" + ", ".join(f"{k}.jsonl {v}" for k, v in counts.items()) + ")"
    write_jsonl(rows, out)
    return out


def cmd_generate(args: argparse.Namespace) -> int:
    from infercore.synth import Spec, generate

    spec = Spec.from_yaml(args.spec)
    llm = None
    if spec.llm is not None and args.model:
        from infercore import LLM

        llm = LLM(args.model)
    t0 = time.perf_counter()
    rows = generate(spec, args.n, seed=args.seed, llm=llm, progress=not args.quiet)
    dt = time.perf_counter() - t0
    where = _write(rows, args.out, args.split_by)
    seed = spec.seed if args.seed is None else args.seed
    print(f"wrote {len(rows)} examples of {spec.name} (seed {seed}) to {where} in {dt:.2f} s "
          f"({len(rows) / max(dt, 1e-9):.1f} examples/s)")
    return 0


def _read_refs(path: str, field: str) -> list[str]:
    from infercore.synth import read_jsonl

    if path.endswith(".jsonl"):
        return [r[field] for r in read_jsonl(path, field)]
    try:
        with open(path, encoding="utf-8") as f:
            return [ln.strip() for ln in f if ln.strip()]
    except OSError as e:
        raise ValueError(f"--reference: cannot read {path!r}: {e.strerror}") from None


def build_stages(args: argparse.Namespace) -> list[Any]:
    from infercore import synth

    stages: list[Any] = [synth.LengthFilter(args.min_chars, args.max_chars, args.min_words, args.max_words),
                         synth.CharsetFilter(max_symbol_ratio=args.max_symbol_ratio)]
    if args.lang or args.lang_field:
        stages.append(synth.LanguageFilter(args.lang, args.lang_field))
    if args.dedup in ("exact", "minhash"):
        stages.append(synth.ExactDedup())
    if args.dedup == "minhash":
        stages.append(synth.NearDedup(args.threshold, args.num_perm, args.shingle, backend=args.backend,
                                      progress=not args.quiet))
    if args.guard is not None:
        from infercore.guardrails import Guard

        guard = None if args.guard == "default" else Guard.from_config(args.guard)
        stages.append(synth.GuardFilter(guard, args.guard_direction, args.redact))
    if args.judge != "none":
        if args.min_score is None:
            raise ValueError("--judge: also give --min-score")
        if args.judge == "embedding":
            if not args.reference:
                raise ValueError("--judge embedding: give --reference FILE (.jsonl or one text per line)")
            scorer: Any = synth.EmbeddingSimilarity(_read_refs(args.reference, args.field), args.embedder)
        else:
            from infercore import LLM

            scorer = synth.LLMJudge(LLM(args.judge_model), task=args.judge_task, mode=args.judge_mode)
        stages.append(synth.ScoreFilter(scorer, args.min_score, name=f"{args.judge}_judge"))
    return stages


def cmd_filter(args: argparse.Namespace) -> int:
    from infercore.synth import read_jsonl, run_filters, write_jsonl

    rows = read_jsonl(args.input, args.field)
    stages = build_stages(args)
    t0 = time.perf_counter()
    kept, rep = run_filters(rows, stages, field=args.field, progress=False)
    dt = time.perf_counter() - t0
    where = _write(kept, args.out, args.split_by)
    print(rep.table())
    print(f"wrote {len(kept)} rows to {where} in {dt:.2f} s ({len(rows) / max(dt, 1e-9):.1f} rows/s)")
    if args.rejects:
        write_jsonl([{**r, "_reason": why} for r, why in rep.dropped], args.rejects)
    if args.report_json:
        with open(args.report_json, "w", encoding="utf-8") as f:
            json.dump(rep.to_dict(), f, indent=1, ensure_ascii=False)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from infercore.synth import compare, read_jsonl, to_markdown

    datasets: dict[str, list[dict[str, Any]]] = {}
    for p in args.inputs:
        name = Path(p).stem
        while name in datasets:
            name = f"{Path(p).parent.name}/{name}" if "/" not in name else f"{name}'"
        datasets[name] = read_jsonl(p, args.field)
    rep = compare(datasets, embedder=args.embedder, field=args.field, max_items=args.max_items,
                  cluster_threshold=args.cluster_threshold)
    md = to_markdown(rep)
    if args.out:
        Path(args.out).write_text(md, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _int_arg(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {s!r}") from None
    return v


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("synth", help="generate, filter and compare synthetic datasets")
    sub = p.add_subparsers(dest="synth_command", required=True)

    g = sub.add_parser("generate", help="render a YAML spec into JSONL (seeded, reproducible)")
    g.add_argument("spec", help="YAML spec (see infercore.synth.spec)")
    g.add_argument("--n", type=_int_arg, required=True, help="number of examples")
    g.add_argument("--out", required=True, help="output JSONL (a directory with --split-by)")
    g.add_argument("--seed", type=int, default=None, help="overrides the spec's seed")
    g.add_argument("--split-by", metavar="FIELD", help="write OUT/<value of FIELD>.jsonl per value")
    g.add_argument("--model", help="LLM for a spec with llm: (default: the spec's llm.model)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)

    f = sub.add_parser("filter", help="length/charset/language filters, dedup, guard screening, judge scores")
    f.add_argument("input", help="input JSONL")
    f.add_argument("--out", required=True, help="output JSONL (a directory with --split-by)")
    f.add_argument("--field", default="text", help="the text field (default text)")
    f.add_argument("--min-chars", type=int, default=1)
    f.add_argument("--max-chars", type=int, default=None)
    f.add_argument("--min-words", type=int, default=None)
    f.add_argument("--max-words", type=int, default=None)
    f.add_argument("--max-symbol-ratio", type=float, default=None,
                   help="drop texts whose non-space characters are more than this share symbols")
    f.add_argument("--lang", nargs="+", help="keep detected languages (en, ja, latin, other, unknown)")
    f.add_argument("--lang-field", help="keep rows whose detected language equals this field")
    f.add_argument("--dedup", choices=("none", "exact", "minhash"), default="minhash")
    f.add_argument("--threshold", type=float, default=0.8, help="near-duplicate Jaccard threshold (default 0.8)")
    f.add_argument("--num-perm", type=int, default=128)
    f.add_argument("--shingle", type=int, default=5, help="character shingle size (default 5)")
    f.add_argument("--backend", choices=("numpy", "datasketch"), default="numpy")
    f.add_argument("--guard", nargs="?", const="default", default=None,
                   help="screen with Guard.default(), or a guard config YAML")
    f.add_argument("--guard-direction", choices=("input", "output", "both"), default="output")
    f.add_argument("--redact", action="store_true", help="keep the guard's redacted text (PII)")
    f.add_argument("--judge", choices=("none", "embedding", "llm"), default="none")
    f.add_argument("--min-score", type=float, default=None, help="judge threshold (embedding: cosine; llm: 0..1)")
    f.add_argument("--reference", help="reference texts for --judge embedding (.jsonl or one per line)")
    f.add_argument("--embedder", default="auto", help="auto | minilm | hash | a model path")
    f.add_argument("--judge-model", default="smollm2")
    f.add_argument("--judge-mode", choices=("logits", "generate"), default="logits")
    f.add_argument("--judge-task", default="general", help="the task named in the judge prompt")
    f.add_argument("--split-by", metavar="FIELD", help="write OUT/<value of FIELD>.jsonl per value")
    f.add_argument("--rejects", help="also write dropped rows with a _reason field")
    f.add_argument("--report-json", help="write per-stage counts as JSON")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_filter)

    r = sub.add_parser("report", help="diversity report comparing datasets (Markdown + JSON)")
    r.add_argument("inputs", nargs="+", help="JSONL files")
    r.add_argument("--out", help="Markdown file (default: print)")
    r.add_argument("--json", help="also write the report as JSON")
    r.add_argument("--field", default="text")
    r.add_argument("--embedder", default="auto", help="auto | minilm | hash | a model path")
    r.add_argument("--max-items", type=positive_int, default=2000)
    r.add_argument("--cluster-threshold", type=float, default=0.8)
    r.set_defaults(func=cmd_report)


if __name__ == "__main__":  # pragma: no cover
    from .main import main

    sys.exit(main(["synth", *sys.argv[1:]]))
