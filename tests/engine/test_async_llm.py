"""AsyncLLM: concurrent requests over one engine thread, streaming, abort on disconnect."""

from __future__ import annotations

import asyncio

import pytest

from infercore.engine.async_llm import AsyncLLM
from infercore.engine.sampling_params import SamplingParams

from .test_engine import _engine, _greedy_reference


def _collect(alm, prompt, params, rid=None):
    async def run():
        outs = [o async for o in alm.generate(prompt, params, request_id=rid)]
        return outs

    return run()


def test_concurrent_requests_match_greedy_reference():
    engine, _ = _engine()
    alm = AsyncLLM(engine)
    prompts = [[i + 1, i + 2, 3] for i in range(6)]

    async def main():
        return await asyncio.gather(*[_collect(alm, p, SamplingParams(max_tokens=10)) for p in prompts])

    try:
        results = asyncio.run(main())
    finally:
        alm.shutdown()
    for p, outs in zip(prompts, results, strict=True):
        assert outs[-1].finished
        assert outs[-1].outputs[0].token_ids == _greedy_reference(p, 10)
        assert "".join(o.outputs[0].delta for o in outs) == outs[-1].outputs[0].text


def test_leaving_early_aborts_and_frees_blocks():
    engine, _ = _engine()
    alm = AsyncLLM(engine)

    async def main():
        agen = alm.generate([1, 2, 3, 4, 5], SamplingParams(max_tokens=500, ignore_eos=True))
        async for _ in agen:
            break
        await agen.aclose()  # what a client disconnect does
        for _ in range(100):
            if not engine.has_unfinished_requests():
                return True
            await asyncio.sleep(0.01)
        return False

    try:
        assert asyncio.run(main())
        assert engine.allocator.num_free_blocks == engine.allocator.num_blocks
    finally:
        alm.shutdown()


def test_bad_request_raises_in_its_own_stream():
    engine, _ = _engine()
    alm = AsyncLLM(engine)
    try:
        with pytest.raises(ValueError, match="empty"):
            asyncio.run(_collect(alm, [], SamplingParams()))
        ok = asyncio.run(_collect(alm, [4, 5], SamplingParams(max_tokens=3)))  # the engine still works
        assert ok[-1].finished
    finally:
        alm.shutdown()


def test_one_driver_per_engine():
    engine, _ = _engine()
    first = AsyncLLM(engine)
    try:
        with pytest.raises(ValueError, match="already driven"):
            AsyncLLM(engine)
        assert first.healthy
    finally:
        first.shutdown()
    second = AsyncLLM(engine)  # allowed once the first one is shut down
    second.shutdown()
