"""`infercore info` and `infercore bench`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._argtypes import nonnegative_float, positive_int


def _info_lines(info: dict[str, Any]) -> list[str]:
    cpu = info["cpu"]
    names = ("avx2", "avx512", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx", "amx_bf16")
    flags = [k for k in names if cpu.get(k)]
    tiles = [name for key, name in (("amx_int8_gemm", "int8 GEMM"), ("amx_bf16x3_gemm", 'precision="high" float GEMMs'))
             if cpu.get(key)]
    cuda = info["cuda"]
    rows = [
        ("infercore", info["version"]),
        ("python", info["python"]),
        ("platform", info["platform"]),
        ("cpu", f"{cpu['brand']} ({cpu['vendor']})"),
        ("cpu features", " ".join(flags) or "none beyond x86-64"),
        ("isa in use", f"{cpu['isa']} (available: {', '.join(cpu['available_isas'])})"),
        ("amx tiles", ", ".join(tiles) if tiles else "not used"),
        ("threads", str(info["threads"])),
        ("cuda compiled", str(cuda["compiled"])),
        ("cuda available", str(cuda["available"]) + (f" ({cuda['error']})" if cuda.get("error") else "")),
    ]
    for i, d in enumerate(cuda["devices"]):
        rows.append((f"cuda:{i}", f"{d['name']} cc {d['cc']} {d['memory'] / 2**30:.1f} GiB"))
    tr = info["triton"]
    triton = ("installed" if tr["installed"] else "not installed") + (" (interpreter)" if tr["interpret"] else "")
    rows.append(("triton", triton))
    w = max(len(k) for k, _ in rows)
    return [f"{k.ljust(w)}  {v}" for k, v in rows]


def cmd_info(args: argparse.Namespace) -> int:
    import infercore

    info = infercore.system_info()
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        print("\n".join(_info_lines(info)))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import infercore
    from infercore.bench import SUITES, load_suite, measure_bandwidth, report, run_cases

    if args.threads is not None:
        infercore.set_num_threads(args.threads)
    suites = args.suites or list(SUITES)
    for s in suites:
        if s not in SUITES:
            print(f"infercore bench: unknown suite {s!r}; choose from {', '.join(SUITES)}", file=sys.stderr)
            return 2
    baseline = None
    if args.compare:
        try:
            baseline = report.load_json(args.compare)
        except ValueError as e:
            print(f"infercore bench: {e}", file=sys.stderr)
            return 2
    info = infercore.system_info()
    bw = measure_bandwidth(args.quick)
    cases = [c for s in suites for c in load_suite(s, args.quick)]
    if args.filter:
        cases = [c for c in cases if args.filter in c.key]
        if not cases:
            print(f"infercore bench: no case matches --filter {args.filter!r}", file=sys.stderr)
            return 2

    def progress(case: Any) -> None:
        if args.verbose:
            print(f"  running {case.key}", file=sys.stderr, flush=True)

    results = run_cases(cases, bw, args.quick, progress)
    # a second probe after the cases shows whether a neighbour changed the machine mid-run
    bw_after = measure_bandwidth(True)
    print(report.table(results, bw, info["cpu"].get("brand", "?")))
    print(f"streaming read after the run: {bw_after:.1f} GB/s")
    if args.json:
        doc = report.to_json(results, bw, info)
        doc["bandwidth_after_gbps"] = bw_after
        report.save_json(doc, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        report.plot(results, args.plot)
        print(f"wrote {args.plot}")
    if baseline is not None:
        lines, regressions = report.compare(results, baseline, args.tolerance)
        print(f"\ncompared with {args.compare} (tolerance {args.tolerance:.0%}):")
        print("\n".join(lines) if lines else "  no case in common with the baseline")
        if regressions:
            print(f"\n{len(regressions)} regression(s) beyond {args.tolerance:.0%}:", file=sys.stderr)
            print("\n".join(regressions), file=sys.stderr)
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="infercore", description="infercore: inference core for LLM operations")
    sub = p.add_subparsers(dest="command", required=True)
    pi = sub.add_parser("info", help="print system information (CPU ISA, threads, CUDA, Triton)")
    pi.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pi.set_defaults(func=cmd_info)
    pb = sub.add_parser("bench", help="run benchmark suites side by side with their peers")
    pb.add_argument("suites", nargs="*", help="suites to run (default: all)")
    size = pb.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes for CI (default)")
    size.add_argument("--full", action="store_true", help="full sizes for reported numbers")
    pb.add_argument("--json", metavar="FILE", help="write results as JSON")
    pb.add_argument("--compare", metavar="BASELINE", help="exit 1 if a median regresses vs this JSON")
    pb.add_argument("--tolerance", type=nonnegative_float, default=0.10,
                    help="allowed slowdown fraction (default 0.10)")
    pb.add_argument("--plot", metavar="FILE.png", help="write a bar chart")
    pb.add_argument("--filter", metavar="TEXT", help="only cases whose key (suite/op/shape/dtype/impl) contains TEXT")
    pb.add_argument("--threads", type=positive_int, help="threads for infercore and the peers")
    pb.add_argument("-v", "--verbose", action="store_true", help="print each case as it starts")
    pb.set_defaults(func=cmd_bench)
    from . import eval_cmd, gate_cmd, generate_cmd, models_cmd, prompts_cmd, rag_cmd, serve_cmd, synth_cmd, trace_cmd

    eval_cmd.register(sub)
    gate_cmd.register(sub)
    generate_cmd.register(sub)
    models_cmd.register(sub)
    prompts_cmd.register(sub)
    rag_cmd.register(sub)
    serve_cmd.register(sub)
    synth_cmd.register(sub)
    trace_cmd.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "full", False) is False and hasattr(args, "quick"):
        args.quick = True
    try:
        return int(args.func(args))
    except (ValueError, TypeError) as e:
        print(f"infercore: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
