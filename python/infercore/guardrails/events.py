"""Where Guard decisions go: an event sink (structured, JSON-serialisable dicts) and an in-process
metrics object the monitoring layer can read. Both are plain objects passed to Guard."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class EventSink(Protocol):
    def emit(self, event: dict[str, Any]) -> None: ...


class LoggingSink:
    """Logs each event at `level` on `logger` with the event under extra["guardrail"]. The event
    never contains the checked text, only rail names, statuses, reasons and spans."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger if logger is not None else logging.getLogger("infercore.guardrails")
        self.level = level

    def emit(self, event: dict[str, Any]) -> None:
        self.logger.log(self.level, "guardrail %s %s", event["direction"], event["status"],
                        extra={"guardrail": event})


class ListSink:
    """Keeps events in a list (tests, notebooks)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)


class GuardMetrics:
    """Counters per (direction, rail, status) and latency sums per (direction, rail). Rail "guard"
    is the whole check. Thread-safe; snapshot() returns plain dicts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = defaultdict(int)
        self._lat_sum: dict[tuple[str, str], float] = defaultdict(float)
        self._lat_max: dict[tuple[str, str], float] = defaultdict(float)
        self._lat_n: dict[tuple[str, str], int] = defaultdict(int)

    def record(self, direction: str, rail: str, status: str, latency_ms: float) -> None:
        with self._lock:
            self._counts[(direction, rail, status)] += 1
            k = (direction, rail)
            self._lat_sum[k] += latency_ms
            self._lat_n[k] += 1
            self._lat_max[k] = max(self._lat_max[k], latency_ms)

    def count(self, direction: str, rail: str, status: str) -> int:
        with self._lock:
            return self._counts.get((direction, rail, status), 0)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "decisions": [{"direction": d, "rail": r, "status": s, "count": n}
                              for (d, r, s), n in sorted(self._counts.items())],
                "latency_ms": [{"direction": d, "rail": r, "count": self._lat_n[(d, r)],
                                "sum": self._lat_sum[(d, r)], "max": self._lat_max[(d, r)]}
                               for (d, r) in sorted(self._lat_n)],
            }
