#!/usr/bin/env bash
# The eval-gate pipeline without a cluster: the steps of deploy/argo/eval-gate-workflowtemplate.yaml
# (and deploy/github/eval-gate.yml) run here, in order, on local files.
#
#   deploy/run_local.sh (--suite SUITE.yaml | --candidate RESULTS.json)
#                       (--baseline RESULTS.json | --no-baseline) [--policy GATE.yaml]
#                       [--registry DIR [--rollout ID] [--prompt NAME] [--model-alias ALIAS]]
#                       [--workdir DIR] [--notify-url URL]
#
# 1 evaluate  `infercore eval run SUITE --out WORKDIR/candidate.json` (skipped with --candidate)
# 2 gate      `infercore gate ...` -> WORKDIR/decision ("deploy" / "rollback")
# 3 apply     with --registry: the gate again with --apply (promote or roll back in the registry)
# 4 notify    WORKDIR/notification.json (+ POST to --notify-url), one summary line on stdout
# Exit status: 0 deploy, 1 roll back, 2 bad input or a failed step. INFERCORE overrides the command
# (e.g. INFERCORE="python -m infercore.cli.main").
set -euo pipefail

read -r -a IC <<< "${INFERCORE:-infercore}"
suite="" candidate="" baseline="" no_baseline="" policy="" registry="" workdir="" notify_url=""
apply_args=()
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || case "$1" in --no-baseline|-h|--help) ;; *) echo "run_local.sh: $1 needs a value" >&2; exit 2;; esac
  case "$1" in
    --suite) suite=$2; shift 2 ;;
    --candidate) candidate=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --no-baseline) no_baseline=1; shift ;;
    --policy) policy=$2; shift 2 ;;
    --registry) registry=$2; shift 2 ;;
    --rollout|--prompt|--model-alias|--alias|--model) apply_args+=("$1" "$2"); shift 2 ;;
    --workdir) workdir=$2; shift 2 ;;
    --notify-url) notify_url=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "run_local.sh: unknown argument $1" >&2; usage ;;
  esac
done
if { [ -n "$suite" ] && [ -n "$candidate" ]; } || { [ -z "$suite" ] && [ -z "$candidate" ]; }; then
  echo "run_local.sh: give exactly one of --suite and --candidate" >&2; exit 2
fi
if [ ${#apply_args[@]} -gt 0 ] && [ -z "$registry" ]; then
  echo "run_local.sh: --rollout/--prompt/--model-alias need --registry" >&2; exit 2
fi
workdir=${workdir:-$(mktemp -d "${TMPDIR:-/tmp}/infercore-gate.XXXXXX")}
mkdir -p "$workdir"
step() { echo "=== $*" >&2; }

gate_args=()
if [ -n "$baseline" ]; then gate_args+=(--baseline "$baseline"); fi
if [ -n "$no_baseline" ]; then gate_args+=(--no-baseline); fi
if [ -n "$policy" ]; then gate_args+=(--policy "$policy"); fi

notify() {  # $1 decision, $2 exit status
  step "notify"
  local applied="[]"
  [ -s "$workdir/applied.json" ] && applied="$workdir/applied.json"
  python3 - "$1" "$2" "$workdir" "$applied" > "$workdir/notification.json" <<'PY'
import json, os, sys
decision, rc, workdir, applied = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
doc = {"decision": decision, "exit_status": rc, "workdir": workdir}
path = os.path.join(workdir, "decision.json")
if os.path.exists(path) and os.path.getsize(path):
    d = json.load(open(path))
    doc.update(reason=d.get("reason"), checks=d.get("checks"))
if applied != "[]":
    doc["applied"] = json.load(open(applied)).get("applied", [])
print(json.dumps(doc, indent=1))
PY
  if [ -n "$notify_url" ]; then
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=open(sys.argv[2], "rb").read(), headers={"Content-Type": "application/json"}), timeout=30)' \
      "$notify_url" "$workdir/notification.json" || echo "run_local.sh: notify failed (decision stands)" >&2
  fi
  echo "infercore gate: $1 (status $2; details in $workdir)"
}

# 1 evaluate
if [ -n "$suite" ]; then
  step "evaluate: $suite"
  if ! "${IC[@]}" eval run "$suite" --out "$workdir/candidate.json"; then
    notify error 2; exit 2
  fi
  candidate="$workdir/candidate.json"
fi

# 2 gate
step "gate: $candidate"
set +e
"${IC[@]}" gate --candidate "$candidate" "${gate_args[@]}" --json --decision-file "$workdir/decision" \
  > "$workdir/decision.json"
rc=$?
set -e
if [ "$rc" -gt 1 ]; then notify error "$rc"; exit 2; fi
decision=$(cat "$workdir/decision")
python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["reason"])' "$workdir/decision.json" >&2

# 3 promote or roll back
if [ -n "$registry" ]; then
  step "apply ($decision): $registry"
  set +e
  "${IC[@]}" gate --candidate "$candidate" "${gate_args[@]}" --json --apply --registry "$registry" \
    "${apply_args[@]}" > "$workdir/applied.json"
  arc=$?
  set -e
  if [ "$arc" != "$rc" ]; then
    echo "run_local.sh: the apply step exited $arc, the gate $rc" >&2
    notify error 2; exit 2
  fi
fi

# 4 notify
notify "$decision" "$rc"
exit "$rc"
