"""Monitoring: Prometheus metrics named like vLLM's (on a private registry per server) and
distribution drift (KL with documented smoothing, PSI, Wasserstein-1) between windows."""

from .drift import (
    KL_THRESHOLD,
    DriftMonitor,
    DriftReport,
    compare,
    embedding_feature,
    histogram,
    kl_divergence,
    psi,
    reference_edges,
    wasserstein_1d,
)

_METRICS = ("CONTENT_TYPE", "EngineCollector", "ServerMetrics", "parse_exposition", "sample")


def __getattr__(name: str):
    """The Prometheus side needs prometheus_client (a server dependency); drift does not."""
    if name in _METRICS:
        from . import metrics

        return getattr(metrics, name)
    raise AttributeError(f"module 'infercore.monitor' has no attribute {name!r}")

__all__ = [
    "CONTENT_TYPE", "KL_THRESHOLD", "DriftMonitor", "DriftReport", "EngineCollector", "ServerMetrics", "compare",
    "embedding_feature", "histogram", "kl_divergence", "parse_exposition", "psi", "reference_edges", "sample",
    "wasserstein_1d",
]
