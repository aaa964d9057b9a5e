"""kube-state-metrics: the state of the cluster's objects (Kubernetes only).

Upstream references: kube-state-metrics v2.19.1 docs (`docs/cli-arguments.md`: `--resources`,
`--port`, `--telemetry-port`; `docs/metrics/workload/*.md` for the metric names), and
kube-prometheus v0.18.0 `manifests/kubeStateMetrics-clusterRole.yaml` (list/watch per kind).
Alert names and thresholds are informed by the kubernetes-mixin (KubePodCrashLooping,
KubePodNotReady, KubeDeploymentReplicasMismatch, KubeStatefulSetReplicasMismatch,
KubeDaemonSetRolloutStuck, KubeJobFailed), written for this stack.

Least privilege: it exports only the kinds the rules and dashboards use (`RESOURCES`), and its
ClusterRole can list and watch exactly those: no Secrets, ConfigMaps or RBAC objects, unlike the
upstream default of every kind. One Deployment with a Service; Prometheus scrapes it as the
`kube-state-metrics` job (its series carry `namespace`, `pod`, `container` themselves).
"""

from __future__ import annotations

from .base import ToolComponent
from .monitoring import alert, dashboard, grid, panel, rule_file, variable
from .platform import Platform
from .wiring import Links
from .workload import Endpoint, HealthCheck, Port, Workload, flags, tool_workload
from ..config.model import Settings, job_name

TOOL = "kube_state_metrics"
JOB = job_name(TOOL)
PORT = 8080
TELEMETRY_PORT = 8081
UID = GID = 65534  # the image's USER (distroless: no shell, no HTTP client)
# (API group, kinds): what `--resources` exports and the ClusterRole may list and watch.
RESOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("namespaces", "nodes", "persistentvolumeclaims", "pods")),
    ("apps", ("daemonsets", "deployments", "statefulsets")),
    ("batch", ("jobs",)),
)


def serves(service: str) -> dict[str, Endpoint]:
    return {"metrics": Endpoint(service, PORT, path="/metrics", scrape=True)}


def cluster_rules() -> tuple[dict, ...]:
    return tuple({"apiGroups": [group], "resources": list(kinds), "verbs": ["list", "watch"]}
                 for group, kinds in RESOURCES)


def args() -> tuple[str, ...]:
    return tuple(flags({
        "port": PORT,
        "telemetry-port": TELEMETRY_PORT,
        "resources": ",".join(sorted(kind for _, kinds in RESOURCES for kind in kinds)),
    }))


def render(settings: Settings, links: Links, platform: Platform) -> dict[str, str]:
    return {}  # flags only


def workloads(settings: Settings, links: Links, platform: Platform) -> tuple[Workload, ...]:
    return (tool_workload(
        settings, TOOL, service=links.service(TOOL),
        uid=UID, gid=GID,
        args=args(),
        ports=(Port("metrics", PORT), Port("telemetry", TELEMETRY_PORT)),
        # /livez on the metrics port, upstream's liveness probe (examples/standard/deployment.yaml,
        # v2.19.1): pkg/app/server.go answers it by asking the API server's /livez with the
        # ServiceAccount's token, so it is 200 only while the process runs and reaches the API
        # server (tests/test_engine_apiserver.py checks it on the real binary). Upstream's
        # /readyz (telemetry port) is 200 as soon as the self-metrics registry is non-empty.
        # Distroless image: no Docker healthcheck (and no Docker target).
        health=HealthCheck.http("/livez", PORT, client=None),
        cluster_rules=cluster_rules(),
    ),)


# --- rules -----------------------------------------------------------------------------------

KSM = f'job="{JOB}"'


def monitoring_rules(settings: Settings) -> dict[str, dict]:
    alerts = {"name": "kubernetes-workloads", "rules": [
        alert("KubePodCrashLooping",
              f'max_over_time(kube_pod_container_status_waiting_reason{{{KSM}, reason="CrashLoopBackOff"}}[5m]) >= 1',
              "15m", "warning", "A container is crash-looping",
              "{{ $labels.container }} in {{ $labels.namespace }}/{{ $labels.pod }} keeps restarting (CrashLoopBackOff)."),
        # Pods of Jobs are left out: a finished or failed Job pod is KubeJobFailed's business.
        alert("KubePodNotReady",
              f'sum by (namespace, pod) (kube_pod_status_phase{{{KSM}, phase=~"Pending|Unknown|Failed"}})'
              f' * on (namespace, pod) group_left () max by (namespace, pod) (kube_pod_owner{{{KSM}, owner_kind!="Job"}}) > 0',
              "15m", "warning", "A pod is not ready",
              "{{ $labels.namespace }}/{{ $labels.pod }} has not been running for 15 minutes."),
        alert("KubeDeploymentReplicasMismatch",
              f"kube_deployment_spec_replicas{{{KSM}}} != kube_deployment_status_replicas_available{{{KSM}}}",
              "15m", "warning", "A Deployment lacks available replicas",
              "Deployment {{ $labels.namespace }}/{{ $labels.deployment }} has {{ $value }} available "
              "replicas fewer or more than it wants."),
        alert("KubeStatefulSetReplicasMismatch",
              f"kube_statefulset_replicas{{{KSM}}} != kube_statefulset_status_replicas_ready{{{KSM}}}",
              "15m", "warning", "A StatefulSet lacks ready replicas",
              "StatefulSet {{ $labels.namespace }}/{{ $labels.statefulset }} does not have the replicas it wants ready."),
        alert("KubeDaemonSetReplicasMismatch",
              f"kube_daemonset_status_desired_number_scheduled{{{KSM}}} != kube_daemonset_status_number_ready{{{KSM}}}",
              "15m", "warning", "A DaemonSet is not ready on every node",
              "DaemonSet {{ $labels.namespace }}/{{ $labels.daemonset }} is not ready on every node it should run on."),
        alert("KubeJobFailed", f"kube_job_failed{{{KSM}}} > 0", "15m", "warning", "A Job failed",
              "Job {{ $labels.namespace }}/{{ $labels.job_name }} failed; remove it to clear the alert."),
    ]}
    return {"kubernetes-workloads.yml": rule_file(alerts)}


