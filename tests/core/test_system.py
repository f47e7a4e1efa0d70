"""system_info, threads, ISA selection and what `import infercore` loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import infercore


def _py(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


def test_system_info_shape():
    info = infercore.system_info()
    assert info["version"] == infercore.__version__
    assert info["cpu"]["isa"] in info["cpu"]["available_isas"]
    assert info["cpu"]["available_isas"][0] == "scalar"
    assert info["threads"] >= 1
    cuda = info["cuda"]
    assert set(cuda) >= {"compiled", "available", "devices"}
    assert cuda["available"] == (len(cuda["devices"]) > 0)
    for d in cuda["devices"]:
        assert set(d) >= {"name", "cc", "memory"}
    json.dumps(info)  # plain data


def test_set_num_threads_round_trip_and_errors():
    before = infercore.get_num_threads()
    try:
        infercore.set_num_threads(3)
        assert infercore.get_num_threads() == 3
    finally:
        infercore.set_num_threads(before)
    with pytest.raises(ValueError, match="n: expected >= 1"):
        infercore.set_num_threads(0)
    with pytest.raises(TypeError, match="n: expected an int"):
        infercore.set_num_threads(2.5)
    with pytest.raises(TypeError):
        infercore.set_num_threads(True)


def test_set_isa_cannot_exceed_the_machine():
    before = infercore.get_isa()
    try:
        infercore.set_isa("scalar")
        assert infercore.get_isa() == "scalar"
    finally:
        infercore.set_isa(before)
    with pytest.raises(ValueError, match="isa: expected one of"):
        infercore.set_isa("sse9")
    with pytest.raises(TypeError):
        infercore.set_isa(2)
    if "avx512" not in infercore.available_isas():
        with pytest.raises(ValueError, match="at most"):
            infercore.set_isa("avx512")


def test_env_isa_lowers_the_level():
    out = _py("import infercore; print(infercore.get_isa())", INFERCORE_ISA="scalar")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "scalar"
    bad = _py("import infercore; print(infercore.get_isa())", INFERCORE_ISA="bogus")
    assert bad.returncode == 0 and "INFERCORE_ISA" in bad.stderr  # warns, keeps the best level


def test_env_threads():
    out = _py("import infercore; print(infercore.get_num_threads())", INFERCORE_NUM_THREADS="3")
    assert out.stdout.strip() == "3"


def test_import_loads_no_heavy_modules():
    # What keeps `import infercore` fast and CUDA-free: no torch, triton, cupy or CUDA module.
    code = (
        "import sys, infercore; heavy = [m for m in ('torch', 'triton', 'cupy', 'infercore._C_cuda', "
        "'infercore.kernels', 'matplotlib') if m in sys.modules]; print(heavy)"
    )
    out = _py(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_pool_survives_fork():
    code = (
        "import os, numpy as np, infercore\n"
        "x = np.ones((4096, 256), np.float32)\n"
        "infercore.ops.l2_normalize(x)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    y = infercore.ops.l2_normalize(x); os._exit(0 if abs(float(y[0, 0]) - 1/16) < 1e-6 else 3)\n"
        "_, status = os.waitpid(pid, 0); print(os.waitstatus_to_exitcode(status))\n"
    )
    out = _py(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_every_hardware_isa_is_available_by_default():
    """AVX-512 is used wherever the CPU has it (it was opt-in until validated on such a CPU);
    INFERCORE_ISA only lowers the level."""
    out = _py("import infercore, json; print(json.dumps(infercore.system_info()['cpu']))", INFERCORE_ISA="")
    cpu = json.loads(out.stdout)
    assert "avx512_gated" not in cpu
    assert cpu["max_isa"] == cpu["hardware_isa"] == cpu["isa"]
    assert ("avx512" in cpu["available_isas"]) == cpu["avx512"]
    assert cpu["isa"] == ("avx512" if cpu["avx512"] else "avx2" if cpu["avx2"] else "scalar")
    lowered = json.loads(_py("import infercore, json; print(json.dumps(infercore.system_info()['cpu']))",
                             INFERCORE_ISA="scalar").stdout)
    assert lowered["isa"] == "scalar" and lowered["max_isa"] == cpu["max_isa"]
