"""Tests run the program through the same mock runner `make render` uses."""

import copy
import functools
from typing import Optional

from observability_stack.components.targets.kubernetes import KubernetesBackend
from observability_stack.components.workload import Workload
from tooling.mockrun import (  # noqa: F401
    ROOT, SECRET_PREFIX, Registered, Run, engine_config, plaintext_strings, run_program, run_stack,
    stack_file_config,
)


def run_with_workloads(stack: str, overrides: Optional[dict] = None, *,
                       config: Optional[dict] = None) -> tuple[Run, list[Workload]]:
    """Run a Kubernetes-target stack and capture every workload the backend deployed: the
    committed stack file with `overrides` merged in (`run_stack`), or exactly `config`."""
    captured: list[Workload] = []
    original = KubernetesBackend.finish

    def finish(self, workloads):
        captured.extend(workloads)
        return original(self, workloads)

    KubernetesBackend.finish = finish
    try:
        run = run_stack(stack, overrides) if config is None else run_program(stack, config)
    finally:
        KubernetesBackend.finish = original
    assert run.error is None, run.error
    return run, captured


@functools.lru_cache(maxsize=None)
def scenario(name: str) -> tuple[Run, list[Workload]]:
    from tests.scenarios import KUBERNETES

    stack, overrides = KUBERNETES[name]
    return run_with_workloads(stack, copy.deepcopy(overrides))


def assert_gossip_only_between_peers(run: Run, workload: str, port: int) -> None:
    """The workload's NetworkPolicy opens the gossip port (TCP and UDP) to and from its own pods,
    and to no one else."""
    from observability_stack.components.targets.kubernetes import selector_labels

    policies = {r.inputs["metadata"]["name"]: r for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    spec = policies[workload].inputs["spec"]
    me = [{"podSelector": {"matchLabels": selector_labels(workload)}}]
    gossip = [{"protocol": "TCP", "port": port}, {"protocol": "UDP", "port": port}]
    assert {"from": me, "ports": gossip} in spec["ingress"]
    assert {"to": me, "ports": gossip} in spec["egress"]
    for rule in spec["ingress"]:
        if any(p["port"] == port for p in rule["ports"]):
            assert rule["from"] == me
