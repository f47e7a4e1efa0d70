"""`infercore serve` options for the failure playbooks (serve/admin.py): the served registry prompt,
auto-rollback on quality breaches, and safety review reports."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._argtypes import nonnegative_float, positive_int


def add_arguments(s: argparse.ArgumentParser) -> None:
    g = s.add_argument_group("failure playbooks")
    g.add_argument("--registry", metavar="DIR", help="prompt registry (infercore prompts) holding the served prompt")
    g.add_argument("--served-prompt", metavar="NAME", help="registry prompt /v1/rag/query answers with (or "
                   "`served-model`, the model alias `infercore gate --model-alias` maintains)")
    g.add_argument("--served-alias", default="production", help="alias of the served prompt to follow")
    g.add_argument("--auto-rollback", action="store_true", help="roll the served alias back to its previous "
                   "version when rolling quality crosses a threshold")
    g.add_argument("--gate-policy", metavar="GATE.yaml", help="thresholds (metrics.<key>.min/max; default: "
                   "the reference values, as in deploy/gate.yaml)")
    g.add_argument("--watch-window", type=positive_int, default=50, help="RAG answers in the quality watch's window")
    g.add_argument("--watch-min-samples", type=positive_int, default=20, help="answers needed before the watch may act")
    g.add_argument("--watch-cooldown-s", type=nonnegative_float, default=300.0, help="quiet time after a breach")
    g.add_argument("--registry-poll-s", type=nonnegative_float, default=5.0,
                   help="re-read the served alias every N s (0: off)")
    g.add_argument("--events-file", metavar="FILE.jsonl", help="append playbook events here (also at "
                   "GET /v1/admin/events)")
    g.add_argument("--safety-review-dir", metavar="DIR", help="watch guardrail block rates per rail and write "
                   "review reports here when one rises")


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.registry or args.served_prompt or args.auto_rollback or args.safety_review_dir
                or args.events_file)  # fmt: skip


def install(app: Any, args: argparse.Namespace, model_loader: Any = None) -> Any:
    """model_loader (model_config -> LLM) swaps the weights when `--served-prompt served-model` moves."""
    from infercore.monitor.playbooks import QualityWatch, Thresholds
    from infercore.prompts.registry import PromptRegistry
    from infercore.serve.admin import install_playbooks
    from infercore.serve.served_prompt import SERVED_MODEL

    if (args.registry is None) != (args.served_prompt is None):
        raise ValueError("--registry, --served-prompt: give both")
    if args.registry and not os.path.isdir(os.path.join(args.registry, ".git")):
        raise ValueError(f"--registry: {args.registry} is not a prompt registry (create one with `infercore prompts`)")
    thresholds = Thresholds.from_gate_policy(args.gate_policy) if args.gate_policy else Thresholds()
    watch = QualityWatch(thresholds, window=args.watch_window, min_samples=args.watch_min_samples,
                         cooldown_s=args.watch_cooldown_s)  # fmt: skip
    safety = None
    if args.safety_review_dir:
        from infercore.monitor.safety_watch import SafetyWatch

        safety = SafetyWatch()
    registry = PromptRegistry(args.registry, create=False) if args.registry else None
    return install_playbooks(app, registry=registry, served_prompt=args.served_prompt, alias=args.served_alias,
                             auto_rollback=args.auto_rollback, watch=watch, events_path=args.events_file,
                             poll_s=args.registry_poll_s, safety=safety,
                             review_dir=args.safety_review_dir,
                             model_loader=model_loader if args.served_prompt == SERVED_MODEL else None)  # fmt: skip
