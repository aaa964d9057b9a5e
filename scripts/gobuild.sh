# Shared by the scripts that build pinned tools from Go modules into a versioned cache directory
# (build-pulumi.sh, build-kube-apiserver.sh). Source it after setting:
#   tool_name   prefix of log lines
#   cache_root  the tool family's cache directory; dest=<cache_root>/<versions>; bin=<dest>/bin
#   stamp       everything the build depends on (pins + recipe): a different stamp rebuilds
#   tools=(...) binaries that must exist in $bin for the cache to count
# Then: `gobuild_begin "$@"` (`--print-path` prints the bin dir and exits; otherwise it exits printing "cached <bin>" when complete; otherwise takes the lock
# and prepares $work and $bin.tmp), build into $bin.tmp, `gobuild_finish` (prints the bin dir).

versions_json=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/components/versions.json

pinned() { # pinned <section> <key> -> the value pinned in components/versions.json
  python3 - "$versions_json" "$1" "$2" <<'PY'
import json, sys
value = json.load(open(sys.argv[1])).get(sys.argv[2], {}).get(sys.argv[3])
if not isinstance(value, str) or not value:
    sys.exit(f"components/versions.json: {sys.argv[2]}.{sys.argv[3]} is missing")
print(value)
PY
}

log() { echo "$tool_name: $*" >&2; }

gobuild_complete() {
  [[ -f $bin/.stamp && "$(cat "$bin/.stamp")" == "$stamp" ]] || return 1
  local t
  for t in "${tools[@]}"; do [[ -x $bin/$t ]] || return 1; done
}

gobuild_begin() {
  case "${1:-}" in
    --print-path) echo "$bin"; exit 0 ;;
    "") ;;
    *) echo "usage: $0 [--print-path]" >&2; exit 2 ;;
  esac
  if gobuild_complete; then echo "cached $bin"; exit 0; fi
  mkdir -p "$cache_root"
  exec 9>"$cache_root/.lock"
  flock 9
  if gobuild_complete; then echo "cached $bin"; exit 0; fi   # another run built it meanwhile
  command -v go >/dev/null || { echo "$tool_name: go is not on PATH" >&2; exit 1; }
  work=$dest/build
  rm -rf "$work" "$bin.tmp"
  mkdir -p "$work" "$bin.tmp"
  start=$SECONDS
}

module_dir() { # module@version -> its directory in the module cache (downloading it)
  (cd "$work" && go mod download -json "$1") | python3 -c '
import json, sys
d = json.load(sys.stdin)
if d.get("Error"):
    sys.exit("go mod download " + d["Path"] + "@" + d["Version"] + ": " + d["Error"])
print(d["Dir"])'
}

gobuild_finish() {
  echo "$stamp" >"$bin.tmp/.stamp"
  cd "$dest"
  rm -rf "$bin" "$work"
  mv "$bin.tmp" "$bin"
  log "built in $((SECONDS - start))s"
  echo "$bin"
}
