"""Chains and agents over the engine, traced with OpenTelemetry GenAI attribute names (issue 9)."""

from .agent import Tool, ToolAgent, first_json_object, tool
from .core import (
    CallRecord,
    ChainError,
    ChainRun,
    EmbeddingClassifier,
    KeywordClassifier,
    LLMClassifier,
    Router,
    Runnable,
    Sequential,
    Step,
    inline_prompt,
    sampling_from_config,
)
from .tracing import ConsoleExporter, InMemoryExporter, JSONLExporter, NullTracer, OTelBridge, Span, Tracer

__all__ = [
    "CallRecord", "ChainError", "ChainRun", "ConsoleExporter", "EmbeddingClassifier", "InMemoryExporter",
    "JSONLExporter", "KeywordClassifier", "LLMClassifier", "NullTracer", "OTelBridge", "Router", "Runnable",
    "Sequential", "Span", "Step", "Tool", "ToolAgent", "Tracer", "first_json_object", "inline_prompt",
    "sampling_from_config", "tool",
]  # fmt: skip
