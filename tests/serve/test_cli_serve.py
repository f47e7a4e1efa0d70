"""`infercore serve` as a user runs it: a subprocess on a free loopback port; SIGTERM drains the
request in flight (it completes) before the process exits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx


def test_parser_registers_serve():
    from infercore.cli.main import build_parser
    from infercore.cli.serve_cmd import cmd_serve

    a = build_parser().parse_args(["serve", "--port", "0", "--api-key", "k", "--max-queue", "3"])
    assert a.func is cmd_serve and a.port == 0 and a.api_key == "k" and a.max_queue == 3
    assert a.host == "127.0.0.1" and a.model == "smollm2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_subprocess_drains_on_sigterm(llm):  # llm: skips when smollm2 is not installed
    port = _free_port()
    cmd = [sys.executable, "-m", "infercore.cli.main", "serve", "--port", str(port), "--max-model-len", "512",
           "--max-num-seqs", "4", "--log-level", "warning"]  # fmt: skip
    env = {**os.environ, "INFERCORE_API_KEY": "env-key"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        headers = {"Authorization": "Bearer env-key"}
        assert httpx.get(url + "/v1/models", timeout=5).status_code == 401
        body = {"model": "smollm2", "prompt": "Count: 1, 2,", "max_tokens": 24, "ignore_eos": True, "stream": True}
        events: list[str] = []
        first = threading.Event()

        def consume():
            with httpx.Client(timeout=60) as h, h.stream("POST", url + "/v1/completions", json=body,
                                                         headers=headers) as r:  # fmt: skip
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        events.append(line[6:])
                        first.set()

        t = threading.Thread(target=consume)
        t.start()
        assert first.wait(30)
        proc.send_signal(signal.SIGTERM)
        t.join(60)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"  # the request ran to its end
        assert "".join(c["choices"][0]["text"] for c in chunks)
        # uvicorn re-raises the signal after its graceful shutdown: "killed by SIGTERM" is the clean exit
        assert proc.wait(60) in (0, -signal.SIGTERM)
        out = proc.stdout.read().decode(errors="replace")
        assert "Traceback" not in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
