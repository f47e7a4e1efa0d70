"""`infercore info` and `infercore bench` (table, JSON, --compare regression exit code)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infercore.bench import report
from infercore.bench.case import Result
from infercore.cli.main import main


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infercore.cli.main", *args], capture_output=True, text=True, timeout=300
    )


def test_info_table_and_json():
    out = _cli("info")
    assert out.returncode == 0, out.stderr
    assert "isa in use" in out.stdout and "cuda compiled" in out.stdout and "amx tiles" in out.stdout
    js = _cli("info", "--json")
    cpu = json.loads(js.stdout)["cpu"]
    assert cpu["isa"]
    assert cpu["amx_bf16"] or not cpu["amx_bf16x3_gemm"]  # the bf16 tiles only where the CPU has them


def test_bench_json_and_compare(tmp_path):
    first = tmp_path / "first.json"
    out = _cli("bench", "norm", "--quick", "--filter", "1x576", "--json", str(first))
    assert out.returncode == 0, out.stderr
    assert "streaming read" in out.stdout and "rms_norm" in out.stdout and "numpy" in out.stdout
    doc = json.loads(first.read_text())
    assert doc["bandwidth_gbps"] > 0 and doc["results"]
    ours = [r for r in doc["results"] if r["impl"] == "infercore"]
    assert ours and all(r["speedup_vs"] for r in ours)  # every infercore row has a measured peer
    # A baseline 100x faster than anything real: every infercore case is a regression -> exit 1.
    fast = dict(doc, results=[dict(r, median_s=r["median_s"] / 100) for r in doc["results"]])
    base = tmp_path / "fast.json"
    base.write_text(json.dumps(fast))
    bad = _cli("bench", "norm", "--quick", "--filter", "1x576", "--compare", str(base))
    assert bad.returncode == 1
    assert "regression" in bad.stderr
    # A baseline 100x slower: no regression -> exit 0.
    slow = dict(doc, results=[dict(r, median_s=r["median_s"] * 100) for r in doc["results"]])
    base.write_text(json.dumps(slow))
    good = _cli("bench", "norm", "--quick", "--filter", "1x576", "--compare", str(base))
    assert good.returncode == 0, good.stderr


def _result(key: str, impl: str, median: float) -> Result:
    return Result(key, "s", "op", "1", "float32", impl, "cpu", "avx2", 1, median, median, 5, None, None, None)


def test_compare_only_judges_our_cases():
    baseline = {"results": [{"key": "a", "median_s": 1.0}, {"key": "p", "median_s": 1.0}]}
    lines, regressions = report.compare([_result("a", "infercore", 1.05), _result("p", "numpy", 9.0)], baseline, 0.10)
    assert len(lines) == 1 and regressions == []
    _, regressions = report.compare([_result("a", "infercore", 1.2)], baseline, 0.10)
    assert len(regressions) == 1
    # our variants ("infercore-high": another precision) are judged too; "infercore_x" is a peer name
    baseline = {"results": [{"key": "h", "median_s": 1.0}, {"key": "q", "median_s": 1.0}]}
    _, regressions = report.compare([_result("h", "infercore-high", 1.3), _result("q", "infercorex", 2.0)], baseline,
                                    0.10)
    assert len(regressions) == 1 and regressions[0].startswith("h:")


def test_bench_bad_arguments(tmp_path):
    assert main(["bench", "nosuchsuite"]) == 2
    assert main(["bench", "norm", "--compare", str(tmp_path / "missing.json")]) == 2
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert main(["bench", "norm", "--compare", str(junk)]) == 2
    with pytest.raises(SystemExit) as e:  # the parser names the option
        main(["bench", "norm", "--tolerance", "-1"])
    assert e.value.code == 2


@pytest.mark.parametrize("argv", [["bench", "norm", "--threads", "0"], ["generate", "--threads", "-2", "hi"],
                                  ["serve", "--threads", "abc"]])
def test_threads_option_is_named_in_its_error(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "argument --threads: expected an int >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv, option, expected", [
    (["serve", "--port", "99999"], "--port", "a port number in [0, 65535]"),  # uvicorn said "running", then stopped
    (["serve", "--port", "-1"], "--port", "a port number in [0, 65535]"),  # a resolver error from uvicorn
    (["serve", "--port", "http"], "--port", "a port number in [0, 65535]"),
    (["serve", "--max-body-bytes", "0"], "--max-body-bytes", "an int >= 1"),
    (["serve", "--rag-window", "-1"], "--rag-window", "an int >= 1"),
    (["serve", "--watch-window", "-1"], "--watch-window", "an int >= 1"),  # ignored unless a playbook ran
    (["serve", "--watch-min-samples", "0"], "--watch-min-samples", "an int >= 1"),
    (["serve", "--replicas", "0"], "--replicas", "an int >= 1"),  # ignored without --ray
    (["serve", "--max-ongoing-requests", "0"], "--max-ongoing-requests", "an int >= 1"),
    (["synth", "report", "x.jsonl", "--max-items", "-1"], "--max-items", "an int >= 1"),  # random.sample's error
])
def test_numeric_options_are_checked_by_the_parser(argv, option, expected, capsys):
    # these started a server that ignored or mis-used the value, or failed later with another name
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert f"argument {option}: expected {expected}" in capsys.readouterr().err


def test_plot_draws_throughput_vs_concurrency(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    rows = []
    for streams, rate in ((1, 50.0), (4, 150.0), (16, 260.0)):
        r = Result(f"g{streams}", "generate", f"decode x{streams}", "s", "q4_1", "infercore", "cpu", "avx2", 2,
                   1.0, 1.0, 3, None, None, None)  # fmt: skip
        r.extra["tok/s"] = rate
        rows.append(r)
    # the sampled row of the same concurrency (the generate suite's last case) is not a point; its
    # name once crashed --plot ("16 sampled" is no int)
    sampled = Result("gs", "generate", "decode x16 sampled", "s", "q4_1", "infercore", "cpu", "avx2", 2,
                     1.0, 1.0, 3, None, None, None)  # fmt: skip
    sampled.extra["tok/s"] = 250.0
    rows.append(sampled)
    path = tmp_path / "bench.png"
    report.plot(rows, str(path))
    conc = tmp_path / "bench-concurrency.png"
    assert path.stat().st_size > 1000 and conc.stat().st_size > 1000
    assert conc.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report._plot_concurrency(plt, rows[:0], str(path)) is None
