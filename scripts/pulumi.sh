#!/usr/bin/env bash
# Runs the pinned pulumi CLI on the selected lab stack ($STACK, default sim) with the project's offline
# defaults, creating the stack on first use. Usage: scripts/pulumi.sh up|preview|destroy|... [ARGS]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$WAPC_ROOT"
[ -x .venv/bin/pulumi ] || { echo "pulumi is not built yet: run 'make bootstrap'" >&2; exit 1; }
if [ ! -f "stacks/Pulumi.$STACK.yaml" ]; then
  echo "no stack configuration stacks/Pulumi.$STACK.yaml; see README (Stacks) to create one" >&2
  exit 2
fi
pulumi stack select --create --non-interactive "$STACK" >/dev/null
# At a terminal a person gets Pulumi's live resource tree (each row's Info column shows the step a provider is
# running, providers/progress.py); pipes, logs and CI keep the line-by-line display.
display=(--non-interactive)
if [ -t 1 ] && [ -z "${CI:-}" ]; then display=(); fi
exec pulumi "$@" --stack "$STACK" ${display[@]+"${display[@]}"}
