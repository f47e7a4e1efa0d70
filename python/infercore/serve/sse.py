"""Server-sent events that notice a client disconnect at once (not only at the next write) and
always close the body iterator, so the engine request behind it is aborted and its KV blocks
freed deterministically."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

# Characters JSON allows raw inside strings but that many clients end a line on: httpx's
# iter_lines and Python's str.splitlines split at U+2028, U+2029 and U+0085 (NEL), which would cut
# an event's JSON in two (seen with a random model's streamed text). The SSE format itself ends
# lines only at CR/LF, and json.dumps already escapes every control character below U+0020.
_LINE_BREAKS = {0x2028: "\\u2028", 0x2029: "\\u2029", 0x85: "\\u0085"}


def sse_data(obj: Any) -> str:
    """One `data:` event for a JSON-serializable object: UTF-8 text kept as is, except the Unicode
    line separators above, which are escaped (the decoded JSON is the same)."""
    return f"data: {json.dumps(obj, ensure_ascii=False).translate(_LINE_BREAKS)}\n\n"


async def wait_for_disconnect(receive: Receive) -> None:
    """Returns when the ASGI server reports http.disconnect (call after the body was read)."""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return


class Releasing:
    """An async iterator over `gen` that calls `release` exactly once: when exhausted, failed or
    closed - even if iteration never started (a plain async generator's finally would not run)."""

    def __init__(self, gen: AsyncIterator[str], release: Callable[[], None]) -> None:
        self._gen, self._release = gen, release
        self._released = False

    def _done(self) -> None:
        if not self._released:
            self._released = True
            self._release()

    def __aiter__(self) -> Releasing:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._gen.__anext__()
        except BaseException:
            self._done()
            raise

    async def aclose(self) -> None:
        try:
            await self._gen.aclose()  # type: ignore[attr-defined]
        finally:
            self._done()


class SSEResponse(StreamingResponse):
    def __init__(self, content: Any, status_code: int = 200) -> None:
        super().__init__(content, status_code=status_code, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = asyncio.ensure_future(self._stream(send))
        gone = asyncio.ensure_future(wait_for_disconnect(receive))
        try:
            done, _ = await asyncio.wait({stream, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (stream, gone):
                t.cancel()
            await asyncio.gather(stream, gone, return_exceptions=True)
            await self.body_iterator.aclose()  # type: ignore[attr-defined]
        if stream in done and not stream.cancelled() and stream.exception() is not None:
            exc = stream.exception()
            if not isinstance(exc, OSError):  # a write to a closed socket is a disconnect, not an error
                raise exc

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            body = chunk.encode("utf-8") if isinstance(chunk, str) else chunk
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
