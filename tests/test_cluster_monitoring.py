"""Issue 13: host and cluster exporters, cluster scraping, their RBAC, rules and dashboards.

Wiring and content checks on the pure renders, then promtool as the judge of every new alert:
each alert is fed series that must make it fire (with its `severity`) and series that must not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from observability_stack.components import cluster, kube_state_metrics, node_exporter
from observability_stack.components.platform import kubernetes as kubernetes_platform
from observability_stack.components.render import links_for, render_tool, workloads_of
from observability_stack.config import ConfigError, Settings
from observability_stack.config.loader import RESERVED_JOBS
from policy.validators import check_public_exposure
from tests.scenarios import settings_for
from tests.tools import run

DROPS = json.loads((Path(cluster.__file__).parent / "kube_prometheus_drops.json").read_text())


def _jobs(settings, platform=None) -> dict[str, dict]:
    doc = yaml.safe_load(render_tool("prometheus", settings, platform)["prometheus/prometheus.yml"])
    return {job["job_name"]: job for job in doc["scrape_configs"]}


# --- switches -----------------------------------------------------------------------------------


def test_the_target_decides_the_default():
    dev, prod = settings_for("defaults-dev"), settings_for("prod-receivers")
    assert [dev.enabled(t) for t in ("node_exporter", "kube_state_metrics", "cadvisor")] == [True, False, True]
    assert [prod.enabled(t) for t in ("node_exporter", "kube_state_metrics", "cadvisor")] == [True, True, False]


@pytest.mark.parametrize("environment, key, target", [
    ("dev", "kubeStateMetrics", "docker"),
    ("prod", "cadvisor", "kubernetes"),
])
def test_enabling_an_exporter_where_it_cannot_run_is_refused_naming_the_key(environment, key, target):
    overrides = {"components": {key: {"enabled": True}}, "target": target}
    if environment == "prod":
        overrides["alerting"] = {"receivers": [{"name": "x", "webhook": {"url": "https://x"}}],
                                 "routes": {"critical": "x", "warning": "x"}}
        # Prod runs highAvailability, which needs object storage for the storage backends.
        overrides["objectStorage"] = {"s3": {"region": "eu-west-1", "bucket": "example-observability"}}
    with pytest.raises(ConfigError) as error:
        Settings.for_environment(environment, **overrides)
    lines = str(error.value).splitlines()
    assert lines == [f"observability:components.{key}.enabled: true is not possible on target {target} "
                     f"({'kube-state-metrics' if key == 'kubeStateMetrics' else 'cadvisor'} runs on "
                     f"{'kubernetes' if key == 'kubeStateMetrics' else 'docker'} only); remove the key or set it to false"]


def test_switching_an_exporter_off():
    s = Settings.for_environment("dev", components={"nodeExporter": {"enabled": False}})
    assert not s.enabled("node_exporter")
    assert "node-exporter" not in _jobs(s)


# --- scraping -----------------------------------------------------------------------------------


def test_every_job_has_limits_and_a_reserved_name():
    for name in ("defaults-dev", "prod-receivers", "teams"):
        s = settings_for(name)
        for job_name, job in _jobs(s).items():
            assert job["sample_limit"] > 0 and job["label_limit"] > 0, job_name
            team_jobs = {t.job for team in s.teams for t in team.scrape_targets}
            assert job_name in RESERVED_JOBS or job_name in team_jobs, job_name


def test_cluster_jobs_on_kubernetes():
    jobs = _jobs(settings_for("prod-receivers"))
    assert {"kubelet", "kubelet-cadvisor", "kubelet-probes", "apiserver", "node-exporter",
            "kube-state-metrics"} <= set(jobs)
    for name, path in cluster.KUBELET_PATHS.items():
        job = jobs[name]
        assert job["metrics_path"] == path and job["scheme"] == "https"
        assert job["authorization"] == {"credentials_file": "/var/run/secrets/kubernetes.io/serviceaccount/token"}
        assert job["tls_config"] == {"ca_file": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"}
        relabel = job["relabel_configs"]
        assert {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"} in relabel
        assert {"target_label": "job", "replacement": "kubelet"} in relabel
    # kube-prometheus' drops, every one of them.
    for name, kind in (("kubelet", "kubelet"), ("kubelet-cadvisor", "cadvisor"), ("apiserver", "apiserver")):
        regexes = [r["regex"] for r in jobs[name]["metric_relabel_configs"] if r["action"] == "drop"]
        assert regexes == [d["regex"] for d in DROPS[kind]], name
    assert len(DROPS["apiserver"]) == 13 and len(DROPS["cadvisor"]) == 3
    assert jobs["apiserver"]["tls_config"]["server_name"] == "kubernetes"
    # node-exporter at every node's address, labelled with the node.
    ne = jobs["node-exporter"]
    assert ne["kubernetes_sd_configs"] == [{"role": "node"}] and "static_configs" not in ne
    assert {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"} in ne["relabel_configs"]
    assert jobs["kube-state-metrics"]["static_configs"] == [{"targets": ["kube-state-metrics:8080"]}]
    # Pods discovered by annotation get namespace and pod labels.
    pods = {r.get("target_label") for r in jobs["kubernetes-pods"]["relabel_configs"]}
    assert {"namespace", "pod"} <= pods


def test_cluster_monitoring_off_drops_the_jobs_and_the_rbac():
    s = settings_for("prod-receivers")
    off = kubernetes_platform(s.kubernetes.namespace, cluster_monitoring=False)
    jobs = _jobs(s, off)
    assert not {"kubelet", "kubelet-cadvisor", "kubelet-probes", "apiserver"} & set(jobs)
    assert "node-exporter" in jobs  # per-node exporter still scraped at node addresses
    links = links_for(s)
    assert cluster.prometheus_rbac(links.scrape, off) == (
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},)
    assert cluster.egress_ports(links.scrape, off) == (9100,)
    files = render_tool("prometheus", s, off)
    assert "prometheus/rules/kubernetes-cluster.yml" not in files
    # ... and StackVolumeFillingUp needs the kubelet's volume stats: off with them.
    assert "StackVolumeFillingUp" not in files["prometheus/rules/stack.yml"]


# --- workloads ----------------------------------------------------------------------------------


def test_node_exporter_workload_on_both_targets():
    (k8s,) = workloads_of("node_exporter", settings_for("prod-receivers"))
    assert k8s.per_node and k8s.host_pid and k8s.host_network and k8s.tolerate_all_nodes
    assert {(m.host_path, m.path) for m in k8s.host_mounts} == {
        ("/proc", "/host/proc"), ("/sys", "/host/sys"), ("/", "/host/root")}
    assert (k8s.uid, k8s.root_reason, k8s.read_only_root) == (65534, None, True)
    assert "--path.rootfs=/host/root" in k8s.args and k8s.image == "prom/node-exporter:v1.12.1"
    (docker,) = workloads_of("node_exporter", settings_for("defaults-dev"))
    assert docker.host_mounts == k8s.host_mounts and docker.host_pid


def test_kube_state_metrics_exports_only_what_its_role_lets_it_read():
    (w,) = workloads_of("kube_state_metrics", settings_for("prod-receivers"))
    exported = next(a for a in w.args if a.startswith("--resources=")).split("=", 1)[1].split(",")
    granted = sorted(r for rule in w.cluster_rules for r in rule["resources"])
    assert sorted(exported) == granted
    assert all(rule["verbs"] == ["list", "watch"] for rule in w.cluster_rules)
    assert "secrets" not in granted and "configmaps" not in granted
    assert w.image == "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.19.1"


def test_cadvisor_container_spec():
    (w,) = workloads_of("cadvisor", settings_for("defaults-dev"))
    assert w.root_reason and w.capabilities == ("DAC_READ_SEARCH",)
    assert {(m.host_path, m.path) for m in w.host_mounts} == {
        ("/", "/rootfs"), ("/var/run", "/var/run"), ("/sys", "/sys"), ("/var/lib/docker", "/var/lib/docker")}
    assert not any(p.publish for p in w.ports)  # reached on the stack network only
    assert "--docker_only=true" in w.args


def test_policy_accepts_host_network_only_with_a_recorded_reason():
    spec = {"hostNetwork": True, "containers": [{"name": "x", "image": "x:1"}]}
    bare = {"metadata": {"name": "x"}, "spec": {"template": {"metadata": {}, "spec": spec}}}
    assert check_public_exposure("kubernetes:apps/v1:DaemonSet", bare)
    noted = {"metadata": {"name": "x"}, "spec": {"template": {
        "metadata": {"annotations": {"observability/host-network": "reads the node's interfaces"}}, "spec": spec}}}
    assert check_public_exposure("kubernetes:apps/v1:DaemonSet", noted) == []
    # A hostPort stays refused, reason or not.
    spec_port = {**spec, "containers": [{"name": "x", "image": "x:1", "ports": [{"containerPort": 1, "hostPort": 1}]}]}
    noted["spec"]["template"]["spec"] = spec_port
    assert check_public_exposure("kubernetes:apps/v1:DaemonSet", noted)


def test_dashboards_query_recorded_or_exported_series():
    files = render_tool("grafana", settings_for("prod-receivers"))
    titles = {json.loads(t)["title"] for p, t in files.items() if p.endswith(".json")}
    assert {"Kubernetes / cluster", "Kubernetes / workloads", "Node"} <= titles
    dev = render_tool("grafana", settings_for("defaults-dev"))
    assert "Containers" in {json.loads(t)["title"] for p, t in dev.items() if p.endswith(".json")}
    # Every recording rule a dashboard names is defined in the rendered rule files.
    rules = render_tool("prometheus", settings_for("prod-receivers"))
    records = {r["record"] for p, t in rules.items() if "/rules/" in p
               for g in yaml.safe_load(t)["groups"] for r in g["rules"] if "record" in r}
    for p, t in files.items():
        if p.endswith(".json"):
            for panel in json.loads(t)["panels"]:
                for target in panel["targets"]:
                    for token in target["expr"].replace("(", " ").replace("{", " ").split():
                        if token.count(":") == 2 and token[0].isalpha():
                            assert token in records, (p, token)


# --- every new alert, judged by promtool ---------------------------------------------------------

NE = 'job="node-exporter", instance="n1"'
KSM = 'job="kube-state-metrics"'
KUBELET = 'job="kubelet", metrics_path="/metrics"'
FS = f'{NE}, device="sda1", fstype="ext4", mountpoint="/"'

# alert -> (severity, input series, eval time, labels the firing alert carries besides
# alertname/alertstate/severity); each alert is also evaluated on QUIET series, where it must not fire.
ALERTS: dict[str, tuple[str, list[tuple[str, str]], str, dict[str, str]]] = {
    "NodeCPUHigh": ("warning", [(f'node_cpu_seconds_total{{{NE}, cpu="0", mode="idle"}}', "0+1.5x100")],
                    "30m", {"instance": "n1"}),
    "NodeMemoryHigh": ("warning", [(f"node_memory_MemAvailable_bytes{{{NE}}}", "5x100"),
                                   (f"node_memory_MemTotal_bytes{{{NE}}}", "100x100")],
                       "20m", {"instance": "n1", "job": "node-exporter"}),
    "NodeFilesystemFillingUp": ("warning", [(f"node_filesystem_avail_bytes{{{FS}}}", "300-0.2x600"),
                                            (f"node_filesystem_size_bytes{{{FS}}}", "1000x600"),
                                            (f"node_filesystem_readonly{{{FS}}}", "0x600")],
                                "2h", {"instance": "n1", "job": "node-exporter", "device": "sda1", "fstype": "ext4",
                                       "mountpoint": "/"}),
    "NodeFilesystemAlmostFull": ("critical", [(f"node_filesystem_avail_bytes{{{FS}}}", "10x100"),
                                              (f"node_filesystem_size_bytes{{{FS}}}", "1000x100"),
                                              (f"node_filesystem_readonly{{{FS}}}", "0x100")],
                                 "40m", {"instance": "n1", "job": "node-exporter", "device": "sda1",
                                         "fstype": "ext4", "mountpoint": "/"}),
    "NodeNetworkReceiveErrors": ("warning", [(f'node_network_receive_errs_total{{{NE}, device="eth0"}}', "0+5x200"),
                                             (f'node_network_receive_packets_total{{{NE}, device="eth0"}}', "0+100x200")],
                                 "80m", {"instance": "n1", "job": "node-exporter", "device": "eth0"}),
    "NodeNetworkTransmitErrors": ("warning", [(f'node_network_transmit_errs_total{{{NE}, device="eth0"}}', "0+5x200"),
                                              (f'node_network_transmit_packets_total{{{NE}, device="eth0"}}', "0+100x200")],
                                  "80m", {"instance": "n1", "job": "node-exporter", "device": "eth0"}),
    "NodeClockSkew": ("warning", [(f"node_timex_offset_seconds{{{NE}}}", "0.1x100")], "20m",
                      {"instance": "n1", "job": "node-exporter"}),
    "KubePodCrashLooping": ("warning", [(f'kube_pod_container_status_waiting_reason{{{KSM}, namespace="a", pod="p", '
                                         f'container="c", reason="CrashLoopBackOff"}}', "1x100")],
                            "20m", {"job": "kube-state-metrics", "namespace": "a", "pod": "p", "container": "c",
                                    "reason": "CrashLoopBackOff"}),
    "KubePodNotReady": ("warning", [(f'kube_pod_status_phase{{{KSM}, namespace="a", pod="p", phase="Pending"}}', "1x100"),
                                    (f'kube_pod_owner{{{KSM}, namespace="a", pod="p", owner_kind="ReplicaSet"}}', "1x100")],
                        "20m", {"namespace": "a", "pod": "p"}),
    "KubeDeploymentReplicasMismatch": ("warning", [
        (f'kube_deployment_spec_replicas{{{KSM}, namespace="a", deployment="d"}}', "3x100"),
        (f'kube_deployment_status_replicas_available{{{KSM}, namespace="a", deployment="d"}}', "1x100")],
        "20m", {"job": "kube-state-metrics", "namespace": "a", "deployment": "d"}),
    "KubeStatefulSetReplicasMismatch": ("warning", [
        (f'kube_statefulset_replicas{{{KSM}, namespace="a", statefulset="s"}}', "1x100"),
        (f'kube_statefulset_status_replicas_ready{{{KSM}, namespace="a", statefulset="s"}}', "0x100")],
        "20m", {"job": "kube-state-metrics", "namespace": "a", "statefulset": "s"}),
    "KubeDaemonSetReplicasMismatch": ("warning", [
        (f'kube_daemonset_status_desired_number_scheduled{{{KSM}, namespace="a", daemonset="ds"}}', "3x100"),
        (f'kube_daemonset_status_number_ready{{{KSM}, namespace="a", daemonset="ds"}}', "2x100")],
        "20m", {"job": "kube-state-metrics", "namespace": "a", "daemonset": "ds"}),
    "KubeJobFailed": ("warning", [(f'kube_job_failed{{{KSM}, namespace="a", job_name="j", condition="true"}}', "1x100")],
                      "20m", {"job": "kube-state-metrics", "namespace": "a", "job_name": "j", "condition": "true"}),
    "KubePersistentVolumeFillingUp": ("critical", [
        (f'kubelet_volume_stats_available_bytes{{{KUBELET}, namespace="apps", persistentvolumeclaim="data"}}', "1x100"),
        (f'kubelet_volume_stats_capacity_bytes{{{KUBELET}, namespace="apps", persistentvolumeclaim="data"}}', "100x100"),
        # The stack's own claims are StackVolumeFillingUp's: not this alert.
        (f'kubelet_volume_stats_available_bytes{{{KUBELET}, namespace="observability", persistentvolumeclaim="x"}}', "1x100"),
        (f'kubelet_volume_stats_capacity_bytes{{{KUBELET}, namespace="observability", persistentvolumeclaim="x"}}', "100x100")],
        "5m", {"job": "kubelet", "metrics_path": "/metrics", "namespace": "apps", "persistentvolumeclaim": "data"}),
    "KubePersistentVolumeFillingUpPredicted": ("warning", [
        (f'kubelet_volume_stats_available_bytes{{{KUBELET}, namespace="apps", persistentvolumeclaim="data"}}', "14-0.01x600"),
        (f'kubelet_volume_stats_capacity_bytes{{{KUBELET}, namespace="apps", persistentvolumeclaim="data"}}', "100x600")],
        "2h", {"job": "kubelet", "metrics_path": "/metrics", "namespace": "apps", "persistentvolumeclaim": "data"}),
    "KubeAPIServerErrorRatioHigh": ("critical", [
        ('apiserver_request_total{job="apiserver", code="500"}', "0+10x100"),
        ('apiserver_request_total{job="apiserver", code="200"}', "0+90x100")], "20m", {}),
    "KubeAPIServerLatencyHigh": ("warning", [
        ('apiserver_request_duration_seconds_bucket{job="apiserver", verb="GET", le="1"}', "0+1x100"),
        ('apiserver_request_duration_seconds_bucket{job="apiserver", verb="GET", le="2"}', "0+100x100"),
        ('apiserver_request_duration_seconds_bucket{job="apiserver", verb="GET", le="+Inf"}', "0+100x100"),
        # WATCH durations are connection lifetimes: never a latency alert.
        ('apiserver_request_duration_seconds_bucket{job="apiserver", verb="WATCH", le="+Inf"}', "0+100x100")],
        "20m", {"verb": "GET"}),
    "TargetDown": ("warning", [('up{job="x", instance="a"}', "0x100"), ('up{job="x", instance="b"}', "1x100")],
                   "20m", {"job": "x"}),
    "ScrapeSampleLimitHit": ("warning", [('prometheus_target_scrapes_exceeded_sample_limit_total{job="prometheus", '
                                          'instance="localhost:9090"}', "0+1x100")],
                             "10m", {"job": "prometheus", "instance": "localhost:9090"}),
    "ScrapeLabelLimitHit": ("warning", [('prometheus_target_scrape_pool_exceeded_label_limits_total{job="prometheus", '
                                         'instance="localhost:9090"}', "0+1x100")],
                            "10m", {"job": "prometheus", "instance": "localhost:9090"}),
}


def _new_alerts(files: dict[str, str]) -> dict[str, dict]:
    new = ("node.yml", "kubernetes-workloads.yml", "kubernetes-cluster.yml", "scraping.yml")
    return {r["alert"]: r for p, t in files.items() if p.rsplit("/", 1)[-1] in new
            for g in yaml.safe_load(t)["groups"] for r in g["rules"] if "alert" in r}


def test_every_new_alert_has_a_promtool_case_and_a_seed_severity():
    alerts = _new_alerts(render_tool("prometheus", settings_for("prod-receivers")))
    assert set(alerts) == set(ALERTS)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] == ALERTS[name][0] and rule["labels"]["severity"] in ("critical", "warning")


def _quiet(series: str) -> str:
    """The same series at a value where nothing is wrong: flat (no rate or trend), targets up,
    an idle CPU (one idle second per second)."""
    if series.startswith(("up{", "node_filesystem_readonly")):
        return "1x600"
    if 'mode="idle"' in series:
        return "0+30x600"
    return "0x600"


@pytest.mark.tools
def test_promtool_fires_every_new_alert_and_stays_quiet_otherwise(tmp_path, promtool):
    files = render_tool("prometheus", settings_for("prod-receivers"))
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    rule_files = sorted(str(p) for p in (tmp_path / "prometheus" / "rules").glob("*.yml"))
    tests = []
    for name, (severity, series, at, labels) in ALERTS.items():
        label_text = ", ".join(f'{k}="{v}"' for k, v in sorted(
            {**labels, "alertname": name, "alertstate": "firing", "severity": severity}.items()))
        query = f'ALERTS{{alertname="{name}", alertstate="firing"}}'
        tests.append({"interval": "30s",
                      "input_series": [{"series": s, "values": v} for s, v in series],
                      "promql_expr_test": [{"expr": query, "eval_time": at,
                                            "exp_samples": [{"labels": f"ALERTS{{{label_text}}}", "value": 1}]}]})
        tests.append({"interval": "30s",
                      "input_series": [{"series": s, "values": _quiet(s)} for s, _ in series],
                      "promql_expr_test": [{"expr": query, "eval_time": at, "exp_samples": []}]})
    test_file = tmp_path / "new-alerts.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": rule_files, "evaluation_interval": "30s", "tests": tests},
                                        sort_keys=False))
    run([promtool, "test", "rules", str(test_file)])


def test_filesystem_threshold_overlay_is_what_the_e2e_test_uses():
    doc = node_exporter.monitoring_rules(settings_for("defaults-dev"), fs_free_critical=0.999, fs_for="0s")
    (rule,) = [r for g in doc["node.yml"]["groups"] for r in g["rules"] if r.get("alert") == "NodeFilesystemAlmostFull"]
    assert "< 0.999" in rule["expr"] and rule["for"] == "0s"
    assert kube_state_metrics.RESOURCES  # exported kinds are declared once
