#!/usr/bin/env bash
# Build promtool, prometheus, amtool and alertmanager from their Go modules at
# the versions pinned in components/versions.json (key `go_modules`), and
# install them into a cache directory keyed by version:
#
#   ${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/prom-tools/
#       prometheus-<X.Y.Z>/bin/{prometheus,promtool}
#       alertmanager-<X.Y.Z>/bin/{alertmanager,amtool}
#
# Usage:
#   scripts/build-prom-tools.sh               build (or report "cached"), then
#                                             print the two bin dirs
#   scripts/build-prom-tools.sh --print-path  print "<prom bin>:<am bin>" (one
#                                             line, for PATH) without building
#
# Notes:
# - The Prometheus module zip does not contain the built web UI
#   (web/ui/static). We build WITHOUT the `builtinassets` tag, so the UI is read
#   from disk at runtime and is simply absent; the HTTP API is unaffected.
# - `go install mod/cmd/x@ver` refuses modules whose go.mod has replace/exclude
#   directives (Prometheus v0.308.1 has `exclude` lines); in that case we build
#   from a writable copy of the downloaded module as the main module, which
#   honours those directives, dropping only replacements that point to
#   directories outside the module.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSIONS_JSON="$ROOT/components/versions.json"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

MODE=build
case "${1:-}" in
    "") ;;
    --print-path) MODE=print ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-prom-tools: unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

# --- versions ---------------------------------------------------------------
# Prints: prom_module prom_modver prom_ver am_module am_modver am_ver prom_image_tag
read -r PROM_MOD PROM_MODVER PROM_VER AM_MOD AM_MODVER AM_VER PROM_IMAGE_TAG < <(
python3 - "$VERSIONS_JSON" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
gm = d["go_modules"]
p, a = gm["prometheus"], gm["alertmanager"]
m = re.fullmatch(r"v0\.(\d+)\.(\d+)", p["version"])
if not m:
    sys.exit("build-prom-tools: unexpected prometheus module version %r" % p["version"])
# Prometheus 3.x is published as Go module v0.3XX.Y <-> release v3.XX.Y
minor = int(m.group(1))
prom_ver = "%d.%d.%s" % (minor // 100, minor % 100, m.group(2))
am_ver = a["version"].lstrip("v")
tag = d.get("images", {}).get("prometheus", {}).get("tag", "")
print(p["module"], p["version"], prom_ver, a["module"], a["version"], am_ver, tag or "-")
PY
)

if [[ "$PROM_IMAGE_TAG" != "-" && "$PROM_IMAGE_TAG" != "v$PROM_VER" ]]; then
    echo "build-prom-tools: warning: go_modules prometheus $PROM_MODVER (= v$PROM_VER) does not match images.prometheus tag $PROM_IMAGE_TAG" >&2
fi

CACHE_BASE="${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}"
CACHE_BASE="$(realpath -m -- "$CACHE_BASE")"
TOOLS_DIR="$CACHE_BASE/prom-tools"
PROM_BIN="$TOOLS_DIR/prometheus-$PROM_VER/bin"
AM_BIN="$TOOLS_DIR/alertmanager-$AM_VER/bin"

if [[ "$MODE" == print ]]; then
    echo "$PROM_BIN:$AM_BIN"
    exit 0
fi

# --- helpers ----------------------------------------------------------------
log() { echo "build-prom-tools: $*" >&2; }

# have_bin <path> <expected version>: binary exists, runs --version OK and
# reports the expected version.
have_bin() {
    local bin="$1" ver="$2" out
    [[ -x "$bin" ]] || return 1
    out="$("$bin" --version 2>&1)" || return 1
    grep -q "version $ver" <<<"$out"
}

# build_cmds <module> <modver> <release ver> <dest bin dir> <tags> <cmd>...
build_cmds() {
    local mod="$1" modver="$2" ver="$3" dest="$4" tags="$5"
    shift 5
    local ldflags="-s -w
        -X github.com/prometheus/common/version.Version=$ver
        -X github.com/prometheus/common/version.Revision=unknown
        -X github.com/prometheus/common/version.Branch=$modver
        -X github.com/prometheus/common/version.BuildUser=build-prom-tools.sh
        -X github.com/prometheus/common/version.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
    ldflags="$(tr -s ' \n' '  ' <<<"$ldflags")"

    local stage
    stage="$(mktemp -d "$TOOLS_DIR/.stage.XXXXXX")"
    STAGE_DIRS+=("$stage")

    local cmd errf="$stage/go-install.err" fallback=0
    for cmd in "$@"; do
        log "go install $mod/cmd/$cmd@$modver (tags: $tags)"
        if ! GOBIN="$stage" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
                go install -trimpath -tags "$tags" -ldflags "$ldflags" \
                "$mod/cmd/$cmd@$modver" 2>"$errf"; then
            # "...contains one or more replace|exclude directives..." (wrapped)
            if tr -s '\n\t' '  ' <"$errf" | grep -qE '(replace|exclude) directives|pattern [^ ]+: no matching files found'; then
                fallback=1
                break
            fi
            cat "$errf" >&2
            return 1
        fi
    done

    if [[ "$fallback" == 1 ]]; then
        log "$mod@$modver has replace/exclude directives; building from a copy of the module"
        local dir src drops modflag
        dir="$(go mod download -json "$mod@$modver" |
               python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["Dir"])')"
        src="$stage/src"
        cp -r "$dir" "$src"
        chmod -R u+w "$src"
        # Alertmanager >= 0.31 embeds its built web UI (`//go:embed app/dist` in ui/web.go), which
        # the module zip does not contain (it is generated by `make assets`). Give each missing
        # embed pattern a placeholder page: the UI is then absent, the HTTP API is unaffected
        # (the same trade-off as Prometheus built without `builtinassets`, above).
        sed -nE 's|^.*/'"${mod##*/}"'@[^/]+/(.*)/[^/]+\.go:[0-9]+:[0-9]+: pattern ([^:]+): no matching files found$|\1/\2|p' "$errf" |
        while read -r missing; do
            log "no $missing in the module zip: placeholder (web UI not built)"
            mkdir -p "$src/$missing"
            echo "web UI not built (module zip has no assets); the API is unaffected" >"$src/$missing/placeholder.txt"
        done
        (
            cd "$src"
            # Built as the main module, replace/exclude directives are honoured
            # (so the result matches an upstream build); only replacements
            # pointing to directories outside the module copy cannot work, so
            # drop those.
            drops="$(go mod edit -json | python3 -c '
import json, os, sys
d = json.load(sys.stdin)
for r in d.get("Replace") or []:
    o, n = r["Old"], r["New"]
    if not n.get("Version") and not os.path.isdir(n["Path"]):
        print("-dropreplace=" + o["Path"] + ("@" + o["Version"] if o.get("Version") else ""))
')"
            modflag=-mod=readonly
            if [[ -n "$drops" ]]; then
                log "dropping replace directives: $(tr '\n' ' ' <<<"$drops")"
                xargs go mod edit <<<"$drops"
                modflag=-mod=mod
            fi
            for cmd in "$@"; do
                log "go build ./cmd/$cmd (from module copy)"
                CGO_ENABLED=0 GOFLAGS="-buildvcs=false $modflag" \
                    go build -trimpath -tags "$tags" -ldflags "$ldflags" \
                    -o "$stage/$cmd" "./cmd/$cmd"
            done
        )
    fi

    mkdir -p "$dest"
    for cmd in "$@"; do
        "$stage/$cmd" --version >/dev/null 2>&1 || { log "built $cmd does not run --version"; return 1; }
        mv -f "$stage/$cmd" "$dest/$cmd"
    done
    rm -rf -- "$stage"
}

