"""OpenAI-compatible HTTP server (`infercore serve`): build_app(llm, model_name=...) gives a
FastAPI app; run it with uvicorn."""

from .app import APIError, build_app, error_body

__all__ = ["APIError", "build_app", "error_body"]
