"""Helpers for the server tests: a real uvicorn server on a random loopback port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


@contextlib.contextmanager
def running(app):
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5))
    def serve():
        try:
            server.run(sockets=[sock])
        except SystemExit:  # uvicorn exits with 3 when the app's startup fails; the caller sees it
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    try:
        while not server.started:
            if not t.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=30)
        sock.close()
        assert not t.is_alive(), "server thread did not stop"


def wait_idle(llm, timeout=10.0):
    """True once the engine has no request and every KV block is free (or evictable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not llm.engine.has_unfinished_requests() and llm.allocator.num_free_blocks == llm.allocator.num_blocks:
            return True
        time.sleep(0.02)
    return False
