"""Carry a gate decision out in the prompt registry (`infercore gate --apply`), as Git commits there.

Three targets, any combination:
  * a staged rollout (prompts.experiments.Rollout, by id): deploy advances it one stage (past the last
    stage it completes and moves its alias to the candidate); roll back calls Rollout.rollback with the
    gate's reason, which lands in the rollout's state and in the commit message.
  * a prompt alias (e.g. `production` of prompt `qa`): deploy points it at the candidate version;
    roll back keeps it, or restores the version it had before if it already points at the candidate.
  * the served model alias. The registry versions prompts, not models, so the model lives in a
    pseudo-prompt named `served-model` (SERVED_MODEL): each version records one model id in its
    model_config["model"], and its aliases (`production`, `staging`) are the served models. It is
    moved like a prompt alias, through the same registry API (register / set_alias), so its history
    is `infercore prompts history served-model`; read it with served_model(registry, "production").
"""

from __future__ import annotations

import re

from ..prompts.experiments import Rollout
from ..prompts.registry import PromptNotFoundError, PromptRegistry
from .gate import GateDecision
from .results import EvalResults

SERVED_MODEL = "served-model"
_SERVED_MODEL_TEMPLATE = "infercore served-model alias record (the model id is model_config.model)"


def served_model(registry: PromptRegistry, alias: str = "production") -> str:
    """The model id the alias serves (PromptNotFoundError when there is none)."""
    return registry.get(SERVED_MODEL, alias=alias).model_config["model"]


