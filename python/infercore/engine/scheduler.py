"""Continuous batching: which sequences run this step and how many tokens each computes.

Each step has a token budget. Running decodes go first (one token each), then prefill chunks of
waiting or partly prefilled sequences use what is left (chunked prefill mixes with decodes).
KV slots come from the BlockAllocator: a new sequence reserves its whole prompt (identical
prefixes hit the prefix cache and are not recomputed); a running one reserves the slots of the
tokens it computes. When blocks run out, the most recently arrived running sequence is
preempted: its blocks are freed and it waits to be recomputed (prompt + tokens so far).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..kv import BlockAllocator, NoFreeBlocksError
from .sequence import SeqStatus, Sequence


@dataclass
class ScheduledSeq:
    seq: Sequence
    start: int  # compute tokens [start, end) of seq.token_ids this step
    end: int

    @property
    def samples(self) -> bool:
        """The chunk reaches the last known token: its logits give the next token."""
        return self.end == self.seq.num_tokens


@dataclass
class SchedulerOutput:
    scheduled: list[ScheduledSeq] = field(default_factory=list)
    copies: list[tuple[int, int]] = field(default_factory=list)  # copy-on-write block copies, in order
    preempted: list[Sequence] = field(default_factory=list)
    finished: list[Sequence] = field(default_factory=list)  # stopped by the scheduler (cache too small)

    @property
    def num_tokens(self) -> int:
        return sum(s.end - s.start for s in self.scheduled)


class Scheduler:
    def __init__(
        self,
        allocator: BlockAllocator,
        max_num_seqs: int = 64,
        max_num_batched_tokens: int = 2048,
        max_model_len: int = 8192,
    ) -> None:
        if max_num_seqs < 1 or max_num_batched_tokens < 1 or max_model_len < 1:
            raise ValueError("max_num_seqs, max_num_batched_tokens and max_model_len must be >= 1")
        self.allocator = allocator
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.max_model_len = max_model_len
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []

    # ------------------------------------------------------------------ queue management
    def add(self, seq: Sequence) -> None:
        if seq.num_tokens > self.max_model_len:
            raise ValueError(f"prompt: {seq.num_tokens} tokens exceed max_model_len={self.max_model_len}")
        blocks = self.allocator.blocks_needed(seq.num_tokens)
        if blocks > self.allocator.num_blocks:
            raise ValueError(f"prompt: needs {blocks} KV blocks but the cache has {self.allocator.num_blocks}")
        seq.status = SeqStatus.WAITING
        self.waiting.append(seq)

    def add_running(self, seq: Sequence) -> None:
        """A sequence forked from a running one (n > 1): its blocks are already shared."""
        seq.status = SeqStatus.RUNNING
        self.running.append(seq)

    def finish(self, seq: Sequence, reason: str) -> None:
        """Stop a sequence (done or aborted) and free its blocks."""
        if seq.status == SeqStatus.FINISHED:
            return
        if seq.status == SeqStatus.RUNNING:
            self.running.remove(seq)
            self.allocator.free(seq.seq_id)
        else:
            self.waiting.remove(seq)
        seq.status = SeqStatus.FINISHED
        seq.finish_reason = reason

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    # ------------------------------------------------------------------ one step
    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        budget = self.max_num_batched_tokens
        # 1. running sequences, oldest first: decodes and unfinished prefill chunks
        for seq in sorted(self.running, key=lambda s: s.arrival_time):
            if budget == 0:
                break
            if seq not in self.running:  # preempted while making room for an older one
                continue
            n = min(budget, seq.num_tokens - seq.num_computed)
            if n <= 0:
                continue
            if not self._reserve(seq, seq.num_computed + n, out):
                continue  # seq itself was preempted
            out.scheduled.append(ScheduledSeq(seq, seq.num_computed, seq.num_computed + n))
            budget -= n
        # 2. admit waiting sequences while budget, sequence slots and blocks allow
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            capacity = self.allocator.num_blocks - self.allocator.watermark_blocks
            if self.allocator.blocks_needed(seq.num_tokens) > capacity:
                # grew (while generating) beyond what the whole cache can hold: stop it
                self.waiting.popleft()
                seq.status, seq.finish_reason = SeqStatus.FINISHED, "length"
                out.finished.append(seq)
                continue
            if not self.allocator.can_allocate(seq.token_ids):
                break
            try:
                alloc = self.allocator.allocate(seq.seq_id, seq.token_ids)
            except NoFreeBlocksError:
                break
            self.waiting.popleft()
            seq.status = SeqStatus.RUNNING
            seq.num_reserved = seq.num_tokens
            seq.num_computed = alloc.num_cached_tokens
            self.running.append(seq)
            n = min(budget, seq.num_tokens - seq.num_computed)
            out.scheduled.append(ScheduledSeq(seq, seq.num_computed, seq.num_computed + n))
            budget -= n
        return out

    def _reserve(self, seq: Sequence, upto: int, out: SchedulerOutput) -> bool:
        """Reserve cache slots for seq's tokens up to `upto`, preempting newer sequences if the
        blocks run out. False if seq itself had to be preempted."""
        while seq.num_reserved < upto:
            try:
                res = self.allocator.append(seq.seq_id, seq.token_ids[seq.num_reserved : upto])
            except NoFreeBlocksError:
                victim = max(self.running, key=lambda s: s.arrival_time)
                self._preempt(victim, out)
                if victim is seq:
                    return False
                continue
            out.copies.extend(res.copies)
            seq.num_reserved = upto
        return True

    def _preempt(self, seq: Sequence, out: SchedulerOutput) -> None:
        self.running.remove(seq)
        owned = set(self.allocator.block_table(seq.seq_id))
        out.copies = [(src, dst) for src, dst in out.copies if dst not in owned]  # its private copies die with it
        self.allocator.free(seq.seq_id)
        seq.status = SeqStatus.WAITING
        seq.num_computed = seq.num_reserved = 0
        seq.num_preemptions += 1
        out.scheduled = [s for s in out.scheduled if s.seq is not seq]
        out.preempted.append(seq)
        self.waiting.appendleft(seq)  # recomputed before newer requests

    def on_computed(self, output: SchedulerOutput) -> None:
        """The model ran `output`: advance every scheduled sequence's computed count."""
        for s in output.scheduled:
            s.seq.num_computed = s.end
