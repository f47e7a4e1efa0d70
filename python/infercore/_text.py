"""Text checks shared by the tokenizers' callers (models.tokenizer, embed.embedder)."""

from __future__ import annotations

from collections.abc import Sequence


def raise_if_not_unicode(texts: Sequence[object], name: str) -> None:
    """Called after the `tokenizers` library refused a str: raise a ValueError naming the text that
    has no UTF-8 form (a lone surrogate, e.g. from a JSON "\\ud800" escape) instead of the library's
    TypeError about its input types. Returns when every text encodes (the refusal was something else)."""
    for i, t in enumerate(texts):
        if isinstance(t, str):
            try:
                t.encode("utf-8")
            except UnicodeEncodeError as e:
                where = name if len(texts) == 1 else f"{name}[{i}]"
                raise ValueError(f"{where}: not valid Unicode text ({e.reason} at index {e.start})") from None
