"""Swap the model a running server serves without dropping the requests in flight.

    info = await swap_model(st, new_llm, on_drained=callback)   # on the server's event loop

The new LLM gets its own AsyncLLM (its own engine thread). `st.llm`, `st.alm`, the admission
capacity and the engine gauges move to it together, with no await in between, so every request
admitted from then on runs on the new model. A request already streaming holds the old AsyncLLM's
generator and finishes there, on the weights it started with. A drain task waits until the old
AsyncLLM has no open streams, stops its engine thread and tells `on_drained(info)` (the playbooks
record the event `model_drained`). Both models are resident until the drain ends.

Only a model with the same vocabulary may take over: a request tokenized just before the swap can
run on the new model, and the app's routes keep the tokenizer they were built with. A model with
another tokenizer needs a restart (or a new Ray Serve deployment version).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ..engine.async_llm import AsyncLLM

DRAIN_POLL_S = 0.05


def vocabulary_mismatch(old: Any, new: Any) -> str | None:
    """Why `new` cannot serve requests tokenized for `old` (None when it can): vocabulary size,
    BOS/EOS ids, and the token strings at ~1024 ids spread over the vocabulary."""
    a, b = getattr(old, "tokenizer", None), getattr(new, "tokenizer", None)
    if b is None:
        return "the new model has no tokenizer (skip_tokenizer_init)"
    if a.vocab_size != b.vocab_size:
        return f"vocabulary size {b.vocab_size} differs from the served model's {a.vocab_size}"
    for name in ("bos_token_id", "eos_token_id"):
        if getattr(a, name) != getattr(b, name):
            return f"{name} {getattr(b, name)} differs from the served model's {getattr(a, name)}"
    for i in range(0, a.vocab_size, max(1, a.vocab_size // 1024)):
        if a.id_to_token(i) != b.id_to_token(i):
            return f"token {i} is {b.id_to_token(i)!r}, the served model's is {a.id_to_token(i)!r}"
    return None


async def swap_model(st: Any, new_llm: Any, *, on_drained: Callable[[dict[str, Any]], None] | None = None,
                     max_queue: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Serve `new_llm` from now on (see the module doc); returns what was swapped. Raises
    ValueError when the vocabularies differ, RuntimeError when the server is not running."""
    old_llm, old_alm = st.llm, st.alm
    if old_alm is None:
        raise RuntimeError("the server is not running (no engine to swap)")
    if new_llm is old_llm:
        raise ValueError("new_llm: this model is already served")
    why = vocabulary_mismatch(old_llm, new_llm)
    if why is not None:
        raise ValueError(f"new_llm: {why}; serving it needs a restart")
    engine = new_llm.engine
    if getattr(engine, "_infercore_server", None) is not None:
        raise ValueError("new_llm: another running server already drives this LLM's engine")
    new_alm = AsyncLLM.from_llm(new_llm)
    engine._infercore_server = old_llm.engine._infercore_server
    queue = st.capacity - old_llm.engine.scheduler.max_num_seqs if max_queue is None else max_queue
    # From here to the end of the block nothing awaits: no request sees half a swap.
    st.llm, st.alm = new_llm, new_alm
    st.capacity = engine.scheduler.max_num_seqs + queue
    if st.metrics.engine_collector is not None:
        st.metrics.engine_collector.engine = engine
    in_flight = old_alm.active()
    info = {"in_flight_at_swap": in_flight, "swapped_at": time.time()}
    task = asyncio.get_running_loop().create_task(_drain(old_llm, old_alm, info, on_drained))
    st.draining.add(task)
    task.add_done_callback(st.draining.discard)
    return info


async def _drain(old_llm: Any, old_alm: AsyncLLM, info: dict[str, Any],
                 on_drained: Callable[[dict[str, Any]], None] | None) -> None:  # fmt: skip
    t0 = time.perf_counter()
    try:
        while old_alm.active() and old_alm.healthy:
            await asyncio.sleep(DRAIN_POLL_S)
    finally:  # also when the server stops mid-drain (the task is cancelled): stop the old engine
        await asyncio.shield(asyncio.to_thread(old_alm.shutdown))
        old_llm.engine._infercore_server = None
    if on_drained is not None:
        on_drained({**info, "drain_s": round(time.perf_counter() - t0, 3)})


async def stop_draining(st: Any) -> None:
    """Cancel the drains still running (server shutdown); each stops its old engine first."""
    tasks = list(st.draining)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["stop_draining", "swap_model", "vocabulary_mismatch"]
