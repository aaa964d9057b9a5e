// pulumi-tfgen-docker writes the Pulumi schema of the bridged Docker provider
// (`pulumi-tfgen-docker schema --out <dir>`); scripts/build-docker-provider.sh embeds it into
// pulumi-resource-docker.
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"

	"github.com/terraform-providers/terraform-provider-docker/shim"
)

// version is set at link time to the pinned pulumi-docker SDK version (components/versions.json).
var version = "0.0.0-dev"

func main() {
	tfgen.Main("docker", version, shim.Provider())
}
