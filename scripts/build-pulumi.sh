#!/usr/bin/env bash
# Build the Pulumi engine used by the real preview/up checks from Go modules, at the
# versions pinned under "toolchain" in components/versions.json:
#
#   pulumi                        CLI, from github.com/pulumi/pulumi/pkg/v3 (+ sdk/v3) at "pulumi"
#   pulumi-resource-kubernetes    github.com/pulumi/pulumi-kubernetes/provider/v4 at
#                                 "pulumi_kubernetes_provider_module", reporting "pulumi_kubernetes"
#
# into ${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/pulumi/<cli>-k8s<k8s>/bin/ and
# reuses that directory when it is complete (prints "cached").
#
#   scripts/build-pulumi.sh               build (or reuse) and print the bin dir last
#   scripts/build-pulumi.sh --print-path  print the bin dir only; builds nothing
#
# Running the result offline: put the bin dir first on PATH and set
#   PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true PULUMI_SKIP_UPDATE_CHECK=true
#   PULUMI_CONFIG_PASSPHRASE=...   and log in with `pulumi login file://<dir>`.
# Plugins found on PATH (pulumi-resource-*) are used whatever version the SDK asks for.
#
# Python language host: the module github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
# is not served by the Go module proxy reachable here (every query, @v/list, @latest, @v3.259.0,
# the v3.259.0 commit and its pseudo-versions, answers "403 This module version is not
# available"). We do not substitute a host of our own: programs run under this engine through
# the Automation API's inline programs (scripts/engine.py), where the Python SDK itself serves
# the program to the real CLI. `pulumi preview` / `up` from the command line, and Python policy
# packs (run through the language host), need an installed Pulumi CLI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tool_name=build-pulumi
# shellcheck source=scripts/gobuild.sh
source "$here/gobuild.sh"

# Bump when the build recipe changes, so caches are rebuilt.
recipe=3


pulumi_version=$(pinned toolchain pulumi)                          # v3.259.0
k8s_version=$(pinned toolchain pulumi_kubernetes)                  # v4.25.0
k8s_module_version=$(pinned toolchain pulumi_kubernetes_provider_module)

cache_root=${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/pulumi
key=${pulumi_version#v}-k8s${k8s_version#v}
dest=$cache_root/$key
bin=$dest/bin

stamp="recipe=$recipe pulumi=$pulumi_version k8s=$k8s_version k8s_module=$k8s_module_version"
tools=(pulumi pulumi-resource-kubernetes)

gobuild_begin "$@"

# --- pulumi CLI: a wrapper module ----------------------------
# pkg/v3's go.mod replaces sdk/v3 => ../sdk, so `go install pkg/v3/cmd/pulumi@ver` is refused.
# A wrapper module requires pkg/v3 and sdk/v3 at the same version and copies pkg/v3's
# non-local replaces (the clipboard fork).
log "pulumi $pulumi_version: resolving modules"
pkg_dir=$(module_dir "github.com/pulumi/pulumi/pkg/v3@$pulumi_version")
sdk_dir=$(module_dir "github.com/pulumi/pulumi/sdk/v3@$pulumi_version")
cli=$work/cli
mkdir -p "$cli"
{
  echo "module observability.local/pulumi-build"
  echo
  grep -m1 '^go ' "$pkg_dir/go.mod"
  echo
  echo "require ("
  echo "	github.com/pulumi/pulumi/pkg/v3 $pulumi_version"
  echo "	github.com/pulumi/pulumi/sdk/v3 $pulumi_version"
  echo ")"
  echo
  # replace lines whose target is a module (old => new version), not a local path
  grep -E '^replace [^ ]+ => [^./ ][^ ]* v[^ ]+$' "$pkg_dir/go.mod" || true
  echo
  echo "tool github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
} >"$cli/go.mod"

cd "$cli"
log "pulumi $pulumi_version: go mod tidy"
go mod tidy
ldflags_cli="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${pulumi_version#v}"
log "pulumi $pulumi_version: building pulumi (takes minutes on a cold build cache)"
go build -trimpath -ldflags "$ldflags_cli" -o "$bin.tmp/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

# --- pulumi-resource-kubernetes ---------------------------------------------------------------
# provider/v4 is untagged (pseudo-versions only) and replaces sdk/v4 => ../sdk; the wrapper
# requires sdk/v4 at the release version instead. The command's main package embeds
# schema-embed.json, which upstream generates (generate.go: schema.json with "version" set), so
# the wrapper holds a copy of main.go plus that generated file.
log "pulumi-resource-kubernetes $k8s_version ($k8s_module_version): resolving modules"
k8s_dir=$(module_dir "github.com/pulumi/pulumi-kubernetes/provider/v4@$k8s_module_version")
k8s=$work/kubernetes
mkdir -p "$k8s"
cmd_dir=$k8s_dir/cmd/pulumi-resource-kubernetes
install -m 0644 "$cmd_dir/main.go" "$k8s/main.go"
python3 - "$cmd_dir" "$k8s" "${k8s_version#v}" <<'PY'
import json, os, sys
src, dst, version = sys.argv[1:]
schema = json.load(open(os.path.join(src, "schema.json")))
schema["version"] = version
json.dump(schema, open(os.path.join(dst, "schema-embed.json"), "w"), separators=(",", ":"))
mapping = json.load(open(os.path.join(src, "terraform-mapping.json")))
json.dump(mapping, open(os.path.join(dst, "terraform-mapping-embed.json"), "w"), separators=(",", ":"))
PY
{
  echo "module observability.local/pulumi-resource-kubernetes"
  echo
  grep -m1 '^go ' "$k8s_dir/go.mod"
  echo
  echo "require ("
  echo "	github.com/pulumi/pulumi-kubernetes/provider/v4 $k8s_module_version"
  echo "	github.com/pulumi/pulumi-kubernetes/sdk/v4 $k8s_version"
  echo ")"
  grep -E '^replace [^ ]+ => [^./ ][^ ]* v[^ ]+$' "$k8s_dir/go.mod" || true
} >"$k8s/go.mod"
cd "$k8s"
log "pulumi-resource-kubernetes: go mod tidy"
go mod tidy
log "pulumi-resource-kubernetes: building (takes minutes on a cold build cache)"
go build -trimpath \
  -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=${k8s_version#v}" \
  -o "$bin.tmp/pulumi-resource-kubernetes" .

gobuild_finish
