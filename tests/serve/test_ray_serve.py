"""`infercore serve --ray`: the same FastAPI app as a Ray Serve deployment. The deployment options
(replicas, request-queue autoscaling) are checked on the built application; one slow test runs a real
local Ray (2 CPUs, 1 replica of the tiny model) and talks to it through Ray Serve's HTTP proxy.
Needs ray[serve] (the `ray` extra); without it these tests skip."""

from __future__ import annotations

import argparse
import contextlib
import json
import socket

import httpx
import pytest

pytest.importorskip("ray.serve")

from infercore.serve import ray_app


def test_deployment_options_fixed_and_autoscaled():
    fixed = ray_app.deployment(["--model", "smollm2"], replicas=3, max_ongoing_requests=20, replica_cpus=2)
    d = fixed._bound_deployment
    assert d.name == ray_app.DEPLOYMENT_NAME and d.num_replicas == 3 and d.max_ongoing_requests == 20
    assert d.ray_actor_options["num_cpus"] == 2.0 and d.init_args == (["--model", "smollm2"],)
    auto = ray_app.app_builder({"serve_args": ["--model", "smollm2"], "replicas": 2, "autoscale": "1:4",
                                "target_ongoing_requests": 6})._bound_deployment  # fmt: skip
    cfg = auto._deployment_config.autoscaling_config
    assert (cfg.min_replicas, cfg.max_replicas, cfg.initial_replicas) == (1, 4, 2)
    assert cfg.target_ongoing_requests == 6.0


def test_builder_argument_errors():
    with pytest.raises(ValueError, match="unknown keys"):
        ray_app.app_builder({"serve_args": [], "replica": 2})
    with pytest.raises(ValueError, match="not valid"):
        ray_app.app_builder({"serve_args": ["--no-such-flag"]})
    with pytest.raises(ValueError, match="--ray inside"):
        ray_app.app_builder({"serve_args": ["--ray"]})
    with pytest.raises(TypeError, match="serve_args"):
        ray_app.app_builder({"serve_args": "--model smollm2"})
    with pytest.raises(ValueError, match="--autoscale"):
        ray_app.app_builder({"autoscale": "3:1"})
    with pytest.raises(ValueError, match="max_ongoing_requests"):
        ray_app.deployment([], max_ongoing_requests=0)


def test_replica_gets_the_serve_args_without_the_ray_ones():
    argv = ["--ray", "--model", "m", "--replicas", "2", "--autoscale=1:3", "--port", "9000", "--host", "0.0.0.0",
            "--max-num-seqs", "8", "--target-ongoing-requests", "4", "--replica-cpus", "2"]  # fmt: skip
    assert ray_app._serve_args_from(argparse.Namespace(), argv) == ["--model", "m", "--max-num-seqs", "8"]


@contextlib.contextmanager
def local_ray_app(tmp_path, **deployment_kw):
    """A local Ray (2 CPUs) serving the tiny model as the infercore app; yields (serve, port)."""
    import ray
    from infercore.benchmarks.bench_chains import tiny_llama_dir
    from ray import serve

    model = tiny_llama_dir(str(tmp_path / "tiny"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        app = ray_app.deployment(["--model", model, "--served-model-name", "tiny", "--max-num-seqs", "4"],
                                 replicas=1, replica_cpus=0.5, **deployment_kw)  # fmt: skip
        serve.run(app, name=ray_app.APP_NAME, route_prefix="/")
        yield serve, port
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.mark.slow
def test_real_local_ray_serves_the_app(tmp_path):
    with local_ray_app(tmp_path, autoscale="1:2", target_ongoing_requests=2) as (serve, port):
        status = serve.status().applications[ray_app.APP_NAME]
        assert str(status.status).endswith("RUNNING")
        assert str(status.deployments[ray_app.DEPLOYMENT_NAME].status).endswith("HEALTHY")
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=60) as h:
            assert h.get("/v1/models").json()["data"][0]["id"] == "tiny"
            r = h.post("/v1/chat/completions", json={"model": "tiny", "max_tokens": 6, "ignore_eos": True,
                                                     "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
            assert r.status_code == 200, r.text
            assert r.json()["usage"]["completion_tokens"] == 6
            body = {"model": "tiny", "prompt": "ab", "max_tokens": 5, "ignore_eos": True, "stream": True}
            with h.stream("POST", "/v1/completions", json=body) as s:
                lines = [ln for ln in s.iter_lines() if ln.startswith("data: ")]
            assert lines[-1] == "data: [DONE]"
            assert [json.loads(x[6:])["choices"][0]["finish_reason"] for x in lines[:-1]][-1] == "length"
            r = h.post("/v1/chat/completions", json={"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]})
            assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"  # the app's own errors
            assert "infercore:e2e_request_latency_seconds" in h.get("/metrics").text


@pytest.mark.slow
def test_ray_replica_drains_a_running_stream_when_the_app_is_deleted(tmp_path):
    """Graceful drain under Ray: deleting the application while a stream is mid-answer stops the
    replica only after the stream has finished (graceful_shutdown_timeout_s), every token delivered."""
    import threading
    import time

    with local_ray_app(tmp_path) as (serve, port):
        body = {"model": "tiny", "prompt": "ab", "max_tokens": 1500, "ignore_eos": True, "stream": True,
                "stream_options": {"include_usage": True}}  # fmt: skip
        done_at = {}

        def delete() -> None:
            serve.delete(ray_app.APP_NAME)
            done_at["delete"] = time.monotonic()

        chunks, deleting = [], threading.Thread(target=delete)
        with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/completions", json=body, timeout=120) as r:
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                chunks.append(line[6:])
                if len(chunks) == 2:
                    deleting.start()  # mid-answer
        done_at["stream"] = time.monotonic()
        deleting.join(120)
        assert not deleting.is_alive()
        assert chunks[-1] == "[DONE]"
        parsed = [json.loads(c) for c in chunks[:-1]]
        assert [p["choices"][0]["finish_reason"] for p in parsed if p["choices"]][-1] == "length"
        assert parsed[-1]["usage"]["completion_tokens"] == 1500  # the whole answer came through
        assert ray_app.APP_NAME not in serve.status().applications  # and the app is gone,
        assert done_at["delete"] >= done_at["stream"] - 0.5  # only after the stream had finished
