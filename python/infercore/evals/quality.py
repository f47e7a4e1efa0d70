"""Stage 2, business quality: judge agreement with human labels, single-answer and pairwise grading
of the evaluated model's answers, and the RAG metrics (`evals.rag`).

judge_agreement: the judge grades each human-labeled (question, answer); rating >= pass_score is
"good". Metrics: `<task>_kappa` (Cohen's kappa vs the human labels over the items the judge
graded; no samples: kappa is not a mean of per-item values), `<task>_agreement` (fraction of
graded items where judge and human agree; samples 0/1), `<task>_judge_failure_rate`.
single_answer: `<task>_score` = (rating - 1) / (scale - 1) averaged over graded items.
pairwise: the model's answer vs the reference answer, judged in both orders; `<task>_win_rate`
(1 win, 0.5 tie, 0 loss) and `<task>_position_consistency` (both orders agreed).
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any

from .datasets import read_jsonl
from .judge import Judge, cohen_kappa
from .results import Metric


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def _failure_metric(values: list[Any]) -> Metric:
    fails = [1.0 if v is None else 0.0 for v in values]
    return Metric(_mean(fails), False, fails)


def run_agreement(ctx: Any, task: Any, judge: Judge) -> tuple[dict[str, Metric], dict[str, Any]]:
    rows = read_jsonl(task.data, "judge_agreement", task.limit)
    ratings = judge.grade([(r["question"], r["answer"], r.get("reference", "")) for r in rows])
    ok = [(r["human_label"], "good" if s >= task.options["pass_score"] else "bad")
          for r, s in zip(rows, ratings, strict=True) if s is not None]
    agree = [1.0 if h == j else 0.0 for h, j in ok]
    kappa = cohen_kappa([h for h, _ in ok], [j for _, j in ok]) if ok else float("nan")
    m = {f"{task.name}_kappa": Metric(kappa, True),
         f"{task.name}_agreement": Metric(_mean(agree), True, agree),
         f"{task.name}_judge_failure_rate": _failure_metric(ratings)}
    judge_labels = [None if s is None else ("good" if s >= task.options["pass_score"] else "bad") for s in ratings]
    details = {"items": len(rows), "graded": len(ok), "pass_score": task.options["pass_score"],
               "confusion": {f"human={h},judge={j}": sum(1 for x in ok if x == (h, j))
                             for h in ("good", "bad") for j in ("good", "bad")},
               "judge_labels": judge_labels, "judge_outputs": [(o or "")[:160] for o in judge.raw]}
    return m, details


def answer_questions(ctx: Any, task: Any, rows: list[dict[str, Any]]) -> list[str]:
    """The evaluated model's answers (through the task's registered prompt when it names one)."""
    from ..engine.sampling_params import SamplingParams

    if task.options.get("answers") == "given":
        missing = [i for i, r in enumerate(rows) if "answer" not in r]
        if missing:
            raise ValueError(f"{task.data}: answers: given needs an 'answer' on every row "
                             f"(row {missing[0] + 1} has none)")
        return [r["answer"] for r in rows]
    key = (task.data, task.limit, task.options.get("prompt"), task.options["max_tokens"])
    cache = ctx.__dict__.setdefault("_answer_cache", {})
    if key in cache:  # single_answer and pairwise over the same questions share one generation
        return cache[key]
    convs = [ctx.render_prompt(task.options.get("prompt"), r["question"]) for r in rows]
    sp = SamplingParams(temperature=0.0, max_tokens=task.options["max_tokens"])
    outs = ctx.llm.chat(convs, sp)
    for o in outs:
        ctx.cost.add(prompt_tokens=len(o.prompt_token_ids), generated_tokens=len(o.outputs[0].token_ids), calls=1)
    cache[key] = [o.outputs[0].text.strip() for o in outs]
    return cache[key]


def run_single(ctx: Any, task: Any, judge: Judge) -> tuple[dict[str, Metric], dict[str, Any]]:
    rows = read_jsonl(task.data, "single_answer", task.limit)
    answers = answer_questions(ctx, task, rows)
    if task.options.get("rubric"):
        judge = Judge(judge.complete, task.options["rubric"], judge.scale)
    ratings = judge.grade([(r["question"], a, r["reference"]) for r, a in zip(rows, answers, strict=True)])
    scores = [(s - 1) / (judge.scale - 1) for s in ratings if s is not None]
    m = {f"{task.name}_score": Metric(_mean(scores), True, scores),
         f"{task.name}_judge_failure_rate": _failure_metric(ratings)}
    details = {"items": len(rows), "graded": len(scores), "ratings": ratings,
               "answers": [a[:200] for a in answers], "judge_outputs": [(o or "")[:160] for o in judge.raw]}
    return m, details


def run_pairwise(ctx: Any, task: Any, judge: Judge) -> tuple[dict[str, Metric], dict[str, Any]]:
    rows = read_jsonl(task.data, "pairwise", task.limit)
    answers = answer_questions(ctx, task, rows)
    res = judge.compare([(r["question"], a, r["reference"]) for r, a in zip(rows, answers, strict=True)])
    wins = [p.score for p in res if p.score is not None]
    consistent = [1.0 if p.consistent else 0.0 for p in res if p.verdict is not None]
    m = {f"{task.name}_win_rate": Metric(_mean(wins), True, wins),
         f"{task.name}_position_consistency": Metric(_mean(consistent), True, consistent),
         f"{task.name}_judge_failure_rate": _failure_metric([p.verdict for p in res])}
    details = {"items": len(rows), "judged": len(wins),
               "verdicts": [{"verdict": p.verdict, "first": p.first, "swapped": p.second} for p in res],
               "judge_outputs": [(o or "")[:160] for o in judge.raw],
               "answers": [a[:200] for a in answers]}
    return m, details


def run_rag(ctx: Any, task: Any) -> tuple[dict[str, Metric], dict[str, Any]]:
    from ..embed import Embedder
    from ..rag import RAG
    from .rag import evaluate_questions, read_questions

    qs = read_questions(task.options["questions"])[: task.limit or None]
    with tempfile.TemporaryDirectory(prefix="infercore-eval-rag-") as store:
        rag = RAG(os.path.join(store, "store"), Embedder("minilm"), ctx.llm)
        rag.ingest([task.options["docs"]])
        rows, agg = evaluate_questions(rag, qs, k=task.options["k"], min_score=task.options["min_score"])
    for r in rows:
        ctx.cost.add(calls=0 if r["abstained"] else 1)
    answered = [r for r in rows if not r["abstained"]]
    m: dict[str, Metric] = {}
    for key, hib in (("citation_coverage", True), ("groundedness", True), ("hallucination_rate", False),
                     ("citation_precision", True)):
        vals = [float(r[key]) for r in answered if key in r]
        m[key] = Metric(_mean(vals), hib, vals)
    ab = [1.0 if r["abstained"] else 0.0 for r in rows]
    m["abstention_rate"] = Metric(_mean(ab), False, ab)
    details = {"items": len(rows), "answered": len(answered),
               "aggregate": {k: v for k, v in agg.items() if not (isinstance(v, float) and math.isnan(v))},
               "answers": [r["answer"][:200] for r in rows]}
    return m, details
