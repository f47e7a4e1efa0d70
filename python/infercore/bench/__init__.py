"""Benchmark harness behind `infercore bench`.

A suite is a module `infercore.benchmarks.bench_<suite>` (the repository's benchmarks/ folder)
with `cases(quick: bool) -> list[Case]`. The harness measures the machine's streaming-read
bandwidth in the same run, times every case (median of >= 5 repeats after warm-up), prints a
table with GB/s, % of the measured bandwidth and the ratio to the peers measured beside it,
writes JSON, compares against a baseline and plots.
"""

from .case import Case, Result
from .runner import SUITES, load_suite, measure_bandwidth, run_cases

__all__ = ["SUITES", "Case", "Result", "load_suite", "measure_bandwidth", "run_cases"]
