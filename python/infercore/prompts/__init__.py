"""Prompt registry backed by Git, A/B tests and staged rollouts (issue 9)."""

from .registry import PromptNotFoundError, PromptRegistry, RegistryCorruptionError, RegistryError
from .template import PromptRenderError, PromptVersion

__all__ = [
    "PromptNotFoundError",
    "PromptRegistry",
    "PromptRenderError",
    "PromptVersion",
    "RegistryCorruptionError",
    "RegistryError",
]

from .experiments import ABTest, Rollout, bucket, two_proportion_z

__all__ += ["ABTest", "Rollout", "bucket", "two_proportion_z"]
