"""Scraping the cluster itself (Kubernetes): the kubelets with cAdvisor and probes, the API
server, and the per-node exporters at each node's address; the RBAC Prometheus needs for that;
sample and label limits on every job; and the rules about the kubelet, the control plane and
scraping itself.

Upstream references: kube-prometheus v0.18.0 (commit 4775d44d1aac):
`manifests/kubernetesControlPlane-serviceMonitorKubelet.yaml` (the three kubelet endpoints,
`metrics_path` label, honorLabels, cAdvisor without its timestamps) and
`...-serviceMonitorApiserver.yaml` (CA file, server name `kubernetes`), whose dropped
high-cardinality series are copied as data in `kube_prometheus_drops.json`;
`manifests/prometheus-clusterRole.yaml` (nodes/metrics get, nonResourceURLs /metrics get);
Prometheus' `kubernetes_sd_config` (node and endpointslice roles and the RBAC they need); the
kubelet's authorizer (every `/metrics/*` path is the `nodes/metrics` subresource). Rule names and
thresholds are informed by the kubernetes-mixin (KubePersistentVolumeFillingUp, KubeAPIErrorBudget,
TargetDown), written for this stack.

Unlike kube-prometheus, the kubelet's serving certificate is verified against the cluster CA
(`insecure_skip_verify` stays off): clusters whose kubelets serve self-signed certificates need
kubelet serving certificates signed by the cluster CA (kubeadm `serverTLSBootstrap: true`; managed
clusters do this) or the kubelet jobs report `up == 0` with an x509 error (README).

Only Prometheus' module calls this; it is not a tool (nothing here is deployed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional

from .monitoring import alert, record, rule_file
from .platform import Platform
from .workload import Endpoint

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBELET_PORT = 10250
# The kubelet's three endpoints, each its own job_name but labelled job="kubelet" with a
# `metrics_path` label, as kube-prometheus does (the mixins' selectors expect that).
KUBELET_PATHS = {"kubelet": "/metrics", "kubelet-cadvisor": "/metrics/cadvisor", "kubelet-probes": "/metrics/probes"}
APISERVER_JOB = "apiserver"
CLUSTER_JOBS = (*KUBELET_PATHS, APISERVER_JOB)

# Per scrape, so one exploding target cannot take Prometheus down: past `sample_limit` the whole
# scrape is dropped (up == 0, `ScrapeSampleLimitHit`), past `label_limit` likewise.
SAMPLE_LIMIT = 50_000
LABEL_LIMIT = 64
# Jobs whose size grows with the cluster rather than with one process: per node, cAdvisor has a
# few dozen series per container; kube-state-metrics' and the API server's grow with objects.
SAMPLE_LIMITS = {"kubelet-cadvisor": 200_000, "kube-state-metrics": 200_000, APISERVER_JOB: 200_000}

_DROPS = json.loads((Path(__file__).parent / "kube_prometheus_drops.json").read_text())


def _drops(kind: str) -> list[dict]:
    return [{"source_labels": d["source_labels"], "regex": d["regex"], "action": "drop"} for d in _DROPS[kind]]


def _in_cluster_auth() -> dict:
    return {
        "scheme": "https",
        "authorization": {"credentials_file": f"{SA_DIR}/token"},
        "tls_config": {"ca_file": f"{SA_DIR}/ca.crt"},
    }


def with_limits(jobs: list[dict]) -> list[dict]:
    """Every job gets `sample_limit` and `label_limit` (a job's own setting wins)."""
    return [{**job, "sample_limit": job.get("sample_limit", SAMPLE_LIMITS.get(job["job_name"], SAMPLE_LIMIT)),
             "label_limit": job.get("label_limit", LABEL_LIMIT)} for job in jobs]


def per_node_endpoints(scrape: Iterable[tuple[str, Endpoint]], platform: Platform) -> dict[str, Endpoint]:
    """{job: endpoint} of per-node exporters Prometheus scrapes at each node's address."""
    if not platform.node_discovery:
        return {}
    return {job: e for job, e in scrape if e.per_node}


def per_node_job(job: str, endpoint: Endpoint) -> dict:
    """A per-node exporter on the host network: every node's InternalIP at the exporter's port;
    `instance` and `node` are the node's name (kube-prometheus' node-exporter ServiceMonitor)."""
    return {
        "job_name": job,
        "kubernetes_sd_configs": [{"role": "node"}],
        "relabel_configs": [
            # `__address__` of the node role is `<address>:<kubelet port>` ([ipv6]:port too).
            {"source_labels": ["__address__"], "regex": r"(.+):\d+", "replacement": f"$1:{endpoint.port}",
             "target_label": "__address__"},
            {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "instance"},
            {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"},
        ],
    }


def kubelet_jobs() -> list[dict]:
    jobs = []
    for job, path in KUBELET_PATHS.items():
        entry: dict = {
            "job_name": job,
            "metrics_path": path,
            **_in_cluster_auth(),
            # cAdvisor's and the probes' own `namespace`, `pod`, `container` labels are kept.
            "honor_labels": True,
            "kubernetes_sd_configs": [{"role": "node"}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"},
                {"target_label": "job", "replacement": "kubelet"},
                {"source_labels": ["__metrics_path__"], "target_label": "metrics_path"},
            ],
        }
        if job == "kubelet":
            entry["metric_relabel_configs"] = _drops("kubelet")
        elif job == "kubelet-cadvisor":
            # cAdvisor's timestamps are its own collection times (kube-prometheus honorTimestamps: false).
            entry["honor_timestamps"] = False
            entry["metric_relabel_configs"] = _drops("cadvisor")
        jobs.append(entry)
    return jobs


def apiserver_job() -> dict:
    """Every API server instance behind `default/kubernetes` (endpointslice discovery), so rates
    never mix two servers' counters."""
    auth = _in_cluster_auth()
    auth["tls_config"] = {**auth["tls_config"], "server_name": "kubernetes"}
    return {
        "job_name": APISERVER_JOB,
        **auth,
        "kubernetes_sd_configs": [{"role": "endpointslice", "namespaces": {"names": ["default"]}}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_service_name", "__meta_kubernetes_endpointslice_port_name"],
             "regex": "kubernetes;https", "action": "keep"},
        ],
        "metric_relabel_configs": _drops("apiserver"),
    }


def jobs(scrape: Iterable[tuple[str, Endpoint]], platform: Platform) -> tuple[set[str], list[dict]]:
    """(static jobs these replace, the jobs): per-node exporters, then kubelet and API server."""
    per_node = per_node_endpoints(scrape, platform)
    out = [per_node_job(job, e) for job, e in per_node.items()]
    if platform.cluster_monitoring:
        out += kubelet_jobs() + [apiserver_job()]
    return set(per_node), out


def prometheus_rbac(scrape: Iterable[tuple[str, Endpoint]], platform: Platform) -> tuple[dict, ...]:
    """Exactly what the jobs above need besides pod discovery (which the backend grants)."""
    rules: list[dict] = []
    if per_node_endpoints(scrape, platform) or platform.cluster_monitoring:
        rules.append({"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]})  # node role
    if platform.cluster_monitoring:
        rules += [
            # The kubelet authorizes every /metrics/* path as the nodes/metrics subresource.
            {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
            # The endpointslice role watches the slices and their services (pods: pod discovery).
            {"apiGroups": [""], "resources": ["services"], "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            # The API server's own /metrics.
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
        ]
    return tuple(rules)


def egress_ports(scrape: Iterable[tuple[str, Endpoint]], platform: Platform) -> tuple[int, ...]:
    """Ports on node addresses (host network: no pod selector matches them)."""
    ports = {e.port for e in per_node_endpoints(scrape, platform).values()}
    if platform.cluster_monitoring:
        ports.add(KUBELET_PORT)
    return tuple(sorted(ports))


# --- rules -----------------------------------------------------------------------------------

KUBELET = 'job="kubelet", metrics_path="/metrics"'
CADVISOR = 'job="kubelet", metrics_path="/metrics/cadvisor"'
APISERVER = f'job="{APISERVER_JOB}"'


def kubelet_group(stack_namespace: Optional[str], pvc_free_critical: float = 0.03) -> dict:
    """Claims of the cluster's workloads (the stack's own have StackVolumeFillingUp)."""
    own = f', namespace!="{stack_namespace}"' if stack_namespace else ""
    avail = f"kubelet_volume_stats_available_bytes{{{KUBELET}{own}}}"
    capacity = f"kubelet_volume_stats_capacity_bytes{{{KUBELET}{own}}}"
    return {"name": "kubernetes-storage", "rules": [
        alert("KubePersistentVolumeFillingUp", f"{avail} / {capacity} < {pvc_free_critical}", "1m", "critical",
              "A persistent volume is almost full",
              "{{ $labels.persistentvolumeclaim }} in {{ $labels.namespace }} has {{ $value | humanizePercentage }} free."),
        alert("KubePersistentVolumeFillingUpPredicted",
              f"{avail} / {capacity} < 0.15 and predict_linear({avail}[6h], 4 * 24 * 3600) < 0", "1h", "warning",
              "A persistent volume fills up within four days",
              "{{ $labels.persistentvolumeclaim }} in {{ $labels.namespace }} is predicted to fill up within "
              "four days at the rate of the last six hours."),
    ]}


def control_plane_group() -> dict:
    total = f"sum(rate(apiserver_request_total{{{APISERVER}}}[5m]))"
    errors = f'sum(rate(apiserver_request_total{{{APISERVER}, code=~"5.."}}[5m]))'
    # WATCH and CONNECT are long-running: their duration is the connection's, not a latency.
    bucket = f'apiserver_request_duration_seconds_bucket{{{APISERVER}, verb!~"WATCH|WATCHLIST|CONNECT"}}'
    return {"name": "kubernetes-control-plane", "rules": [
        record("code:apiserver_request_total:rate5m", f"sum by (code) (rate(apiserver_request_total{{{APISERVER}}}[5m]))"),
        record("verb:apiserver_request_duration_seconds:p99_5m",
               f"histogram_quantile(0.99, sum by (le, verb) (rate({bucket}[5m])))"),
        alert("KubeAPIServerErrorRatioHigh", f"{errors} / {total} > 0.05", "10m", "critical",
              "The Kubernetes API server answers with errors",
              "{{ $value | humanizePercentage }} of API requests fail with 5xx."),
        alert("KubeAPIServerLatencyHigh",
              f"histogram_quantile(0.99, sum by (le, verb) (rate({bucket}[5m]))) > 1", "10m", "warning",
              "The Kubernetes API server is slow",
              "99th percentile latency of {{ $labels.verb }} requests is {{ $value | humanizeDuration }}."),
    ]}


def container_records() -> dict:
    """What the Kubernetes dashboards query (the kubelet's cAdvisor, real containers only)."""
    sel = f'{CADVISOR}, container!="", container!="POD"'
    return {"name": "kubernetes-containers", "rules": [
        record("namespace_pod_container:container_cpu_usage_seconds:rate5m",
               f"sum by (namespace, pod, container, node) (rate(container_cpu_usage_seconds_total{{{sel}}}[5m]))"),
        record("namespace_pod_container:container_memory_working_set_bytes:sum",
               f"sum by (namespace, pod, container, node) (container_memory_working_set_bytes{{{sel}}})"),
        record("namespace:container_cpu_usage_seconds:rate5m",
               "sum by (namespace) (namespace_pod_container:container_cpu_usage_seconds:rate5m)"),
        record("namespace:container_memory_working_set_bytes:sum",
               "sum by (namespace) (namespace_pod_container:container_memory_working_set_bytes:sum)"),
    ]}


def scraping_group() -> dict:
    return {"name": "scraping", "rules": [
        # Part of a job down; a job down altogether already raises ServiceDown (critical) or
        # StackComponentDown, so `< 100` keeps this from paging twice for one outage.
        alert("TargetDown", "100 * count by (job) (up == 0) / count by (job) (up) > 10 < 100", "10m", "warning",
              "Targets of a scrape job are down",
              "{{ $value | humanize }}% of the {{ $labels.job }} targets are down."),
        alert("ScrapeSampleLimitHit", "increase(prometheus_target_scrapes_exceeded_sample_limit_total[5m]) > 0",
              "5m", "warning", "A target exceeds its scrape sample limit",
              "Scrapes over sample_limit are dropped whole (that target shows up == 0); raise the job's "
              "limit in components/cluster.py or cut the target's series."),
        alert("ScrapeLabelLimitHit",
              "increase(prometheus_target_scrape_pool_exceeded_label_limits_total[5m]) > 0",
              "5m", "warning", "A target exceeds its scrape label limit",
              "Scrapes with a series over label_limit labels are dropped whole."),
    ]}


def rule_files(platform: Platform) -> dict[str, dict]:
    """{file name: rule file} about scraping (always) and the cluster (with cluster monitoring)."""
    files = {"scraping.yml": rule_file(scraping_group())}
    if platform.cluster_monitoring:
        files["kubernetes-cluster.yml"] = rule_file(
            kubelet_group(platform.volume_stats_namespace), control_plane_group(), container_records())
    return files
