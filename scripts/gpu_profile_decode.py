"""Where a GPU decode step spends its host time: cProfile of single-stream greedy decode on a
random model of SmolLM2-135M's shapes with LLM(device="cuda"). Run by scripts/gpu_check.sh."""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

from infercore.benchmarks.bench_generate import _smollm2_shaped_dir

from infercore import LLM, SamplingParams


def main(quantization: str = "int8", tokens: int = 32) -> None:
    llm = LLM(_smollm2_shaped_dir(), quantization=quantization, device="cuda", skip_tokenizer_init=True)
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


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["int8"]))
