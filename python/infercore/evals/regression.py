"""Stage 1, regression: multiple-choice by option log-likelihood, exact match, code execution.

multiple_choice, prompt_style "cloze" (default): context "Question: ...\\nAnswer:", each option
" <choice text>" scored as a continuation; normalize "char" (default; total log-likelihood divided
by the option's characters, lm-evaluation-harness acc_norm), "token" (mean per token) or "sum" (raw
total, which favours short options). prompt_style "letters" (original MMLU): options listed as
"A. ..." in the prompt and the continuations " A", " B", ... compared (normalization is moot for
one-token continuations). The prediction is the argmax; ties go to the first option.

exact_match: greedy generation (chat template by default), first non-empty line of the output,
SQuAD normalization (lowercase, no punctuation, no articles a/an/the, single spaces) and
exact equality with any accepted answer ("contains": the answer appears in the normalized output).

code: HumanEval layout, pass@1 with one greedy sample, run with its tests in `sandbox.run_code`.
mode "completion" (original HumanEval, for base models): the prompt (signature + docstring) is
continued as raw text, stopped at a new top-level def/class/if/print/#, program = prompt +
completion + tests. mode "chat" (instruct models): the model is asked for the whole function in a
chat turn; the first ``` code block (else the whole reply) is the code; if it defines the entry
point, program = the prompt's import lines + code + tests, else prompt + code + tests.
"""

from __future__ import annotations

import re
import string
from typing import Any

from .datasets import LETTERS, read_jsonl
from .loglik import continuation_logprobs, score_continuation
from .results import Metric
from .sandbox import build_program, run_code

CODE_STOPS = ["\nclass ", "\ndef ", "\n#", "\nif ", "\nprint(", "\nassert "]


def mc_prompt(row: dict[str, Any], style: str) -> tuple[str, list[str]]:
    """(context, continuations) of a multiple-choice row."""
    head = f"The following is a question about {row['subject'].replace('_', ' ')}.\n\n" if row.get("subject") else ""
    if style == "letters":
        opts = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(row["choices"]))
        letters = [f" {LETTERS[i]}" for i in range(len(row["choices"]))]
        return f"{head}Question: {row['question']}\n{opts}\nAnswer:", letters
    return f"{head}Question: {row['question']}\nAnswer:", [f" {c}" for c in row["choices"]]


def mc_predict(llm: Any, row: dict[str, Any], style: str = "cloze", normalize: str = "char",
               cost: Any = None) -> tuple[int, list[float]]:
    """(predicted option index, option scores) by comparing option log-likelihoods."""
    tok = llm.tokenizer
    context, conts = mc_prompt(row, style)
    ctx_ids = tok.encode(context, add_special_tokens=True)
    scores = []
    for c in conts:
        ids = tok.encode(c, add_special_tokens=False)
        lp = continuation_logprobs(llm, ctx_ids, ids)
        if cost is not None:
            cost.add(forward_tokens=len(ctx_ids) + len(ids), calls=1)
        scores.append(score_continuation(lp, c.strip(), normalize))
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return best, scores


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    t = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", t).split())


def first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def exact_match(output: str, answers: list[str], mode: str = "exact") -> bool:
    if not isinstance(output, str):
        raise TypeError(f"output: expected a string, got {type(output).__name__}")
    if isinstance(answers, str) or not isinstance(answers, (list, tuple)):
        raise TypeError(f"answers: expected a list of strings, got {type(answers).__name__}")
    for i, a in enumerate(answers):
        if not isinstance(a, str):
            raise TypeError(f"answers[{i}]: expected a string, got {type(a).__name__}")
    if mode not in ("exact", "contains"):
        raise ValueError(f"mode: expected 'exact' or 'contains', got {mode!r}")
    got = normalize_answer(first_line(output))
    want = [normalize_answer(a) for a in answers]
    if mode == "contains":
        return any(w and re.search(rf"(^|\s){re.escape(w)}($|\s)", normalize_answer(output)) for w in want)
    return got in want


def run_multiple_choice(ctx: Any, task: Any) -> tuple[dict[str, Metric], dict[str, Any]]:
    rows = read_jsonl(task.data, "multiple_choice", task.limit)
    llm = ctx.llm
    samples, preds = [], []
    for i, row in enumerate(rows):
        pred, _ = mc_predict(llm, row, task.options["prompt_style"], task.options["normalize"], ctx.cost)
        samples.append(1.0 if pred == row["answer"] else 0.0)
        preds.append(pred)
        ctx.progress(f"{task.name}: {i + 1}/{len(rows)}")
    by_subject: dict[str, list[float]] = {}
    for row, s in zip(rows, samples, strict=True):
        by_subject.setdefault(row.get("subject", "all"), []).append(s)
    details = {"items": len(rows), "normalize": task.options["normalize"], "prompt_style": task.options["prompt_style"],
               "predictions": preds, "accuracy_by_subject": {k: sum(v) / len(v) for k, v in sorted(by_subject.items())},
               "chance": sum(1 / len(r["choices"]) for r in rows) / len(rows)}
    return {f"{task.name}_accuracy": Metric(sum(samples) / len(samples), True, samples)}, details


