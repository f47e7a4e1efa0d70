"""pytest plugin (-p pytest_instafail, with scripts/ on PYTHONPATH): prints each failure's report
the moment it happens, so a run cut off by a device time limit still shows why tests failed."""

from __future__ import annotations

import sys


def pytest_runtest_logreport(report):
    if report.failed:
        print(f"\n##### FAILED {report.nodeid} ({report.when})\n{report.longreprtext[-3000:]}\n#####",
              file=sys.stderr, flush=True)  # fmt: skip
