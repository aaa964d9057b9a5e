#!/usr/bin/env bash
# Build a real Kubernetes API server and its etcd from Go modules, at the versions pinned under
# "kube" in components/versions.json, for tests/test_engine_apiserver.py (tests/kube.py runs
# them on loopback):
#
#   kube-apiserver   k8s.io/kubernetes/cmd/kube-apiserver at "kubernetes"
#   etcd             go.etcd.io/etcd/server/v3 at "etcd" (what that kubernetes release requires)
#
# into ${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/kube/<k8s>-etcd<etcd>/bin/ and
# reuses that directory when it is complete (prints "cached").
#
#   scripts/build-kube-apiserver.sh               build (or reuse) and print the bin dir last
#   scripts/build-kube-apiserver.sh --print-path  print the bin dir only; builds nothing
#
# k8s.io/kubernetes's go.mod replaces every k8s.io/* staging module with ./staging/src/...,
# which `go install ...@version` refuses. A wrapper module requires k8s.io/kubernetes at the
# version and maps each staging module named in that replace block to its published release
# (v0.X.Y for kubernetes v1.X.Y). Debian's etcd-server is 3.4, older than the 3.5+/3.6 the
# apiserver is tested with, so etcd comes from its Go module as well.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tool_name=build-kube-apiserver
# shellcheck source=scripts/gobuild.sh
source "$here/gobuild.sh"

# Bump when the build recipe changes, so caches are rebuilt.
recipe=1


k8s_version=$(pinned kube kubernetes)     # v1.34.4
staging_version=$(pinned kube staging)    # v0.34.4
etcd_version=$(pinned kube etcd)          # v3.6.4

cache_root=${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/kube
dest=$cache_root/${k8s_version#v}-etcd${etcd_version#v}
bin=$dest/bin

stamp="recipe=$recipe kubernetes=$k8s_version staging=$staging_version etcd=$etcd_version"
tools=(kube-apiserver etcd)

gobuild_begin "$@"

log "kubernetes $k8s_version: resolving modules"
k8s_dir=$(module_dir "k8s.io/kubernetes@$k8s_version")
mod=$work/mod
mkdir -p "$mod"
{
  echo "module observability.local/kube-apiserver-build"
  echo
  grep -m1 '^go ' "$k8s_dir/go.mod"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $k8s_version"
  echo "	go.etcd.io/etcd/server/v3 $etcd_version"
  echo ")"
  echo
  echo "replace ("
  # k8s.io/x => ./staging/src/k8s.io/x   becomes   k8s.io/x => k8s.io/x v0.X.Y
  sed -n '/^replace (/,/^)/p' "$k8s_dir/go.mod" \
    | awk -v v="$staging_version" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }'
  echo ")"
  echo
  echo "tool ("
  echo "	k8s.io/kubernetes/cmd/kube-apiserver"
  echo "	go.etcd.io/etcd/server/v3"
  echo ")"
} >"$mod/go.mod"

cd "$mod"
log "go mod tidy"
go mod tidy
# The module graph must keep etcd at the pinned version (kubernetes requires it).
got=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
[[ $got == "$etcd_version" ]] || { log "etcd resolved to $got, not $etcd_version: update kube.etcd"; exit 1; }

ver=${k8s_version#v}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=${ver%%.*}"
  minor=${ver#*.}; minor=${minor%%.*}
  ldflags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
log "building kube-apiserver $k8s_version (takes minutes on a cold build cache)"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
log "building etcd $etcd_version"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp/etcd" go.etcd.io/etcd/server/v3

"$bin.tmp/kube-apiserver" --version >&2
"$bin.tmp/etcd" --version >&2

gobuild_finish
