"""Mutation fuzz of public entry points: a valid call with one argument replaced at a time by a
wrong type, shape, dtype, size or value must succeed or raise a typed error naming the problem
(ValueError / TypeError, KeyError for a lookup of an unknown id), never another exception, a
hang or a crash. The cases that found bugs here: topk k = 10^9 (OOM kill), BlockAllocator and
PagedKVCache with 2^31 blocks (hang / OOM), dequantize_int8 and sample_row (AttributeError,
IndexError: a uint8 `allowed` mask was read as token ids)."""

from __future__ import annotations

import faulthandler
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from infercore import monitor, ops, quant, rag, structured, synth
from infercore.engine import SamplingParams, sample_row
from infercore.evals.gate import bootstrap_ci
from infercore.kv import BlockAllocator, NoFreeBlocksError, PagedKVCache
from infercore.prompts.experiments import two_proportion_z
from infercore.search import VectorIndex

RNG = np.random.default_rng(0)


def _f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def mutations(x: Any) -> list[Any]:
    """Wrong values for an argument whose valid value is x."""
    out: list[Any] = [None, "abc", 3, 2.5, -1, [1, 2], float("nan"), True, object(), {}]
    makers: list[Callable[[], Any]] = []
    if isinstance(x, np.ndarray):
        makers = [lambda: x.astype(np.float64), lambda: x.astype(np.int32), lambda: x.astype(bool),
                  lambda: x.astype(np.complex64), lambda: x[..., ::2], lambda: x.T, lambda: x.reshape(-1),
                  lambda: x[None], lambda: x[:0], lambda: x.astype(np.float16), lambda: np.asfortranarray(x),
                  lambda: x.view(np.uint8)]
        if x.dtype.kind == "f":
            makers += [lambda: np.full_like(x, np.nan), lambda: np.full_like(x, np.inf)]
        if x.dtype.kind in "iu":
            makers += [lambda: np.full_like(x, np.iinfo(x.dtype).max), lambda: np.full_like(x, np.iinfo(x.dtype).min),
                       lambda: x.astype(np.int64) + 10**6, lambda: x.astype(np.int64) - 10**6]
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        out += [0, -3, 10**12, float("inf"), 2**31, 2**63, 2**64, 1e-30]
    for make in makers:
        try:
            out.append(make())
        except (TypeError, ValueError):
            pass
    return out


def _attention_cases() -> dict[str, Callable[[], tuple]]:
    nb, bs, hkv, d, hq = 6, 8, 2, 16, 4
    cache = np.zeros((nb, bs, hkv, d), np.float16)
    bt = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
    lens = np.array([10, 17], np.int32)
    return {
        "reshape_and_cache": lambda: (ops.reshape_and_cache,
                                      [_f32(10, hkv, d), _f32(10, hkv, d), cache.copy(), cache.copy(),
                                       np.arange(10, dtype=np.int64)], {}),
        "paged_attention_decode": lambda: (ops.paged_attention_decode, [_f32(2, hq, d), cache, cache, bt, lens],
                                           {"sliding_window": 5}),
        "paged_attention_prefill": lambda: (ops.paged_attention_prefill,
                                            [_f32(5, hq, d), cache, cache, bt, lens, np.array([0, 3, 5], np.int32)],
                                            {}),
    }


def _allocated() -> BlockAllocator:
    a = BlockAllocator(16, 4)
    a.allocate("s", list(range(10)))
    return a


