// pulumi-resource-docker: the bridged Docker provider, serving the schema tfgen produced
// (schema-embed.json, written next to this file by scripts/build-docker-provider.sh).
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"

	"github.com/terraform-providers/terraform-provider-docker/shim"
)

//go:embed schema-embed.json
var schema []byte

// version is set at link time to the pinned pulumi-docker SDK version (components/versions.json).
var version = "0.0.0-dev"

func main() {
	tfbridge.Main("docker", version, shim.Provider(), schema)
}
