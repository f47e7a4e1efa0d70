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


def test_one_failing_request_does_not_stop_the_others(failing_sampler):
    # a request whose sampling raised used to stop the engine loop: every request in flight and
    # every later one failed ("the engine loop has failed"); now only that request does
    from infercore.engine.core import RequestFailedError

    engine, _ = _engine()
    alm = AsyncLLM(engine)
    good = SamplingParams(max_tokens=8)
    bad = SamplingParams(max_tokens=8, seed=666)

    async def main():
        return await asyncio.gather(_collect(alm, [1, 2, 3], good), _collect(alm, [4, 5, 6], bad),
                                    _collect(alm, [7, 8, 9], good), return_exceptions=True)  # fmt: skip

    try:
        ok1, failed, ok2 = asyncio.run(main())
        assert isinstance(failed, RequestFailedError) and "produced NaN" in str(failed)
        assert ok1[-1].outputs[0].token_ids == _greedy_reference([1, 2, 3], 8)
        assert ok2[-1].outputs[0].token_ids == _greedy_reference([7, 8, 9], 8)
        later = asyncio.run(_collect(alm, [1, 2, 3], good))
        assert later[-1].finished and alm.healthy
        assert engine.allocator.num_free_blocks == engine.allocator.num_blocks
    finally:
        alm.shutdown()


def test_offline_generate_raises_the_failure_and_stays_usable(failing_sampler):
    from infercore.engine.core import RequestFailedError

    engine, _ = _engine()
    for _ in range(2):
        engine.add_request("ok", [1, 2, 3], SamplingParams(max_tokens=6))
        engine.add_request("bad", [4, 5], SamplingParams(max_tokens=6, seed=666))
        outs = {}
        while engine.has_unfinished_requests():
            outs.update({o.request_id: o for o in engine.step() if o.finished})
        failed = engine.take_failures()
        assert set(failed) == {"bad"} and isinstance(failed["bad"], RequestFailedError)
        assert set(outs) == {"ok"} and outs["ok"].outputs[0].token_ids == _greedy_reference([1, 2, 3], 6)
        assert engine.take_failures() == {}
        assert engine.allocator.num_free_blocks == engine.allocator.num_blocks