CASES: dict[str, Callable[[], tuple]] = {
    "topk_inner_product": lambda: (ops.topk_inner_product, [_f32(3, 16), _f32(50, 16), 5], {}),
    "topk_cosine": lambda: (ops.topk_cosine, [_f32(3, 16), _f32(50, 16), 5], {"allowed": np.arange(0, 50, 2)}),
    "topk_int8": lambda: (ops.topk_inner_product, [_f32(3, 16), np.ones((50, 16), np.int8), 7],
                          {"corpus_scale": np.ones(50, np.float32)}),
    "rms_norm": lambda: (ops.rms_norm, [_f32(4, 32), _f32(32)], {"eps": 1e-6}),
    "silu_and_mul": lambda: (ops.silu_and_mul, [_f32(4, 32)], {}),
    "gelu": lambda: (ops.gelu, [_f32(4, 32)], {"approximate": "tanh"}),
    "l2_normalize": lambda: (ops.l2_normalize, [_f32(4, 32)], {}),
    "rotary_embedding": lambda: (ops.rotary_embedding, [_f32(4, 16), np.arange(4), _f32(16, 4), _f32(16, 4)],
                                 {"heads": 2, "interleaved": False}),
    "linear": lambda: (ops.linear, [_f32(4, 32), _f32(8, 32), _f32(8)], {}),
    **_attention_cases(),
    "quantize_weight": lambda: (quant.quantize_weight, [_f32(16, 64), "int4"], {}),
    "quantize_int8": lambda: (quant.quantize_int8, [_f32(4, 8)], {"axis": -1}),
    "dequantize_int8": lambda: (quant.dequantize_int8, list(quant.quantize_int8(_f32(4, 8))), {"axis": -1}),
    "fp8_e4m3_from_float": lambda: (quant.fp8_e4m3_from_float, [_f32(10)], {}),
    "BlockAllocator": lambda: (BlockAllocator, [16, 8], {"watermark": 0.01}),
    "BlockAllocator.slot_mapping": lambda: (_allocated().slot_mapping, ["s", 0, 10], {}),
    "BlockAllocator.append": lambda: (_allocated().append, ["s", [1, 2]], {}),
    "PagedKVCache": lambda: (PagedKVCache, [2, 8, 16, 2, 16, "float16"], {}),
    "PagedKVCache.from_budget": lambda: (PagedKVCache.from_budget, [1 << 20, 2, 16, 2, 16], {}),
    "VectorIndex": lambda: (VectorIndex, [16], {"metric": "ip", "dtype": "int8", "refine_factor": 4}),
    "VectorIndex.reserve": lambda: (VectorIndex(16).reserve, [100], {}),
    "VectorIndex.search": lambda: (_index().search, [_f32(3, 16), 4], {}),
    "sample_row": lambda: (sample_row, [_f32(50), SamplingParams(temperature=0.8, top_k=5, logprobs=2),
                                        np.random.default_rng(0)],
                           {"prompt_ids": [1, 2], "output_ids": [3], "suppress": [4], "allowed": np.ones(50, bool)}),
    # the Python layer's helpers whose bad values once hung, divided by zero or dropped rows silently
    "near_duplicates": lambda: (synth.near_duplicates, [["alpha beta", "gamma delta", "alpha beta"]],
                                {"threshold": 0.8, "num_perm": 64, "k": 3}),
    "cluster_count": lambda: (synth.cluster_count, [_f32(20, 8)], {"threshold": 0.8, "block": 8}),
    "drift_compare": lambda: (monitor.compare, [_f32(200), _f32(200)], {"bins": 10, "alpha": 0.5, "threshold": 0.1}),
    "reciprocal_rank_fusion": lambda: (rag.reciprocal_rank_fusion, [[[1, 2, 3], [3, 2]]], {"k": 60}),
    "cited_answer_regex": lambda: (rag.cited_answer_regex, [3], {"max_sentences": 2, "max_chars": 150}),
    "mmr": lambda: (rag.mmr, [_f32(8), _f32(10, 8), 3], {"lambda_mult": 0.5}),
    "two_proportion_z": lambda: (two_proportion_z, [30, 100, 45, 100], {}),
    "bootstrap_ci": lambda: (bootstrap_ci, [_f32(30), _f32(30)], {"resamples": 200, "seed": 0}),
    "schema_to_grammar": lambda: (structured.schema_to_grammar, [{"type": "object", "properties": {"a": {"type":
                                  "integer"}}}], {"any_depth": 2, "max_whitespace": 16}),
}

# Lookups of an unknown sequence or id raise KeyError, as a dict does; an allocator out of
# blocks raises NoFreeBlocksError (the engine preempts on it).
ALLOWED = (ValueError, TypeError, KeyError, NoFreeBlocksError)


def _index() -> VectorIndex:
    ix = VectorIndex(16, metric="ip")
    ix.add(_f32(40, 16))
    return ix


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_wrong_argument_is_a_typed_error(name):
    fn, args, kw = CASES[name]()
    fn(*args, **kw)  # the baseline call is valid
    slots = [(i, args[i]) for i in range(len(args))] + list(kw.items())
    surprises = []
    faulthandler.dump_traceback_later(120, exit=True)  # a hang fails loudly instead of stalling CI
    try:
        for key, valid in slots:
            for bad in mutations(valid):
                fn, args, kw = CASES[name]()  # fresh state for every call
                if isinstance(key, int):
                    args[key] = bad
                else:
                    kw[key] = bad
                try:
                    fn(*args, **kw)
                except ALLOWED as e:
                    if not str(e):
                        surprises.append(f"{key} <- {bad!r:.60}: {type(e).__name__} without a message")
                except Exception as e:  # the point: catch the untyped ones
                    surprises.append(f"{key} <- {bad!r:.60}: {type(e).__name__}: {str(e)[:120]}")
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert not surprises, "\n".join(surprises)
