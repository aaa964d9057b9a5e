// Package shim maps the Terraform Docker provider (kreuzwerker/terraform-provider-docker, module
// path github.com/terraform-providers/terraform-provider-docker) to the Pulumi package "docker"
// the pulumi-docker Python SDK expects. Built by scripts/build-docker-provider.sh.
//
// This package's import path sits under the upstream module path
// (.../terraform-provider-docker/shim), which is what lets it import the upstream's
// internal/provider package; pulumi-docker reaches the same package through a patch that adds a
// shim/ directory to its upstream submodule (patches/0001-Add-shim.NewProvider...).
//
// Mapping: a subset of pulumi-docker's provider/resources.go (master of 2026-08, the newest
// revision readable here; the v5.2.0 tag is not). Kept: everything that changes a token or a
// property name, or runtime behaviour, of the resources and data sources the SDK names. Left
// out: the hybrid provider's native `docker:index/image:Image` (buildkit, not bridged) with its
// extra types, docs edits, language-SDK options and auto-aliasing metadata (aliases for states
// written by pulumi-docker 3.x and older).
package shim

import (
	"context"
	"runtime"
	"unicode"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	tfbridgetokens "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

const (
	pkg = "docker"
	mod = "index"
)

// "docker:index/<lowerFirst(name)>:<name>", as pulumi-docker's dockerResource/dockerDataSource.
func token(name string) string {
	return pkg + ":" + mod + "/" + string(unicode.ToLower(rune(name[0]))) + name[1:] + ":" + name
}

func tokenType(name string) tokens.Type           { return tokens.Type(token(name)) }
func tokenMember(name string) tokens.ModuleMember { return tokens.ModuleMember(token(name)) }

func defaultHost() string {
	if runtime.GOOS == "windows" {
		return "npipe:////./pipe/docker_engine"
	}
	return "unix:///var/run/docker.sock"
}

// Provider is the bridge's description of the Docker provider.
func Provider() tfbridge.ProviderInfo {
	// provider.New("dev") is what pulumi-docker's shim.NewProvider returns: the SDKv2 provider
	// only (the upstream's plugin-framework half, compose and actions, is not bridged there either).
	prov := tfbridge.ProviderInfo{
		P:           shimv2.NewProvider(provider.New("dev")()),
		Name:        pkg,
		Description: "A Pulumi package for interacting with Docker in Pulumi programs",
		Keywords:    []string{"pulumi", "docker"},
		License:     "Apache-2.0",
		Repository:  "https://github.com/pulumi/pulumi-docker",
		GitHubOrg:   "kreuzwerker",
		Config: map[string]*tfbridge.SchemaInfo{
			"host": {
				Default: &tfbridge.DefaultInfo{
					EnvVars: []string{"DOCKER_HOST"},
					ComputeDefault: func(context.Context, tfbridge.ComputeDefaultOptions) (interface{}, error) {
						return defaultHost(), nil
					},
				},
			},
			"registry_auth": {Name: "registryAuth", MaxItemsOne: tfbridge.False()},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			"docker_config": {Tok: tokenType("ServiceConfig")},
			"docker_container": {
				Tok: tokenType("Container"),
				// Container names and host ports are unique on a daemon: a replacement must
				// delete the old container first.
				DeleteBeforeReplace: true,
				Fields: map[string]*tfbridge.SchemaInfo{
					"command":           {Name: "command"}, // one command, not plural
					"networks_advanced": {Name: "networksAdvanced"},
				},
			},
			"docker_image": {
				Tok:    tokenType("RemoteImage"),
				Fields: map[string]*tfbridge.SchemaInfo{"name": {Name: "name"}},
			},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"docker_image": {Tok: tokenMember("getRemoteImage")},
		},
	}
	// Every other resource and data source: docker_<x> -> docker:index/<x>:<X> (camel case).
	prov.MustComputeTokens(tfbridgetokens.SingleModule("docker_", mod, tfbridgetokens.MakeStandard(pkg)))
	// `name` inputs become optional, auto-named "<resource name>-<random>" (at most 255 chars).
	prov.SetAutonaming(255, "-")
	return prov
}
