"""SamplingParams: what a request asks of the sampler (vLLM's names and meanings)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def _num(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return float(value)


def _int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected >= {minimum}, got {value}")
    return value


GREEDY_BELOW = 1e-5  # temperatures below this sample greedily (vLLM's _SAMPLING_EPS)


@dataclass
class SamplingParams:
    """Sampling controls for one request.

    temperature below GREEDY_BELOW (1e-5, vLLM's rule; 0 included) is greedy (argmax, lowest token
    id on ties): at such temperatures the distribution is the argmax's but for ties closer than
    ~1e-4, and below ~1e-308 x / t overflows. top_k 0 (or -1) and top_p 1 and
    min_p 0 disable those filters. repetition_penalty (>1 discourages) applies to prompt and
    output tokens like transformers; presence/frequency penalties apply to output tokens like
    OpenAI. seed makes a request's samples reproducible whatever else is in the batch.
    logprobs=N returns the sampled token's log-probability and the N most likely tokens
    (from the model's raw distribution). stop strings end generation and are not returned.
    """

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    max_tokens: int | None = 16
    min_tokens: int = 0
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    seed: int | None = None
    logprobs: int | None = None
    skip_special_tokens: bool = True
    json_schema: dict | str | bool | None = None
    regex: str | None = None
    _stop_list: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.n = _int(self.n, "n", 1)
        self.temperature = _num(self.temperature, "temperature")
        if self.temperature < 0:
            raise ValueError(f"temperature: expected >= 0, got {self.temperature}")
        self.top_p = _num(self.top_p, "top_p")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p: expected a value in (0, 1], got {self.top_p}")
        self.top_k = _int(self.top_k, "top_k", -1)
        self.min_p = _num(self.min_p, "min_p")
        if not 0 <= self.min_p <= 1:
            raise ValueError(f"min_p: expected a value in [0, 1], got {self.min_p}")
        self.repetition_penalty = _num(self.repetition_penalty, "repetition_penalty")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty: expected > 0, got {self.repetition_penalty}")
        self.presence_penalty = _num(self.presence_penalty, "presence_penalty")
        self.frequency_penalty = _num(self.frequency_penalty, "frequency_penalty")
        for name in ("presence_penalty", "frequency_penalty"):
            if not -2 <= getattr(self, name) <= 2:
                raise ValueError(f"{name}: expected a value in [-2, 2], got {getattr(self, name)}")
        if self.max_tokens is not None:
            self.max_tokens = _int(self.max_tokens, "max_tokens", 1)
        self.min_tokens = _int(self.min_tokens, "min_tokens", 0)
        if self.stop is None:
            self._stop_list = []
        elif isinstance(self.stop, str):
            self._stop_list = [self.stop]
        elif isinstance(self.stop, (list, tuple)) and all(isinstance(s, str) for s in self.stop):
            self._stop_list = list(self.stop)
        else:
            raise TypeError("stop: expected a string or a list of strings")
        if any(s == "" for s in self._stop_list):
            raise ValueError("stop: empty stop strings are not allowed")
        if self.stop_token_ids is not None:
            self.stop_token_ids = [_int(t, "stop_token_ids", 0) for t in self.stop_token_ids]
        if self.seed is not None:
            self.seed = _int(self.seed, "seed", 0)
        if self.logprobs is not None:
            self.logprobs = _int(self.logprobs, "logprobs", 0)
            if self.logprobs > 20:
                raise ValueError(f"logprobs: expected at most 20, got {self.logprobs}")

        if self.json_schema is not None:
            from ..structured import canonical_schema, schema_to_grammar

            canonical_schema(self.json_schema)  # JSON-serializable
            schema_to_grammar(self.json_schema)  # every keyword enforceable
        if self.regex is not None:
            from ..structured import regex_to_grammar

            if self.json_schema is not None:
                raise ValueError("regex: give either json_schema or regex, not both")
            regex_to_grammar(self.regex)

    @property
    def stop_strings(self) -> list[str]:
        return list(self._stop_list)

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW

    @property
    def penalized(self) -> bool:
        """Whether any penalty reads the token history (repetition, presence, frequency)."""
        return self.repetition_penalty != 1.0 or bool(self.presence_penalty) or bool(self.frequency_penalty)
