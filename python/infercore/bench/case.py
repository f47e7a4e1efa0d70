"""What a benchmark case is and what measuring it yields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def is_ours(impl: str) -> bool:
    """"infercore" and its variants ("infercore-high": another setting of ours) are our rows:
    compared against the peers and guarded by `bench --compare`; every other impl is a peer."""
    return impl == "infercore" or impl.startswith("infercore-")


@dataclass
class Case:
    """One timed call. Cases with the same (suite, op, shape, dtype) form a group: the rows whose
    impl is ours ("infercore", "infercore-<variant>": is_ours) are compared against every other
    impl (the peers) of its group.

    fn is called with no arguments; setup (optional) runs once before timing and its return
    value is ignored. bytes / flops are per call and give GB/s and GFLOP/s; items (with its unit)
    gives a rate such as tokens/s. extra holds numbers to report beside the timing (recall, peak
    memory...); after(), if given, is called once timing is done and its dict joins extra.
    """

    suite: str
    op: str
    shape: str
    dtype: str
    impl: str
    fn: Callable[[], Any]
    backend: str = "cpu"
    bytes: float = 0.0
    flops: float = 0.0
    setup: Callable[[], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    min_repeats: int = 5
    items: float = 0.0  # things done per call (tokens, texts...): reported as "<unit>/s"
    unit: str = "items"
    after: Callable[[], dict[str, Any]] | None = None  # extra numbers gathered while timing
    # Also compare against the row of the same suite/op/shape/impl/backend in this dtype (e.g. an
    # fp8 KV cache against float16): reported among the peers as "<dtype> Nx".
    vs_dtype: str | None = None

    @property
    def group(self) -> tuple[str, str, str, str]:
        return (self.suite, self.op, self.shape, self.dtype)

    @property
    def key(self) -> str:
        return "/".join((self.suite, self.op, self.shape, self.dtype, self.impl, self.backend))


@dataclass
class Result:
    key: str
    suite: str
    op: str
    shape: str
    dtype: str
    impl: str
    backend: str
    isa: str
    threads: int
    median_s: float
    min_s: float
    repeats: int
    gbps: float | None
    gflops: float | None
    pct_bandwidth: float | None
    speedup_vs: dict[str, float] = field(default_factory=dict)  # peer impl -> peer_time / our_time
    extra: dict[str, Any] = field(default_factory=dict)
    vs_dtype: str | None = None  # Case.vs_dtype
