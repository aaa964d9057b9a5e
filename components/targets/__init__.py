"""Target backends: the only modules that import a provider SDK (STYLE 5).

`docker.DockerBackend` and `kubernetes.KubernetesBackend` each turn the target-neutral
`components.workload.Workload` into resources of one target; `components.stack.make_backend`
picks one from `settings.target`.
"""
