"""The prompt version a server answers RAG queries with, taken from a prompt registry alias and
hot-swapped when the alias moves.

    served = ServedPrompt(PromptRegistry(DIR), "rag-answer", alias="production")
    pv = served.current            # a request takes one snapshot and keeps it to the end
    messages = served.messages(question, contexts, pv)
    served.refresh()               # re-read the alias; swaps `current` when it moved

Swapping is one attribute assignment: a request that already took its snapshot finishes on the
old version, requests that start later use the new one; nothing is interrupted.

How a version becomes the RAG prompt: a chat template (a list of messages) is rendered with the
variables it declares among `question` and `sources` (the numbered sources "[1] ...") and sent as
is; a text template is rendered the same way and used as the system message, followed by the
built-in worked example and the "Sources: ... Question: ..." user message.
The `served-model` pseudo-prompt (evals.gate_apply.SERVED_MODEL) records a model id, not a
prompt: serving it keeps the built-in RAG prompt and reports the model id (`served.model`);
moving it does not swap the loaded weights in this process (see admin.py).
"""

from __future__ import annotations

import threading
from typing import Any

from ..prompts.template import PromptVersion

SERVED_MODEL = "served-model"  # evals.gate_apply.SERVED_MODEL (not imported: that pulls in the eval stack)


class ServedPrompt:
    def __init__(self, registry: Any, name: str, *, alias: str = "production") -> None:
        from ..prompts.registry import PromptRegistry

        if not isinstance(registry, PromptRegistry):
            raise TypeError(f"registry: expected a PromptRegistry, got {type(registry).__name__}")
        self.registry = registry
        self.name = name
        self.alias = alias
        self._lock = threading.Lock()
        self.current: PromptVersion = registry.get(name, alias=alias)  # PromptNotFoundError when unset
        self._check(self.current)

    def _check(self, pv: PromptVersion) -> None:
        if self.is_model:
            if not isinstance(pv.model_config.get("model"), str):
                raise ValueError(f"{pv.ref}: a served-model version must record model_config.model")
            return
        unknown = set(pv.variables) - {"question", "sources"}
        if unknown:
            raise ValueError(f"{pv.ref}: a served RAG prompt may declare only `question` and `sources`, not "
                             f"{sorted(unknown)}")  # fmt: skip

    @property
    def is_model(self) -> bool:
        return self.name == SERVED_MODEL

    @property
    def model(self) -> str | None:
        return self.current.model_config.get("model") if self.is_model else None

    def refresh(self) -> tuple[PromptVersion, PromptVersion] | None:
        """Re-read the alias; (old, new) when it moved (and `current` was swapped), else None."""
        with self._lock:
            pv = self.registry.get(self.name, alias=self.alias)
            if pv.version == self.current.version:
                return None
            self._check(pv)
            old, self.current = self.current, pv
            return old, pv

    def messages(self, question: str, contexts: list[Any], pv: PromptVersion | None = None) -> list[dict[str, str]]:
        from ..rag import pipeline as rp

        pv = pv if pv is not None else self.current
        if self.is_model:
            return rp.build_messages(question, contexts)
        sources = "\n\n".join(f"[{i}] {h.text}" for i, h in enumerate(contexts, start=1))
        values = {k: v for k, v in (("question", question), ("sources", sources)) if k in pv.variables}
        if pv.is_chat:
            return pv.render_messages(values)
        return [{"role": "system", "content": pv.render(values)}, *rp.EXAMPLE,
                {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question}"}]  # fmt: skip

    def ref(self, pv: PromptVersion | None = None) -> str:
        return (pv if pv is not None else self.current).ref


__all__ = ["SERVED_MODEL", "ServedPrompt"]
