"""Diagnostic: the Triton top-k padding bug seen only on a GPU (tests/kernels/test_topk_triton.py::
test_ops_backend_triton_matches_cpu_backend: with 3 allowed ids and k = 5 a padding slot comes back
as id 4294967295, i.e. a key whose low 32 bits are 0). Runs that exact call step by step and prints
each stage: the kernel's raw (hi, lo) candidates per split, the joined int64 keys, torch.topk of
them on the GPU and on the CPU, and the decoded ids. Always exits 0.

    PYTHONPATH=python python scripts/gpu_diag_topk.py     (from the repo root)
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

DEV = "cuda" if torch.cuda.is_available() else "cpu"
if DEV == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")
import triton  # noqa: E402

try:
    from infercore.kernels import topk as T
except Exception:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import kernels.topk as T

EXC = -(2**31)


def main() -> None:
    rng = np.random.default_rng(3)
    q = torch.from_numpy(rng.standard_normal((3, 24)).astype(np.float32)).to(DEV)
    c = torch.from_numpy(rng.standard_normal((90, 24)).astype(np.float32)).to(DEV)
    mask = torch.zeros(90, dtype=torch.bool)
    mask[[5, 1, 88]] = True
    mask = mask.to(DEV)
    k, n, nq, d = 5, 90, 3, 24
    kpad = max(16, triton.next_power_of_2(k))
    want = 132 * 4 if DEV == "cuda" else 2
    splits = max(1, min(triton.cdiv(n, kpad), want // nq))
    chunk = triton.cdiv(triton.cdiv(n, splits), kpad) * kpad
    splits = triton.cdiv(n, chunk)
    print(f"device {DEV}: k {k} kpad {kpad} splits {splits} chunk {chunk}")
    for fill in (0, 0x55):  # the output buffer pre-filled: shows slots the kernel never writes
        out = torch.full((nq, splits * kpad, 2), fill, dtype=torch.int32, device=DEV)
        T._topk_kernel[(nq, splits)](
            q, c, q, mask.to(torch.uint8), out, n, d, chunk, splits,
            HAS_CSCALE=False, HAS_MASK=True, COSINE=False,
            K=kpad, LOG_2K=(2 * kpad).bit_length() - 1, BD=min(64, triton.next_power_of_2(d)),
        )  # fmt: skip
        o = out.cpu()
        for qi in range(nq):
            rows = [(j, int(o[qi, j, 0]), int(o[qi, j, 1])) for j in range(splits * kpad)]
            odd = [(j, hi, lo) for j, hi, lo in rows if not (hi == EXC and lo == EXC)]
            print(f" fill {fill:#x} q{qi}: {len(odd)} non-excluded slots: "
                  + ", ".join(f"[{j}] hi {hi & 0xFFFFFFFF:#010x} lo {lo & 0xFFFFFFFF:#010x} (id {2**31 - 1 - lo})"
                              for j, hi, lo in odd[:8]))
        keys = T._join_keys(out[..., 0], out[..., 1])
        top_gpu = keys.topk(k, dim=1, sorted=True).values.cpu()
        top_cpu = keys.cpu().topk(k, dim=1, sorted=True).values
        print(f" fill {fill:#x} torch.topk {DEV} == cpu: {bool((top_gpu == top_cpu).all())}")
        for qi in range(nq):
            print(f"   q{qi} {DEV}: " + " ".join(f"{int(x) & (2**64 - 1):#018x}" for x in top_gpu[qi]))
            if not (top_gpu[qi] == top_cpu[qi]).all():
                print(f"   q{qi} cpu: " + " ".join(f"{int(x) & (2**64 - 1):#018x}" for x in top_cpu[qi]))
        _, i = T.decode_keys(top_gpu.to(DEV))
        print(f" fill {fill:#x} decoded ids: {i.cpu().tolist()}")
    _, i = T.topk(q, c, k, allowed=mask)
    print(f"topk(): ids {i.cpu().tolist()}")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a diagnostic: report and exit 0
        import traceback

        traceback.print_exc()
        print(f"diag failed: {e!r}")
