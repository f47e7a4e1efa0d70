"""Failure playbooks wired into a running server, and the admin endpoints that expose them.

    app = build_app(llm, model_name="smollm2", rag=rag, guard=guard)
    pb = install_playbooks(app, registry=PromptRegistry(DIR), served_prompt="rag-answer",
                           auto_rollback=True, safety=SafetyWatch(), review_dir="reviews/")

Degradation (monitor/playbooks.py): every scored RAG answer (citation coverage, hallucination rate)
and every /v1 response status feed a QualityWatch. A breach is recorded (event `quality_breach`,
counter infercore:quality_breaches_total{reason}); with auto_rollback the served alias goes back to
its previous version in the registry (a Git commit with the reason), the served prompt is swapped
(requests in flight finish on the version they started with), and the event `rollback` is
recorded with infercore:rollbacks_total{reason}. The registry is also polled (`poll_s`) so an alias
moved from outside (`infercore gate --apply`, `infercore prompts alias`) is picked up the same way.
When the served name is the `served-model` pseudo-prompt and a `model_loader` is given
(`infercore serve` gives one), a move of the alias loads the version's model_config.model in the
worker thread (with the server's engine options) and swaps it in (serve/model_swap.py): new
requests run on the new weights at once, requests in flight finish on the old ones, whose engine
stops when they are done (events `model_swapped`, `model_drained`; `model_swap_failed` keeps the
old model serving). Without a loader the move is only recorded (`model_alias_moved`). A model with
another vocabulary needs a restart (or a new Ray Serve deployment version).

Safety (monitor/safety_watch.py): every guardrail check feeds a SafetyWatch; the gauge
infercore:guardrail_block_rate{rail} follows the rolling rate; an alert increments
infercore:safety_alerts_total{rail}, is recorded (event `safety_alert`) and writes a review report
into `review_dir`.

Endpoints (API key required when the server has one):
  GET  /v1/admin/events?kind=&since=   recorded events, oldest first
  GET  /v1/admin/served                the served prompt/model version and the watch's windows
  POST /v1/admin/rollback {"reason"}   roll the served alias back now (409 when there is nothing to restore)
  POST /v1/admin/reload                re-read the alias now
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter, Gauge

from ..monitor.playbooks import AliasMovedError, EventLog, QualityWatch, rollback_alias
from . import model_swap
from .errors import APIError
from .served_prompt import ServedPrompt

log = logging.getLogger("infercore.serve.admin")


class Playbooks:
    def __init__(self, app: FastAPI, *, served: ServedPrompt | None, watch: QualityWatch | None,
                 events: EventLog, auto_rollback: bool, safety: Any, review_dir: str | None,
                 model_loader: Callable[[dict[str, Any]], Any] | None = None) -> None:  # fmt: skip
        st = app.state.infercore
        self.st, self.served, self.watch, self.events = st, served, watch, events
        self.auto_rollback, self.safety, self.review_dir = auto_rollback, safety, review_dir
        self.model_loader = model_loader
        # the served-model version whose weights this process runs (None: the --model it started with)
        self.loaded_version: int | None = served.current.version if served is not None and served.is_model else None
        r, m = st.metrics.registry, st.model_name
        self.model_name = m
        self.rollbacks = Counter("infercore:rollbacks", "Served prompt/model alias rollbacks by reason",
                                 ["model_name", "reason"], registry=r)  # fmt: skip
        self.breaches = Counter("infercore:quality_breaches", "Quality threshold breaches seen by the watch",
                                ["model_name", "reason"], registry=r)  # fmt: skip
        self.block_rate = Gauge("infercore:guardrail_block_rate", "Rolling guardrail block rate by rail (0..1)",
                                ["model_name", "rail"], registry=r)  # fmt: skip
        self.safety_alerts = Counter("infercore:safety_alerts", "Rising block-rate alerts by rail",
                                     ["model_name", "rail"], registry=r)  # fmt: skip
        self._rollback_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ observations (event loop thread)
    def observe_answer(self, coverage: float, hallucination: float) -> None:
        if self.watch is not None:
            self._on_breach(self.watch.observe_answer(coverage, hallucination))

    def observe_response(self, status: int) -> None:
        if self.watch is not None:
            self._on_breach(self.watch.observe_response(status))

    def observe_guard(self, direction: str, result: Any) -> None:
        if self.safety is None:
            return
        alert = self.safety.observe(direction, result)
        for rail, rate in self.safety.rates().items():
            self.block_rate.labels(self.model_name, rail).set(rate)
        if alert is not None:
            self.safety_alerts.labels(self.model_name, alert.rail).inc()
            self._spawn(self._safety_report, alert)

    # ------------------------------------------------------------------ actions (worker threads)
    def _on_breach(self, breach: Any) -> None:
        if breach is None:
            return
        self.breaches.labels(self.model_name, breach.reason).inc()
        self.events.record("quality_breach", reason=breach.reason, value=breach.value, threshold=breach.threshold,
                           samples=breach.samples, served=self.served.ref() if self.served else None,
                           action="rollback" if self.auto_rollback and self.served else "none")  # fmt: skip
        if self.auto_rollback and self.served is not None:
            self._spawn(self._auto_rollback, breach)

    def _auto_rollback(self, breach: Any) -> None:
        judged = self.served.current.version if self.served is not None else None
        try:
            self.rollback(breach.reason, f"infercore serve auto-rollback: {breach.describe()}", expect_from=judged)
        except AliasMovedError as e:  # another server (replica) rolled it back first: follow it
            self.events.record("rollback_skipped", reason=breach.reason, detail=str(e))
            self.reload()
        except ValueError as e:
            self.events.record("rollback_failed", reason=breach.reason, error=str(e))

    def rollback(self, reason: str, text: str, *, expect_from: int | None = None) -> dict[str, Any]:
        """Move the served alias back one version and swap the served prompt; the recorded event.
        ValueError when nothing is served or there is no earlier version (AliasMovedError when
        `expect_from` is given and the alias is elsewhere)."""
        if self.served is None:
            raise ValueError("rollback: this server serves no registry prompt (--registry/--served-prompt)")
        with self._rollback_lock:
            s = self.served
            frm, to = rollback_alias(s.registry, s.name, s.alias, text, expect_from=expect_from)
            self.rollbacks.labels(self.model_name, reason).inc()
            self._reload("rollback")
            commit = s.registry.history(s.name)[0]["commit"]
            return self.events.record("rollback", reason=reason, detail=text, prompt=s.name, alias=s.alias,
                                      from_version=frm, to_version=to, commit=commit,
                                      serving=s.ref())  # fmt: skip

    def reload(self) -> dict[str, Any] | None:
        with self._rollback_lock:
            return self._reload("registry")

    def _reload(self, source: str) -> dict[str, Any] | None:
        if self.served is None:
            return None
        change = self.served.refresh()
        if change is None:
            return None
        old, new = change
        if self.served.is_model:
            return self._swap_model(source, old, new)
        if self.watch is not None:
            self.watch.reset()  # judge the new version on its own answers
        return self.events.record("reload", source=source, prompt=new.name, from_version=old.version,
                                  to_version=new.version)  # fmt: skip

    def _swap_model(self, source: str, old: Any, new: Any) -> dict[str, Any]:
        """The served-model alias moved from `old` to `new`: load and swap in its model (worker thread)."""
        model = new.model_config.get("model")
        base = {"source": source, "from_version": old.version, "to_version": new.version, "model": model}
        if self.model_loader is None:
            return self.events.record("model_alias_moved", **base, loaded_model=self.model_name,
                                      note="no model loader: the weights loaded in this process are not swapped; "
                                           "restart or deploy a new Ray Serve version to serve the restored "
                                           "model")  # fmt: skip
        loop = self.st.loop
        t0 = time.perf_counter()
        try:
            if loop is None:
                raise RuntimeError("the server is not running")
            if _running_loop() is loop:
                raise RuntimeError("_swap_model: called on the server's event loop (it would wait on itself)")
            new_llm = self.model_loader(dict(new.model_config))
            load_s = time.perf_counter() - t0

            def drained(info: dict[str, Any]) -> None:
                self.events.record("model_drained", model=model, from_version=old.version, to_version=new.version,
                                   **info)  # fmt: skip

            info = asyncio.run_coroutine_threadsafe(model_swap.swap_model(self.st, new_llm, on_drained=drained),
                                                    loop).result(timeout=120)  # fmt: skip
        except Exception as e:  # the old model keeps serving
            log.exception("swapping in %s failed", model)
            return self.events.record("model_swap_failed", **base, loaded_version=self.loaded_version,
                                      error=f"{type(e).__name__}: {e}")  # fmt: skip
        self.loaded_version = new.version
        if self.watch is not None:
            self.watch.reset()  # judge the new weights on their own answers
        return self.events.record("model_swapped", **base, load_s=round(load_s, 3),
                                  in_flight_at_swap=info["in_flight_at_swap"])  # fmt: skip

    def _safety_report(self, alert: Any) -> None:
        from ..monitor.safety_watch import write_review

        paths = write_review(alert, self.review_dir) if self.review_dir else None
        self.events.record("safety_alert", rail=alert.rail, rate=alert.rate, baseline=alert.baseline,
                           threshold=alert.threshold, blocks=alert.blocks, checks=alert.checks,
                           patterns=alert.patterns[:3], report=paths[0] if paths else None)  # fmt: skip

    def _spawn(self, fn: Any, *args: Any) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception:  # a playbook failure must not take the server down
                log.exception("playbook action %s failed", getattr(fn, "__name__", fn))

        self._threads = [t for t in self._threads if t.is_alive()]
        t = threading.Thread(target=run, name="infercore-playbook", daemon=True)
        self._threads.append(t)
        t.start()

    def wait(self, timeout: float = 30.0) -> None:
        """Join the playbook actions started so far (tests, shutdown)."""
        for t in list(self._threads):
            t.join(timeout)


class _StatusTap:
    """ASGI middleware: the status of every /v1 response (not /v1/admin) goes to `observe`."""

    def __init__(self, app: Any, observe: Any) -> None:
        self.app, self.observe = app, observe

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/v1/") or path.startswith("/v1/admin"):
            await self.app(scope, receive, send)
            return

        async def tap(message: Any) -> None:
            if message["type"] == "http.response.start":
                try:
                    self.observe(int(message["status"]))
                except Exception:
                    log.exception("status observer failed")
            await send(message)

        await self.app(scope, receive, tap)


def install_playbooks(app: FastAPI, *, registry: Any = None, served_prompt: str | None = None,
                      alias: str = "production", auto_rollback: bool = False, watch: QualityWatch | None = None,
                      events_path: str | None = None, poll_s: float = 5.0, safety: Any = None,
                      review_dir: str | None = None,
                      model_loader: Callable[[dict[str, Any]], Any] | None = None) -> Playbooks:  # fmt: skip
    """Wire the playbooks into an app from build_app (before it starts). `served_prompt` (with
    `registry`) makes /v1/rag/query answer with that registry prompt at `alias`. model_loader:
    model_config -> infercore.LLM, used to swap in the model when the `served-model` alias moves."""
    st = getattr(getattr(app, "state", None), "infercore", None)
    if st is None:
        raise TypeError("app: expected an app from infercore.serve.build_app")
    if (registry is None) != (served_prompt is None):
        raise ValueError("registry, served_prompt: give both (a registry and the prompt it serves) or neither")
    if auto_rollback and served_prompt is None:
        raise ValueError("auto_rollback: needs a registry and a served prompt to roll back")
    if isinstance(poll_s, bool) or not isinstance(poll_s, (int, float)) or poll_s < 0:
        raise ValueError(f"poll_s: expected a number >= 0 (0: no polling), got {poll_s!r}")
    if safety is not None and review_dir is None:
        raise ValueError("review_dir: a safety watch needs a directory for its review reports")
    served = ServedPrompt(registry, served_prompt, alias=alias) if served_prompt is not None else None
    if watch is None and served is not None:
        watch = QualityWatch()
    if model_loader is not None and not callable(model_loader):
        raise TypeError(f"model_loader: expected a callable (model_config -> LLM), got {type(model_loader).__name__}")
    pb = Playbooks(app, served=served, watch=watch, events=EventLog(events_path), auto_rollback=auto_rollback,
                   safety=safety, review_dir=review_dir, model_loader=model_loader)  # fmt: skip
    app.state.playbooks = pb
    if served is not None and not served.is_model:
        app.state.served_prompt = served
    app.state.quality_observers = [*getattr(app.state, "quality_observers", ()), pb.observe_answer]
    st.metrics.guard_observers.append(pb.observe_guard)
    app.add_middleware(_StatusTap, observe=pb.observe_response)

    if served is not None and poll_s > 0:
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(a: Any) -> AsyncIterator[Any]:
            async with inner(a) as state:
                task = asyncio.create_task(_poll(pb, float(poll_s)))
                try:
                    yield state
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

        app.router.lifespan_context = lifespan

    def _auth(request: Request) -> None:
        if st.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode("utf-8") if scheme.lower() == "bearer" else b""
        if not hmac.compare_digest(given, st.api_key):
            raise APIError(401, "invalid or missing API key (Authorization: Bearer <key>)", code="invalid_api_key",
                           headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    @app.get("/v1/admin/events")
    async def admin_events(request: Request, kind: str | None = None, since: int = 0) -> Response:
        _auth(request)
        return JSONResponse({"object": "list", "data": pb.events.events(kind, since)})

    @app.get("/v1/admin/served")
    async def admin_served(request: Request) -> Response:
        _auth(request)
        s = pb.served
        body: dict[str, Any] = {"model": st.model_name, "prompt": None}
        if s is not None:
            body["prompt"] = {"name": s.name, "alias": s.alias, "version": s.current.version, "ref": s.ref(),
                              "model": s.model}  # fmt: skip
            if s.is_model:
                body["prompt"]["loaded_version"] = pb.loaded_version
        body["watch"] = pb.watch.snapshot() if pb.watch is not None else None
        body["auto_rollback"] = pb.auto_rollback
        return JSONResponse(body)

    @app.post("/v1/admin/rollback")
    async def admin_rollback(request: Request) -> Response:
        _auth(request)
        try:
            body = await request.json()
        except ValueError:
            body = {}
        reason = body.get("reason") if isinstance(body, dict) else None
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            raise APIError(400, "reason: expected a non-empty string", param="reason")
        try:
            ev = await asyncio.to_thread(pb.rollback, "manual", f"manual rollback: {reason or 'no reason given'}")
        except ValueError as e:
            raise APIError(409, str(e), code="nothing_to_roll_back") from None
        return JSONResponse(ev)

    @app.post("/v1/admin/reload")
    async def admin_reload(request: Request) -> Response:
        _auth(request)
        ev = await asyncio.to_thread(pb.reload)
        return JSONResponse({"changed": ev is not None, "event": ev})

    return pb


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # a worker thread: the expected case
        return None


async def _poll(pb: Playbooks, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(pb.reload)
        except Exception:
            log.exception("reading the served alias failed")


__all__ = ["Playbooks", "install_playbooks"]
