"""Synthetic-data numbers: MinHash dedup recall/precision on planted near-duplicates, and
generate + filter throughput in template and LLM modes.

    python -m infercore.benchmarks.bench_synth                # dedup + template mode
    python -m infercore.benchmarks.bench_synth --llm smollm2  # also LLM mode (small n)

Planted set: 800 unrelated texts of 40-60 random words plus one near-duplicate (1-2 word edits)
of each of 200 distinct texts, placed after its source; a duplicate is "found" when it is flagged.
Not a registered `infercore bench` suite: it reports quality and examples/s, not kernel medians.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any


def planted_near_duplicates(seed: int = 0, n_base: int = 800, n_dup: int = 200) -> tuple[list[str], set[int]]:
    """The texts and the indices of the planted near-duplicates."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(3000)]
    bases = [[rng.choice(vocab) for _ in range(rng.randint(40, 60))] for _ in range(n_base)]
    texts = list(bases)
    is_dup = [False] * n_base
    for src in rng.sample(range(n_base), n_dup):
        w = list(bases[src])
        for _ in range(rng.randint(1, 2)):
            op, i = rng.choice(("sub", "del", "ins")), rng.randrange(len(w))
            if op == "sub":
                w[i] = rng.choice(vocab)
            elif op == "del":
                del w[i]
            else:
                w.insert(i, rng.choice(vocab))
        where = next(k for k, t in enumerate(texts) if t is bases[src])  # its position after earlier inserts
        at = rng.randint(where + 1, len(texts))
        texts.insert(at, w)
        is_dup.insert(at, True)
    return [" ".join(w) for w in texts], {i for i, d in enumerate(is_dup) if d}


def dedup_quality(seeds: range, threshold: float, backend: str, verify: str = "exact") -> dict[str, Any]:
    from infercore.synth import near_duplicates

    tp = fp = fn = 0
    t = 0.0
    for s in seeds:
        texts, planted = planted_near_duplicates(s)
        t0 = time.perf_counter()
        dup = near_duplicates(texts, threshold, backend=backend, verify=verify)
        t += time.perf_counter() - t0
        flagged = {i for i, d in enumerate(dup) if d is not None}
        tp += len(flagged & planted)
        fp += len(flagged - planted)
        fn += len(planted - flagged)
    return {"backend": backend, "verify": verify, "threshold": threshold, "sets": len(seeds),
            "recall": tp / (tp + fn), "precision": tp / max(tp + fp, 1), "texts_per_s": 1000 * len(seeds) / t}


def throughput(spec: Any, n: int, llm: Any = None) -> dict[str, Any]:
    from infercore.synth import CharsetFilter, ExactDedup, GuardFilter, LengthFilter, NearDedup, generate, run_filters

    t0 = time.perf_counter()
    rows = generate(spec, n, llm=llm)
    t1 = time.perf_counter()
    kept, _ = run_filters(rows, [LengthFilter(), CharsetFilter(), ExactDedup(), NearDedup(0.8), GuardFilter()])
    t2 = time.perf_counter()
    return {"n": n, "kept": len(kept), "generate_s": t1 - t0, "filter_s": t2 - t1,
            "generate_per_s": n / (t1 - t0), "filter_per_s": n / (t2 - t1), "end_to_end_per_s": n / (t2 - t0)}


LLM_SPEC = """\
name: support_messages
seed: 7
slots:
  topic: {type: categorical, values: [a late delivery, a double charge, a password reset, a broken zipper]}
  style: {type: categorical, values: [polite, frustrated, brief]}
templates: ["Write one short {{ style }} message from a customer about {{ topic }}. Reply with the message only."]
fields: {topic: "{{ topic }}", style: "{{ style }}"}
llm: {max_tokens: 32, temperature: 0.8, top_p: 0.95, first_line: true, batch_size: 16}
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m infercore.benchmarks.bench_synth", description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="planted sets per backend (default 5)")
    ap.add_argument("--n", type=int, default=1000, help="examples in template mode (default 1000)")
    ap.add_argument("--llm", help="also run LLM mode with this model (e.g. smollm2)")
    ap.add_argument("--llm-n", type=int, default=32, help="examples in LLM mode (default 32)")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args(argv)
    from infercore.synth import SPECS_DIR, Spec

    out: dict[str, Any] = {"dedup": []}
    for backend, verify in (("numpy", "exact"), ("numpy", "minhash"), ("datasketch", "exact")):
        try:
            q = dedup_quality(range(args.seeds), 0.8, backend, verify)
        except ImportError as e:
            print(f"dedup {backend}: skipped ({e})")
            continue
        out["dedup"].append(q)
        print(f"dedup {backend:<10} verify {verify:<7} threshold 0.8 over {q['sets']} planted sets: recall "
              f"{q['recall']:.4f} precision {q['precision']:.4f} ({q['texts_per_s']:.0f} texts/s)")
    out["template"] = throughput(Spec.from_yaml(SPECS_DIR / "guardrail_eval.yaml"), args.n)
    t = out["template"]
    print(f"template mode (guardrail_eval, n={t['n']}): generate {t['generate_per_s']:.0f}/s, filter "
          f"{t['filter_per_s']:.0f}/s, end to end {t['end_to_end_per_s']:.0f} examples/s, kept {t['kept']}")
    if args.llm:
        from infercore import LLM

        t0 = time.perf_counter()
        llm = LLM(args.llm)
        load = time.perf_counter() - t0
        out["llm"] = throughput(Spec.from_yaml(LLM_SPEC, is_text=True), args.llm_n, llm)
        out["llm"]["model"], out["llm"]["load_s"] = args.llm, load
        t = out["llm"]
        print(f"LLM mode ({args.llm}, n={t['n']}, max_tokens 32): generate {t['generate_per_s']:.2f}/s, filter "
              f"{t['filter_per_s']:.0f}/s, end to end {t['end_to_end_per_s']:.2f} examples/s, kept {t['kept']} "
              f"(model load {load:.1f} s not counted)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
