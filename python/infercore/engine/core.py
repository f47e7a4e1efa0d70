"""LLMEngine: requests in, tokens out. One step = schedule, run the model, sample, detokenize,
stop. Synchronous and single-threaded; LLM (offline) and AsyncLLM (server) drive it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..kv import BlockAllocator
from ..structured import Guide, GuideCache
from .batch import ModelRunner, build_batch
from .detokenizer import IncrementalDetokenizer
from .outputs import CompletionOutput, RequestMetrics, RequestOutput
from .sampler import PenaltyHistory, sample_row
from .sampling_params import SamplingParams
from .scheduler import Scheduler
from .sequence import SeqStatus
from .sequence import Sequence as Seq


class RequestFailedError(RuntimeError):
    """One request failed after the model ran for it (sampling, its grammar, detokenizing): that
    request is aborted and the step goes on for the others (LLMEngine.take_failures)."""

    def __init__(self, request_id: str, cause: BaseException) -> None:
        super().__init__(f"request {request_id} failed: {type(cause).__name__}: {cause}")
        self.request_id = request_id


@dataclass
class _Request:
    request_id: str
    prompt: str | None
    prompt_ids: list[int]
    params: SamplingParams
    seqs: list[Seq]
    detoks: dict[int, IncrementalDetokenizer]
    metrics: RequestMetrics
    forked: bool = False
    cumulative: dict[int, float] = field(default_factory=dict)
    stop_reasons: dict[int, str | int | None] = field(default_factory=dict)
    deltas: dict[int, str] = field(default_factory=dict)  # text produced during the last step
    guide: Guide | None = None  # structured output (SamplingParams.json_schema / regex)


class LLMEngine:
    def __init__(
        self,
        runner: ModelRunner,
        allocator: BlockAllocator,
        *,
        decode: Callable[[Sequence[int], bool], str] | None,
        eos_token_ids: Sequence[int] = (),
        max_num_seqs: int = 64,
        max_num_batched_tokens: int = 2048,
        max_model_len: int = 8192,
        guides: GuideCache | None = None,
    ) -> None:
        self.runner = runner
        self.allocator = allocator
        self.scheduler = Scheduler(allocator, max_num_seqs, max_num_batched_tokens, max_model_len)
        self._decode = decode
        self.eos_token_ids = set(int(t) for t in eos_token_ids)
        self.max_model_len = max_model_len
        self._requests: dict[str, _Request] = {}
        self._failed: dict[str, RequestFailedError] = {}
        self._next_seq = 0
        self.guides = guides

    # ------------------------------------------------------------------ requests
    def add_request(
        self, request_id: str, prompt_ids: Sequence[int], params: SamplingParams, prompt: str | None = None
    ) -> None:
        if request_id in self._requests:
            raise ValueError(f"request_id: {request_id!r} is already running")
        ids = [int(t) for t in prompt_ids]
        if not ids:
            raise ValueError("prompt: empty prompts cannot be generated from")
        vocab = self.runner.vocab_size
        if min(ids) < 0 or max(ids) >= vocab:
            raise ValueError(f"prompt_token_ids: ids must be in [0, {vocab})")
        guide = None
        if params.json_schema is not None or params.regex is not None:
            if self.guides is None:
                which = "json_schema" if params.json_schema is not None else "regex"
                raise ValueError(f"{which}: structured output needs the model's tokenizer (none was loaded)")
            guide = self.guides.for_params(params)
        now = time.monotonic()
        rng = np.random.default_rng(None if params.seed is None else (params.seed, 0))
        seq = Seq(self._new_seq_id(), request_id, len(ids), list(ids), params, rng, now)
        if guide is not None:
            seq.guide_state = guide.start
        self.scheduler.add(seq)  # validates lengths before anything is recorded
        req = _Request(request_id, prompt, ids, params, [seq], {}, RequestMetrics(now, num_prompt_tokens=len(ids)),
                       guide=guide)  # fmt: skip
        req.detoks[seq.seq_id] = self._detok(ids, params)
        self._requests[request_id] = req

    def abort_request(self, request_id: str) -> None:
        req = self._requests.pop(request_id, None)
        if req is None:
            return
        for s in req.seqs:
            self.scheduler.finish(s, "abort")

    def has_unfinished_requests(self) -> bool:
        return bool(self._requests)

    # ------------------------------------------------------------------ one step
    def step(self) -> list[RequestOutput]:
        out = self.scheduler.schedule()
        touched: dict[str, _Request] = {}
        now = time.monotonic()
        for seq in out.finished:
            touched[seq.request_id] = self._requests[seq.request_id]
        if out.scheduled:
            if out.copies:
                self.runner.copy_blocks(out.copies)
            batch = build_batch(out, self.allocator)
            for s in out.scheduled:
                m = self._requests[s.seq.request_id].metrics
                if m.first_scheduled_time is None:
                    m.first_scheduled_time = now
                    m.num_cached_tokens = s.start
            logits = self.runner.execute(batch)
            self.scheduler.on_computed(out)
            for row, s in enumerate(x for x in out.scheduled if x.samples):  # logits rows: sampled seqs in order
                req = self._requests.get(s.seq.request_id)
                if req is None:  # failed earlier in this step (another of its sequences)
                    continue
                try:
                    self._sample(req, s.seq, logits[row])
                except Exception as e:  # one request's failure must not stop the others
                    self.abort_request(req.request_id)
                    touched.pop(req.request_id, None)
                    err = RequestFailedError(req.request_id, e)
                    err.__cause__ = e
                    self._failed[req.request_id] = err
                    continue
                touched[req.request_id] = req
        return [self._output(req) for req in touched.values()]

    def take_failures(self) -> dict[str, RequestFailedError]:
        """Requests that failed in the steps since the last call (already aborted), by request id."""
        failed, self._failed = self._failed, {}
        return failed

    # ------------------------------------------------------------------ internals
    def _new_seq_id(self) -> int:
        self._next_seq += 1
        return self._next_seq

    def _detok(self, prompt_ids: list[int], params: SamplingParams) -> IncrementalDetokenizer:
        if self._decode is None:
            return IncrementalDetokenizer(lambda ids: "", [], params.stop_strings)
        skip = params.skip_special_tokens
        return IncrementalDetokenizer(lambda ids: self._decode(ids, skip), prompt_ids, params.stop_strings)

    def _sample(self, req: _Request, seq: Seq, logits: np.ndarray) -> None:
        targets = [seq]
        if not req.forked:
            req.forked = True
            for i in range(1, req.params.n):  # n > 1: children share the prompt's blocks
                p = req.params
                rng = np.random.default_rng(None if p.seed is None else (p.seed, i))
                child = Seq(self._new_seq_id(), req.request_id, seq.prompt_len, list(seq.token_ids), p, rng,
                            seq.arrival_time, SeqStatus.RUNNING, seq.num_computed, seq.num_reserved)  # fmt: skip
                child.guide_state = seq.guide_state
                self.allocator.fork(seq.seq_id, child.seq_id)
                self.scheduler.add_running(child)
                req.seqs.append(child)
                req.detoks[child.seq_id] = self._detok(req.prompt_ids, p)
                targets.append(child)
        now = time.monotonic()
        for s in targets:
            self._accept(req, s, logits, now)

    def _accept(self, req: _Request, seq: Seq, logits: np.ndarray, now: float) -> None:
        p = seq.params
        n_out = seq.num_output_tokens
        suppress = list(self.eos_token_ids) if n_out < p.min_tokens else []
        allowed = None
        if req.guide is not None:
            allowed = req.guide.allowed(seq.guide_state)
            if not allowed.any():  # no token spells a continuation (a vocabulary without some byte)
                req.stop_reasons[seq.seq_id] = "structured output: no token of the vocabulary continues it"
                req.deltas[seq.seq_id] = req.deltas.get(seq.seq_id, "") + req.detoks[seq.seq_id].flush()
                self.scheduler.finish(seq, "stop")
                return
        # The token history is only read by the penalties, through an incremental PenaltyHistory
        # (O(new tokens) per step; a fork builds its own from its copied token list).
        history = None
        if p.penalized:
            if seq.penalty_history is None:
                seq.penalty_history = PenaltyHistory(seq.prompt_len)
            history = seq.penalty_history.update(seq.token_ids)
        res = sample_row(logits, p, seq.rng, suppress=suppress, allowed=allowed, history=history)
        tok = res.token_id
        if req.guide is not None:
            seq.guide_state = req.guide.advance(seq.guide_state, tok)
        seq.token_ids.append(tok)
        if res.logprob is not None:
            entry = {tok: res.logprob, **(res.top_logprobs or {})}
            seq.logprobs.append(entry)
            req.cumulative[seq.seq_id] = req.cumulative.get(seq.seq_id, 0.0) + res.logprob
        m = req.metrics
        if seq.first_token_time is None:
            seq.first_token_time = now
            if m.first_token_time is None:
                m.first_token_time = now
        elif seq.token_times:
            m.inter_token_latencies.append(now - seq.token_times[-1])
        seq.token_times.append(now)
        m.num_generated_tokens += 1
        detok = req.detoks[seq.seq_id]
        n_out += 1  # with tok
        is_eos = tok in self.eos_token_ids and not p.ignore_eos and n_out > p.min_tokens - 1
        is_stop_token = p.stop_token_ids is not None and tok in p.stop_token_ids
        if not (is_eos or is_stop_token):
            req.deltas[seq.seq_id] = req.deltas.get(seq.seq_id, "") + detok.add(tok)
        reason: str | None = None
        if req.guide is not None and not is_eos and req.guide.is_complete(seq.guide_state):
            reason = "stop"  # the output is complete: nothing but EOS could follow
        elif is_eos or is_stop_token:
            reason, req.stop_reasons[seq.seq_id] = "stop", (None if is_eos else tok)
        elif detok.stopped_on is not None:
            reason, req.stop_reasons[seq.seq_id] = "stop", detok.stopped_on
        elif p.max_tokens is not None and n_out >= p.max_tokens:
            reason = "length"
        elif seq.num_tokens >= self.max_model_len:
            reason = "length"
        if reason is not None:
            if detok.stopped_on is None:
                req.deltas[seq.seq_id] = req.deltas.get(seq.seq_id, "") + detok.flush()
            self.scheduler.finish(seq, reason)

    def _output(self, req: _Request) -> RequestOutput:
        outs = []
        for i, s in enumerate(req.seqs):
            outs.append(
                CompletionOutput(
                    index=i,
                    text=req.detoks[s.seq_id].text,
                    token_ids=list(s.output_ids),
                    finish_reason=s.finish_reason,
                    stop_reason=req.stop_reasons.get(s.seq_id),
                    logprobs=list(s.logprobs) if req.params.logprobs is not None else None,
                    cumulative_logprob=req.cumulative.get(s.seq_id),
                    delta=req.deltas.pop(s.seq_id, ""),
                )
            )
        finished = all(s.is_finished for s in req.seqs)
        if finished:
            req.metrics.finished_time = time.monotonic()
            self._requests.pop(req.request_id, None)
        return RequestOutput(req.request_id, req.prompt, req.prompt_ids, outs, finished, req.metrics)