def _generate(ctx: Any, prompts: list[Any], params: Any, chat: bool) -> list[str]:
    llm = ctx.llm
    outs = llm.chat(prompts, params) if chat else llm.generate(prompts, params)
    for o in outs:
        ctx.cost.add(prompt_tokens=len(o.prompt_token_ids), generated_tokens=len(o.outputs[0].token_ids), calls=1)
    return [o.outputs[0].text for o in outs]


def run_exact_match(ctx: Any, task: Any) -> tuple[dict[str, Metric], dict[str, Any]]:
    from ..engine.sampling_params import SamplingParams

    rows = read_jsonl(task.data, "exact_match", task.limit)
    sp = SamplingParams(temperature=0.0, max_tokens=task.options["max_tokens"])
    if task.options["chat"]:
        prompts: list[Any] = [[{"role": "user", "content": f"{r['question']}\nReply with only the answer."}]
                              for r in rows]
    else:
        prompts = [f"Question: {r['question']}\nAnswer:" for r in rows]
    outputs = _generate(ctx, prompts, sp, task.options["chat"])
    samples = [1.0 if exact_match(o, r["answer"], task.options["match"]) else 0.0
               for o, r in zip(outputs, rows, strict=True)]
    details = {"items": len(rows), "match": task.options["match"],
               "outputs": [first_line(o)[:200] for o in outputs]}
    return {f"{task.name}_exact_match": Metric(sum(samples) / len(samples), True, samples)}, details


def truncate_completion(text: str) -> str:
    cut = len(text)
    for s in CODE_STOPS:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)


def extract_code(reply: str) -> str:
    """The first fenced code block of a chat reply (an unclosed fence runs to the end), else the reply."""
    m = _FENCE.search(reply)
    return m.group(1) if m else reply


def chat_program(row: dict[str, Any], reply: str) -> str:
    code = extract_code(reply)
    if re.search(rf"^\s*def\s+{re.escape(row['entry_point'])}\s*\(", code, re.MULTILINE):
        imports = "".join(line + "\n" for line in row["prompt"].splitlines()
                          if line.startswith(("import ", "from ")))
        return build_program(imports, code, row["test"], row["entry_point"])
    return build_program(row["prompt"], code, row["test"], row["entry_point"])


def run_code_task(ctx: Any, task: Any) -> tuple[dict[str, Metric], dict[str, Any]]:
    from ..engine.sampling_params import SamplingParams

    rows = read_jsonl(task.data, "code", task.limit)
    chat = task.options["mode"] == "chat"
    if chat:
        sp = SamplingParams(temperature=0.0, max_tokens=task.options["max_tokens"])
        prompts: list[Any] = [[{"role": "user", "content": "Complete this Python function. Reply with the whole "
                                "function in one ```python code block.\n\n" + r["prompt"]}] for r in rows]
    else:
        sp = SamplingParams(temperature=0.0, max_tokens=task.options["max_tokens"], stop=CODE_STOPS)
        prompts = [r["prompt"] for r in rows]
    completions = _generate(ctx, prompts, sp, chat=chat)
    samples, statuses = [], []
    for i, (row, comp) in enumerate(zip(rows, completions, strict=True)):
        prog = chat_program(row, comp) if chat else build_program(row["prompt"], truncate_completion(comp),
                                                                   row["test"], row["entry_point"])
        r = run_code(prog, timeout_s=task.options["timeout_s"], memory_mb=task.options["memory_mb"])
        ctx.cost.add(sandbox_s=r.wall_s)
        samples.append(1.0 if r.passed else 0.0)
        statuses.append(r.status)
        ctx.progress(f"{task.name}: {i + 1}/{len(rows)}")
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    details = {"items": len(rows), "statuses": counts, "per_task": dict(zip([r["task_id"] for r in rows], statuses,
                                                                           strict=True))}
    return {f"{task.name}_pass_at_1": Metric(sum(samples) / len(samples), True, samples)}, details


RUNNERS = {"multiple_choice": run_multiple_choice, "exact_match": run_exact_match, "code": run_code_task}
