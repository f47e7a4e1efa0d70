"""The sandbox must stop runaway, forking, memory-hungry and network-using code and report each as a
failed sample; the caller never hangs (each case has a few seconds of timeout at most)."""

from __future__ import annotations

import pytest

from infercore.evals.datasets import read_jsonl
from infercore.evals.sandbox import build_program, run_code
from infercore.evals.suite import DATA_DIR


def test_passing_and_failing_programs():
    ok = run_code("assert sum([1, 2]) == 3\nprint('done')")
    assert ok.passed and ok.status == "passed" and ok.stdout.strip() == "done"
    bad = run_code("assert 2 + 2 == 5")
    assert not bad.passed and bad.status == "failed" and "AssertionError" in bad.stderr
    syn = run_code("def f(:\n    pass")
    assert syn.status == "failed" and "SyntaxError" in syn.stderr


@pytest.mark.parametrize("program", ["while True:\n    pass", "import time\ntime.sleep(60)"])
def test_runaway_code_is_killed(program):
    r = run_code(program, timeout_s=1.5)
    assert r.status == "timeout" and not r.passed and r.returncode is None


def test_fork_bomb_is_blocked():
    r = run_code("import os\nwhile True:\n    os.fork()", timeout_s=3)
    assert r.status == "blocked" and not r.passed
    assert "os.fork" in r.stderr


@pytest.mark.parametrize("program", [
    "import subprocess\nsubprocess.run(['sleep', '30'])",
    "import os\nos.system('sleep 30')",
    "import os\nos.execv('/bin/sleep', ['sleep', '30'])",
    "import os\nos.kill(1, 9)",
])
def test_process_creation_and_signals_are_blocked(program):
    r = run_code(program, timeout_s=3)
    assert r.status == "blocked", r.stderr


def test_memory_hog_is_stopped():
    r = run_code("x = bytearray(4 * 1024 ** 3)", memory_mb=256, timeout_s=5)
    assert r.status == "memory" and not r.passed
    r = run_code("xs = []\nwhile True:\n    xs.append(' ' * 10 ** 6)", memory_mb=256, timeout_s=5)
    assert r.status in ("memory", "timeout") and not r.passed


@pytest.mark.parametrize("program", [
    "import socket\ns = socket.socket()\ns.connect(('1.1.1.1', 80))",
    "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=2)",
    "import ctypes\nctypes.CDLL(None).socket(2, 1, 0)",
])
def test_network_is_blocked(program):
    r = run_code(program, timeout_s=5)
    assert r.status == "blocked" and not r.passed, r.stderr


def test_output_flood_is_capped():
    r = run_code("while True:\n    print('x' * 1000)", timeout_s=5, output_limit=64 * 1024)
    assert r.status == "output_limit" and not r.passed
    assert len(r.stdout) < 20000


def test_bad_arguments():
    with pytest.raises(TypeError):
        run_code(b"print(1)")
    with pytest.raises(ValueError, match="timeout_s"):
        run_code("pass", timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        run_code("pass", memory_mb=1)


def test_shipped_code_tasks_pass_with_canonical_and_fail_with_stub():
    rows = read_jsonl(f"{DATA_DIR}/code.jsonl", "code")
    assert len(rows) >= 15
    for r in rows:
        good = run_code(build_program(r["prompt"], r["canonical_solution"], r["test"], r["entry_point"]))
        assert good.passed, (r["task_id"], good.stderr)
        stub = run_code(build_program(r["prompt"], "    return None\n", r["test"], r["entry_point"]))
        assert not stub.passed, r["task_id"]
