"""Quality of the model-free rails on a labeled set (benchmarks/data/guardrails/*.jsonl).

    python -m infercore.guardrails.evaluate benchmarks/data/guardrails [--classifier [fast|accurate|all]]
        [--json out.json] [--misses]

For each rail: precision, recall, F1 over its own file (positives and rail-specific hard
negatives) plus benign.jsonl as negatives, and the false-positive rate on benign.jsonl alone.
Recall is also broken down by language and obfuscation variant (and by entity for PII).
A PII positive counts as detected only if an entity of the labeled type is found.
With classifiers (--classifier: fast = hashed n-grams, accurate = MiniLM + n-grams, the default when
the flag has no value; all = both) two more rows per classifier are scored on the injection file:
"injection+NAME" (patterns, then the classifier: either blocks) and "NAME_only".
With --topic (needs MiniLM): the topic rail of DIRECTORY/topic/config.yaml on its labeled.jsonl,
per language and split ("topic_LANG_SPLIT": positive = should be blocked, i.e. denied or off topic;
FPR = allowed inputs blocked), with the shipped thresholds.
The harmful-content classifier (hashed n-grams, no model) is always scored: "harmful+clf" (lexicon,
then the classifier: Guard.default(harmful_classifier="fast")) and "harmful_clf_only", on harmful.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .harmful import HarmfulRail
from .harmful_classifier import load_harmful_classifier
from .injection import CLASSIFIER_MODES, InjectionRail, load_classifier
from .pii import PIIRail

RAILS = ("injection", "pii", "harmful")


def load(directory: str | Path) -> dict[str, list[dict[str, Any]]]:
    d = Path(directory)
    if not d.is_dir():
        raise ValueError(f"directory: {str(d)!r} is not a directory")
    out: dict[str, list[dict[str, Any]]] = {}
    for name in (*RAILS, "benign"):
        p = d / f"{name}.jsonl"
        if not p.exists():
            raise ValueError(f"directory: missing {p.name} in {str(d)!r}")
        with open(p, encoding="utf-8") as f:
            out[name] = [json.loads(line) for line in f if line.strip()]
    return out


def _predictor(rail: str, classifier: Any = None) -> Any:
    if rail == "injection":
        r = InjectionRail()
        return lambda row: r.check(row["text"]).status == "blocked"
    if rail.startswith("injection+"):
        rc = InjectionRail(classifier=classifier)
        return lambda row: rc.check(row["text"]).status == "blocked"
    if rail.endswith("_only") and rail != "harmful_clf_only":
        n = InjectionRail().normalizer
        return lambda row: classifier.score(row["text"], n)[0] >= classifier.threshold
    if rail == "harmful":
        h = HarmfulRail()
        return lambda row: bool(h.check(row["text"]).violations)
    if rail == "harmful+clf":
        hc = HarmfulRail(classifier="fast")
        return lambda row: bool(hc.check(row["text"]).violations)
    if rail == "harmful_clf_only":
        c = load_harmful_classifier("fast")
        n2 = HarmfulRail().normalizer
        return lambda row: c.score(row["text"], n2)[0] >= c.threshold
    p = PIIRail()

    def pii(row: dict[str, Any]) -> bool:
        kinds = {e.type for e in p.find(row["text"])}
        return row.get("entity") in kinds if row.get("label") == 1 else bool(kinds)

    return pii


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def evaluate(directory: str | Path, misses: bool = False, classifier: Any = None,
             classifiers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """classifiers: name -> classifier (anything InjectionRail(classifier=) takes: "fast", "accurate",
    True, a path, a loaded classifier); adds "injection+NAME" and "NAME_only" rows scored on
    injection.jsonl. classifier: the same for one classifier named "clf" (rows "injection+clf", "clf_only")."""
    data = load(directory)
    clfs = dict(classifiers or {})
    if classifier is not None and classifier is not False:
        clfs["clf"] = classifier
    rails: list[tuple[str, Any]] = [(r, None) for r in RAILS] + [("harmful+clf", None), ("harmful_clf_only", None)]
    data["harmful+clf"] = data["harmful_clf_only"] = data["harmful"]
    for name, c in clfs.items():
        c = load_classifier(c)
        if c is None:
            continue
        data[f"injection+{name}"] = data[f"{name}_only"] = data["injection"]
        rails += [(f"injection+{name}", c), (f"{name}_only", c)]
    report: dict[str, Any] = {}
    for rail, clf in rails:
        pred = _predictor(rail, clf)
        tp = fp = fn = tn = 0
        benign_fp = 0
        by: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # key -> [hit, total] over positives
        missed: list[str] = []
        false_pos: list[str] = []
        for row in data[rail] + data["benign"]:
            y = pred(row)
            if row["label"] == 1:
                tp += y
                fn += not y
                for key in (f"lang={row['lang']}", f"variant={row['variant']}",
                            f"entity={row.get('entity')}" if rail == "pii" else f"category={row.get('category')}"):
                    by[key][0] += y
                    by[key][1] += 1
                if not y:
                    missed.append(row["text"])
            else:
                fp += y
                tn += not y
                if row["rail"] == "none":
                    benign_fp += y
                if y:
                    false_pos.append(row["text"])
        p, r, f = _prf(tp, fp, fn)
        n_benign = len(data["benign"])
        report[rail] = {
            "precision": p, "recall": r, "f1": f, "fpr_benign": benign_fp / n_benign if n_benign else 0.0,
            "fpr_all_negatives": fp / (fp + tn) if fp + tn else 0.0,
            "positives": tp + fn, "negatives": fp + tn,
            "recall_by": {k: v[0] / v[1] for k, v in sorted(by.items()) if not k.endswith("None")},
        }
        if misses:
            report[rail]["missed"] = missed
            report[rail]["false_positives"] = false_pos
    return report


def evaluate_topic(directory: str | Path, embedder: Any = None) -> dict[str, Any]:
    """Topic rail on DIRECTORY/topic: precision/recall/F1/FPR per language and split."""
    from .guard import Guard

    d = Path(directory) / "topic"
    if not (d / "config.yaml").is_file() or not (d / "labeled.jsonl").is_file():
        raise ValueError(f"directory: {str(d)!r} has no config.yaml and labeled.jsonl")
    cfg = _topic_config(d / "config.yaml", embedder)
    rail = Guard.from_config(cfg).input_rails[0]
    with open(d / "labeled.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    report: dict[str, Any] = {}
    for lang in sorted({r["lang"] for r in rows}):
        for split in ("calib", "test"):
            rs = [r for r in rows if r["lang"] == lang and r["split"] == split]
            if not rs:
                continue
            tp = fp = fn = tn = 0
            for r in rs:
                y, pred = r["label"] != "allowed", rail.check(r["text"]).status == "blocked"
                tp += y and pred
                fn += y and not pred
                fp += pred and not y
                tn += not pred and not y
            p, rec, f1 = _prf(tp, fp, fn)
            report[f"topic_{lang}_{split}"] = {
                "precision": p, "recall": rec, "f1": f1, "fpr_benign": fp / (fp + tn) if fp + tn else 0.0,
                "fpr_all_negatives": fp / (fp + tn) if fp + tn else 0.0, "positives": tp + fn, "negatives": fp + tn,
                "recall_by": {}}
    return report


def _topic_config(path: Path, embedder: Any) -> dict[str, Any]:
    import yaml

    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    if embedder is not None:
        for item in cfg.get("input_rails", []):
            item["embedder"] = embedder
    return cfg


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'rail':<18} {'pos':>5} {'neg':>5} {'precision':>9} {'recall':>7} {'f1':>6} {'FPR benign':>10} "
             f"{'FPR negs':>8}"]
    for rail, m in report.items():
        lines.append(f"{rail:<18} {m['positives']:>5} {m['negatives']:>5} {m['precision']:>9.3f} {m['recall']:>7.3f} "
                     f"{m['f1']:>6.3f} {m['fpr_benign']:>10.3f} {m['fpr_all_negatives']:>8.3f}")
    for rail, m in report.items():
        lines.append(f"\n{rail} recall by slice:")
        lines += [f"  {k:<28} {v:.3f}" for k, v in m["recall_by"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m infercore.guardrails.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("directory")
    ap.add_argument("--json", default=None, help="also write the report as JSON here")
    ap.add_argument("--misses", action="store_true", help="list missed positives and false positives")
    ap.add_argument("--classifier", nargs="?", const="accurate", default=None, choices=(*CLASSIFIER_MODES, "all"),
                    help="also score the injection classifier: fast (n-grams), accurate (MiniLM + n-grams; the "
                         "default without a value) or all")
    ap.add_argument("--topic", action="store_true", help="also score the topic rail on DIRECTORY/topic (needs MiniLM)")
    args = ap.parse_args(argv)
    modes = CLASSIFIER_MODES if args.classifier == "all" else (args.classifier,) if args.classifier else ()
    try:
        report = evaluate(args.directory, misses=args.misses, classifiers={m: m for m in modes})
        if args.topic:
            report.update(evaluate_topic(args.directory))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(report))
    if args.misses:
        for rail, m in report.items():
            if "missed" not in m:
                continue
            print(f"\n{rail} missed ({len(m['missed'])}):", *[f"  {t!r}" for t in m["missed"]], sep="\n")
            print(f"{rail} false positives ({len(m['false_positives'])}):",
                  *[f"  {t!r}" for t in m["false_positives"]], sep="\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
