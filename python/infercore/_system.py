"""system_info(), thread and ISA controls."""

from __future__ import annotations

import importlib.util
import os
import platform
from typing import Any

from . import __version__
from ._native import _C, cuda_module


def set_num_threads(n: int) -> None:
    """Threads used by every CPU kernel (the caller plus n - 1 pool workers)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n: expected >= 1, got {n}")
    _C.set_num_threads(n)


def get_num_threads() -> int:
    return int(_C.num_threads())


def set_isa(name: str) -> None:
    """Force the CPU kernels down to 'scalar', 'avx2' or 'avx512' (never above what the CPU has)."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    _C.set_isa(name)


def get_isa() -> str:
    return str(_C.get_isa())


def available_isas() -> list[str]:
    """Every ISA level this machine can run, lowest first."""
    order = ["scalar", "avx2", "avx512"]
    return order[: order.index(_C.max_isa()) + 1]


def _cuda_info() -> dict[str, Any]:
    mod = cuda_module()
    info: dict[str, Any] = {"compiled": mod is not None, "available": False, "devices": []}
    if mod is None:
        return info
    rv = int(mod.runtime_version())
    info["runtime_version"] = f"{rv // 1000}.{(rv % 1000) // 10}"
    n, err = mod.device_count()
    if err:
        info["error"] = err
    info["devices"] = [dict(mod.device_info(i)) for i in range(int(n))]
    info["available"] = int(n) > 0
    return info


def _triton_info() -> dict[str, Any]:
    spec = importlib.util.find_spec("triton")
    return {
        "installed": spec is not None,
        "interpret": os.environ.get("TRITON_INTERPRET", "0") == "1",
    }


def system_info() -> dict[str, Any]:
    """Version, CPU features and the ISA in use, threads, CUDA devices and Triton; never needs a GPU."""
    cpu = dict(_C.cpu_info())
    cpu["isa"] = get_isa()
    cpu["available_isas"] = available_isas()
    return {
        "version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "threads": get_num_threads(),
        "cuda": _cuda_info(),
        "triton": _triton_info(),
    }


def available_memory_bytes() -> int | None:
    """Bytes a new allocation can still take without swapping or meeting the OOM killer: Linux's
    MemAvailable, capped by the cgroup (v2) limit where one is set; physical memory elsewhere;
    None when unknown. Used to refuse results that cannot fit before they are allocated (numpy
    over-commits, and touching such an array kills the process instead of raising)."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    if avail is None:
        avail = physical_memory_bytes()
        if avail is None:
            return None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                avail = min(avail, int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        pass
    return max(avail, 0)


def check_fits_in_ram(need: int, name: str, what: str) -> None:
    """ValueError naming `name` when `what` needs more bytes than this machine's RAM: host arrays
    map their zero pages lazily, so numpy hands such an array out and the OOM killer ends the
    process when it fills, instead of anything raising."""
    ram = physical_memory_bytes()
    if ram is not None and need > ram:
        raise ValueError(f"{name}: {what} needs {need / 2**30:.1f} GiB, more than this machine's "
                         f"{ram / 2**30:.1f} GiB of RAM")


def physical_memory_bytes() -> int | None:
    """This machine's RAM in bytes (None when the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
