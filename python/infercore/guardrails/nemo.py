"""NeMo Guardrails on infercore, offline (the `nemo` extra: nemoguardrails >= 0.24).

    from infercore.guardrails.nemo import rails_from_config, EXAMPLE_CONFIG
    rails = rails_from_config(EXAMPLE_CONFIG)          # config.yml + Colang flows
    rails.generate(messages=[{"role": "user", "content": "hi there"}])

What is registered:
- LLM provider "infercore" (`InfercoreChatModel`, NeMo's LLMModel protocol: generate_async /
  stream_async): `models: [{type: main, engine: infercore, model: smollm2}]` runs an infercore
  `LLM` in process. Chat messages are rendered with the model's chat template; a plain prompt
  string is sent as one user message. Greedy by default; `parameters` (max_tokens, temperature) and
  per-call kwargs map to SamplingParams.
- Embedding engine "infercore" (`InfercoreEmbeddingModel`) so Colang 1.0 intent matching uses our
  Embedder instead of FastEmbed (which would download a model).
- Actions for flows: infercore_check_injection(text) -> bool, infercore_redact_pii(text) -> str,
  infercore_check_harmful(text) -> bool, infercore_check_topic(text) -> bool (needs a TopicRail),
  infercore_check_groundedness(text, contexts) -> list of unsupported sentences.
The rails behind the actions come from a `Guard`-like set given to `register_actions` (defaults:
InjectionRail, PIIRail, HarmfulRail, model-free).

nemoguardrails is imported lazily: importing this module without it raises ImportError with the
install hint.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

try:
    from nemoguardrails import LLMRails, RailsConfig
    from nemoguardrails.embeddings.providers.base import EmbeddingModel
    from nemoguardrails.llm.providers import register_provider
    from nemoguardrails.types import ChatMessage, LLMResponse, LLMResponseChunk
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("infercore.guardrails.nemo needs NeMo Guardrails: pip install 'infercore[nemo]'") from e

from .harmful import HarmfulRail
from .injection import InjectionRail
from .pii import PIIRail

EXAMPLE_CONFIG = Path(__file__).resolve().parent / "nemo_config"
ENGINE = "infercore"


@functools.lru_cache(maxsize=4)
def _llm(model: str) -> Any:
    from ..engine.llm import LLM

    return LLM(model)


def _messages(prompt: Any) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    out = []
    for m in prompt:
        role = getattr(m, "role", None)
        role = getattr(role, "value", role)
        content = getattr(m, "content", "")
        if not isinstance(content, str):  # multimodal parts: keep the text ones
            content = " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
        out.append({"role": str(role or "user"), "content": content})
    return out


class InfercoreChatModel:
    """NeMo LLMModel backed by an infercore LLM. `model`: an infercore model name or path, or an LLM."""

    def __init__(self, model: Any = "smollm2", *, max_tokens: int = 64, temperature: float = 0.0, **kwargs: Any):
        self._model_name = model if isinstance(model, str) else getattr(model, "model", "infercore")
        self._llm = _llm(model) if isinstance(model, (str, os.PathLike)) else model
        if not callable(getattr(self._llm, "chat", None)):
            raise TypeError(f"model: expected an infercore model name or an LLM, got {type(model).__name__}")
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.calls = 0
        self._lock = threading.Lock()  # one generate at a time on this engine

    @property
    def model_name(self) -> str:
        return str(self._model_name)

    @property
    def provider_name(self) -> str:
        return ENGINE

    @property
    def provider_url(self) -> None:
        return None

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> Any:
        from ..engine.sampling_params import SamplingParams

        return SamplingParams(max_tokens=int(kwargs.get("max_tokens", self.max_tokens)),
                              temperature=float(kwargs.get("temperature", self.temperature)),
                              stop=list(stop) if stop else None)

    def _generate(self, prompt: Any, stop: list[str] | None, kwargs: dict[str, Any]) -> tuple[str, str | None]:
        with self._lock:
            self.calls += 1
            out = self._llm.chat(_messages(prompt), self._params(stop, kwargs))[0].outputs[0]
        return out.text, out.finish_reason

    async def generate_async(self, prompt: str | list[ChatMessage], *, stop: list[str] | None = None,
                             **kwargs: Any) -> LLMResponse:
        text, finish = await asyncio.to_thread(self._generate, prompt, stop, kwargs)
        return LLMResponse(content=text.strip(), model=self.model_name,
                           finish_reason=finish if finish in ("stop", "length") else None)

    async def stream_async(self, prompt: str | list[ChatMessage], *, stop: list[str] | None = None,
                           **kwargs: Any) -> AsyncIterator[LLMResponseChunk]:
        r = await self.generate_async(prompt, stop=stop, **kwargs)
        yield LLMResponseChunk(delta_content=r.content, model=r.model, finish_reason=r.finish_reason)


class InfercoreEmbeddingModel(EmbeddingModel):
    """NeMo embedding engine "infercore": `embedding_model` is an infercore embedder name or path."""

    engine_name = ENGINE

    def __init__(self, embedding_model: str = "minilm", **kwargs: Any) -> None:
        from .embedding import shared_embedder

        self.model = shared_embedder(embedding_model)

    def encode(self, documents: list[str]) -> list[list[float]]:
        return self.model.encode(list(documents), show_progress_bar=False).tolist()

    async def encode_async(self, documents: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.encode, documents)


def register_providers() -> None:
    """Register the "infercore" LLM provider and embedding engine with NeMo (idempotent)."""
    from nemoguardrails.embeddings.providers import EmbeddingProviderRegistry, register_embedding_provider

    register_provider(ENGINE, InfercoreChatModel)
    # NeMo's embedding registry (a singleton) refuses a second add of the same name: add it once
    if ENGINE not in EmbeddingProviderRegistry().items:
        register_embedding_provider(InfercoreEmbeddingModel, ENGINE)


def make_actions(injection: InjectionRail | None = None, pii: PIIRail | None = None, harmful: HarmfulRail | None = None,
                 topic: Any = None, groundedness: Any = None) -> dict[str, Any]:
    """The infercore_* actions (name -> callable) over these rails (model-free defaults)."""
    inj = injection or InjectionRail()
    p = pii or PIIRail()
    h = harmful or HarmfulRail()

    def infercore_check_injection(text: str | None = None) -> bool:
        return bool(text) and inj.check(text).status == "blocked"

    def infercore_redact_pii(text: str | None = None) -> str:
        return p.check(text).text if text else (text or "")

    def infercore_check_harmful(text: str | None = None) -> bool:
        return bool(text) and h.check(text).status == "blocked"

    def infercore_check_topic(text: str | None = None) -> bool:
        if topic is None:
            raise ValueError("infercore_check_topic: no TopicRail given to make_actions/register_actions")
        return bool(text) and topic.check(text).status == "blocked"

    def infercore_check_groundedness(text: str | None = None, contexts: Any = None) -> list[str]:
        if groundedness is None:
            raise ValueError("infercore_check_groundedness: no GroundednessRail given to make_actions")
        if not text:
            return []
        d = groundedness.check(text, contexts)
        return [text[v.span[0]:v.span[1]] for v in d.violations if v.span]

    acts = {f.__name__: f for f in (infercore_check_injection, infercore_redact_pii, infercore_check_harmful)}
    if topic is not None:
        acts["infercore_check_topic"] = infercore_check_topic
    if groundedness is not None:
        acts["infercore_check_groundedness"] = infercore_check_groundedness
    return acts


def register_actions(rails: LLMRails, **rails_kwargs: Any) -> LLMRails:
    for name, fn in make_actions(**rails_kwargs).items():
        rails.register_action(fn, name)
    return rails


def rails_from_config(path: str | os.PathLike[str] = EXAMPLE_CONFIG, *, classifier: bool = False,
                      **rails_kwargs: Any) -> LLMRails:
    """LLMRails for a NeMo config directory, with the infercore providers and actions registered.
    classifier=True puts the embedding classifier into the injection action's rail."""
    if not Path(path).is_dir():
        raise ValueError(f"path: {str(path)!r} is not a NeMo Guardrails config directory")
    register_providers()
    if classifier and "injection" not in rails_kwargs:
        rails_kwargs["injection"] = InjectionRail(classifier=True)
    config = RailsConfig.from_path(str(path))
    return register_actions(LLMRails(config), **rails_kwargs)
