#!/usr/bin/env bash
# Build `pulumi-resource-docker`, the Docker provider the pulumi-docker Python SDK talks to, from
# Go modules at the versions pinned under "toolchain" in components/versions.json:
#
#   github.com/kreuzwerker/terraform-provider-docker  at terraform_provider_docker_module
#       (its go.mod says module github.com/terraform-providers/terraform-provider-docker, so it is
#        required under that path with a `replace`)
#   github.com/pulumi/pulumi-terraform-bridge/v3      at pulumi_terraform_bridge
#
# The mapping (tokens, property names) is scripts/docker-provider/provider.go, a small module whose
# path sits under the upstream module path (.../terraform-provider-docker/shim) so it may import
# the upstream's internal/provider package. tfgen writes the schema, the provider is then built
# with that schema embedded and reports the pinned pulumi-docker version (pulumi_docker).
#
# into ${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/docker-provider/<version>/bin/
# (reused when complete: prints "cached").
#
#   scripts/build-docker-provider.sh               build (or reuse), print the bin dir last
#   scripts/build-docker-provider.sh --print-path  print the bin dir only; builds nothing
#
# The bin dir also holds schema.json (what tfgen wrote, version set). The provider is found on
# PATH by the engine (PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tool_name=build-docker-provider
# shellcheck source=scripts/gobuild.sh
source "$here/gobuild.sh"

# Bump when the build recipe changes, so caches are rebuilt.
recipe=1

pd_version=$(pinned toolchain pulumi_docker)                       # v5.2.0
tfd_version=$(pinned toolchain terraform_provider_docker_module)   # a pseudo-version
bridge_version=$(pinned toolchain pulumi_terraform_bridge)         # v3.120.0
sdk_fork_version=$(pinned toolchain terraform_plugin_sdk_fork)     # a pseudo-version
upstream=github.com/kreuzwerker/terraform-provider-docker
upstream_path=github.com/terraform-providers/terraform-provider-docker
bridge=github.com/pulumi/pulumi-terraform-bridge/v3

cache_root=${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/docker-provider
dest=$cache_root/${pd_version#v}
bin=$dest/bin
sources=$(cd "$here/docker-provider" && find . -type f -name '*.go' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
stamp="recipe=$recipe pulumi_docker=$pd_version tfd=$tfd_version bridge=$bridge_version sdk=$sdk_fork_version sources=$sources"
tools=(pulumi-resource-docker)

gobuild_begin "$@"

log "resolving $upstream@$tfd_version and $bridge@$bridge_version"
upstream_dir=$(module_dir "$upstream@$tfd_version")
bridge_dir=$(module_dir "$bridge@$bridge_version")
grep -q "^module $upstream_path\$" "$upstream_dir/go.mod" ||
  { log "$upstream@$tfd_version no longer declares module $upstream_path"; exit 1; }

shim=$work/shim
mkdir -p "$shim"
cp -r "$here/docker-provider/." "$shim/"
{
  echo "module $upstream_path/shim"
  echo
  grep -m1 '^go ' "$upstream_dir/go.mod"
  echo
  echo "require ("
  echo "	$upstream_path $tfd_version"
  echo "	$bridge $bridge_version"
  echo ")"
  echo
  echo "replace $upstream_path => $upstream $tfd_version"
  # Replaces in a dependency's go.mod are ignored, so every bridged provider repeats the bridge's:
  # its fork of terraform-plugin-sdk/v2, at the pinned (newer) revision, see versions.json.
  echo "replace github.com/hashicorp/terraform-plugin-sdk/v2 => github.com/pulumi/terraform-plugin-sdk/v2 $sdk_fork_version"
  grep -E '^replace [^ ]+ => [^./ ][^ ]* v[^ ]+$' "$bridge_dir/go.mod" | grep -v ' github.com/hashicorp/terraform-plugin-sdk/v2 ' || true
} >"$shim/go.mod"

cd "$shim"
log "go mod tidy"
go mod tidy
ldflags="-s -w -X main.version=${pd_version#v}"
log "building pulumi-tfgen-docker (takes minutes on a cold build cache)"
go build -trimpath -ldflags "$ldflags" -o "$work/pulumi-tfgen-docker" ./cmd/pulumi-tfgen-docker
log "tfgen: writing the schema"
mkdir -p "$work/schema"
# --skip-docs: descriptions come from the upstream's Markdown docs; the schema's shape does not.
"$work/pulumi-tfgen-docker" schema --skip-docs --out "$work/schema" >&2
python3 - "$work/schema/schema.json" "${pd_version#v}" "$shim/cmd/pulumi-resource-docker/schema-embed.json" "$bin.tmp/schema.json" <<'PY'
import json, sys
src, version, embed, keep = sys.argv[1:]
schema = json.load(open(src))
schema["version"] = version   # tfgen omits it; the engine reads the provider's version from here
json.dump(schema, open(embed, "w"), separators=(",", ":"))
json.dump(schema, open(keep, "w"), indent=1, sort_keys=True)
PY
log "building pulumi-resource-docker"
go build -trimpath -ldflags "$ldflags" -o "$bin.tmp/pulumi-resource-docker" ./cmd/pulumi-resource-docker

gobuild_finish
