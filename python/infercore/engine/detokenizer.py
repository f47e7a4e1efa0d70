"""Incremental detokenization and stop strings.

Text is decoded from a window of recent tokens (as vLLM and transformers' TextStreamer do):
the delta is the decoded window minus the decoding of its prefix, and it is held back while it
ends in U+FFFD (an incomplete UTF-8 sequence of a byte-level BPE) so a character is never split.
Stop strings are matched on the accumulated text; the text up to (not including) the stop
string is returned and anything after it is discarded. A stop string that may still be forming
at the end of the text is held back until it either completes or cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

_WINDOW = 6  # tokens of context before the first new one: enough for any merge to settle


class IncrementalDetokenizer:
    def __init__(
        self,
        decode: Callable[[Sequence[int]], str],
        prompt_ids: Sequence[int],
        stop: Sequence[str] = (),
    ) -> None:
        self._decode = decode
        self._ids: list[int] = list(prompt_ids[-_WINDOW:])
        self._prefix_offset = 0  # decode(ids[prefix_offset:read_offset]) was already emitted
        self._read_offset = len(self._ids)
        self.text = ""  # all generated text so far (after stop handling)
        self._emitted = 0  # chars of self.text already returned as deltas
        self._stop = [s for s in stop if s]
        self.stopped_on: str | None = None

    def add(self, token_id: int) -> str:
        """Feed one generated token; returns the new text that is safe to show (maybe "")."""
        if self.stopped_on is not None:
            return ""
        self._ids.append(int(token_id))
        prefix = self._decode(self._ids[self._prefix_offset : self._read_offset])
        full = self._decode(self._ids[self._prefix_offset :])
        if full.endswith("\ufffd") or len(full) <= len(prefix):
            return ""  # an incomplete character: wait for the next byte(s)
        self.text += full[len(prefix) :]
        self._prefix_offset = max(0, len(self._ids) - 1 - _WINDOW)
        self._read_offset = len(self._ids)
        # keep the window bounded
        if self._prefix_offset > 64:
            cut = self._prefix_offset
            self._ids = self._ids[cut:]
            self._prefix_offset -= cut
            self._read_offset -= cut
        return self._release()

    def _release(self) -> str:
        hold = 0
        for s in self._stop:
            i = self.text.find(s, max(0, self._emitted - len(s) + 1))
            if i != -1:
                self.text = self.text[:i]
                self.stopped_on = s
                hold = 0
                break
            # hold back a tail that is a prefix of a stop string
            for n in range(min(len(s) - 1, len(self.text)), 0, -1):
                if self.text.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        end = max(self._emitted, len(self.text) - hold)
        delta = self.text[self._emitted : end]
        self._emitted = end
        return delta

    def flush(self) -> str:
        """At the end of generation: whatever was held back for a stop string that never came."""
        delta = self.text[self._emitted :]
        self._emitted = len(self.text)
        return delta
