"""Chains and agents over the engine, traced with OpenTelemetry GenAI attribute names (issue 9)."""

from .tracing import ConsoleExporter, InMemoryExporter, JSONLExporter, NullTracer, OTelBridge, Span, Tracer

__all__ = ["ConsoleExporter", "InMemoryExporter", "JSONLExporter", "NullTracer", "OTelBridge", "Span", "Tracer"]