# --- build ------------------------------------------------------------------
STAGE_DIRS=()
cleanup() { if ((${#STAGE_DIRS[@]})); then rm -rf -- "${STAGE_DIRS[@]}"; fi; }
trap cleanup EXIT

command -v go >/dev/null || { log "go not found in PATH"; exit 1; }
mkdir -p "$TOOLS_DIR"

# Serialise concurrent runs sharing the same cache dir.
if command -v flock >/dev/null; then
    exec 9>"$TOOLS_DIR/.lock"
    flock 9
fi

if have_bin "$PROM_BIN/prometheus" "$PROM_VER" && have_bin "$PROM_BIN/promtool" "$PROM_VER"; then
    log "prometheus $PROM_VER: cached"
else
    # netgo as upstream; no `builtinassets` (the module zip has no built UI).
    build_cmds "$PROM_MOD" "$PROM_MODVER" "$PROM_VER" "$PROM_BIN" netgo prometheus promtool
    log "prometheus $PROM_VER: built"
fi

if have_bin "$AM_BIN/alertmanager" "$AM_VER" && have_bin "$AM_BIN/amtool" "$AM_VER"; then
    log "alertmanager $AM_VER: cached"
else
    build_cmds "$AM_MOD" "$AM_MODVER" "$AM_VER" "$AM_BIN" netgo alertmanager amtool
    log "alertmanager $AM_VER: built"
fi

echo "$PROM_BIN"
echo "$AM_BIN"
