"""A progress bar: tqdm when it is installed, else a plain line on stderr (no new dependency)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any


class Progress:
    def __init__(self, total: int | None, desc: str, enabled: bool = True) -> None:
        self.total, self.desc, self.enabled = total, desc, enabled
        self.n = 0
        self._bar: Any = None
        self._t0 = self._last = time.perf_counter()
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(self, k: int = 1) -> None:
        self.n += k
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(k)
            return
        now = time.perf_counter()
        if now - self._last >= 0.5 or (self.total is not None and self.n >= self.total):
            self._last = now
            rate = self.n / max(now - self._t0, 1e-9)
            of = f"/{self.total}" if self.total is not None else ""
            print(f"\r{self.desc}: {self.n}{of} ({rate:.1f}/s)", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            print(file=sys.stderr, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def track(items: list[Any], desc: str, enabled: bool = True) -> Iterator[Any]:
    with Progress(len(items), desc, enabled) as p:
        for x in items:
            yield x
            p.update()