# --- dashboards ------------------------------------------------------------------------------


def monitoring_dashboards(ds: dict) -> dict[str, dict]:
    cluster = grid([
        ("Nodes ready", [(f'sum(kube_node_status_condition{{{KSM}, condition="Ready", status="true"}})', "ready"),
                         (f"count(kube_node_info{{{KSM}}})", "nodes")], "short"),
        ("Pods by phase", [(f"sum by (phase) (kube_pod_status_phase{{{KSM}}})", "{{phase}}")], "short"),
        ("CPU requested / allocatable",
         [(f'sum(kube_pod_container_resource_requests{{{KSM}, resource="cpu"}})'
           f' / sum(kube_node_status_allocatable{{{KSM}, resource="cpu"}})', "requested")], "percentunit"),
        ("Memory requested / allocatable",
         [(f'sum(kube_pod_container_resource_requests{{{KSM}, resource="memory"}})'
           f' / sum(kube_node_status_allocatable{{{KSM}, resource="memory"}})', "requested")], "percentunit"),
        ("CPU used by namespace", [("namespace:container_cpu_usage_seconds:rate5m", "{{namespace}}")], "short"),
        ("Memory used by namespace", [("namespace:container_memory_working_set_bytes:sum", "{{namespace}}")], "bytes"),
        ("API server requests by code", [("code:apiserver_request_total:rate5m", "{{code}}")], "reqps"),
        ("API server p99 latency by verb", [("verb:apiserver_request_duration_seconds:p99_5m", "{{verb}}")], "s"),
    ], ds)
    ns = 'namespace=~"$namespace"'
    workloads = grid([
        ("CPU by pod", [(f'sum by (pod) (namespace_pod_container:container_cpu_usage_seconds:rate5m{{{ns}}})',
                         "{{pod}}")], "short"),
        ("Memory by pod", [(f'sum by (pod) (namespace_pod_container:container_memory_working_set_bytes:sum{{{ns}}})',
                            "{{pod}}")], "bytes"),
        ("Container restarts (1h)",
         [(f'sum by (pod, container) (increase(kube_pod_container_status_restarts_total{{{KSM}, {ns}}}[1h])) > 0',
           "{{pod}}/{{container}}")], "short"),
        ("Pods not running", [(f'sum by (pod, phase) (kube_pod_status_phase{{{KSM}, {ns}, phase!~"Running|Succeeded"}}) > 0',
                               "{{pod}} {{phase}}")], "short"),
    ], ds)
    y = max(p["gridPos"]["y"] for p in workloads) + 8
    workloads.append(panel(len(workloads) + 1, "Replicas wanted vs ready", [
        (f"kube_deployment_spec_replicas{{{KSM}, {ns}}} - kube_deployment_status_replicas_available{{{KSM}, {ns}}}",
         "deployment {{deployment}}"),
        (f"kube_statefulset_replicas{{{KSM}, {ns}}} - kube_statefulset_status_replicas_ready{{{KSM}, {ns}}}",
         "statefulset {{statefulset}}"),
        (f"kube_daemonset_status_desired_number_scheduled{{{KSM}, {ns}}} - kube_daemonset_status_number_ready{{{KSM}, {ns}}}",
         "daemonset {{daemonset}}"),
    ], "short", ds, x=0, y=y, w=24))
    return {
        "kubernetes-cluster.json": dashboard("kubernetes-cluster", "Kubernetes / cluster", ["kubernetes"], cluster),
        "kubernetes-workloads.json": dashboard(
            "kubernetes-workloads", "Kubernetes / workloads", ["kubernetes"], workloads,
            (variable("namespace", f"label_values(kube_namespace_status_phase{{{KSM}}}, namespace)", ds),)),
    }


class KubeStateMetrics(ToolComponent):
    TYPE = "observability:kube_state_metrics:KubeStateMetrics"
