"""Kubernetes events into Loki (issue 13 sections 3 and 5), against a real kube-apiserver.

Real processes: kube-apiserver + etcd (tests/kube.py), and the collector built at the pinned
version with the contrib `k8sobjects` receiver (scripts/build-otelcol.sh) running twice: the
rendered events config and the rendered gateway, whose `otlphttp/loki` exporter delivers to a
loopback OTLP/HTTP sink standing in for Loki's OTLP endpoint (tests/e2e/otlp_sinks.py).

Localized, on copies of the rendered configs (tests/e2e/collector_local.py): listeners on
loopback ports, exporters at the local endpoints; the events receiver's `auth_type` becomes
`kubeConfig` with KUBECONFIG naming a kubeconfig that holds a token of the events
ServiceAccount (a TokenRequest), because `serviceAccount` reads the in-cluster token path and
KUBERNETES_SERVICE_HOST only a pod has. The receiver therefore runs with exactly the
permissions the Kubernetes backend grants the workload: the ServiceAccount, ClusterRole and
binding are created from the backend's own `cluster_rules(workload)` and `cluster_role_name`.

Checks:
- SubjectAccessReviews: the ServiceAccount may list and watch events.k8s.io Events, and is
  refused what lies just outside (get/create events, get Secrets, list Pods);
- an Event created through the API arrives once at the sink (the sink is watched for
  `QUIET_S` after the first arrival), with the attributes Loki turns into labels (namespace,
  involved object kind, reason, type, service.name), the object name as a log attribute
  (structured metadata) and the Event's note as the log line;
- deleting the Event ships nothing (DELETED is excluded: an expiring Event is no occurrence).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from observability_stack.components import collector, kube_events
from observability_stack.components.render import render_tool, workloads_of
from observability_stack.components.targets.kubernetes import cluster_role_name, cluster_rules
from observability_stack.config import load_settings
from tests import tools
from tests.e2e.collector_local import collector_config
from tests.e2e.otlp_sinks import LogSink
from tests.e2e.procs import Process, free_port
from tests.kube import APIServer, apiserver  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
NS = "observability"
APP_NS = "shop"
# How long the sink is watched after an event's first arrival for a duplicate: several batch
# timeouts (200 ms) and watch round trips on loopback.
QUIET_S = 5.0
ARRIVAL_TIMEOUT_S = 30.0
FIGURES: dict[str, float] = {}


def _settings():
    """A Kubernetes stack whose gateway exports only what the sinks here stand in for (logs to
    Loki, metrics to Prometheus; no Tempo, so no trace tiers to map)."""
    return load_settings({"target": "kubernetes", "components": {"tempo": {"enabled": False}}}, stack="dev")


def _events_workload(settings):
    return next(w for w in workloads_of("collector", settings) if w.name == "collector-events")


def _sar(api, user: str, group: str, resource: str, verb: str) -> bool:
    review = api.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": ["system:serviceaccounts", f"system:serviceaccounts:{NS}",
                                          "system:authenticated"],
                 "resourceAttributes": {"group": group, "resource": resource, "verb": verb,
                                        "namespace": APP_NS}}})
    return bool(review["status"].get("allowed"))


def _grant(api, workload) -> None:
    """The namespace, ServiceAccount, ClusterRole and binding as the Kubernetes backend declares
    them for this workload (components/targets/kubernetes.py `_cluster_rbac`)."""
    for ns in (NS, APP_NS):
        api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    api.request("POST", f"/api/v1/namespaces/{NS}/serviceaccounts",
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": workload.name}})
    role = cluster_role_name(NS, workload)
    api.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
        "rules": cluster_rules(workload)})
    api.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": workload.name, "namespace": NS}]})


def _token_kubeconfig(apiserver: APIServer, account: str, path: Path) -> Path:
    token = apiserver.api.request(
        "POST", f"/api/v1/namespaces/{NS}/serviceaccounts/{account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": 3600}})["status"]["token"]
    ca = base64.b64encode((apiserver.pki / "ca.crt").read_bytes()).decode()
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "events",
        "clusters": [{"name": "test", "cluster": {"server": apiserver.server, "certificate-authority-data": ca}}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "events", "context": {"cluster": "test", "user": account}}],
    }))
    return path


def _event(name: str, pod: str, reason: str, kind: str, note: str) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": name, "namespace": APP_NS},
            "eventTime": now, "reportingController": "example.com/test", "reportingInstance": "test-1",
            "action": "Testing", "reason": reason, "type": kind, "note": note,
            "regarding": {"kind": "Pod", "name": pod, "namespace": APP_NS, "apiVersion": "v1"}}


def _create(api, event: dict) -> None:
    api.request("POST", f"/apis/events.k8s.io/v1/namespaces/{APP_NS}/events", event)


def _records(sink: LogSink, pod: str) -> list:
    return [r for r in sink.records.all() if r.attributes.get(kube_events.OBJECT_NAME) == pod]


def _wait_for(sink: LogSink, pod: str, timeout: float, diagnostics) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _records(sink, pod):
            return time.monotonic()
        time.sleep(0.1)
    pytest.fail(f"no record for {pod} within {timeout:.0f}s\n{diagnostics()}")


def test_an_event_arrives_once_with_its_labels(apiserver: APIServer, tmp_path):  # noqa: F811
    started = time.monotonic()
    binary = tools.otelcol()
    components = subprocess.run([binary, "components"], capture_output=True, text=True, timeout=60).stdout
    assert "k8sobjects" in components and "transform" in components, \
        "the cached otelcol-obs predates the events receiver: rerun scripts/build-otelcol.sh"
    api = apiserver.api
    settings = _settings()
    workload = _events_workload(settings)
    _grant(api, workload)
    user = f"system:serviceaccount:{NS}:{workload.name}"

    # RBAC, as the API server itself answers.
    assert _sar(api, user, "events.k8s.io", "events", "list")
    assert _sar(api, user, "events.k8s.io", "events", "watch")
    refused = [(g, r, v) for g, r, v in (("events.k8s.io", "events", "get"), ("events.k8s.io", "events", "create"),
                                         ("", "secrets", "get"), ("", "pods", "list"), ("", "events", "list"))
               if _sar(api, user, g, r, v)]
    assert not refused, f"{user} may do more than list/watch events: {refused}"

    rendered = render_tool("collector", settings)
    port = {name: free_port() for name in ("grpc", "http", "health", "telemetry", "events_health", "unused")}
    with LogSink() as sink:
        gateway = collector_config(
            yaml.safe_load(rendered["collector/config.yaml"]),
            {collector.OTLP_GRPC_PORT: port["grpc"], collector.OTLP_HTTP_PORT: port["http"],
             collector.HEALTH_PORT: port["health"], collector.METRICS_PORT: port["telemetry"]},
            {"otlphttp/loki": f"{sink.base_url}/otlp",
             # Nothing sends metrics here; the exporter only needs somewhere to point.
             "prometheusremotewrite": f"http://127.0.0.1:{port['unused']}/api/v1/write"})
        events = collector_config(
            yaml.safe_load(rendered["collector/events.yaml"]), {collector.HEALTH_PORT: port["events_health"]},
            {"otlp/gateway": f"127.0.0.1:{port['grpc']}"})
        assert events["receivers"]["k8sobjects"]["auth_type"] == "serviceAccount"
        events["receivers"]["k8sobjects"]["auth_type"] = "kubeConfig"  # see the module docstring
        (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway))
        (tmp_path / "events.yaml").write_text(yaml.safe_dump(events))
        kubeconfig = _token_kubeconfig(apiserver, workload.name, tmp_path / "events.kubeconfig")
        env = {"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
        with Process("collector", [binary, f"--config={tmp_path / 'gateway.yaml'}"], tmp_path / "gateway.log") as gw, \
                Process("collector-events", [binary, f"--config={tmp_path / 'events.yaml'}"],
                        tmp_path / "events.log", env=env) as ev:
            gw.wait_ready(f"http://127.0.0.1:{port['health']}/")
            ev.wait_ready(f"http://127.0.0.1:{port['events_health']}/")

            def diagnostics() -> str:
                return (f"sink: {sink.records.all()}\nevents collector:\n{ev.output()}\n"
                        f"gateway:\n{gw.output()}")

            # The receiver lists, then watches, in the background after it reports ready: an
            # Event created before its watch began would never be seen. Warm-up events, one a
            # second, until one arrives: from then on the watch is up.
            deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
            warm = 0
            while not any(_records(sink, f"warmup-{i}") for i in range(warm)):
                if time.monotonic() > deadline:
                    pytest.fail(f"no warm-up event arrived within {ARRIVAL_TIMEOUT_S:.0f}s\n{diagnostics()}")
                _create(api, _event(f"warmup-{warm}", f"warmup-{warm}", "Warmup", "Normal", "warming up"))
                warm += 1
                time.sleep(1)
            FIGURES["watching after s"] = time.monotonic() - started

            pod = f"checkout-{uuid.uuid4().hex[:5]}"
            note = f"Back-off restarting failed container app in pod {pod}"
            created = time.monotonic()
            _create(api, _event(f"{pod}.backoff", pod, "BackOff", "Warning", note))
            arrived = _wait_for(sink, pod, ARRIVAL_TIMEOUT_S, diagnostics)
            FIGURES["event to sink s"] = arrived - created
            time.sleep(QUIET_S)
            records = _records(sink, pod)
            assert len(records) == 1, f"{len(records)} records for one Event\n{diagnostics()}"
            record = records[0]
            assert record.resource == {
                "k8s.namespace.name": APP_NS,  # set by the receiver; a Loki default label
                kube_events.KIND: "Pod",
                kube_events.REASON: "BackOff",
                kube_events.TYPE: "Warning",
                "service.name": kube_events.SERVICE_NAME,
            }, diagnostics()
            assert record.attributes[kube_events.OBJECT_NAME] == pod
            assert record.body == note
            # Every warm-up event also arrived once, never twice.
            counts = {i: len(_records(sink, f"warmup-{i}")) for i in range(warm)}
            assert all(n <= 1 for n in counts.values()), counts

            # Deleting the Event (what its TTL does) ships nothing.
            api.request("DELETE", f"/apis/events.k8s.io/v1/namespaces/{APP_NS}/events/{pod}.backoff")
            time.sleep(QUIET_S)
            assert len(_records(sink, pod)) == 1, diagnostics()
            assert sink.paths == {"/otlp/v1/logs"}
            FIGURES["events collector RSS MiB"] = _rss_mib(ev.proc.pid)
    FIGURES["test s"] = time.monotonic() - started
    print("\nkube events: " + ", ".join(f"{k} {v:.1f}" for k, v in FIGURES.items()))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
