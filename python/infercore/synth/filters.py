"""Quality filters over rows ({"text": ..., ...}), run in order by `run_filters`.

Each stage takes the rows that survived the previous one and returns (kept, dropped) where
dropped is a list of (row, reason). Input rows are never mutated (a redacting guard copies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .minhash import _check as _check_near_dedup
from .minhash import near_duplicates
from .scoring import check_scores
from .textstats import bad_char_ratio, detect_language, symbol_ratio, text_hash

Rows = list[dict[str, Any]]
Dropped = list[tuple[dict[str, Any], str]]


def _nonneg(v: Any, name: str, allow_none: bool = True) -> None:
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:  # `not >=`: NaN fails too
        raise ValueError(f"{name}: expected a number >= 0{' or None' if allow_none else ''}, got {v!r}")


@dataclass
class LengthFilter:
    min_chars: int = 1
    max_chars: int | None = None
    min_words: int | None = None
    max_words: int | None = None
    name: str = "length"

    def __post_init__(self) -> None:
        for k in ("min_chars", "max_chars", "min_words", "max_words"):
            _nonneg(getattr(self, k), k)
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError(f"max_chars: {self.max_chars} < min_chars {self.min_chars}")
        if self.max_words is not None and self.min_words is not None and self.max_words < self.min_words:
            raise ValueError(f"max_words: {self.max_words} < min_words {self.min_words}")

    def __call__(self, rows: Rows, fld: str) -> tuple[Rows, Dropped]:
        kept, dropped = [], []
        for r in rows:
            t = r[fld].strip()
            words = len(t.split())
            if len(t) < self.min_chars:
                dropped.append((r, "too_short"))
            elif self.max_chars is not None and len(t) > self.max_chars:
                dropped.append((r, "too_long"))
            elif self.min_words is not None and words < self.min_words:
                dropped.append((r, "too_few_words"))
            elif self.max_words is not None and words > self.max_words:
                dropped.append((r, "too_many_words"))
            else:
                kept.append(r)
        return kept, dropped


@dataclass
class CharsetFilter:
    """Drops texts with control characters / U+FFFD above max_bad_ratio, or mostly symbols."""

    max_bad_ratio: float = 0.0
    max_symbol_ratio: float | None = 0.5
    name: str = "charset"

    def __post_init__(self) -> None:
        _nonneg(self.max_bad_ratio, "max_bad_ratio", False)
        _nonneg(self.max_symbol_ratio, "max_symbol_ratio")

    def __call__(self, rows: Rows, fld: str) -> tuple[Rows, Dropped]:
        kept, dropped = [], []
        for r in rows:
            t = r[fld]
            if bad_char_ratio(t) > self.max_bad_ratio:
                dropped.append((r, "bad_chars"))
            elif self.max_symbol_ratio is not None and symbol_ratio(t) > self.max_symbol_ratio:
                dropped.append((r, "mostly_symbols"))
            else:
                kept.append(r)
        return kept, dropped


@dataclass
class LanguageFilter:
    """Keeps texts whose detected language (textstats.detect_language) is in `languages`, and, with
    match_field, equals the row's own label (e.g. the "lang" the spec asked for)."""

    languages: Sequence[str] | None = None
    match_field: str | None = None
    name: str = "language"

    def __post_init__(self) -> None:
        if self.languages is None and self.match_field is None:
            raise ValueError("LanguageFilter: give languages, match_field or both")
        if isinstance(self.languages, str):
            self.languages = [self.languages]

    def __call__(self, rows: Rows, fld: str) -> tuple[Rows, Dropped]:
        kept, dropped = [], []
        for r in rows:
            lang = detect_language(r[fld])
            if self.languages is not None and lang not in self.languages:
                dropped.append((r, f"language={lang}"))
            elif self.match_field is not None and r.get(self.match_field) != lang:
                dropped.append((r, f"language={lang}!={r.get(self.match_field)}"))
            else:
                kept.append(r)
        return kept, dropped


@dataclass
class ExactDedup:
    """Keeps the first of texts equal after normalization (NFKC, casefold, whitespace, zero-width)."""

    name: str = "exact_dedup"

    def __call__(self, rows: Rows, fld: str) -> tuple[Rows, Dropped]:
        seen: set[str] = set()
        kept, dropped = [], []
        for r in rows:
            h = text_hash(r[fld])
            if h in seen:
                dropped.append((r, "exact_duplicate"))
            else:
                seen.add(h)
                kept.append(r)
        return kept, dropped


@dataclass
class NearDedup:
    """MinHash LSH near-duplicate removal (see minhash.near_duplicates)."""

    threshold: float = 0.8
    num_perm: int = 128
    k: int = 5
    unit: str = "char"
    backend: str = "numpy"
    verify: str = "exact"
    seed: int = 1
    progress: bool = False
    name: str = "near_dedup"

    def __post_init__(self) -> None:
        _check_near_dedup(self.threshold, self.num_perm, self.backend, self.verify, self.k, self.unit)

    def __call__(self, rows: Rows, fld: str) -> tuple[Rows, Dropped]:
        dup = near_duplicates([r[fld] for r in rows], self.threshold, num_perm=self.num_perm, k=self.k,
                              unit=self.unit, seed=self.seed, backend=self.backend, verify=self.verify,
                              progress=self.progress)
        kept, dropped = [], []
        for r, d in zip(rows, dup, strict=True):
            if d is None:
                kept.append(r)
            else:
                dropped.append((r, f"near_duplicate_of={rows[d].get('id', d)}"))
        return kept, dropped


