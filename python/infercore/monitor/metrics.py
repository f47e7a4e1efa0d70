"""Prometheus metrics for the server, named like vLLM's (`vllm:` -> `infercore:`) so dashboards
transfer. Every ServerMetrics owns its own CollectorRegistry: no global state, two apps in one
process do not share counters.

Engine gauges (running/waiting requests, KV usage, prefix-cache counters) are read at scrape
time from the engine objects by a custom collector; the engine thread owns those objects, and
the reads are single attribute/len() reads (atomic under the GIL) - a scrape may see a state one
step old, never a torn one. Prefix-cache counters count KV *blocks* (vLLM counts tokens).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# vLLM's buckets for the same histograms (seconds)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0)  # fmt: skip
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
FRACTION_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class EngineCollector(Collector):
    """Scrape-time gauges/counters from a live engine: `engine` has .scheduler (running, waiting)
    and .allocator (stats())."""

    def __init__(self, engine: Any, model_name: str) -> None:
        self.engine = engine
        self.model_name = model_name

    def collect(self) -> Iterable[Any]:
        labels = ["model_name"]
        sched = self.engine.scheduler
        st = self.engine.allocator.stats()
        g = GaugeMetricFamily("infercore:num_requests_running", "Sequences running in the engine", labels=labels)
        g.add_metric([self.model_name], len(sched.running))
        yield g
        g = GaugeMetricFamily("infercore:num_requests_waiting", "Sequences waiting to be scheduled", labels=labels)
        g.add_metric([self.model_name], len(sched.waiting))
        yield g
        g = GaugeMetricFamily("infercore:kv_cache_usage_perc", "Fraction of KV blocks in use (0..1)", labels=labels)
        g.add_metric([self.model_name], st.usage)
        yield g
        c = CounterMetricFamily("infercore:prefix_cache_queries", "Prompt KV blocks looked up in the prefix cache",
                                labels=labels)  # fmt: skip
        c.add_metric([self.model_name], st.prefix_queries)
        yield c
        c = CounterMetricFamily("infercore:prefix_cache_hits", "Prompt KV blocks found in the prefix cache",
                                labels=labels)  # fmt: skip
        c.add_metric([self.model_name], st.prefix_hits)
        yield c


class ServerMetrics:
    """The server's metrics on a private registry. `render()` gives the exposition text."""

    def __init__(self, model_name: str, engine: Any | None = None,
                 registry: CollectorRegistry | None = None) -> None:  # fmt: skip
        self.model_name = model_name
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r, m = self.registry, ["model_name"]
        self.ttft = Histogram("infercore:time_to_first_token_seconds", "Time to first token (engine arrival)",
                              m, buckets=TTFT_BUCKETS, registry=r)  # fmt: skip
        self.itl = Histogram("infercore:inter_token_latency_seconds", "Time between consecutive output tokens",
                             m, buckets=ITL_BUCKETS, registry=r)  # fmt: skip
        self.e2e = Histogram("infercore:e2e_request_latency_seconds", "End-to-end request latency (engine)",
                             m, buckets=E2E_BUCKETS, registry=r)  # fmt: skip
        self.queue_time = Histogram("infercore:request_queue_time_seconds", "Time waiting before first schedule",
                                    m, buckets=TTFT_BUCKETS, registry=r)  # fmt: skip
        self.prompt_len = Histogram("infercore:request_prompt_tokens", "Prompt tokens per request", m,
                                    buckets=TOKEN_BUCKETS, registry=r)  # fmt: skip
        self.gen_len = Histogram("infercore:request_generation_tokens", "Generated tokens per request", m,
                                 buckets=TOKEN_BUCKETS, registry=r)  # fmt: skip
        self.prompt_tokens = Counter("infercore:prompt_tokens", "Prompt tokens processed", m, registry=r)
        self.generation_tokens = Counter("infercore:generation_tokens", "Tokens generated", m, registry=r)
        self.request_success = Counter("infercore:request_success", "Finished requests by finish reason",
                                       [*m, "finished_reason"], registry=r)  # fmt: skip
        self.requests = Counter("infercore:requests", "HTTP requests to the API by route", [*m, "route"], registry=r)
        self.errors = Counter("infercore:request_errors", "Error responses by HTTP status code",
                              [*m, "code"], registry=r)  # fmt: skip
        self.aborted = Counter("infercore:request_aborted", "Requests aborted by a client disconnect", m, registry=r)
        self.guard_checks = Counter("infercore:guardrail_checks", "Guardrail checks by direction",
                                    [*m, "direction"], registry=r)  # fmt: skip
        self.guard_blocks = Counter("infercore:guardrail_blocks", "Guardrail blocks by rail and direction",
                                    [*m, "rail", "direction"], registry=r)  # fmt: skip
        self.citation_coverage = Gauge("infercore:citation_coverage", "Rolling citation coverage (0..1)", m,
                                       registry=r)  # fmt: skip
        self.hallucination_rate = Gauge("infercore:hallucination_rate", "Rolling hallucination rate (0..1)", m,
                                        registry=r)  # fmt: skip
        self.drift = Gauge("infercore:drift_score", "Drift between reference and current windows",
                           [*m, "feature", "statistic"], registry=r)  # fmt: skip
        self.drift_alert = Gauge("infercore:drift_alert", "1 when KL drift >= its threshold", [*m, "feature"],
                                 registry=r)  # fmt: skip
        # embeddings (POST /v1/embeddings)
        self.embedding_inputs = Counter("infercore:embedding_inputs", "Texts embedded", m, registry=r)
        self.embedding_tokens = Counter("infercore:embedding_tokens", "Tokens run through the embedder", m,
                                        registry=r)  # fmt: skip
        self.embedding_latency = Histogram("infercore:embedding_request_latency_seconds",
                                           "Embedding request latency (queue + forward)", m, buckets=FAST_BUCKETS,
                                           registry=r)  # fmt: skip
        # RAG (POST /v1/rag/query): per-answer distributions next to the rolling gauges above
        self.rag_queries = Counter("infercore:rag_queries", "RAG queries by outcome (answered, abstained, "
                                   "no_context)", [*m, "outcome"], registry=r)  # fmt: skip
        self.rag_coverage = Histogram("infercore:rag_citation_coverage", "Citation coverage per RAG answer", m,
                                      buckets=FRACTION_BUCKETS, registry=r)  # fmt: skip
        self.rag_hallucination = Histogram("infercore:rag_hallucination_rate", "Hallucination rate per RAG answer",
                                           m, buckets=FRACTION_BUCKETS, registry=r)  # fmt: skip
        self.rag_latency = Histogram("infercore:rag_query_latency_seconds", "RAG query latency (retrieve, generate, "
                                     "score)", m, buckets=E2E_BUCKETS, registry=r)  # fmt: skip
        self.rag_retrieval = Histogram("infercore:rag_retrieval_latency_seconds", "RAG retrieval latency", m,
                                       buckets=FAST_BUCKETS, registry=r)  # fmt: skip
        self.engine_collector = None
        if engine is not None:
            self.engine_collector = EngineCollector(engine, model_name)
            r.register(self.engine_collector)
        # callables (direction, GuardResult) told about every guardrail check (monitor/safety_watch.py)
        self.guard_observers: list[Any] = []

    # ------------------------------------------------------------------ recording
    def observe_request(self, metrics: Any, finish_reasons: Iterable[str | None]) -> None:
        """One finished request: `metrics` is the engine's RequestMetrics."""
        n = self.model_name
        if metrics.time_to_first_token is not None:
            self.ttft.labels(n).observe(metrics.time_to_first_token)
        for dt in metrics.inter_token_latencies:
            self.itl.labels(n).observe(dt)
        if metrics.e2e_latency is not None:
            self.e2e.labels(n).observe(metrics.e2e_latency)
        if metrics.queue_time is not None:
            self.queue_time.labels(n).observe(metrics.queue_time)
        self.prompt_len.labels(n).observe(metrics.num_prompt_tokens)
        self.gen_len.labels(n).observe(metrics.num_generated_tokens)
        self.prompt_tokens.labels(n).inc(metrics.num_prompt_tokens)
        self.generation_tokens.labels(n).inc(metrics.num_generated_tokens)
        for reason in finish_reasons:
            self.request_success.labels(n, str(reason)).inc()

    def observe_error(self, status: int) -> None:
        self.errors.labels(self.model_name, str(int(status))).inc()

    def observe_guard(self, direction: str, result: Any) -> None:
        self.guard_checks.labels(self.model_name, direction).inc()
        if result.status == "blocked":
            rail = result.violations[-1].rail if result.violations else "unknown"
            self.guard_blocks.labels(self.model_name, rail, direction).inc()
        for observe in self.guard_observers:
            observe(direction, result)

    def set_quality(self, *, citation_coverage: float | None = None, hallucination_rate: float | None = None) -> None:
        if citation_coverage is not None:
            self.citation_coverage.labels(self.model_name).set(float(citation_coverage))
        if hallucination_rate is not None:
            self.hallucination_rate.labels(self.model_name).set(float(hallucination_rate))

    def observe_embeddings(self, inputs: int, tokens: int, seconds: float, model: str | None = None) -> None:
        """One embeddings request, labelled with the embedding model's name (`model`)."""
        n = model or self.model_name
        self.embedding_inputs.labels(n).inc(inputs)
        self.embedding_tokens.labels(n).inc(tokens)
        self.embedding_latency.labels(n).observe(seconds)

    def observe_rag(self, outcome: str, seconds: float, retrieval_seconds: float,
                    answer_metrics: dict[str, Any] | None = None) -> None:  # fmt: skip
        """One RAG query; `answer_metrics` (evals.rag.answer_metrics) for answers that were scored."""
        n = self.model_name
        self.rag_queries.labels(n, outcome).inc()
        self.rag_latency.labels(n).observe(seconds)
        self.rag_retrieval.labels(n).observe(retrieval_seconds)
        if answer_metrics is not None:
            self.rag_coverage.labels(n).observe(float(answer_metrics["citation_coverage"]))
            self.rag_hallucination.labels(n).observe(float(answer_metrics["hallucination_rate"]))

    def set_drift(self, feature: str, report: Any) -> None:
        for stat in ("kl", "psi", "wasserstein"):
            self.drift.labels(self.model_name, feature, stat).set(getattr(report, stat))
        self.drift_alert.labels(self.model_name, feature).set(1.0 if report.alert else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def parse_exposition(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from exposition text (for tests and the bench)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(parsed: dict, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels` (0.0 when none)."""
    if not isinstance(parsed, dict):  # other types were AttributeErrors ('list' object has no attribute 'items')
        raise TypeError(f"parsed: expected the dict parse_exposition returns, got {type(parsed).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"name: expected a metric name string, got {type(name).__name__}")
    want = set(labels.items())
    return sum(v for (n, lab), v in parsed.items() if n == name and want <= set(lab))


__all__ = ["CONTENT_TYPE", "EngineCollector", "ServerMetrics", "parse_exposition", "sample"]
