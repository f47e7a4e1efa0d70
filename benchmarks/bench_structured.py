"""Structured output (JSON-schema constrained decoding) against xgrammar, on SmolLM2's vocabulary.

Napkin math: a token mask over V = 49152 tokens. Our cold cost for a new DFA state is one table
lookup per byte of every token still alive (<= ~300 k lookups, fewer after the first byte kills
most tokens outside strings); a visited state is a dict hit. Applying a mask is one pass over V
logits (196 KB of float32). xgrammar precomputes context-independent tokens at compile time and
runs a pushdown automaton over the rest per step, writing a V/32-word bitmask.

Cases (all on the ToolAgent-style call schema of two tools, SmolLM2's tokenizer):
- compile: schema -> ready guide. infercore = grammar + DFA + per-vocabulary tables (the vocabulary
  matrix is built once per model and excluded, like xgrammar's TokenizerInfo); xgrammar =
  GrammarCompiler.compile_json_schema with its cache off.
- mask_cold / mask_warm: replay recorded outputs token by token: mask for the state, apply it to a
  logits row, advance. cold = a fresh guide each call (every first visit pays); warm = the guide of
  a running server whose states are cached. xgrammar: fill_next_token_bitmask +
  apply_token_bitmask_inplace + accept_token (it has no per-state cache: cold and warm alike).
- generate: SmolLM2 greedy decode of the tool-call prompts one at a time, with the schema vs
  without it making exactly as many tokens per prompt (ignore_eos): the whole cost of the guide
  (mask, apply, advance) on the decode path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infercore.bench import Case

CALL_SCHEMA = {
    "anyOf": [
        {"type": "object", "properties": {
            "tool": {"const": "get_weather"},
            "arguments": {"type": "object", "properties": {"city": {"type": "string"},
                                                           "unit": {"enum": ["celsius", "fahrenheit"]}},
                          "required": ["city", "unit"], "additionalProperties": False}},
         "required": ["tool", "arguments"]},
        {"type": "object", "properties": {
            "tool": {"const": "add"},
            "arguments": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                          "required": ["a", "b"], "additionalProperties": False}},
         "required": ["tool", "arguments"]},
        {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
    ]
}  # fmt: skip
SYSTEM = ('Reply with one JSON object: {"tool": NAME, "arguments": {...}} or {"answer": TEXT}. Tools: '
          "get_weather(city, unit: celsius|fahrenheit), add(a: number, b: number).")  # fmt: skip
QUESTIONS = ["What's the weather in Paris in celsius?", "Add 17 and 25.", "Who wrote Hamlet?",
             "Is it cold in Oslo, in fahrenheit?", "What is 3.5 plus 4?", "Tell me about Tokyo.",
             "Weather for Lima please, celsius.", "Sum 100 and 250."]  # fmt: skip


def _xgrammar_guide(tokens: list[bytes | None], vocab_size: int, eos: list[int]) -> Any:
    try:
        import torch
        import xgrammar as xgr
    except ImportError:
        return None
    info = xgr.TokenizerInfo([t if t else b"" for t in tokens] + [b""] * (vocab_size - len(tokens)),
                             xgr.VocabType.RAW, vocab_size=vocab_size, stop_token_ids=eos)  # fmt: skip
    return xgr, torch, info


def cases(quick: bool) -> list[Case]:
    from infercore import LLM, SamplingParams
    from infercore.models import resolve_model
    from infercore.structured import Guide, VocabMatrix, compile_dfa, schema_to_grammar, token_bytes

    try:
        resolve_model("smollm2")
    except ValueError:
        return []
    llm = LLM("smollm2")
    vocab_size = llm.model.config.vocab_size
    eos = sorted(llm.engine.eos_token_ids)
    tokens = token_bytes(llm.tokenizer)
    vocab = VocabMatrix(tokens, vocab_size)
    convs = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in QUESTIONS]
    n_prompts = 4 if quick else len(convs)
    convs = convs[:n_prompts]
    params = SamplingParams(max_tokens=96, json_schema=CALL_SCHEMA)
    outs = llm.chat(convs, params)
    replies = [list(o.outputs[0].token_ids) for o in outs]
    n_tokens = sum(len(r) for r in replies)
    shape = f"call-schema {n_prompts}x{n_tokens // n_prompts}tok V{vocab_size}"
    logits = np.zeros(vocab_size, np.float32)

    def compile_ours() -> Guide:
        return Guide(compile_dfa(schema_to_grammar(CALL_SCHEMA)), vocab, eos)

    def replay(guide: Guide) -> None:
        for r in replies:
            s = guide.start
            for t in r:
                row = logits.copy()
                row[~guide.allowed(s)] = -np.inf
                s = guide.advance(s, t)

    warm = compile_ours()
    replay(warm)
    out: list[Case] = [
        Case("structured", "compile", "call-schema", "json", "infercore", compile_ours, min_repeats=3),
        Case("structured", "mask_cold", shape, "json", "infercore", lambda: replay(compile_ours()),
             items=n_tokens, unit="tokens", min_repeats=3),
        Case("structured", "mask_warm", shape, "json", "infercore", lambda: replay(warm), items=n_tokens,
             unit="tokens"),
    ]
    xg = _xgrammar_guide(tokens, vocab_size, eos)
    if xg is not None:
        xgr, torch, info = xg
        compiler = xgr.GrammarCompiler(info, cache_enabled=False)

        def compile_xgr() -> Any:
            return compiler.compile_json_schema(CALL_SCHEMA, any_whitespace=True, max_whitespace_cnt=16)

        compiled = compile_xgr()
        bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        tlogits = torch.zeros((1, vocab_size), dtype=torch.float32)

        def replay_xgr() -> None:
            for r in replies:
                m = xgr.GrammarMatcher(compiled)
                for t in r:
                    m.fill_next_token_bitmask(bitmask)
                    row = tlogits.clone()
                    xgr.apply_token_bitmask_inplace(row, bitmask)
                    if not m.accept_token(t):
                        raise RuntimeError("xgrammar rejected a token our guide allowed")

        replay_xgr()  # both grammars accept the recorded outputs
        out += [
            Case("structured", "compile", "call-schema", "json", "xgrammar", compile_xgr, min_repeats=3),
            Case("structured", "mask_cold", shape, "json", "xgrammar", replay_xgr, items=n_tokens, unit="tokens",
                 min_repeats=3),
            Case("structured", "mask_warm", shape, "json", "xgrammar", replay_xgr, items=n_tokens, unit="tokens"),
        ]

    # one request at a time, and the unconstrained run makes exactly as many tokens per prompt:
    # the rows differ only by the guide (a batch would also differ in how long rows stay full)
    free = [SamplingParams(max_tokens=len(r), ignore_eos=True) for r in replies]
    gen_shape = f"smollm2 {n_prompts} prompts 1 stream greedy"

    def one_by_one(ps: list[SamplingParams]) -> None:
        for c, p in zip(convs, ps, strict=True):
            llm.chat(c, p)

    out += [
        Case("structured", "generate", gen_shape, "json", "infercore", lambda: one_by_one([params] * n_prompts),
             items=n_tokens, unit="tokens", min_repeats=2),
        Case("structured", "generate", gen_shape, "json", "unconstrained", lambda: one_by_one(free),
             items=n_tokens, unit="tokens", min_repeats=2),
    ]
    return out
