#!/usr/bin/env bash
# Build `otelcol-obs`, a validation-only OpenTelemetry collector with just the components our
# configs use, at the collector version pinned in components/versions.json, with the upstream
# builder (go.opentelemetry.io/collector/cmd/builder) from the Go module proxy. Cached by version
# and by the manifest's content (adding a component builds a new binary next to the old one, so
# worktrees on another manifest keep theirs).
#   scripts/build-otelcol.sh               build if missing, print the binary path
#   scripts/build-otelcol.sh --print-path  print the binary path only
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(python3 -c 'import json; print(json.load(open("components/versions.json"))["images"]["collector"]["tag"])')
manifest=$(sed "s/@VERSION@/$version/g" scripts/otelcol-builder.yaml)
digest=$(printf '%s' "$manifest" | sha256sum | cut -c1-12)
cache="${OBS_TOOLS_CACHE:-$HOME/.cache/observability-stack}/otelcol/$version-$digest"
binary="$cache/out/otelcol-obs"
if [ "${1:-}" = "--print-path" ]; then echo "$binary"; exit 0; fi
if [ -x "$binary" ] && "$binary" --version >/dev/null 2>&1; then
  echo "otelcol-obs $version: cached" >&2; echo "$binary"; exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -x "$binary" ] && "$binary" --version >/dev/null 2>&1; then
  echo "otelcol-obs $version: built meanwhile" >&2; echo "$binary"; exit 0
fi
echo "building otelcol-obs $version (about 5 minutes cold)" >&2
# The checksum database does not answer for these module paths here (the AWS Cloud Map SDK is a
# dependency of the loadbalancing exporter's `aws_cloud_map` resolver); the code itself still
# comes from the Go module proxy, pinned by version (and by the builder's go.sum).
export GONOSUMDB="go.opentelemetry.io/collector,github.com/open-telemetry/opentelemetry-collector-contrib,github.com/aws/aws-sdk-go-v2/service/servicediscovery"
GOBIN="$cache/bin" go install "go.opentelemetry.io/collector/cmd/builder@v$version" >&2
printf '%s\n' "$manifest" > "$cache/builder.yaml"
(cd "$cache" && ./bin/builder --config builder.yaml >&2)
"$binary" --version >&2
echo "$binary"
