"""`infercore generate` (one-shot, streamed) and `infercore chat` (interactive)."""

from __future__ import annotations

import argparse
import sys
import time

from ._argtypes import positive_int


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2", help="smollm2, a .gguf file or a Hugging Face directory")
    p.add_argument("--quantization", choices=["int8", "fp8", "int4"], help="runtime weight format")
    p.add_argument("--kv-cache-dtype", default="auto", choices=["auto", "float16", "bfloat16", "fp8", "int8"])
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=positive_int, help="CPU threads for the kernels")


def _make(args: argparse.Namespace):
    import infercore
    from infercore.engine.llm import LLM
    from infercore.engine.sampling_params import SamplingParams

    if args.threads is not None:
        infercore.set_num_threads(args.threads)
    llm = LLM(args.model, quantization=args.quantization, kv_cache_dtype=args.kv_cache_dtype)
    params = SamplingParams(max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                            top_k=args.top_k, seed=args.seed)  # fmt: skip
    return llm, params


def cmd_generate(args: argparse.Namespace) -> int:
    llm, params = _make(args)
    for prompt in args.prompt:
        text = llm.render_chat([{"role": "user", "content": prompt}]) if args.chat else prompt
        ids = llm.tokenizer.encode(text, add_special_tokens=not args.chat)
        t0 = time.perf_counter()
        n = 0
        for delta in llm.stream({"prompt_token_ids": ids}, params):
            sys.stdout.write(delta)
            sys.stdout.flush()
            n += 1
        dt = time.perf_counter() - t0
        sys.stdout.write("\n")
        print(f"[{len(ids)} prompt tokens, {dt:.2f} s]", file=sys.stderr)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    llm, params = _make(args)
    history: list[dict[str, str]] = []
    if args.system:
        history.append({"role": "system", "content": args.system})
    print("infercore chat: type a message, /reset to start over, /exit or Ctrl-D to quit", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        if line.strip() == "/exit":
            return 0
        if line.strip() == "/reset":
            history = history[:1] if args.system else []
            continue
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        ids = llm.tokenizer.encode(llm.render_chat(history), add_special_tokens=False)
        reply = []
        for delta in llm.stream({"prompt_token_ids": ids}, params):
            reply.append(delta)
            sys.stdout.write(delta)
            sys.stdout.flush()
        sys.stdout.write("\n")
        history.append({"role": "assistant", "content": "".join(reply)})


def register(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("generate", help="generate text from prompts (streamed)")
    g.add_argument("prompt", nargs="+", help="prompt text(s)")
    g.add_argument("--chat", action="store_true", help="wrap each prompt in the model's chat template")
    _engine_args(g)
    g.set_defaults(func=cmd_generate)
    c = sub.add_parser("chat", help="interactive chat with streaming output")
    c.add_argument("--system", help="system prompt")
    _engine_args(c)
    c.set_defaults(func=cmd_chat)
