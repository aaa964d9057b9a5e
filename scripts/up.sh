#!/usr/bin/env bash
# `make up STACK=<stack>` (and `make preview`): find a Pulumi CLI, pick the state backend, select
# or create the stack, check the target's prerequisites, then run `pulumi up` (or preview --diff).
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-dev}"
action="${2:-up}"

say() { printf '%s\n' "$*" >&2; }

# 1. The Pulumi CLI: installed, else the official installer (internet), else built from Go modules.
engine=cli
if command -v pulumi >/dev/null 2>&1; then
  say "using the installed Pulumi CLI: $(command -v pulumi) ($(pulumi version))"
elif curl -fsS --max-time 5 -o /dev/null https://get.pulumi.com 2>/dev/null; then
  say "no Pulumi CLI found: installing it with the official installer"
  curl -fsSL https://get.pulumi.com | sh
  export PATH="$HOME/.pulumi/bin:$PATH"
elif command -v go >/dev/null 2>&1; then
  say "no Pulumi CLI and no internet: building the pinned engine from Go modules (scripts/build-pulumi.sh)"
  say "  (its Python language host is not buildable here, so the program runs inline through the"
  say "   Automation API: scripts/engine.py; the Kubernetes provider is built too, the Docker one cannot be)"
  scripts/build-pulumi.sh >&2
  export PATH="$(scripts/build-pulumi.sh --print-path):$PATH"
  export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
  engine=inline
else
  say "error: the Pulumi CLI is required. Install it (https://www.pulumi.com/docs/install/) or install Go so it can be built from modules."
  exit 1
fi
export PULUMI_SKIP_UPDATE_CHECK=true

# 2. State: PULUMI_BACKEND_URL if set, else a local file backend in the project.
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  mkdir -p .pulumi-state
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  say "state backend: $PULUMI_BACKEND_URL (set PULUMI_BACKEND_URL to use another)"
fi

# 3. Stack settings are validated before anything else runs (same messages as pulumi up).
if [ -f "Pulumi.$stack.yaml" ]; then
  venv/bin/python scripts/render.py --stack "$stack" --out "rendered/$stack" >/dev/null
fi
target=$(venv/bin/python - "$stack" <<'PY'
import sys
from observability_stack.config import settings_from_stack_file
try:
    print(settings_from_stack_file(f"Pulumi.{sys.argv[1]}.yaml", sys.argv[1]).target)
except Exception:
    print("unknown")
PY
)

# 4. Target prerequisites.
if [ "$target" = docker ] && ! docker info >/dev/null 2>&1; then
  say "error: stack '$stack' deploys to Docker, but no Docker engine answers (docker info failed)."
  say "       Install Docker Engine (e.g. apt-get install docker.io, then start dockerd) or set DOCKER_HOST."
  exit 1
fi

if [ "$engine" = inline ]; then
  exec venv/bin/python scripts/engine.py "$stack" "$action"
fi
pulumi stack select --create "$stack" >&2
if [ "$action" = preview ]; then
  exec pulumi preview --diff
fi
exec pulumi up
