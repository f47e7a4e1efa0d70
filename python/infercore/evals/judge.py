"""LLM-as-judge: single-answer grading with a rubric, pairwise comparison with position swap, output
parsing, and Cohen's kappa against human labels.

A judge is any function `complete(prompts: list[str]) -> list[str]` (`llm_complete(llm)` wraps an
`LLM`: each prompt is one user turn, greedy decoding). Output that does not parse is a judge
failure (None), counted by the caller, never an exception.

A judge function that has the attribute `prefill = True` (as `llm_complete` does) is called as
complete(prompts, prefill=TEXT): the judge's reply is started with TEXT ("Rating:" or
"Verdict: [[", response priming) and the returned output includes it, which makes small judge
models answer in the parseable format far more often.

Single answer (MT-Bench style, with a reference answer): the judge ends with "Rating: [[N]]",
N in 1..scale. Pairwise: the judge ends with "[[A]]", "[[B]]" or "[[C]]" (tie). Every pair is judged
in both orders (answer 1 as A, then as B); the verdicts are mapped back to the answers and combined:
same winner -> that winner, both tie -> tie, disagreement (position bias) -> tie, either order
unparseable -> failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

Complete = Callable[[list[str]], list[str]]

DEFAULT_RUBRIC = ("Rate how correct and helpful the answer is. 5: correct, complete and clear. 4: correct with small "
                  "gaps. 3: partly correct. 2: mostly wrong or off-topic. 1: wrong, empty or harmful.")
SINGLE_TEMPLATE = """You are grading an answer to a question.
{rubric}

Question: {question}
Reference answer: {reference}
Answer to grade: {answer}

Reply with your rating in the form "Rating: [[N]]" where N is a whole number from 1 to {scale}."""
PAIR_TEMPLATE = """Compare two answers to the same question and decide which one is better (more correct, more helpful).

Question: {question}
Answer A: {a}
Answer B: {b}

Reply with "[[A]]" if A is better, "[[B]]" if B is better, or "[[C]]" for a tie."""

_RATING = (re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]"),
           re.compile(r"(?i)\b(?:rating|score)\s*[:=]?\s*\**\s*(\d+(?:\.\d+)?)\s*(?:/\s*\d+)?"))
_VERDICT = (re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE),
            re.compile(r"(?im)^\s*(?:verdict|winner|answer)\s*[:=]\s*\**\s*(A|B|C|tie)\b"))


def parse_rating(text: Any, scale: int = 5) -> float | None:
    """The last "[[N]]" (else the last "Rating: N") in the judge's output if 1 <= N <= scale; else None."""
    if not isinstance(text, str):
        return None
    for pat in _RATING:
        found = pat.findall(text)
        if found:
            v = float(found[-1])
            return v if 1 <= v <= scale else None
    return None


def parse_verdict(text: Any) -> str | None:
    """"A", "B" or "tie" from the judge's output ("[[C]]" is a tie); None when it does not parse or
    names both answers."""
    if not isinstance(text, str):
        return None
    for pat in _VERDICT:
        found = {f.upper() for f in pat.findall(text)}
        if found:
            found = {"TIE" if f == "C" else f for f in found}
            if len(found) != 1:
                return None
            v = found.pop()
            return "tie" if v == "TIE" else v
    return None


_FLIP = {"A": "B", "B": "A", "tie": "tie"}


def combine_swapped(first: str | None, second: str | None) -> str | None:
    """first: verdict with answer 1 as A; second: verdict with answer 1 as B (positions swapped).
    Returns the verdict for answer 1 in A terms ("A" = answer 1 wins), "tie", or None (failure)."""
    if first is None or second is None:
        return None
    back = _FLIP[second]
    return first if first == back else "tie"


@dataclass
class PairResult:
    verdict: str | None  # "A" (answer 1 better), "B", "tie"; None = judge failure
    first: str | None
    second: str | None  # raw verdict of the swapped order (before mapping back)

    @property
    def consistent(self) -> bool:
        return self.first is not None and self.second is not None and self.first == _FLIP[self.second]

    @property
    def score(self) -> float | None:
        """Answer 1's win score: 1 win, 0.5 tie, 0 loss; None on failure."""
        return None if self.verdict is None else {"A": 1.0, "tie": 0.5, "B": 0.0}[self.verdict]


