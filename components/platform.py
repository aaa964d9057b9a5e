"""What differs by platform, described once by the backend and read by the tool modules.

Tool modules never test the target. What a tool needs to know about where it runs (can it
discover pods, where are the host's container logs and in which format, how does a per-node
agent keep its own logs out of what it ships, are the kubelet's volume stats scraped) comes from
the `Platform` the backend supplies; kube-prometheus keeps the same facts in its `platforms/`
patch layer. `DOCKER` and `kubernetes(namespace)` are the two descriptions; the backends return
them from `platform()`, and pure code (`make render`, the tests) picks them with `for_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# Docker's json-file logging driver: /var/lib/docker/containers/<id>/<id>-json.log
DOCKER_LOGS = "/var/lib/docker/containers"
# The kubelet's pod logs: /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log
POD_LOGS = "/var/log/pods"


@dataclass(frozen=True)
class ContainerLogs:
    """The host's container log files, as a per-node log agent reads them."""

    host_paths: tuple[str, ...]  # mounted read-only into the agent
    include: tuple[str, ...]  # filelog globs
    # stanza `container` parser settings for this runtime's file format
    parser: dict
    # Docker's file path carries only the container id (no name): keep it as a resource attribute.
    container_id_from_path: Optional[str] = None
    # How the agent's own log files are kept out of `include`: a glob with `{agent}` for the agent's
    # pod name prefix (Kubernetes), or None where the backend gives the agent a logging driver
    # whose files `include` does not match (Docker).
    self_exclude: Optional[str] = None

    def exclude(self, agent: str) -> tuple[str, ...]:
        return (self.self_exclude.format(agent=agent),) if self.self_exclude else ()


@dataclass(frozen=True)
class Platform:
    name: str
    # Prometheus can discover pods through the Kubernetes API (annotation-driven scraping).
    pod_discovery: bool
    container_logs: ContainerLogs
    # The namespace whose claims report kubelet volume stats, where those are scraped.
    volume_stats_namespace: Optional[str] = None
    # Prometheus can discover the nodes (per-node exporters on the host network are scraped at
    # each node's address, not through a service).
    node_discovery: bool = False
    # The cluster itself is scraped: kubelets (+ cAdvisor, probes) and the API server
    # (`kubernetes.clusterMonitoring`); components/cluster.py has the jobs, RBAC and rules.
    cluster_monitoring: bool = False


DOCKER = Platform(
    name="docker",
    pod_discovery=False,
    container_logs=ContainerLogs(
        host_paths=(DOCKER_LOGS,),
        include=(f"{DOCKER_LOGS}/*/*-json.log",),
        parser={"format": "docker", "add_metadata_from_filepath": False},
        container_id_from_path=r"^.*/containers/(?P<container_id>[0-9a-f]+)/[^/]+$",
        # The Docker backend runs the agent with the `local` logging driver: its own lines land in
        # `<id>/local-logs/container.log`, which `*-json.log` does not match.
        self_exclude=None,
    ),
)


def kubernetes(namespace: str, cluster_monitoring: bool = True) -> Platform:
    return Platform(
        name="kubernetes",
        pod_discovery=True,
        container_logs=ContainerLogs(
            host_paths=(POD_LOGS,),
            include=(f"{POD_LOGS}/*/*/*.log",),
            # Detects the runtime's format (containerd/CRI-O/docker) and adds k8s.namespace.name,
            # k8s.pod.name, k8s.container.name from the path.
            parser={},
            # The agent's DaemonSet pods are named `<agent>-<hash>`.
            self_exclude=f"{POD_LOGS}/{namespace}_{{agent}}-*/*/*.log",
        ),
        # The kubelet's volume stats are only scraped with cluster monitoring.
        volume_stats_namespace=namespace if cluster_monitoring else None,
        node_discovery=True,
        cluster_monitoring=cluster_monitoring,
    )


def for_settings(settings) -> Platform:
    """The platform the settings' target backend supplies (for pure code without a backend)."""
    if settings.target == "kubernetes":
        return kubernetes(settings.kubernetes.namespace, settings.kubernetes.cluster_monitoring)
    return DOCKER
