#!/usr/bin/env bash
# Build kube-state-metrics (k8s.io/kube-state-metrics/v2, Apache-2.0) from its Go module at the
# version pinned under "go_modules" in components/versions.json (the same version as the image),
# for tests/test_engine_apiserver.py, which runs it against the real kube-apiserver after `up` of
# the prod stack and lets a real Prometheus scrape it. Cached like the other toolchains:
#
#   ${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/kube-state-metrics/<version>/bin/kube-state-metrics
#
#   scripts/build-kube-state-metrics.sh               build (or reuse) and print the bin dir last
#   scripts/build-kube-state-metrics.sh --print-path  print the bin dir only; builds nothing
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tool_name=build-kube-state-metrics
# shellcheck source=scripts/gobuild.sh
source "$here/gobuild.sh"

recipe=1
version=$(python3 - "$versions_json" <<'PY'
import json, sys
print(json.load(open(sys.argv[1]))["go_modules"]["kube_state_metrics"]["version"])
PY
)

cache_root=${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/kube-state-metrics
dest=$cache_root/${version#v}
bin=$dest/bin
stamp="recipe=$recipe kube_state_metrics=$version"
tools=(kube-state-metrics)

gobuild_begin "$@"

# `go install module@version` first asks the module proxy for the module's version list (to report
# deprecations), which it refuses for this module; so the build runs inside the released module
# itself (downloaded at the pin), with its own go.mod and go.sum, which have no replace
# directives: the binary is built as released. The version ldflag is upstream's Makefile
# `build-local` (PKG=github.com/prometheus/common); CGO off as there, static like the image's.
log "kube-state-metrics $version"
src=$(module_dir "k8s.io/kube-state-metrics/v2@$version")
(cd "$src" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" nice go build -trimpath \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=${version}" \
  -o "$bin.tmp/kube-state-metrics" .)

gobuild_finish