def _call(complete: Complete, prompts: list[str], prefill: str) -> list[str | None]:
    if not prompts:
        return []
    out = complete(prompts, prefill=prefill) if getattr(complete, "prefill", False) else complete(prompts)
    if not isinstance(out, (list, tuple)) or len(out) != len(prompts):
        raise ValueError(f"judge: expected {len(prompts)} outputs, got {type(out).__name__} "
                         f"of length {len(out) if isinstance(out, (list, tuple)) else '?'}")
    return [o if isinstance(o, str) else None for o in out]


class Judge:
    def __init__(self, complete: Complete, rubric: str | None = None, scale: int = 5) -> None:
        if not callable(complete):
            raise TypeError(f"complete: expected a callable prompts -> outputs, got {type(complete).__name__}")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
            raise ValueError(f"scale: expected an int >= 2, got {scale!r}")
        self.complete = complete
        self.rubric = rubric or DEFAULT_RUBRIC
        self.scale = scale
        self.raw: list[str | None] = []  # the last call's outputs (for reports)

    def grade(self, items: Sequence[tuple[str, str, str]]) -> list[float | None]:
        """items: (question, answer, reference) -> rating in 1..scale or None (judge failure)."""
        prompts = [SINGLE_TEMPLATE.format(rubric=self.rubric, question=q, answer=a or "(empty)",
                                          reference=r or "(none)", scale=self.scale) for q, a, r in items]
        self.raw = _call(self.complete, prompts, "Rating:")
        return [parse_rating(o, self.scale) for o in self.raw]

    def compare(self, items: Sequence[tuple[str, str, str]]) -> list[PairResult]:
        """items: (question, answer 1, answer 2); each judged in both orders."""
        fwd = [PAIR_TEMPLATE.format(question=q, a=a or "(empty)", b=b or "(empty)") for q, a, b in items]
        rev = [PAIR_TEMPLATE.format(question=q, a=b or "(empty)", b=a or "(empty)") for q, a, b in items]
        self.raw = _call(self.complete, fwd + rev, "Verdict: [[")
        firsts = [parse_verdict(o) for o in self.raw[: len(items)]]
        seconds = [parse_verdict(o) for o in self.raw[len(items):]]
        return [PairResult(combine_swapped(f, s), f, s) for f, s in zip(firsts, seconds, strict=True)]


def llm_complete(llm: Any, max_tokens: int = 48, cost: Any = None) -> Complete:
    """A judge function backed by an `LLM` (chat template, greedy; supports prefill)."""
    from ..engine.sampling_params import SamplingParams

    sp = SamplingParams(temperature=0.0, max_tokens=max_tokens)

    def complete(prompts: list[str], prefill: str = "") -> list[str]:
        convs = [[{"role": "user", "content": p}] for p in prompts]
        if llm.chat_template is not None:
            ids = [{"prompt_token_ids": llm.tokenizer.encode(llm.render_chat(c) + prefill, add_special_tokens=False)}
                   for c in convs]
        else:
            ids = [{"prompt_token_ids": llm.tokenizer.encode(p + "\n" + prefill, add_special_tokens=True)}
                   for p in prompts]
        outs = llm.generate(ids, sp)
        if cost is not None:
            for o in outs:
                cost.add(prompt_tokens=len(o.prompt_token_ids), generated_tokens=len(o.outputs[0].token_ids),
                         calls=1)
        return [prefill + o.outputs[0].text for o in outs]

    complete.prefill = True  # type: ignore[attr-defined]
    return complete


def cohen_kappa(rater1: Sequence[Hashable], rater2: Sequence[Hashable]) -> float:
    """Cohen's kappa = (p_o - p_e) / (1 - p_e): p_o the observed agreement, p_e the agreement expected
    by chance from each rater's label frequencies. nan when p_e = 1 (both raters used one and the
    same label throughout: chance-corrected agreement is undefined)."""
    if len(rater1) != len(rater2):
        raise ValueError(f"rater1, rater2: expected the same length, got {len(rater1)} and {len(rater2)}")
    n = len(rater1)
    if n == 0:
        raise ValueError("rater1, rater2: expected at least one rated item")
    labels = set(rater1) | set(rater2)
    p_o = sum(a == b for a, b in zip(rater1, rater2, strict=True)) / n
    p_e = sum((sum(a == k for a in rater1) / n) * (sum(b == k for b in rater2) / n) for k in labels)
    if p_e >= 1.0:
        return float("nan")
    return (p_o - p_e) / (1.0 - p_e)
