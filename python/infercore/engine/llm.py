"""LLM: the offline, vLLM-shaped front end (generate, chat, stream, compute_logits)."""

from __future__ import annotations

import itertools
import json
import numbers
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..kv import BlockAllocator, PagedKVCache
from ..structured import GuideCache, token_bytes
from .batch import build_batch
from .core import LLMEngine
from .device import resolve_device
from .outputs import RequestOutput
from .runner import LlamaRunner
from .sampling_params import SamplingParams
from .scheduler import ScheduledSeq, SchedulerOutput
from .sequence import Sequence as Seq

KV_DTYPES = {"auto": "float16", "float16": "float16", "bfloat16": "bfloat16", "float32": "float32",
             "fp8": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3", "int8": "int8"}  # fmt: skip


def _tokenizer_if_any(model: str) -> Any:
    """The model's tokenizer for load-time calibration, loaded even with skip_tokenizer_init (so
    the calibrated model does not depend on that flag); None when the model has none."""
    from ..models import GGUFFile, Tokenizer, load_hf_model, resolve_model

    path = str(resolve_model(model))
    try:
        if os.path.isdir(path):
            return load_hf_model(path).tokenizer if os.path.exists(os.path.join(path, "tokenizer.json")) else None
        return Tokenizer.from_gguf(GGUFFile(path))
    except ValueError:  # no usable tokenizer in the file: fixed ids
        return None


def _load(model: str, quantization: str | None, skip_tokenizer_init: bool) -> tuple[Any, Any, Any]:
    """(LlamaModel, Tokenizer or None, chat template or None) for a model name or path."""
    from ..models import GGUFFile, Tokenizer, load_hf_model, resolve_model
    from ..models.llama import load_gguf, load_hf_weights

    path = str(resolve_model(model))
    if os.path.isdir(path):
        hf = load_hf_model(path, skip_tokenizer_init=skip_tokenizer_init)
        if hf.model_config is None:
            raise ValueError(f"model: {path} is not a Llama-family causal LM (config.json architectures)")
        template = None
        tc = os.path.join(path, "tokenizer_config.json")
        if os.path.exists(tc):
            with open(tc, encoding="utf-8") as fh:
                template = json.load(fh).get("chat_template")
        return load_hf_weights(hf.model_config, hf.weights(), quantization), hf.tokenizer, template
    if os.path.isdir(path) is False and not path.endswith(".gguf"):
        raise ValueError(f"model: {path} is neither a .gguf file nor a Hugging Face model directory")
    gguf = GGUFFile(path)
    tok = None if skip_tokenizer_init else Tokenizer.from_gguf(gguf)
    template = gguf.metadata.get("tokenizer.chat_template")
    return load_gguf(gguf, quantization), tok, template


class LLM:
    """Generate text from a Llama-family model with infercore's kernels.

    model: "smollm2", a .gguf file or a Hugging Face directory. quantization: None keeps the
    file's formats (GGUF Q8_0/Q4_0/Q4_1 run natively), or "int8" | "fp8" | "int4". "int8" runs
    W8A8 (8-bit per-token activations at every batch size, so a request's text does not depend
    on its batch) with SmoothQuant scales calibrated at load on built-in text (~0.3 s).
    kv_cache_dtype: "auto" (float16), "float16", "bfloat16", "fp8", "int8". fp8's per-layer
    scales are calibrated at load on the same text (one binade of headroom), not taken from the
    first request, so no request's output depends on what was served before it. kv_cache_bytes sizes
    the paged KV pool (default 256 MiB); kv_cache_prefault=True touches it all at start (servers:
    RSS then holds the whole pool from the first request on).
    device: "cpu" (default) or "cuda" / "cuda:N": weights, activations and the KV pool on the GPU
    (torch tensors through the ops' CUDA/Triton backends), logits back to the host for sampling.
    "cuda" without a usable CUDA device raises RuntimeError; any other value ValueError.
    """

    def __init__(
        self,
        model: str = "smollm2",
        *,
        quantization: str | None = None,
        kv_cache_dtype: str = "auto",
        device: str = "cpu",  # or "cuda" / "cuda:N" (engine/device.py)
        max_num_seqs: int = 64,
        block_size: int = 16,
        skip_tokenizer_init: bool = False,
        kv_cache_bytes: int = 256 << 20,
        max_model_len: int | None = None,
        max_num_batched_tokens: int = 2048,
        enable_prefix_caching: bool = True,
        kv_cache_prefault: bool = False,
    ) -> None:
        spec = resolve_device(device)  # before loading: a missing GPU fails fast
        if kv_cache_dtype not in KV_DTYPES:
            raise ValueError(f"kv_cache_dtype: expected one of {sorted(KV_DTYPES)}, got {kv_cache_dtype!r}")
        if not isinstance(model, str):
            raise TypeError(f"model: expected a name or path string, got {type(model).__name__}")
        if max_model_len is not None:  # 0 silently became the default
            if isinstance(max_model_len, bool) or not isinstance(max_model_len, numbers.Integral):
                raise TypeError(f"max_model_len: expected an int, got {type(max_model_len).__name__}")
            if max_model_len < 1:
                raise ValueError(f"max_model_len: expected an int >= 1, got {max_model_len}")
        # int8 weights are quantized after SmoothQuant calibration (below), from the file's formats;
        # the loaders reject any other unknown value
        self.model, self.tokenizer, self.chat_template = _load(model, None if quantization == "int8" else quantization,
                                                               skip_tokenizer_init)  # fmt: skip
        c = self.model.config
        if max_model_len is None:
            max_model_len = min(c.max_position_embeddings, 8192)
        elif max_model_len > c.max_position_embeddings:  # as vLLM: no RoPE positions past the trained context
            raise ValueError(f"max_model_len: {max_model_len} exceeds the model's context length "
                             f"({c.max_position_embeddings})")
        self.max_model_len = int(max_model_len)
        kv_scales = self._calibrate(model, quantization, KV_DTYPES[kv_cache_dtype])
        if spec is None:
            cache = PagedKVCache.from_budget(kv_cache_bytes, c.num_layers, block_size, c.num_kv_heads, c.head_dim,
                                             KV_DTYPES[kv_cache_dtype], prefault=kv_cache_prefault)  # fmt: skip
            self.runner = LlamaRunner(self.model, cache)
        else:  # weights uploaded once; the host copy is dropped with self.model's rebinding
            from .device_runner import build_device_runner

            self.runner = build_device_runner(self.model, spec, kv_cache_bytes, block_size, KV_DTYPES[kv_cache_dtype])
            self.model = self.runner.model
            cache = self.runner.cache
        if kv_scales is not None:  # per-layer fp8 scales from the calibration prefill
            cache.k_scales, cache.v_scales = kv_scales
        self.device = "cpu" if spec is None else spec.torch_device
        self.allocator = BlockAllocator(cache.num_blocks, block_size, enable_prefix_caching)
        eos = set(c.stop_token_ids or ())
        if c.eos_token_id is not None:
            eos.add(c.eos_token_id)
        decode = guides = None
        if self.tokenizer is not None:
            tok = self.tokenizer
            decode = lambda ids, skip: tok.decode(ids, skip_special_tokens=skip)  # noqa: E731
            guides = GuideCache(lambda: token_bytes(tok), c.vocab_size, sorted(eos))
        self.engine = LLMEngine(self.runner, self.allocator, decode=decode, eos_token_ids=sorted(eos),
                                max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
                                max_model_len=self.max_model_len, guides=guides)  # fmt: skip
        self._ids = itertools.count()

    def _calibrate(self, model: str, quantization: str | None, kv_dtype: str) -> tuple[list, list] | None:
        """Load-time calibration on built-in text (models/calibration.py): int8 weights get their
        SmoothQuant scales (models/smoothquant.py), an fp8 KV cache its per-layer scales, so
        neither depends on the requests served. Returns the fp8 (k_scales, v_scales) or None."""
        from ..models.calibration import calibration_ids, fp8_kv_scales
        from ..models.smoothquant import smooth_quantize_int8

        if quantization != "int8" and kv_dtype != "fp8_e4m3":
            return None
        c = self.model.config
        tok = self.tokenizer if self.tokenizer is not None else _tokenizer_if_any(model)
        ids = calibration_ids(tok, c.vocab_size, c.bos_token_id)[: c.max_position_embeddings]  # trained positions
        if quantization == "int8":
            smooth_quantize_int8(self.model, ids)
        return fp8_kv_scales(self.model, ids) if kv_dtype == "fp8_e4m3" else None

    # ------------------------------------------------------------------ prompts
    def _prompt(self, p: Any) -> tuple[list[int], str | None]:
        if isinstance(p, str):
            if self.tokenizer is None:
                raise ValueError("prompts: text prompts need a tokenizer (skip_tokenizer_init=True was given)")
            return self.tokenizer.encode(p, add_special_tokens=True), p
        if isinstance(p, dict) and "prompt_token_ids" in p:
            ids = p["prompt_token_ids"]
            if not isinstance(ids, (list, tuple, np.ndarray)):
                raise TypeError("prompt_token_ids: expected a list of ints")
            return [int(t) for t in ids], None
        raise TypeError(f"prompts: expected str or {{'prompt_token_ids': [...]}}, got {type(p).__name__}")

    def _add(self, prompts: Any, params: Any) -> list[str]:
        single = isinstance(prompts, (str, dict))
        if not single and not isinstance(prompts, (list, tuple)):
            raise TypeError(f"prompts: expected a str, a {{'prompt_token_ids': [...]}} dict or a list of them, "
                            f"got {type(prompts).__name__}")  # fmt: skip
        plist = [prompts] if single else list(prompts)
        if params is None:
            params = SamplingParams()
        plist_params = params if isinstance(params, (list, tuple)) else [params] * len(plist)
        if len(plist_params) != len(plist):
            raise ValueError(f"sampling_params: got {len(plist_params)} for {len(plist)} prompts")
        prepared = [(self._prompt(p), sp) for p, sp in zip(plist, plist_params, strict=True)]
        for (_, _), sp in prepared:
            if not isinstance(sp, SamplingParams):
                raise TypeError(f"sampling_params: expected SamplingParams, got {type(sp).__name__}")
        rids = []
        for (ids, text), sp in prepared:
            rid = str(next(self._ids))
            self.engine.add_request(rid, ids, sp, text)
            rids.append(rid)
        return rids

    # ------------------------------------------------------------------ public API
    def generate(self, prompts: Any, sampling_params: SamplingParams | Sequence[SamplingParams] | None = None
                 ) -> list[RequestOutput]:  # fmt: skip
        """Run every prompt to completion with continuous batching; outputs in prompt order."""
        rids = self._add(prompts, sampling_params)
        done: dict[str, RequestOutput] = {}
        try:
            while len(done) < len(rids):
                for out in self.engine.step():
                    if out.finished:
                        done[out.request_id] = out
                for err in self.engine.take_failures().values():
                    raise err
        except BaseException:
            for rid in rids:
                self.engine.abort_request(rid)
            raise
        return [done[r] for r in rids]

    def render_chat(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        if self.chat_template is None:
            raise ValueError("messages: this model has no chat template")
        from ..models.chat_template import render_chat_template

        return render_chat_template(self.chat_template, messages, add_generation_prompt=add_generation_prompt,
                                    bos_token=self._special(self.model.config.bos_token_id),
                                    eos_token=self._special(self.model.config.eos_token_id))  # fmt: skip

    def _special(self, tid: int | None) -> str:
        if tid is None or self.tokenizer is None:
            return ""
        return self.tokenizer.id_to_token(tid) or ""

    def chat(self, messages: list[dict[str, str]] | list[list[dict[str, str]]],
             sampling_params: SamplingParams | None = None) -> list[RequestOutput]:  # fmt: skip
        """One conversation (list of {"role", "content"}) or several; rendered with the model's
        chat template (sandboxed Jinja2)."""
        convs = messages if messages and isinstance(messages[0], list) else [messages]
        prompts = [{"prompt_token_ids": self.tokenizer.encode(self.render_chat(c), add_special_tokens=False)}
                   for c in convs]  # fmt: skip
        return self.generate(prompts, sampling_params)

    def stream(self, prompt: Any, sampling_params: SamplingParams | None = None) -> Iterator[str]:
        """Text deltas of one prompt as they are generated (never splitting a character)."""
        (rid,) = self._add(prompt, sampling_params)
        try:
            while True:
                for out in self.engine.step():
                    if out.request_id == rid:
                        if out.outputs[0].delta:
                            yield out.outputs[0].delta
                        if out.finished:
                            return
                failed = self.engine.take_failures()
                if rid in failed:
                    raise failed[rid]
        finally:
            self.engine.abort_request(rid)

    def compute_logits(self, token_ids: Sequence[int]) -> np.ndarray:
        """float32 [T, vocab]: next-token logits after every prefix of token_ids (one forward pass)."""
        ids = [int(t) for t in token_ids]
        if not ids:
            raise ValueError("token_ids: expected at least one token")
        vocab = self.model.config.vocab_size
        if min(ids) < 0 or max(ids) >= vocab:
            raise ValueError(f"token_ids: ids must be in [0, {vocab})")
        if len(ids) > self.max_model_len:
            raise ValueError(f"token_ids: {len(ids)} tokens exceed max_model_len={self.max_model_len}")
        sid = -1 - next(self._ids)  # private id space: never collides with engine sequences
        self.allocator.allocate(sid, ids)
        try:
            seq = Seq(sid, "logits", len(ids), ids, SamplingParams(), np.random.default_rng(0))
            batch = build_batch(SchedulerOutput([ScheduledSeq(seq, 0, len(ids))]), self.allocator)
            batch.sample_rows = np.arange(len(ids), dtype=np.int64)
            return self.runner.execute(batch)
        finally:
            self.allocator.free(sid)
