"""SSE events keep one JSON document per `data:` line for clients that split lines on Unicode
separators (httpx iter_lines, str.splitlines): a random model's streamed text once held U+2028 /
U+0085 and a client read half an event."""

from __future__ import annotations

import json

import httpx
import pytest

from infercore.serve.sse import sse_data


@pytest.mark.parametrize("text", ["a\u2028b", "\u2029", "x\x85y", "\r\n\x1c\x1d\x1e\x0b\x0c", "é 日本 🙂 plain"])
def test_sse_event_is_one_line_for_every_client(text):
    obj = {"choices": [{"index": 0, "text": text}]}
    event = sse_data(obj)
    assert event.startswith("data: ") and event.endswith("\n\n")
    assert [x for x in event.splitlines() if x] == [event[:-2]]  # str.splitlines: one line
    lines = [x for x in httpx.Response(200, content=event.encode()).iter_lines() if x]
    assert len(lines) == 1
    assert json.loads(lines[0][6:]) == obj  # same document after decoding
    assert "é 日本 🙂" in event or "é" not in text  # other text stays unescaped UTF-8