def model_version(registry: PromptRegistry, model: str) -> int:
    """The served-model version that records `model`, registered (one commit) when new."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model: expected a non-empty model id, got {model!r}")
    for v in reversed(registry.versions(SERVED_MODEL)):
        if registry.get(SERVED_MODEL, v).model_config.get("model") == model:
            return v
    pv = registry.register(SERVED_MODEL, _SERVED_MODEL_TEMPLATE, variables={}, model_config={"model": model},
                           metadata={"model": model}, message=f"model {model}")  # fmt: skip
    return pv.version


def candidate_prompt_version(results: EvalResults, prompt: str) -> int | None:
    """The version of `prompt` the results were produced with (results.versions["prompts"]), if recorded."""
    prompts = results.versions.get("prompts")
    if not isinstance(prompts, dict) or prompt not in prompts:
        return None
    v = prompts[prompt]
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and re.fullmatch(r"v?[0-9]+", v):
        return int(v.lstrip("v"))
    raise ValueError(f"candidate: versions.prompts.{prompt} is {v!r}, not a version number")


def _short_reason(decision: GateDecision) -> str:
    failed = ", ".join(f"{c.key} ({c.kind})" for c in decision.failed)
    return f"infercore gate: {len(decision.failed)} of {len(decision.checks)} checks failed: {failed}"


def _previous_target(registry: PromptRegistry, name: str, alias: str, current: int) -> int | None:
    """The version the alias pointed at before it was moved to `current` (from the registry's history)."""
    for h in registry.history(name):  # newest first
        if h["alias"] == alias and h["version"] is not None and h["version"] != current:
            return h["version"]
    return None


def _move_alias(registry: PromptRegistry, name: str, alias: str, version: int, deploy: bool, what: str) -> str:
    current = registry.aliases(name).get(alias)
    if deploy:
        if current == version:
            return f"{what}: alias {alias} already at v{version}"
        registry.set_alias(name, alias, version)
        return f"{what}: alias {alias} -> v{version}" + (f" (was v{current})" if current is not None else "")
    if current != version:
        return f"{what}: alias {alias} kept at " + (f"v{current}" if current is not None else "(unset)")
    previous = _previous_target(registry, name, alias, version)
    if previous is None:
        return f"{what}: alias {alias} points at the rejected v{version} and has no earlier target; left as is"
    registry.set_alias(name, alias, previous)
    return f"{what}: alias {alias} restored to v{previous} (from the rejected v{version})"


def _open_rollout(registry: PromptRegistry, rollout_id: str) -> Rollout:
    state = registry.read_state("rollouts", rollout_id)
    if not isinstance(state, dict) or not {"prompt", "candidate", "stable", "stages", "alias"} <= set(state):
        raise ValueError(f"rollout: no staged rollout {rollout_id!r} in {registry.path}")
    return Rollout(registry, state["prompt"], state["candidate"], stages=state["stages"], stable=state["stable"],
                   alias=state["alias"], rollout_id=rollout_id, gate=lambda m: m.get("gate") == "deploy")  # fmt: skip


def apply_decision(
    decision: GateDecision,
    registry: PromptRegistry,
    candidate: EvalResults,
    *,
    rollout: str | None = None,
    prompt: str | None = None,
    prompt_version: int | None = None,
    alias: str = "production",
    model_alias: str | None = None,
    model: str | None = None,
) -> list[str]:
    """Advance or roll back what the options name; returns one line per thing done."""
    if not isinstance(decision, GateDecision):
        raise TypeError(f"decision: expected a GateDecision, got {type(decision).__name__}")
    if not isinstance(registry, PromptRegistry):
        raise TypeError(f"registry: expected a PromptRegistry, got {type(registry).__name__}")
    if rollout is None and prompt is None and model_alias is None:
        raise ValueError("apply: name what to move: a rollout, a prompt (alias) or a model alias")
    done: list[str] = []
    # check everything before changing anything
    ro = _open_rollout(registry, rollout) if rollout is not None else None
    if ro is not None:
        want = candidate_prompt_version(candidate, ro.name)
        if want is not None and want != ro.candidate.version:
            raise ValueError(f"rollout: {rollout!r} rolls out {ro.name} v{ro.candidate.version}, but the candidate "
                             f"results were produced with v{want}")  # fmt: skip
        if decision.deploy and ro.status != "running":
            raise ValueError(f"rollout: {rollout!r} is {ro.status}; there is no stage to advance")
    if prompt is not None:
        if prompt_version is None:
            prompt_version = candidate_prompt_version(candidate, prompt)
        if prompt_version is None:
            raise ValueError(f"prompt_version: the candidate results do not record a version of {prompt!r}; "
                             "give it (--prompt-version)")  # fmt: skip
        registry.get(prompt, prompt_version)  # exists, or PromptNotFoundError
    if model_alias is not None:
        model = model if model is not None else candidate.versions.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError("model: the candidate results do not record a model id; give it (--model)")
    if ro is not None:
        if decision.deploy:
            ro.advance({"gate": "deploy", "gate_checks": len(decision.checks)})
            if ro.status == "completed":
                done.append(f"rollout {ro.id}: completed, alias {ro.alias} -> v{ro.candidate.version}")
            else:
                done.append(f"rollout {ro.id}: advanced to stage {ro.stage + 1}/{len(ro.stages)} "
                            f"({ro.share:.0%} of traffic on v{ro.candidate.version})")  # fmt: skip
        elif ro.status == "rolled_back":
            done.append(f"rollout {ro.id}: already rolled back")
        else:
            ro.rollback(_short_reason(decision))
            done.append(f"rollout {ro.id}: rolled back to v{ro.stable.version} ({_short_reason(decision)})")
    if prompt is not None and prompt_version is not None:
        done.append(_move_alias(registry, prompt, alias, prompt_version, decision.deploy, f"prompt {prompt}"))
    if model_alias is not None and isinstance(model, str):
        if not decision.deploy and SERVED_MODEL not in registry.names():
            done.append(f"model: alias {model_alias} kept (no served-model record yet)")
        else:
            v = model_version(registry, model) if decision.deploy else _find_model_version(registry, model)
            if v is None:
                done.append(f"model: alias {model_alias} kept (model {model} was never served)")
            else:
                done.append(_move_alias(registry, SERVED_MODEL, model_alias, v, decision.deploy, f"model {model}"))
    return done


def _find_model_version(registry: PromptRegistry, model: str) -> int | None:
    for v in registry.versions(SERVED_MODEL):
        try:
            if registry.get(SERVED_MODEL, v).model_config.get("model") == model:
                return v
        except PromptNotFoundError:
            continue
    return None

