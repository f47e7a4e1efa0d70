"""Where a GPU decode step spends its host time: cProfile of single-stream greedy decode on a
random model of SmolLM2-135M's shapes with LLM(device="cuda"), first with the step as a CUDA graph
(INFERCORE_CUDA_GRAPHS=1), then launch by launch. Run by scripts/gpu_check.sh."""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

from infercore.benchmarks.bench_generate import _smollm2_shaped_dir, env_vars

from infercore import LLM, SamplingParams


def main(quantization: str = "int8", tokens: int = 32) -> None:
    path = _smollm2_shaped_dir()
    graphs(path, quantization, tokens)
    llm = LLM(path, quantization=quantization, device="cuda", skip_tokenizer_init=True)
    params = SamplingParams(max_tokens=tokens, ignore_eos=True)
    req = {"prompt_token_ids": [1, 504, 3575]}
    llm.generate(req, SamplingParams(max_tokens=4, ignore_eos=True))  # compile, allocate
    t0 = time.perf_counter()
    llm.generate(req, params)
    print(f"{quantization}: {tokens / (time.perf_counter() - t0):.1f} tok/s wall (unprofiled)", flush=True)
    prof = cProfile.Profile()
    prof.enable()
    llm.generate(req, params)
    prof.disable()
    st = pstats.Stats(prof, stream=sys.stdout)
    st.sort_stats("tottime").print_stats(35)
    st.sort_stats("cumulative").print_stats(45)


def graphs(path: str, quantization: str, tokens: int) -> None:
    """The same decode with the step as a CUDA graph (models/cuda_graphs.py): wall tok/s and the
    host functions left per step."""
    with env_vars({"INFERCORE_CUDA_GRAPHS": "1"}):
        llm = LLM(path, quantization=quantization, device="cuda", skip_tokenizer_init=True)
    params = SamplingParams(max_tokens=tokens, ignore_eos=True)
    req = {"prompt_token_ids": [1, 504, 3575]}
    llm.generate(req, SamplingParams(max_tokens=4, ignore_eos=True))  # capture
    t0 = time.perf_counter()
    llm.generate(req, params)
    dg = llm.model.fast_decode.graphs
    print(f"{quantization} graphs: {tokens / (time.perf_counter() - t0):.1f} tok/s wall (unprofiled), "
          f"graphs {sorted(dg.graphs)}, disabled {dg.disabled}", flush=True)
    prof = cProfile.Profile()
    prof.enable()
    llm.generate(req, params)
    prof.disable()
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    del llm


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["int8"]))
