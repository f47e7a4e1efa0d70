"""`infercore trace show FILE`: print the spans of a JSONL trace file as a tree with timings."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_show(args: argparse.Namespace) -> int:
    from infercore.chains.tracing import format_tree, load_spans

    spans = load_spans(args.file)
    text = format_tree(spans, trace_id=args.trace)
    if not text:
        raise ValueError(f"file: no spans{' for trace ' + args.trace if args.trace else ''} in {args.file}")
    print(text)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("trace", help="inspect chain traces written by the JSONL exporter")
    sub = p.add_subparsers(dest="trace_command", required=True)
    ps = sub.add_parser("show", help="print a trace file as a tree with timings")
    ps.add_argument("file", help="JSONL file of spans")
    ps.add_argument("--trace", help="only the trace whose id starts with this")
    ps.set_defaults(func=cmd_show)
