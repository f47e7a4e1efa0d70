"""The `infercore serve` app as a Ray Serve deployment: N replicas of the same FastAPI app (each its
own engine with continuous batching), behind Ray Serve's HTTP proxy, with request-queue-based
autoscaling.

    infercore serve --ray --model smollm2 --replicas 2 --autoscale 1:4 --target-ongoing-requests 8

Each replica builds the app exactly as the single-process server does (cli/serve_cmd.py
build_app_from_args, same flags, same routes, guardrails, playbooks), inside the replica process.
Autoscaling is Ray Serve's: it tracks ongoing requests per replica (running + queued at the
replica) and adds replicas while their mean exceeds `target_ongoing_requests`, removes them while
it is below; `max_ongoing_requests` caps what the proxy sends one replica at once (beyond it
requests wait in the proxy's queue).

For a config file / KubeRay RayService (deploy/ray/rayservice.yaml), `app_builder` is the
import_path target: `infercore.serve.ray_app:app_builder` with args
{"serve_args": ["--model", "smollm2", ...], "replicas": 2, "autoscale": "1:4", ...}.

Per-replica state: /metrics answers from whichever replica the proxy picks (scrape replicas
directly, or use Ray's own ray_serve_* metrics for fleet totals); playbook rollbacks move the
registry alias once and every replica picks it up through its registry poll.
Needs ray[serve] (pip install 'infercore[ray]').
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Mapping
from typing import Any

from ray import serve

from ..cli.serve_ray_opts import autoscaling_config

DEPLOYMENT_NAME = "InfercoreServer"
APP_NAME = "infercore"


@serve.ingress()
class InfercoreServer:
    """One replica: builds the infercore FastAPI app from `serve` CLI arguments at replica start."""

    def __init__(self, serve_args: list[str]) -> None:
        self.serve_args = list(serve_args)

    def __serve_build_asgi_app__(self) -> Any:
        from ..cli.main import build_parser
        from ..cli.serve_cmd import build_app_from_args

        return build_app_from_args(build_parser().parse_args(["serve", *self.serve_args]))


def _check_serve_args(serve_args: Any) -> list[str]:
    if isinstance(serve_args, str) or not isinstance(serve_args, (list, tuple)) or \
            not all(isinstance(a, str) for a in serve_args):  # fmt: skip
        raise TypeError(f"serve_args: expected a list of `infercore serve` arguments, got {serve_args!r}")
    from ..cli.main import build_parser

    try:
        args = build_parser().parse_args(["serve", *serve_args])
    except SystemExit:
        raise ValueError(f"serve_args: not valid `infercore serve` arguments: {list(serve_args)}") from None
    if args.ray:
        raise ValueError("serve_args: --ray inside a Ray replica")
    return list(serve_args)


def deployment(serve_args: list[str], *, replicas: int = 1, autoscale: str | None = None,
               target_ongoing_requests: float = 8.0, max_ongoing_requests: int = 64,
               replica_cpus: float = 1.0) -> Any:  # fmt: skip
    """The bound Ray Serve application (pass it to serve.run)."""
    serve_args = _check_serve_args(serve_args)
    auto = autoscaling_config(replicas, autoscale, target_ongoing_requests)
    if isinstance(max_ongoing_requests, bool) or not isinstance(max_ongoing_requests, int) or max_ongoing_requests < 1:
        raise ValueError(f"max_ongoing_requests: expected a positive int, got {max_ongoing_requests!r}")
    if isinstance(replica_cpus, bool) or not isinstance(replica_cpus, (int, float)) or replica_cpus <= 0:
        raise ValueError(f"replica_cpus: expected a number > 0, got {replica_cpus!r}")
    opts: dict[str, Any] = {"name": DEPLOYMENT_NAME, "max_ongoing_requests": max_ongoing_requests,
                            "ray_actor_options": {"num_cpus": float(replica_cpus)},
                            "health_check_period_s": 10, "graceful_shutdown_timeout_s": 30}  # fmt: skip
    if auto is not None:
        opts["autoscaling_config"] = auto
    else:
        opts["num_replicas"] = replicas
    return serve.deployment(InfercoreServer, **opts).bind(serve_args)


def app_builder(args: Mapping[str, Any]) -> Any:
    """import_path target for Ray Serve config files and KubeRay (see the module docstring)."""
    if not isinstance(args, Mapping):
        raise TypeError(f"args: expected a mapping, got {type(args).__name__}")
    known = {"serve_args", "replicas", "autoscale", "target_ongoing_requests", "max_ongoing_requests", "replica_cpus"}
    unknown = set(args) - known
    if unknown:
        raise ValueError(f"args: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    kw = {k: args[k] for k in known - {"serve_args"} if k in args}
    return deployment(args.get("serve_args", []), **kw)


def _serve_args_from(args: argparse.Namespace, argv: list[str]) -> list[str]:
    """The `serve` arguments without the Ray ones (the replica runs the plain server)."""
    drop_flag = {"--ray"}
    drop_value = {"--ray-address", "--replicas", "--autoscale", "--target-ongoing-requests", "--max-ongoing-requests",
                  "--replica-cpus", "--host", "--port"}  # fmt: skip
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in drop_flag:
            continue
        if name in drop_value:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def run_ray(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """`infercore serve --ray ...`: start (or join) Ray, deploy, block until SIGINT/SIGTERM, shut down."""
    import sys

    import ray

    if argv is None:
        argv = sys.argv[sys.argv.index("serve") + 1:] if "serve" in sys.argv else []
    app = deployment(_serve_args_from(args, argv), replicas=args.replicas, autoscale=args.autoscale,
                     target_ongoing_requests=args.target_ongoing_requests,
                     max_ongoing_requests=args.max_ongoing_requests, replica_cpus=args.replica_cpus)  # fmt: skip
    ray.init(address=args.ray_address) if args.ray_address else ray.init()
    serve.start(http_options={"host": args.host, "port": args.port})

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=True)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()  # replicas drain (graceful_shutdown_timeout_s) and stop
    return 0


__all__ = ["APP_NAME", "DEPLOYMENT_NAME", "InfercoreServer", "app_builder", "deployment", "run_ray"]
