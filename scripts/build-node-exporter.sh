#!/usr/bin/env bash
# Build node_exporter (github.com/prometheus/node_exporter, Apache-2.0) from its Go module at the
# version pinned under "go_modules" in components/versions.json (the same version as the image),
# for tests/test_host_monitoring_e2e.py, which runs it on this host and lets a real Prometheus
# scrape it. Cached like the other toolchains:
#
#   ${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/node-exporter/<version>/bin/node_exporter
#
#   scripts/build-node-exporter.sh               build (or reuse) and print the bin dir last
#   scripts/build-node-exporter.sh --print-path  print the bin dir only; builds nothing
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tool_name=build-node-exporter
# shellcheck source=scripts/gobuild.sh
source "$here/gobuild.sh"

recipe=1
version=$(python3 - "$versions_json" <<'PY'
import json, sys
print(json.load(open(sys.argv[1]))["go_modules"]["node_exporter"]["version"])
PY
)

cache_root=${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/node-exporter
dest=$cache_root/${version#v}
bin=$dest/bin
stamp="recipe=$recipe node_exporter=$version"
tools=(node_exporter)

gobuild_begin "$@"

# Its go.mod has no replace directives, so `go install module@version` builds it as released.
log "node_exporter $version"
GOBIN="$bin.tmp" GOFLAGS=-mod=mod nice go install -trimpath \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=${version#v}" \
  "github.com/prometheus/node_exporter@$version"

gobuild_finish
