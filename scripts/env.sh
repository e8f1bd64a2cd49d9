# Sourced by every project command: the offline Pulumi defaults and the project's tools first on PATH.
# Anything already set in the environment wins, so a team can point PULUMI_BACKEND_URL elsewhere.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WAPC_ROOT="$root"
export PATH="$root/.venv/bin:$PATH"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_HOME="${PULUMI_HOME:-$root/.state/pulumi-home}"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$root/.state/backend}"
# The language host (engine/langhost) predates runtime.options.virtualenv reaching it: name the venv's python.
export PULUMI_PYTHON_CMD="$root/.venv/bin/python"
export STACK="${STACK:-sim}"
# Resource operations the engine runs at once (its default is 4 x CPUs = 8 here). A lab's hosts are spread over up
# to 12 dynamic-provider processes of 4 workers each (components/providers.py): let the engine feed all of them.
export PULUMI_PARALLEL="${PULUMI_PARALLEL:-64}"
# Simulator stacks only: a passphrase that is NOT a secret, so `make up` works out of the box. Stacks for real
# labs must bring their own secrets provider (PULUMI_CONFIG_PASSPHRASE(_FILE), or `pulumi stack init
# --secrets-provider awskms://...|azurekeyvault://...|hashivault://...`).
LABSIM_PASSPHRASE="labsim-lab-only-passphrase-not-a-secret"
case "$STACK" in
  sim|sim-*)
    if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
      export PULUMI_CONFIG_PASSPHRASE="$LABSIM_PASSPHRASE"
    fi ;;
esac
mkdir -p "$PULUMI_HOME"
case "$PULUMI_BACKEND_URL" in file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;; esac
