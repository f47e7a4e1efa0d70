"""Ahead-of-time builds of the Triton paged-attention kernels for sm_90 (and sm_80 for the fp8
bit decoder) with exactly the arguments and constexprs the launchers pass: the interpreter
accepts programs the GPU compiler rejects (an fp8 `other=` was one), so this catches those
without a GPU, and checks the builds use no local memory (register spills).

Needs Triton's NVIDIA backend (ptxas, cuobjdump ship in the triton wheel); no GPU. The builds run
in one subprocess without TRITON_INTERPRET (under the interpreter @triton.jit gives interpreted
functions, which cannot be compiled).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
triton = pytest.importorskip("triton")

from infercore.kernels import attention as KA  # noqa: E402

from infercore import ops  # noqa: E402

pytestmark = pytest.mark.slow

_BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
if not os.path.exists(os.path.join(_BIN, "cuobjdump")) or not os.path.exists(os.path.join(_BIN, "ptxas")):
    pytest.skip("triton's NVIDIA backend tools (ptxas, cuobjdump) are not installed", allow_module_level=True)

_PTR = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16", torch.float8_e4m3fn: "*fp8e4nv",
        torch.int8: "*i8", torch.uint8: "*u8", torch.int16: "*i16", torch.int32: "*i32", torch.int64: "*i64"}


class _Capture:
    """Stands in for a JIT kernel: records the launches instead of running them."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __getitem__(self, grid):
        return lambda *args, **kw: self.calls.append((args, kw))


def _build(fn, args, kw, arch: int) -> str:
    from triton.backends.compiler import GPUTarget

    kw = dict(kw)
    warps = kw.pop("num_warps", 4)
    sig = {}
    for name, a in zip(fn.arg_names, args, strict=False):
        if isinstance(a, torch.Tensor):
            sig[name] = _PTR[a.dtype]
        elif isinstance(a, bool):
            sig[name] = "i1"
        elif isinstance(a, int):
            sig[name] = "i32" if -(2**31) <= a < 2**31 else "i64"
        else:
            sig[name] = "fp32"
    for name in kw:
        sig[name] = "constexpr"
    src = triton.compiler.ASTSource(fn, sig, kw)
    k = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": warps})
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(k.asm["cubin"])
    try:
        out = subprocess.run([os.path.join(_BIN, "cuobjdump"), "--dump-resource-usage", f.name], capture_output=True,
                             text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    return next(line for line in out.splitlines() if "REG:" in line)


class _Patch:
    """monkeypatch for the subprocess (outside pytest)."""

    def setattr(self, obj, name, value):
        setattr(obj, name, value)


def _captured(mp, names):
    caps = {n: _Capture(getattr(KA, n)) for n in names}
    for n, c in caps.items():
        mp.setattr(KA, n, c)
    return caps


def _cache(dt, nb=6, bs=16, hkv=3, d=64):
    shape = (nb, bs, hkv, d)
    t = torch.zeros(shape, dtype=getattr(torch, dt))
    sc = dict(k_scale=torch.ones(shape[:3]), v_scale=torch.ones(shape[:3])) if dt == "int8" else {}
    return t, t.clone(), sc


DECODE = [  # (dtype, Hq, Hkv, D, native fp8, arch)
    ("float16", 9, 3, 64, None, 90),       # SmolLM2: broadcast product, split-K + merge
    ("float16", 32, 8, 128, None, 90),     # 7B-like
    ("bfloat16", 4, 4, 128, None, 80),
    ("float32", 9, 3, 64, None, 90),       # G = 9: tl.dot, 3xTF32
    ("float8_e4m3fn", 32, 8, 128, True, 90),
    ("float8_e4m3fn", 9, 3, 64, False, 80),
    ("int8", 32, 8, 128, None, 90),
    ("bfloat16", 8, 1, 128, None, 90),     # G = 8: the largest broadcast product
]
PREFILL = [  # (dtype, Hq, Hkv, D, native fp8, arch)
    ("float16", 9, 3, 64, None, 90),
    ("bfloat16", 32, 8, 128, None, 90),
    ("float32", 4, 4, 128, None, 90),
    ("float8_e4m3fn", 9, 3, 64, True, 90),
    ("int8", 32, 8, 128, None, 80),
]
RESHAPE = ["float32", "float16", "bfloat16", "float8_e4m3fn", "int8"]


def _cid(kind, c):
    return f"{kind}-{c[0]}-h{c[1]}/{c[2]}-d{c[3]}-sm{c[5]}" if kind != "reshape" else f"reshape-{c}"


def _build_all() -> dict[str, list[str]]:
    """(subprocess) capture every launch of every case and build it: {case id: [usage or error]}."""
    mp = _Patch()
    mp.setattr(KA, "_check_device", lambda t, name: None)  # CPU tensors stand in for the GPU's
    out: dict[str, list[str]] = {}
    bt = np.arange(6, dtype=np.int32).reshape(1, 6)
    for kind, cases in (("decode", DECODE), ("prefill", PREFILL), ("reshape", RESHAPE)):
        for c in cases:
            try:
                if kind == "reshape":
                    caps = _captured(mp, ["_reshape_kernel"])
                    kc, vc, sc = _cache(c)
                    x = torch.zeros(2, 3, 64, dtype=torch.float16)
                    ops.reshape_and_cache(x, x, kc, vc, np.array([0, 5]), backend="triton", **sc)
                    arch = 90
                else:
                    dt, hq, hkv, d, native, arch = c
                    mp.setattr(KA, "FP8_NATIVE", native)
                    kc, vc, sc = _cache(dt, hkv=hkv, d=d)
                    lens = np.array([90], np.int32)
                    if kind == "decode":
                        caps = _captured(mp, ["_decode_kernel", "_merge_kernel"])
                        ops.paged_attention_decode(torch.zeros(1, hq, d), kc, vc, bt, lens, num_splits=3,
                                                   backend="triton", **sc)
                    else:
                        caps = _captured(mp, ["_prefill_kernel"])
                        ops.paged_attention_prefill(torch.zeros(20, hq, d), kc, vc, bt, lens,
                                                    np.array([0, 20], np.int32), backend="triton", **sc)
                res = []
                for name, cap in caps.items():
                    mp.setattr(KA, name, cap.fn)
                    res += [f"{name} " + _build(cap.fn, *call, arch) for call in cap.calls]
                    if len(cap.calls) != 1:
                        res.append(f"ERROR {name}: {len(cap.calls)} launches")
            except Exception as e:  # reported by the test of this case
                res = [f"ERROR {type(e).__name__}: {e}"]
            out[_cid(kind, c)] = res
    return out


@pytest.fixture(scope="module")
def builds():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    r = subprocess.run([sys.executable, __file__], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _check(lines: list[str]) -> None:
    assert lines and not any(line.startswith("ERROR") for line in lines), lines
    for line in lines:
        fields = dict(f.split(":") for f in line.split() if ":" in f)
        assert fields["STACK"] == "0" and fields["LOCAL"] == "0", line  # no register spills


@pytest.mark.parametrize("case", DECODE, ids=lambda c: _cid("decode", c))
def test_decode_builds_without_spills(case, builds):
    _check(builds[_cid("decode", case)])


@pytest.mark.parametrize("case", PREFILL, ids=lambda c: _cid("prefill", c))
def test_prefill_builds_without_spills(case, builds):
    _check(builds[_cid("prefill", case)])


@pytest.mark.parametrize("case", RESHAPE)
def test_reshape_and_cache_builds(case, builds):
    _check(builds[_cid("reshape", case)])


if __name__ == "__main__":
    print(json.dumps(_build_all()))