@dataclass
class ScoreFilter:
    """Keeps rows whose score >= threshold. scorer(texts) -> scores (a classifier, EmbeddingSimilarity,
    LLMJudge). NaN scores are judge failures (dropped). score_field: also store the score in kept rows."""

    scorer: Callable[[list[str]], Any]
    threshold: float
    batch_size: int = 64
    score_field: str | None = "score"
    name: str = "score"

    def __post_init__(self) -> None:
        if not callable(self.scorer):
            raise TypeError(f"scorer: expected a callable texts -> scores, got {type(self.scorer).__name__}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)):
            raise TypeError(f"threshold: expected a number, got {type(self.threshold).__name__}")
        if self.threshold != self.threshold:
            raise ValueError("threshold: expected a number, got nan")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {self.batch_size!r}")
        if self.score_field is not None and not isinstance(self.score_field, str):
            raise TypeError(f"score_field: expected a str or None, got {type(self.score_field).__name__}")

    def __call__(self, rows: Rows, fld: str) -> tuple[Rows, Dropped]:
        kept, dropped = [], []
        for s in range(0, len(rows), self.batch_size):
            batch = rows[s:s + self.batch_size]
            scores = check_scores(self.scorer([r[fld] for r in batch]), len(batch))
            for r, x in zip(batch, scores, strict=True):
                if x != x:  # NaN
                    dropped.append((r, "judge_failed"))
                elif x < self.threshold:
                    dropped.append((r, f"score={x:.3f}<{self.threshold}"))
                else:
                    kept.append({**r, self.score_field: round(float(x), 6)} if self.score_field else r)
        return kept, dropped


@dataclass
class GuardFilter:
    """Drops rows the guard blocks. direction: "output" (generated text, the default), "input" or
    "both". redact=True replaces the text with the guard's redacted text when it is "modified"."""

    guard: Any = None
    direction: str = "output"
    redact: bool = False
    name: str = "guard"
    blocked_by: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in ("input", "output", "both"):
            raise ValueError(f"direction: expected 'input', 'output' or 'both', got {self.direction!r}")
        if self.guard is None:
            from ..guardrails import Guard

            self.guard = Guard.default(sink=_NullSink())  # no log line per screened example

    def __call__(self, rows: Rows, fld: str) -> tuple[Rows, Dropped]:
        checks = {"input": [self.guard.check_input], "output": [self.guard.check_output],
                  "both": [self.guard.check_input, self.guard.check_output]}[self.direction]
        kept, dropped = [], []
        for r in rows:
            text, reason = r[fld], None
            for check in checks:
                res = check(text)
                if res.status == "blocked":
                    rails = sorted({v.rail for v in res.violations}) or ["guard"]
                    reason = "guard_blocked=" + ",".join(rails)
                    for rail in rails:
                        self.blocked_by[rail] = self.blocked_by.get(rail, 0) + 1
                    break
                if res.status == "modified" and self.redact:
                    text = res.text
            if reason is not None:
                dropped.append((r, reason))
            else:
                kept.append(r if text == r[fld] else {**r, fld: text})
        return kept, dropped


class _NullSink:
    def emit(self, event: dict[str, Any]) -> None:
        pass


@dataclass
class FilterReport:
    n_in: int
    n_out: int
    stages: list[dict[str, Any]]
    dropped: Dropped = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "kept_fraction": self.n_out / self.n_in if self.n_in else 0.0,
                "stages": self.stages}

    def table(self) -> str:
        lines = [f"{'stage':<14} {'in':>7} {'dropped':>8} {'kept':>7}  top reasons"]
        for s in self.stages:
            reasons = ", ".join(f"{k} {v}" for k, v in list(s["reasons"].items())[:3])
            lines.append(f"{s['stage']:<14} {s['in']:>7} {s['dropped']:>8} {s['kept']:>7}  {reasons}")
        lines.append(f"kept {self.n_out} of {self.n_in}")
        return "\n".join(lines)


def _reason_key(reason: str) -> str:
    return reason.split("=")[0] if reason.startswith(("near_duplicate_of", "score")) else reason


def run_filters(rows: Rows, stages: Sequence[Callable[[Rows, str], tuple[Rows, Dropped]]], *, field: str = "text",
                progress: bool = False) -> tuple[Rows, FilterReport]:
    """Apply stages in order; returns the kept rows and a per-stage report (counts and reasons)."""
    from .progress import Progress

    if not isinstance(rows, list):
        raise TypeError(f"rows: expected a list of dicts, got {type(rows).__name__}")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get(field), str):
            raise ValueError(f"rows[{i}]: expected a dict with a string {field!r}")
    cur, report, all_dropped = rows, [], []
    with Progress(len(stages), "filter", progress) as bar:
        for st in stages:
            kept, dropped = st(cur, field)
            reasons: dict[str, int] = {}
            for _, why in dropped:
                k = _reason_key(why)
                reasons[k] = reasons.get(k, 0) + 1
            report.append({"stage": getattr(st, "name", type(st).__name__), "in": len(cur), "dropped": len(dropped),
                           "kept": len(kept), "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1]))})
            all_dropped += dropped
            cur = kept
            bar.update()
    return cur, FilterReport(len(rows), len(cur), report, all_dropped)
