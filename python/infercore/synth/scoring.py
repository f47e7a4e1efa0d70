"""Quality scorers for ScoreFilter: any callable texts -> scores, the embedding similarity to a
reference set, or an LLM judge. Scores are floats; NaN means the scorer could not score (an LLM
judge whose output does not parse), which the filter counts as a judge failure and drops."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .embedders import embed, get_embedder

DEFAULT_JUDGE_PROMPT = (
    "Rate the following example for a {{ task }} dataset on a scale of 1 to 5, where 1 is unusable "
    "(gibberish, off-task, unsafe) and 5 is a clear, natural, on-task example. Reply with one digit.\n\n"
    "Example: {{ text }}\n\nScore:"
)


class EmbeddingSimilarity:
    """Score = the highest cosine similarity between a text and the reference texts."""

    def __init__(self, references: Sequence[str], embedder: Any = "auto") -> None:
        if isinstance(references, str) or not references or not all(isinstance(r, str) for r in references):
            raise ValueError("references: expected a non-empty list of strings")
        self.embedder = get_embedder(embedder)
        self.ref = embed(self.embedder, list(references))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        return (embed(self.embedder, list(texts)) @ self.ref.T).max(axis=1)


class LLMJudge:
    """An `infercore.LLM` rates each text 1..5, mapped to [0, 1] as (rating - 1) / 4.

    mode "logits" (default): one forward pass; the score is the expected rating under the model's
    next-token distribution restricted to the digits 1..5 (never fails to parse).
    mode "generate": greedy decoding of a few tokens; the first digit 1..5 is the rating, otherwise
    NaN (a judge failure, counted in `failures`).
    """

    def __init__(self, llm: Any, *, task: str = "general", prompt: str = DEFAULT_JUDGE_PROMPT,
                 mode: str = "logits", max_tokens: int = 8) -> None:
        if mode not in ("logits", "generate"):
            raise ValueError(f"mode: expected 'logits' or 'generate', got {mode!r}")
        import jinja2

        from ..models.chat_template import _environment

        env = _environment()
        env.undefined = jinja2.StrictUndefined
        try:
            self.template = env.from_string(prompt)
        except jinja2.TemplateError as e:
            raise ValueError(f"prompt: invalid Jinja2: {e}") from None
        self.llm, self.task, self.mode, self.max_tokens = llm, task, mode, max_tokens
        self.failures = 0
        self._digits: list[int] | None = None

    def _input(self, text: str) -> list[int]:
        prompt = self.template.render(text=text, task=self.task)
        llm = self.llm
        if getattr(llm, "chat_template", None):
            rendered = llm.render_chat([{"role": "user", "content": prompt}])
            return llm.tokenizer.encode(rendered, add_special_tokens=False)
        return llm.tokenizer.encode(prompt, add_special_tokens=True)

    def _digit_ids(self) -> list[int]:
        if self._digits is None:
            self._digits = [self.llm.tokenizer.encode(str(d), add_special_tokens=False)[0] for d in range(1, 6)]
        return self._digits

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.full(len(texts), np.nan)
        if self.mode == "logits":
            ids = self._digit_ids()
            for i, t in enumerate(texts):
                tok = self._input(t)
                tok = tok[-(self.llm.max_model_len):]
                logits = np.asarray(self.llm.compute_logits(tok)[-1], np.float64)[ids]
                p = np.exp(logits - logits.max())
                p /= p.sum()
                out[i] = (float(p @ np.arange(1, 6)) - 1) / 4
            return out
        from ..engine.sampling_params import SamplingParams

        res = self.llm.generate([{"prompt_token_ids": self._input(t)} for t in texts],
                                SamplingParams(temperature=0.0, max_tokens=self.max_tokens))
        for i, r in enumerate(res):
            m = re.search(r"[1-5]", r.outputs[0].text)
            if m is None:
                self.failures += 1
            else:
                out[i] = (int(m.group()) - 1) / 4
        return out


def check_scores(scores: Any, n: int) -> np.ndarray:
    try:
        arr = np.asarray(scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError("scorer: expected it to return a sequence of numbers") from None
    if arr.shape[0] != n:
        raise ValueError(f"scorer: returned {arr.shape[0]} scores for {n} texts")
    return arr


def is_failure(x: float) -> bool:
    return math.isnan(x)
