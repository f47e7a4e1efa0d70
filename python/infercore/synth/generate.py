"""Generate examples from a spec: template rendering, then (if the spec has `llm:`) LLM rendering.

Every example i draws from its own generator seeded by (seed, i), and the LLM samples with a
per-request seed from the same pair, so the same spec, n and seed give byte-identical JSONL, and
the first k rows do not depend on n.
"""

from __future__ import annotations

import os
from typing import Any

from .progress import Progress
from .render import Renderer, example_seed
from .spec import Spec

MAX_ROWS = 10_000_000  # ~0.5-1 KB of Python objects per row


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    if n <= 0:
        raise ValueError(f"n: expected a positive number of examples, got {n}")
    if n > MAX_ROWS:  # the rows are built in memory: 10^9 ran until the OOM killer ended it
        raise ValueError(f"n: at most {MAX_ROWS:,} examples per call (rows are held in memory), got {n:,}")
    return n


def load_spec(spec: Spec | str | os.PathLike[str]) -> Spec:
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return Spec.from_yaml(spec)
    raise TypeError(f"spec: expected a Spec or a path to a YAML spec, got {type(spec).__name__}")


def generate(spec: Spec | str | os.PathLike[str], n: int, *, seed: int | None = None, llm: Any = None,
             progress: bool = False) -> list[dict[str, Any]]:
    """n rows: {"id", "text", ["prompt"], **fields, ["slots"]}.

    seed: overrides the spec's seed. llm: an `infercore.LLM` to use for a spec with `llm:` (default:
    load spec.llm.model). A spec without `llm:` never loads a model.
    """
    spec = load_spec(spec)
    n = _check_n(n)
    if seed is None:
        seed = spec.seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__}")
    r = Renderer(spec)
    drafts = []
    with Progress(n, f"render {spec.name}", progress) as bar:
        for i in range(n):
            drafts.append((i, *r.sample(seed, i)))
            bar.update()
    texts: list[str]
    prompts: list[str | None]
    if spec.llm is None:
        texts = [d[2] for d in drafts]
        prompts = [None] * n
    else:
        prompts = [d[2] for d in drafts]
        texts = _llm_render(spec, drafts, seed, llm, progress)
    rows = []
    for (i, slots, _, _), text, prompt in zip(drafts, texts, prompts, strict=True):
        row: dict[str, Any] = {"id": f"{spec.name}-{i:06d}", "text": text}
        if prompt is not None:
            row["prompt"] = prompt
        row.update(r.fields_for(slots, i, text, prompt, seed))
        if spec.keep_slots:
            row["slots"] = slots
        rows.append(row)
    return rows


def _llm_render(spec: Spec, drafts: list[tuple[Any, ...]], seed: int, llm: Any, progress: bool) -> list[str]:
    from ..engine.sampling_params import SamplingParams

    step = spec.llm
    assert step is not None
    if llm is None:
        from ..engine.llm import LLM

        llm = LLM(step.model)
    inputs: list[Any] = []
    for _, _, prompt, system in drafts:
        if step.chat and getattr(llm, "chat_template", None):
            msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
            inputs.append({"prompt_token_ids": llm.tokenizer.encode(llm.render_chat(msgs), add_special_tokens=False)})
        else:
            inputs.append(f"{system}\n\n{prompt}" if system else prompt)
    params = [SamplingParams(temperature=float(step.temperature), top_p=float(step.top_p), top_k=step.top_k,
                             repetition_penalty=float(step.repetition_penalty), max_tokens=step.max_tokens,
                             stop=list(step.stop) or None, seed=example_seed(seed, i, "llm"))
              for i, *_ in drafts]
    out: list[str] = []
    with Progress(len(inputs), f"llm {spec.name}", progress) as bar:
        for s in range(0, len(inputs), step.batch_size):
            res = llm.generate(inputs[s:s + step.batch_size], params[s:s + step.batch_size])
            for ro in res:
                t = ro.outputs[0].text.strip()
                if step.first_line:
                    t = next((ln.strip() for ln in t.splitlines() if ln.strip()), "")
                out.append(t)
            bar.update(len(res))
    return out
