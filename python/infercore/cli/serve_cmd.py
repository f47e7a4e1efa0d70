"""`infercore serve`: the OpenAI-compatible server (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from . import serve_playbook_opts, serve_ray_opts
from ._argtypes import port, positive_int


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError as e:  # the server's dependencies are optional extras of the wheel
        raise ValueError(f"serve: needs fastapi, uvicorn and prometheus_client ({e})") from None
    if args.ray:  # the same app as a Ray Serve deployment (replicas, autoscaling)
        from infercore.serve.ray_app import run_ray

        return run_ray(args)
    app = build_app_from_args(args)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=30)
    return 0


def build_app_from_args(args: argparse.Namespace):  # -> FastAPI (an optional dependency)
    """The app `infercore serve ARGS` runs (also what each Ray Serve replica builds)."""
    import infercore
    from infercore.serve import build_app

    if args.rag_store:  # an empty directory was served as an empty store
        from infercore.rag.store import require_store

        require_store(args.rag_store, "--rag-store")
    if args.threads is not None:
        infercore.set_num_threads(args.threads)
    guard = None
    if args.guard:
        from infercore.guardrails import Guard

        guard = Guard.from_config(args.guard)
    api_key = args.api_key or os.environ.get("INFERCORE_API_KEY") or None
    # kv_cache_prefault: a server's RSS holds its whole KV pool from the start (flat under load)
    llm = load_llm(args, {"model": args.model})
    name = args.served_model_name or os.path.basename(args.model).removesuffix(".gguf")
    embedder = rag = None
    emb_name = "minilm"
    if args.embedding_model or args.rag_store:
        from infercore.embed import Embedder

        embedder = Embedder(args.embedding_model or "minilm")
        emb_name = os.path.basename(os.path.normpath(args.embedding_model or "minilm"))
    if args.rag_store:
        from infercore.rag import RAG

        rag = RAG(args.rag_store, embedder, llm=llm)
    app = build_app(llm, model_name=name, api_key=api_key, guard=guard, max_body_bytes=args.max_body_bytes,
                    max_queue=args.max_queue, embedder=embedder if args.embedding_model else None,
                    embedding_model_name=emb_name, rag=rag, rag_window=args.rag_window)  # fmt: skip
    if serve_playbook_opts.wanted(args):
        serve_playbook_opts.install(app, args, model_loader=lambda config: load_llm(args, config))
    return app


def load_llm(args: argparse.Namespace, model_config: dict[str, Any]) -> Any:
    """The LLM `infercore serve` runs: model_config's model (a name, .gguf file or Hugging Face
    directory, as a served-model registry version records it) with the command line's engine options."""
    from infercore.engine.llm import LLM

    model = model_config.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError(f"model_config.model: expected a model name or path, got {model!r}")
    # kv_cache_prefault: a server's RSS holds its whole KV pool from the start (flat under load)
    return LLM(model, quantization=args.quantization, kv_cache_dtype=args.kv_cache_dtype,
               max_num_seqs=args.max_num_seqs, max_model_len=args.max_model_len, kv_cache_prefault=True)  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="run the OpenAI-compatible HTTP server")
    s.add_argument("--model", default="smollm2", help="smollm2, a .gguf file or a Hugging Face directory")
    s.add_argument("--served-model-name", help="the model id clients send (default: from --model)")
    s.add_argument("--quantization", choices=["int8", "fp8", "int4"], help="runtime weight format")
    s.add_argument("--kv-cache-dtype", default="auto", choices=["auto", "float16", "bfloat16", "fp8", "int8"])
    s.add_argument("--max-num-seqs", type=int, default=64, help="sequences batched together")
    s.add_argument("--max-model-len", type=int, help="context length limit")
    s.add_argument("--max-queue", type=int, default=64, help="sequences allowed to wait beyond --max-num-seqs "
                   "before the server answers 429")
    s.add_argument("--max-body-bytes", type=positive_int, default=1 << 20, help="request body limit (413 beyond)")
    s.add_argument("--embedding-model", metavar="MODEL", help="serve POST /v1/embeddings with this embedder "
                   "(minilm or a sentence-transformers directory)")
    s.add_argument("--rag-store", metavar="DIR", help="serve POST /v1/rag/query over this RAG store "
                   "(`infercore rag ingest`; its embedder: --embedding-model, default minilm)")
    s.add_argument("--rag-window", type=positive_int, default=100, help="RAG answers in the rolling quality gauges")
    s.add_argument("--guard", metavar="CONFIG.yml", help="guardrails config (infercore.guardrails.Guard)")
    s.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on /v1 (or env INFERCORE_API_KEY)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=port, default=8000)
    s.add_argument("--threads", type=positive_int, help="CPU threads for the kernels")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve_playbook_opts.add_arguments(s)
    serve_ray_opts.add_arguments(s)
    s.set_defaults(func=cmd_serve)
