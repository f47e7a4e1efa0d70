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
from .metrics import CONTENT_TYPE, EngineCollector, ServerMetrics, parse_exposition, sample

__all__ = [
    "CONTENT_TYPE", "KL_THRESHOLD", "DriftMonitor", "DriftReport", "EngineCollector", "ServerMetrics", "compare",
    "embedding_feature", "histogram", "kl_divergence", "parse_exposition", "psi", "reference_edges", "sample",
    "wasserstein_1d",
]
