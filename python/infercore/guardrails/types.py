"""Result types shared by every rail and the Guard, plus the Rail protocol that later rails
(topic boundary, groundedness over the Embedder, an LLM judge) implement."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Status = Literal["passed", "modified", "blocked"]
STATUSES: tuple[str, ...] = ("passed", "modified", "blocked")
# A rail that flags without blocking (PII "detect", harmful "warn") returns "passed" with
# violations; "modified" means the returned text differs from the input.
_RANK = {"passed": 0, "modified": 1, "blocked": 2}


@dataclass(frozen=True)
class Violation:
    rail: str
    reason: str
    span: tuple[int, int] | None = None  # [start, end) in the text the rail saw; None if found only in a
    score: float = 1.0  # decoded/normalized view that has no position in the original

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["span"] = list(self.span) if self.span is not None else None
        return d


@dataclass
class RailDecision:
    status: Status
    text: str
    violations: list[Violation] = field(default_factory=list)


@dataclass
class GuardResult:
    status: Status
    text: str
    violations: list[Violation] = field(default_factory=list)
    latency_ms: float = 0.0

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"


def worst(a: str, b: str) -> str:
    """The more severe of two statuses."""
    return a if _RANK[a] >= _RANK[b] else b


@runtime_checkable
class Rail(Protocol):
    """What Guard calls. `context` is free-form: for input rails the conversation context (or None),
    for output rails the retrieved contexts a groundedness rail compares against."""

    name: str
    can_modify: bool

    def check(self, text: str, context: Any = None) -> RailDecision: ...
