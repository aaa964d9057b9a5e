#!/usr/bin/env bash
# Build the Pulumi engine used by the real preview/up checks from Go modules, at the
# versions pinned under "toolchain" in components/versions.json:
#
#   pulumi                        CLI, from github.com/pulumi/pulumi/pkg/v3 (+ sdk/v3) at "pulumi"
#   pulumi-language-python        Python language host (see "Python language host" below)
#   pulumi-language-python-exec   its companion script, shipped in the sdk/v3 module zip
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
# is not served by the Go module proxy reachable here (every query, @v/list included, answers
# "403 This module version is not available"). Until it is, this script builds a small stand-in
# host (Go source below) against sdk/v3 at the same version as the CLI. It uses sdk/v3's own
# python/toolchain package to pick the interpreter (Pulumi.yaml runtime options `virtualenv` and
# `toolchain`, else PULUMI_PYTHON_CMD, else python3 on PATH) and runs the sdk's
# pulumi-language-python-exec, exactly as the real host does. It does not report required
# plugins (the engine loads providers when the program registers them) and ignores
# `typechecker`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
versions_json=$repo/components/versions.json

# Bump when the build recipe (or the stand-in host below) changes, so caches are rebuilt.
recipe=2

toolchain_get() {
  python3 - "$versions_json" "$1" <<'PY'
import json, sys
value = json.load(open(sys.argv[1]))["toolchain"].get(sys.argv[2])
if not isinstance(value, str) or not value:
    sys.exit(f"components/versions.json: toolchain.{sys.argv[2]} is missing")
print(value)
PY
}

pulumi_version=$(toolchain_get pulumi)                          # v3.259.0
k8s_version=$(toolchain_get pulumi_kubernetes)                  # v4.25.0
k8s_module_version=$(toolchain_get pulumi_kubernetes_provider_module)

cache_root=${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/pulumi
key=${pulumi_version#v}-k8s${k8s_version#v}
dest=$cache_root/$key
bin=$dest/bin

case "${1:-}" in
  --print-path) echo "$bin"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-path]" >&2; exit 2 ;;
esac

stamp="recipe=$recipe pulumi=$pulumi_version k8s=$k8s_version k8s_module=$k8s_module_version"
tools=(pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-kubernetes)

complete() {
  [[ -f $bin/.stamp && "$(cat "$bin/.stamp")" == "$stamp" ]] || return 1
  local t
  for t in "${tools[@]}"; do [[ -x $bin/$t ]] || return 1; done
}

if complete; then echo "cached $bin"; exit 0; fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
if complete; then echo "cached $bin"; exit 0; fi   # another run built it meanwhile

command -v go >/dev/null || { echo "build-pulumi: go is not on PATH" >&2; exit 1; }
log() { echo "build-pulumi: $*" >&2; }

work=$dest/build
rm -rf "$work" "$bin.tmp"
mkdir -p "$work" "$bin.tmp"
start=$SECONDS

module_dir() { # module@version -> its directory in the module cache (downloading it)
  (cd "$work" && go mod download -json "$1") | python3 -c '
import json, sys
d = json.load(sys.stdin)
if d.get("Error"):
    sys.exit("go mod download " + d["Path"] + "@" + d["Version"] + ": " + d["Error"])
print(d["Dir"])'
}

# --- pulumi CLI and the Python language host: one wrapper module ----------------------------
# pkg/v3's go.mod replaces sdk/v3 => ../sdk, so `go install pkg/v3/cmd/pulumi@ver` is refused.
# A wrapper module requires pkg/v3 and sdk/v3 at the same version and copies pkg/v3's
# non-local replaces (the clipboard fork).
log "pulumi $pulumi_version: resolving modules"
pkg_dir=$(module_dir "github.com/pulumi/pulumi/pkg/v3@$pulumi_version")
sdk_dir=$(module_dir "github.com/pulumi/pulumi/sdk/v3@$pulumi_version")
cli=$work/cli
mkdir -p "$cli/cmd/pulumi-language-python"
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

