"""Evaluation metrics for LLMOps pipelines (`evals.rag`: citation coverage, groundedness,
hallucination rate, context precision)."""
