#!/usr/bin/env bash
# Build actionlint (github.com/rhysd/actionlint, MIT) from its Go module at the version pinned
# under "lint" in components/versions.json, for tests/test_workflows.py, which lints the GitHub
# workflows users copy (.github/workflows/). Cached like the other toolchains:
#
#   ${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/actionlint/<version>/bin/actionlint
#
#   scripts/build-actionlint.sh               build (or reuse) and print the bin dir last
#   scripts/build-actionlint.sh --print-path  print the bin dir only; builds nothing
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tool_name=build-actionlint
# shellcheck source=scripts/gobuild.sh
source "$here/gobuild.sh"

recipe=1
version=$(pinned lint actionlint)

cache_root=${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/actionlint
dest=$cache_root/${version#v}
bin=$dest/bin
stamp="recipe=$recipe actionlint=$version"
tools=(actionlint)

gobuild_begin "$@"

# Its go.mod has no replace directives, so `go install module@version` builds it as released.
log "actionlint $version"
GOBIN="$bin.tmp" GOFLAGS=-mod=mod go install -trimpath \
  -ldflags "-s -w -X github.com/rhysd/actionlint.version=${version#v}" \
  "github.com/rhysd/actionlint/cmd/actionlint@$version"

gobuild_finish
