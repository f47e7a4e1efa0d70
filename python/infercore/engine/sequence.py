"""A sequence being generated and the request it belongs to."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .sampling_params import SamplingParams


class SeqStatus(enum.Enum):
    WAITING = "waiting"  # no KV blocks (new, or preempted and waiting to be recomputed)
    RUNNING = "running"
    FINISHED = "finished"


@dataclass
class Sequence:
    """token_ids = prompt + generated tokens. num_computed tokens have their KV in the cache;
    num_reserved have cache slots reserved in the block allocator."""

    seq_id: int
    request_id: str
    prompt_len: int
    token_ids: list[int]
    params: SamplingParams
    rng: np.random.Generator
    arrival_time: float = field(default_factory=time.monotonic)
    status: SeqStatus = SeqStatus.WAITING
    num_computed: int = 0
    num_reserved: int = 0
    num_preemptions: int = 0
    finish_reason: str | None = None  # "stop" | "length" | "abort"
    logprobs: list = field(default_factory=list)
    first_token_time: float | None = None
    token_times: list[float] = field(default_factory=list)
    guide_state: int = 0  # DFA state of a structured-output request (infercore.structured)
    penalty_history: Any = None  # engine.sampler.PenaltyHistory, built on the first penalized step

    @property
    def output_ids(self) -> list[int]:
        return self.token_ids[self.prompt_len :]

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.prompt_len  # len(output_ids) without copying them

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def is_finished(self) -> bool:
        return self.status == SeqStatus.FINISHED
