"""`infercore eval run|report`: staged evaluation of a model, its prompts and rails.

    infercore eval run suite.yaml --out results.json [--model PATH] [--stages regression,safety]
    infercore eval report results.json [--baseline baseline.json] --out report.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any


def _suite_path(p: str) -> str:
    """A path, or the name of a shipped suite (smoke, tiny)."""
    if os.path.exists(p):
        return p
    from infercore.evals.suite import SUITES_DIR

    shipped = os.path.join(SUITES_DIR, f"{p}.yaml")
    if os.sep not in p and os.path.exists(shipped):
        return shipped
    raise ValueError(f"suite: {p!r} is neither a file nor a shipped suite ({', '.join(_shipped())})")


def _shipped() -> list[str]:
    from infercore.evals.suite import SUITES_DIR

    return sorted(f[:-5] for f in os.listdir(SUITES_DIR) if f.endswith(".yaml"))


def cmd_run(args: argparse.Namespace) -> int:
    from infercore.evals.runner import run_suite
    from infercore.evals.suite import EvalSuite

    suite = EvalSuite.load(_suite_path(args.suite))
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    res = run_suite(suite, stages=stages, model=args.model, progress=progress)
    res.save(args.out)
    total = time.perf_counter() - t0
    print(f"suite {res.suite_name} v{res.suite_version} on {res.versions['model']['name']}: "
          f"{total:.1f} s wall")
    for sname, st in res.stages.items():
        cost = st.details.get("cost", {})
        print(f"  {sname:<12} {st.wall_s:7.1f} s  " + ", ".join(f"{k}={v}" for k, v in cost.items()))
        for mname, m in st.metrics.items():
            check = st.details.get("checks", {}).get(mname)
            print(f"    {mname:<34} {m.value:10.4f}" + (f"  [{check}]" if check else ""))
    print(f"wrote {args.out}")
    failed = [f"{s}.{m}" for s, st in res.stages.items() for m, c in st.details.get("checks", {}).items()
              if c != "pass"]
    if failed and args.strict:
        print(f"thresholds not met: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from infercore.evals.report import write_report
    from infercore.evals.results import load

    res = load(args.results)
    base = load(args.baseline) if args.baseline else None
    out = args.out or os.path.splitext(args.results)[0] + "-report.md"
    written = write_report(res, out, base, html_out=not args.no_html, plots=not args.no_plots)
    for n in written["notes"]:
        print(n, file=sys.stderr)
    print(f"wrote {written['markdown']}" + (f", {written['html']}" if "html" in written else "")
          + "".join(f", {p}" for p in written["images"]))
    return 0


def _run(fn: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except FileNotFoundError as e:
            print(f"infercore eval: {e}", file=sys.stderr)
            return 2
    return wrapped


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="run an evaluation suite, or report on its results")
    esub = p.add_subparsers(dest="eval_command", required=True)
    r = esub.add_parser("run", help="run a suite's stages (regression, quality, safety, performance)")
    r.add_argument("suite", help="suite YAML, or a shipped suite name (smoke, tiny)")
    r.add_argument("--out", required=True, help="results JSON to write")
    r.add_argument("--model", help="evaluate this model (name or path) instead of the suite's")
    r.add_argument("--stages", help="comma-separated subset of stages to run")
    r.add_argument("--strict", action="store_true", help="exit 1 when a suite threshold is not met")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    r.set_defaults(func=_run(cmd_run))
    rp = esub.add_parser("report", help="Markdown + HTML report (with plots) of a results file")
    rp.add_argument("results")
    rp.add_argument("--baseline", help="results file to compare with")
    rp.add_argument("--out", help="Markdown file to write (default: <results>-report.md)")
    rp.add_argument("--no-html", action="store_true")
    rp.add_argument("--no-plots", action="store_true")
    rp.set_defaults(func=_run(cmd_report))
