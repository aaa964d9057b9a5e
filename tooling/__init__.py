"""Repository tooling, not part of the installed package: run the program under Pulumi mocks
(`mockrun`) and turn what it declares into Kubernetes manifests (`manifests`), for `make render`,
the tests and the benchmarks."""
