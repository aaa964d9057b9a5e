#!/usr/bin/env bash
# `make up STACK=<stack>` (and `make preview`): pick a Pulumi CLI, check every prerequisite
# (scripts/preflight.py: config, passphrase, provider plugins, Docker engine, images) before
# anything runs, build what is missing and can be built, select or create the stack, then run
# `pulumi up` (or preview --diff). Every failure is one message saying what to do; no traceback.
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-dev}"
action="${2:-up}"

say() { printf '%s\n' "$*" >&2; }

# 1. Which Pulumi CLI: installed, else the official installer (internet), else built from Go
#    modules. Decided here, acted on after the checks, so a missing prerequisite costs no build.
online=0
if curl -fsS --max-time 5 -o /dev/null https://get.pulumi.com 2>/dev/null; then online=1; fi
if command -v pulumi >/dev/null 2>&1; then engine=installed
elif [ "$online" = 1 ]; then engine=installer
elif command -v go >/dev/null 2>&1; then engine=build
else engine=none
fi

# 2. State: PULUMI_BACKEND_URL if set, else a local file backend in the project.
local_state=0
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  local_state=1
fi
export PULUMI_SKIP_UPDATE_CHECK=true

# 3. Every prerequisite, before anything is built or created.
exports=$(venv/bin/python scripts/preflight.py "$stack" --engine "$engine" --online "$online") || exit 1
eval "$exports"

# 4. Build or install what is missing.
case "$engine" in
  installed) say "using the installed Pulumi CLI: $(command -v pulumi) ($(pulumi version))" ;;
  installer)
    say "no Pulumi CLI found: installing it with the official installer"
    curl -fsSL https://get.pulumi.com | sh >&2
    export PATH="$HOME/.pulumi/bin:$PATH" ;;
  build)
    say "no Pulumi CLI and no internet: building the pinned engine from Go modules (scripts/build-pulumi.sh)"
    say "  (its Python language host is not buildable here, so the program runs inline through the"
    say "   Automation API: scripts/engine.py)"
    scripts/build-pulumi.sh >&2 || { say "error: building the Pulumi engine failed (output above)"; exit 1; }
    export PATH="$(scripts/build-pulumi.sh --print-path):$PATH"
    export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true ;;
esac
if [ "${OBS_BUILD_DOCKER_PROVIDER:-}" = 1 ]; then
  say "building the Docker provider plugin from Go modules (scripts/build-docker-provider.sh)"
  scripts/build-docker-provider.sh >&2 || { say "error: building pulumi-resource-docker failed (output above)"; exit 1; }
fi
if [ -n "${OBS_PLUGIN_PATH:-}" ]; then export PATH="$OBS_PLUGIN_PATH:$PATH"; fi
if [ "$local_state" = 1 ]; then mkdir -p .pulumi-state; fi
say "state backend: $PULUMI_BACKEND_URL (set PULUMI_BACKEND_URL to use another)"

# 5. Run.
if [ "$engine" = build ]; then
  exec venv/bin/python scripts/engine.py "$stack" "$action"
fi
pulumi stack select --create "$stack" >&2
if [ "$action" = preview ]; then
  exec pulumi preview --diff
fi
exec pulumi up
