"""`infercore gate`: deploy (exit 0) or roll back (exit 1) a candidate from its eval results; 2 on bad input.

    infercore gate --candidate results.json --baseline baseline.json [--policy gate.yaml] [--json]
                   [--apply --registry DIR [--rollout ID] [--prompt NAME [--prompt-version N]]
                    [--alias production] [--model-alias production [--model ID]]]
"""

from __future__ import annotations

import argparse
import json
import sys

_EXAMPLES = """exit status: 0 deploy, 1 roll back, 2 usage or input error.

examples:
  infercore gate --candidate cand.json --baseline prod.json --policy deploy/gate.yaml
  infercore gate --candidate cand.json --no-baseline              # absolute thresholds only
  infercore gate --candidate cand.json --baseline prod.json --apply --registry prompts/ \\
      --rollout qa-v4                                              # advance or roll back a staged rollout
  infercore gate --candidate cand.json --baseline prod.json --apply --registry prompts/ \\
      --prompt qa --alias production --model-alias production      # move the aliases on deploy
"""


def _err(msg: str) -> int:
    print(f"infercore gate: {msg}", file=sys.stderr)
    return 2


def cmd_gate(args: argparse.Namespace) -> int:
    from infercore.evals import results as results_mod
    from infercore.evals.gate import GatePolicy, PolicyError, decide

    if args.baseline is None and not args.no_baseline:
        return _err("give --baseline FILE, or --no-baseline to gate on absolute thresholds only")
    if args.apply:
        if args.registry is None:
            return _err("--apply needs --registry DIR")
        if args.rollout is None and args.prompt is None and args.model_alias is None:
            return _err("--apply needs something to move: --rollout ID, --prompt NAME or --model-alias ALIAS")
    elif any(x is not None for x in (args.registry, args.rollout, args.prompt, args.model_alias)):
        return _err("--registry/--rollout/--prompt/--model-alias only act with --apply")
    try:
        policy = GatePolicy.load(args.policy) if args.policy else GatePolicy.default()
        candidate = results_mod.load(args.candidate)
    except FileNotFoundError as e:
        return _err(str(e))
    except (PolicyError, results_mod.ResultsFormatError) as e:
        return _err(str(e))
    baseline = None
    if args.baseline is not None:
        try:
            baseline = results_mod.load(args.baseline)
        except FileNotFoundError:
            return _err(f"baseline results file not found: {args.baseline} (evaluate the production version "
                        "to make one, or pass --no-baseline to gate on absolute thresholds only)")  # fmt: skip
        except results_mod.ResultsFormatError as e:
            return _err(str(e))
    decision = decide(candidate, baseline, policy)
    applied: list[str] = []
    apply_error = None
    if args.apply:
        from infercore.evals.gate_apply import apply_decision
        from infercore.prompts import PromptRegistry
        from infercore.prompts.registry import PromptNotFoundError, RegistryError

        try:
            registry = PromptRegistry(args.registry, create=False)
            applied = apply_decision(decision, registry, candidate, rollout=args.rollout, prompt=args.prompt,
                                     prompt_version=args.prompt_version, alias=args.alias,
                                     model_alias=args.model_alias, model=args.model)  # fmt: skip
        except (ValueError, TypeError, PromptNotFoundError, RegistryError) as e:
            apply_error = str(e)
    if args.decision_file:
        with open(args.decision_file, "w", encoding="utf-8") as fh:
            fh.write(("error" if apply_error else decision.verdict) + "\n")
    if args.json:
        doc = decision.to_json()
        doc.update(candidate=args.candidate, baseline=args.baseline, policy=args.policy or "<defaults>")
        if args.apply:
            doc["applied"] = applied
            if apply_error:
                doc["apply_error"] = apply_error
        print(json.dumps(doc, indent=1))
    else:
        print(f"candidate: {args.candidate}  baseline: {args.baseline or '(none)'}  "
              f"policy: {args.policy or '(defaults)'}")  # fmt: skip
        print(decision.explain())
        for line in applied:
            print(f"applied: {line}")
    if apply_error:
        return _err(f"decided to {decision.verdict}, but applying it failed: {apply_error}")
    return 0 if decision.deploy else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gate", help="deploy (exit 0) or roll back (exit 1) a candidate from its eval results",
                       description=__doc__.splitlines()[0], epilog=_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--candidate", required=True, metavar="RESULTS.json", help="the candidate's `eval run` results")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--baseline", metavar="RESULTS.json", help="the production (baseline) results to compare with")
    b.add_argument("--no-baseline", action="store_true", help="check absolute thresholds only")
    p.add_argument("--policy", metavar="GATE.yaml", help="gate policy (default: the built-in thresholds)")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.add_argument("--decision-file", metavar="FILE", help="also write 'deploy', 'rollback' or 'error' to FILE")
    a = p.add_argument_group("apply the decision to a prompt registry (Git commits)")
    a.add_argument("--apply", action="store_true", help="advance / roll back what the options below name")
    a.add_argument("--registry", metavar="DIR", help="the prompt registry (a Git repository)")
    a.add_argument("--rollout", metavar="ID", help="staged rollout to advance one stage, or roll back")
    a.add_argument("--prompt", metavar="NAME", help="prompt whose alias moves to the candidate version on deploy")
    a.add_argument("--prompt-version", type=int, metavar="N",
                   help="the candidate version of --prompt (default: from the results' versions.prompts)")
    a.add_argument("--alias", default="production", help="the prompt alias to move (default: production)")
    a.add_argument("--model-alias", metavar="ALIAS", help="served-model alias to move to the candidate's model")
    a.add_argument("--model", metavar="ID", help="the candidate's model id (default: the results' versions.model)")
    p.set_defaults(func=cmd_gate)