cat >"$cli/cmd/pulumi-language-python/main.go" <<'GO'
// Stand-in Pulumi language host for Python (see scripts/build-pulumi.sh): serves the
// LanguageRuntime gRPC service and runs programs through the SDK's pulumi-language-python-exec.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Exit code with which pulumi-language-python-exec says it already showed the error.
const exitAfterUserMessage = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engine   string
	execPath string
}

func main() {
	// The engine passes its address as the last argument; older engines put flags first.
	var engine string
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-") {
			engine = a
		}
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := &host{engine: engine, execPath: filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(s, h)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func resolve(info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	opts := toolchain.PythonOptions{Toolchain: toolchain.Auto} // Auto: uv.lock, poetry.lock, else pip
	if info != nil {
		opts.Root, opts.ProgramDir = info.GetRootDirectory(), info.GetProgramDirectory()
		o := info.GetOptions().AsMap()
		if v, ok := o["virtualenv"].(string); ok {
			opts.Virtualenv = v
		}
		switch o["toolchain"] {
		case "uv":
			opts.Toolchain = toolchain.Uv
		case "poetry":
			opts.Toolchain = toolchain.Poetry
		case "pip":
			opts.Toolchain = toolchain.Pip
		case nil, "":
		default:
			return nil, fmt.Errorf("unsupported python toolchain %v", o["toolchain"])
		}
	}
	return toolchain.ResolveToolchain(opts)
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	tc, err := resolve(req.GetInfo())
	if err != nil {
		return nil, err
	}
	args := []string{"-u", h.execPath,
		"--monitor", req.GetMonitorAddress(),
		"--engine", h.engine,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", req.GetPwd(),
		"--dry_run", strconv.FormatBool(req.GetDryRun()),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
		"--organization", req.GetOrganization(),
		"--root_directory", req.GetInfo().GetRootDirectory(),
		req.GetProgram(),
	}
	args = append(args, req.GetArgs()...)
	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	cfg := map[string]string{} // never JSON null: the exec script iterates over it
	for k, v := range req.GetConfig() {
		cfg[k] = v
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(append([]string{}, req.GetConfigSecretKeys()...))
	if err != nil {
		return nil, err
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env, "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == exitAfterUserMessage:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode())}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err)}, nil
	}
}

type streamWriter struct {
	send   func(*pulumirpc.InstallDependenciesResponse) error
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	b := append([]byte{}, p...)
	r := &pulumirpc.InstallDependenciesResponse{Stdout: b}
	if w.stderr {
		r = &pulumirpc.InstallDependenciesResponse{Stderr: b}
	}
	return len(p), w.send(r)
}

func (h *host) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	srv grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	tc, err := resolve(req.GetInfo())
	if err != nil {
		return err
	}
	var out, errOut io.Writer = streamWriter{send: srv.Send}, streamWriter{send: srv.Send, stderr: true}
	dir := req.GetInfo().GetProgramDirectory()
	if dir == "" {
		dir = req.GetDirectory()
	}
	return tc.InstallDependencies(srv.Context(), dir, req.GetUseLanguageVersionTools(), true, out, errOut)
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	tc, err := resolve(req.GetInfo())
	if err != nil {
		return nil, err
	}
	about, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{
		Executable: about.PythonExecutable,
		Version:    about.PythonVersion.String(),
		Metadata:   map[string]string{"host": "observability stand-in for pulumi-language-python"},
	}, nil
}

func (h *host) GetProgramDependencies(ctx context.Context,
	req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	tc, err := resolve(req.GetInfo())
	if err != nil {
		return nil, err
	}
	pkgs, err := tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, p := range pkgs {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return resp, nil
}
GO

cd "$cli"
log "pulumi $pulumi_version: go mod tidy"
go mod tidy
ldflags_cli="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=${pulumi_version#v}"
log "pulumi $pulumi_version: building pulumi-language-python (stand-in)"
go build -trimpath -ldflags "$ldflags_cli" -o "$bin.tmp/pulumi-language-python" ./cmd/pulumi-language-python
install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$bin.tmp/pulumi-language-python-exec"
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

echo "$stamp" >"$bin.tmp/.stamp"
cd "$dest"
rm -rf "$bin" "$work"
mv "$bin.tmp" "$bin"
log "built in $((SECONDS - start))s"
echo "$bin"
