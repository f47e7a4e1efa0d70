"""Run untrusted (model-generated) Python with its tests in a subprocess sandbox.

    r = run_code(program, timeout_s=5, memory_mb=512)
    r.passed, r.status   # status: passed | failed | timeout | memory | blocked | output_limit | error

Layers, each reported as a failed sample and never a hang of the caller:
- time: the child runs in its own session (process group); when `timeout_s` wall seconds pass the
  whole group gets SIGKILL. RLIMIT_CPU (timeout + 1 s) stops a CPU spin even if the parent died.
- limits are set by the child itself before it reads the program (no preexec_fn, which is unsafe
  in the threaded parent process).
- memory: RLIMIT_AS caps the address space (an allocation beyond it is a MemoryError or a kill).
- processes: an audit hook (installed before the untrusted code runs) refuses os.fork, forkpty,
  posix_spawn, exec*, system, subprocess.Popen, os.kill/killpg and the import of _posixsubprocess,
  ctypes and multiprocessing; RLIMIT_NPROC = current count + 0 also stops forks for non-root users
  (root ignores RLIMIT_NPROC, so the hook is the guard there).
- network: the same hook refuses socket creation, connect, bind and name lookups; where the `unshare`
  tool works the child also runs in an empty network namespace (no interface but loopback down).
- output: stdout/stderr go to files capped by RLIMIT_FSIZE (1 MiB by default), read back truncated.
- files: the child runs in a fresh temporary directory with an empty environment (-I: isolated mode,
  no user site, no PYTHON* variables). It is not a filesystem jail: code can still read files the
  user can read. Run evaluations as an unprivileged user, or in a container, for hostile code.

Audit hooks are not a security boundary against a determined attacker (CPython documents this);
they are a guard against generated code that loops, forks, allocates or dials out by accident.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

SANDBOX_MARK = "InfercoreSandboxViolation"

_GUARD = r'''
import os, resource, sys
def _infercore_limits(memory_bytes, cpu_s, fsize):
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.geteuid() != 0:  # root bypasses RLIMIT_NPROC; the audit hook guards forks there
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))
        except (ValueError, OSError):
            pass
_infercore_limits(*[int(x) for x in sys.argv[1:4]])
del _infercore_limits, os, resource
class InfercoreSandboxViolation(PermissionError):
    pass
_BLOCKED_EVENTS = frozenset({
    "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "os.kill", "os.killpg",
    "subprocess.Popen", "os.startfile", "pty.spawn",
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
    "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function",
})
_BLOCKED_IMPORTS = frozenset({"_posixsubprocess", "ctypes", "_ctypes", "multiprocessing", "_multiprocessing",
                              "socket", "_socket", "ssl", "_ssl", "pty"})
def _infercore_guard(event, args):
    if event in _BLOCKED_EVENTS:
        raise InfercoreSandboxViolation("sandbox: " + event + " is not allowed")
    if event == "import" and args and str(args[0]).split(".")[0] in _BLOCKED_IMPORTS:
        raise InfercoreSandboxViolation("sandbox: import of " + str(args[0]) + " is not allowed")
sys.addaudithook(_infercore_guard)
del _infercore_guard
__name__ = "__main__"
with open("program.py", encoding="utf-8") as _f:
    _src = _f.read()
del _f
exec(compile(_src, "program.py", "exec"))
'''

STATUSES = ("passed", "failed", "timeout", "memory", "blocked", "output_limit", "error")


@dataclass
class SandboxResult:
    status: str
    returncode: int | None
    stdout: str
    stderr: str
    wall_s: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@functools.lru_cache(maxsize=1)
def _netns_prefix() -> tuple[str, ...]:
    """["unshare", "-n"] (root) or ["unshare", "-rn"] where creating a network namespace works."""
    exe = shutil.which("unshare")
    if exe is None:
        return ()
    for flags in (("-n",), ("-rn",)) if os.geteuid() == 0 else (("-rn",),):
        try:
            r = subprocess.run([exe, *flags, "true"], capture_output=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            continue
        if r.returncode == 0:
            return (exe, *flags)
    return ()


def _read(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return ""
    text = data[:limit].decode("utf-8", errors="replace")
    return text + ("\n[... truncated]" if len(data) > limit else "")


def run_code(program: str, *, timeout_s: float = 5.0, memory_mb: int = 512, output_limit: int = 1 << 20,
             network_namespace: bool = True) -> SandboxResult:
    """Run `program` (source text) as __main__ in a sandboxed child; exit status 0 = passed."""
    if not isinstance(program, str):
        raise TypeError(f"program: expected str, got {type(program).__name__}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 3600:
        raise ValueError(f"timeout_s: expected a number in (0, 3600], got {timeout_s!r}")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or not 32 <= memory_mb <= 1 << 20:
        raise ValueError(f"memory_mb: expected an int >= 32, got {memory_mb!r}")
    if isinstance(output_limit, bool) or not isinstance(output_limit, int) or output_limit < 1024:
        raise ValueError(f"output_limit: expected an int >= 1024 bytes, got {output_limit!r}")
    work = tempfile.mkdtemp(prefix="infercore-sandbox-")
    try:
        with open(os.path.join(work, "program.py"), "w", encoding="utf-8") as f:
            f.write(program)
        with open(os.path.join(work, "guard.py"), "w", encoding="utf-8") as f:
            f.write(_GUARD)
        out_p, err_p = os.path.join(work, "stdout"), os.path.join(work, "stderr")
        prefix = _netns_prefix() if network_namespace else ()
        # the child sets its own rlimits first thing (no preexec_fn: unsafe in a threaded parent)
        cmd = [*prefix, sys.executable, "-I", "-S", "-B", "guard.py", str(memory_mb << 20), str(int(timeout_s) + 1),
               str(output_limit)]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        t0 = time.perf_counter()
        timed_out = False
        with open(out_p, "wb") as out_f, open(err_p, "wb") as err_f:
            proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f,
                                    start_new_session=True, close_fds=True)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:  # the group holds any child the program managed to start
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        wall = time.perf_counter() - t0
        stdout, stderr = _read(out_p, 16384), _read(err_p, 16384)
        rc = proc.returncode
        return SandboxResult(_classify(rc, stderr, timed_out), None if timed_out else rc, stdout, stderr, wall)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _classify(rc: int | None, stderr: str, timed_out: bool) -> str:
    if timed_out or rc == -signal.SIGXCPU:
        return "timeout"
    if SANDBOX_MARK in stderr:
        return "blocked"
    if rc == -signal.SIGXFSZ or "File too large" in stderr:
        return "output_limit"
    if "MemoryError" in stderr or rc == -signal.SIGSEGV or "Cannot allocate memory" in stderr:
        return "memory"
    if rc == 0:
        return "passed"
    if rc is not None and rc < 0:
        return "error"
    return "failed"


def build_program(prompt: str, completion: str, test: str, entry_point: str | None) -> str:
    """HumanEval layout: prompt + completion, then the test code, then check(entry_point) when the
    tests define `check`."""
    parts = [prompt + completion, "", test]
    if entry_point and "def check(" in test:
        parts.append(f"\ncheck({entry_point})")
    return "\n".join(parts) + "\n"
