"""The cluster watching itself, for real (issue 13 §5): after `up` of the prod stack against the
real kube-apiserver (tests/test_engine_apiserver.py), run

- kube-state-metrics (built from its Go module by scripts/build-kube-state-metrics.sh) with a
  kubeconfig holding a token the API server issued (TokenRequest) for the stack's own
  `kube-state-metrics` ServiceAccount: it lists and watches with exactly the RBAC `up` created;
- the pinned Prometheus with the prod render (localized: tests/e2e/localize.py), whose rendered
  `kube-state-metrics` job is pointed at that process, and the stack's rendered rules;
- the pinned Alertmanager with prod's receivers pointed at the local sinks (tests/e2e/receivers.py).

There is no kubelet, scheduler or controller manager there: no StatefulSet or Deployment ever has
a ready replica (the replicas-mismatch alerts fire for every one of the stack's), and the pods
`pending_pods` creates, exactly as the StatefulSet controller would from each StatefulSet's
template (`<name>-0`, owner reference, its claim), stay Pending (KubePodNotReady).

Also here: SubjectAccessReviews as the admin (`access_review`), what the RBAC test asks.
"""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pytest

from observability_stack.components import kube_state_metrics, prometheus
from observability_stack.components.render import links_for, workloads_of
from observability_stack.config import Settings, load_settings
from observability_stack.config.loader import parse_raw
from tests.e2e.exporter import Exporter, stub_metrics
from tests.e2e.http_sink import Deliveries, Delivery, HttpSink
from tests.e2e.local_stack import (
    delivered, smtp_sinks, start_prometheus_and_alertmanager, write_local_layout,
)
from tests.e2e.procs import Process, free_port, http_get_json
from tests.e2e.receivers import pointed_at_sinks
from tests.harness import ROOT
from tests.kube import KubeAPI
from tests.scenarios import NS, scenarios
from tooling.mockrun import engine_config


def ksm_binary() -> str:
    """The pinned kube-state-metrics build; fails (never skips) when missing or another version."""
    versions = json.loads((ROOT / "components" / "versions.json").read_text())
    want = versions["go_modules"]["kube_state_metrics"]["version"]
    bin_dir = subprocess.run([str(ROOT / "scripts" / "build-kube-state-metrics.sh"), "--print-path"],
                             capture_output=True, text=True, check=True).stdout.strip()
    path = Path(bin_dir) / "kube-state-metrics"
    if not path.is_file():
        pytest.fail(f"{path} missing: run scripts/build-kube-state-metrics.sh")
    out = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=30)
    if f"version {want}" not in out.stdout + out.stderr:
        pytest.fail(f"{path} is not kube-state-metrics {want}: {out.stdout}{out.stderr}")
    return str(path)


def service_account_kubeconfig(api: KubeAPI, server: str, pki: Path, namespace: str, account: str,
                               path: Path, seconds: int = 3600) -> Path:
    """A kubeconfig that authenticates as `system:serviceaccount:<namespace>:<account>` with a
    token the API server itself signs (TokenRequest, what the kubelet mounts into the pod)."""
    answer = api.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": seconds}})
    token = answer["status"]["token"]
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": account, "preferences": {},
        "clusters": [{"name": "obs-test", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode((pki / "ca.crt").read_bytes()).decode()}}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "obs-test", "user": account, "namespace": namespace}}],
    }
    path.write_text(json.dumps(doc))
    return path


def access_review(api: KubeAPI, user: str, *, verb: str, resource: str = "", group: str = "",
                  subresource: str = "", namespace: Optional[str] = None, path: str = "") -> bool:
    """What the API server's authorizer answers for `user` (a SubjectAccessReview as the admin).
    `path` asks about a non-resource URL (`/metrics`) instead of a resource."""
    if path:
        spec: dict[str, Any] = {"nonResourceAttributes": {"path": path, "verb": verb}}
    else:
        attrs = {"verb": verb, "group": group, "resource": resource}
        if subresource:
            attrs["subresource"] = subresource
        if namespace is not None:
            attrs["namespace"] = namespace
        spec = {"resourceAttributes": attrs}
    spec["user"] = user
    # What the API server adds to every ServiceAccount's token (serviceaccount.MakeGroupNames).
    namespace_of = user.split(":")[2] if user.startswith("system:serviceaccount:") else ""
    spec["groups"] = ["system:serviceaccounts", f"system:serviceaccounts:{namespace_of}", "system:authenticated"]
    answer = api.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
    return bool(answer["status"].get("allowed"))


def rule_cases(rules: Sequence[dict]) -> list[dict]:
    """Every (verb, resource or URL) a ClusterRole's rules grant, one access_review kwargs each."""
    cases = []
    for rule in rules:
        for verb in rule["verbs"]:
            for url in rule.get("nonResourceURLs", []):
                cases.append({"verb": verb, "path": url})
            for group in rule.get("apiGroups", []):
                for resource in rule.get("resources", []):
                    name, _, sub = resource.partition("/")
                    cases.append({"verb": verb, "group": group, "resource": name, "subresource": sub})
    return cases


def pending_pods(api: KubeAPI, namespace: str) -> dict[str, str]:
    """For every StatefulSet, its first pod as the StatefulSet controller makes it (the template,
    `<set>-0`, a controller owner reference, a volume per claim template naming the claim
    `<template>-<set>-0`); with no scheduler it stays Pending. Returns {pod: statefulset}."""
    made = {}
    for sts in api.items(f"/apis/apps/v1/namespaces/{namespace}/statefulsets"):
        name = sts["metadata"]["name"]
        pod_name = f"{name}-0"
        template = sts["spec"]["template"]
        spec = json.loads(json.dumps(template["spec"]))
        volumes = spec.setdefault("volumes", [])
        have = {v["name"] for v in volumes}
        for claim in sts["spec"].get("volumeClaimTemplates", []):
            if claim["metadata"]["name"] not in have:
                volumes.append({"name": claim["metadata"]["name"], "persistentVolumeClaim": {
                    "claimName": f"{claim['metadata']['name']}-{pod_name}"}})
        spec["hostname"] = pod_name
        spec["subdomain"] = sts["spec"].get("serviceName", "")
        api.request("POST", f"/api/v1/namespaces/{namespace}/pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": pod_name, "namespace": namespace,
                "labels": {**template["metadata"].get("labels", {}),
                           "statefulset.kubernetes.io/pod-name": pod_name},
                "annotations": template["metadata"].get("annotations", {}),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name,
                                     "uid": sts["metadata"]["uid"], "controller": True}],
            },
            "spec": spec,
        })
        made[pod_name] = name
    return made


def local_ksm_args(args: Sequence[str], kubeconfig: Path, port: int, telemetry_port: int) -> list[str]:
    """The workload's flags with its two ports moved to free loopback ports, plus the kubeconfig
    (in the pod: the mounted ServiceAccount token, in-cluster config)."""
    out = []
    for arg in args:
        name = arg.partition("=")[0]
        if name == "--port":
            out.append(f"--port={port}")
        elif name == "--telemetry-port":
            out.append(f"--telemetry-port={telemetry_port}")
        else:
            out.append(arg)
    assert f"--port={port}" in out and f"--telemetry-port={telemetry_port}" in out, args
    return out + ["--host=127.0.0.1", "--telemetry-host=127.0.0.1", f"--kubeconfig={kubeconfig}"]


# --- the whole run ---------------------------------------------------------------------------

SCALE = 150  # `for: 15m` waits 6 s, evaluation every 100 ms (tests/e2e/localize.py scales rule `for:`,
#               group and evaluation intervals and the route timers alike)
SCRAPE_INTERVAL = "1s"
WAIT_S = 90  # for every expected alert to reach Alertmanager and the warning receiver


@dataclass
class Watched:
    """What one run saw; every process is stopped before the tests read it."""

    statefulsets: set[str]
    deployments: set[str]
    pods: dict[str, str]  # {pod: its statefulset}
    warning_receiver: str
    alerts: list[dict]  # Alertmanager's /api/v2/alerts
    deliveries: list[Delivery]
    probes: dict[str, int]  # {"workload probe": HTTP status, "metrics /livez": ..., ...}
    series: dict[str, int]  # {metric: series Prometheus holds from the kube-state-metrics job}
    up: float  # the kube-state-metrics job's `up`
    ksm_log: str
    forbidden_secrets: int  # HTTP status the ServiceAccount's own token gets listing Secrets
    seconds: float


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def _as_token(server: str, pki: Path, kubeconfig: Path, path: str) -> int:
    """The HTTP status the kubeconfig's token gets for GET `path` (no client certificate)."""
    token = json.loads(kubeconfig.read_text())["users"][0]["user"]["token"]
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    request = urllib.request.Request(server + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def prod_settings(sink: HttpSink, smarthost: Callable[[str], str]) -> Settings:
    """The committed prod stack's settings (what `up` deployed) with its receivers pointed at the
    local sinks; one Prometheus and one Alertmanager (HA has its own tests): neither changes the
    kube-state-metrics job or the rules."""
    stack, config = scenarios()["prod"]
    values, secret_keys = engine_config(config)
    raw = {k[len(NS):]: parse_raw(v) for k, v in values.items() if k.startswith(NS)}
    raw["highAvailability"] = False
    return load_settings(pointed_at_sinks(raw, sink, smarthost), stack=stack, secret_keys=secret_keys)


def watch_cluster(apiserver, namespace: str, tmp: Path) -> Watched:
    started = time.monotonic()
    ksm_bin = ksm_binary()
    api = apiserver.api
    statefulsets = api.names(f"/apis/apps/v1/namespaces/{namespace}/statefulsets")
    deployments = api.names(f"/apis/apps/v1/namespaces/{namespace}/deployments")
    deliveries = Deliveries()
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(HttpSink(deliveries))
        settings = prod_settings(sink, smtp_sinks(stack, deliveries))
        ksm_w = workloads_of("kube_state_metrics", settings)[0]
        kubeconfig = service_account_kubeconfig(api, apiserver.server, apiserver.pki, namespace, ksm_w.name,
                                                tmp / "kube-state-metrics.kubeconfig")
        pods = pending_pods(api, namespace)
        stack.callback(lambda: [api.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{p}") for p in pods])

        port, telemetry = free_port(), free_port()
        ksm = stack.enter_context(Process(
            "kube-state-metrics", [ksm_bin, *local_ksm_args(ksm_w.args, kubeconfig, port, telemetry)],
            tmp / "kube-state-metrics.log"))
        metrics = f"http://127.0.0.1:{port}"
        ksm.wait_ready(f"{metrics}/healthz")
        # The workload's probe (its path on whichever of the two ports it names), then upstream's
        # three (pkg/app/server.go: /livez and /healthz on the metrics port, /readyz on telemetry).
        health = ksm_w.health
        local_port = {kube_state_metrics.PORT: port, kube_state_metrics.TELEMETRY_PORT: telemetry}.get(health.port)
        probes = {"workload probe": _status(f"http://127.0.0.1:{local_port}{health.path}") if local_port else -1,
                  "metrics /livez": _status(f"{metrics}/livez"),
                  "metrics /healthz": _status(f"{metrics}/healthz"),
                  "telemetry /readyz": _status(f"http://127.0.0.1:{telemetry}/readyz")}

        stub = stack.enter_context(Exporter(stub_metrics))
        prom_addr, am_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        local = {"prometheus": prom_addr, "alertmanager": am_addr, kube_state_metrics.JOB: f"127.0.0.1:{port}"}
        targets = {target: local.get(job, stub.target)
                   for job, target in prometheus.stack_targets(links_for(settings)).items()}
        root = tmp / "root"
        _, prom_w, am_w = write_local_layout(settings, root, targets, {}, scale=SCALE,
                                             scrape_interval=SCRAPE_INTERVAL)
        prom, am, prom_proc, _ = start_prometheus_and_alertmanager(stack, root, prom_w, am_w, prom_addr, am_addr, tmp)

        warning = settings.alerting.routes.warning
        want = expected_alerts(namespace, statefulsets, deployments, pods)

        def arrived() -> bool:
            held = [a["labels"] for a in http_get_json(f"{am}/api/v2/alerts?active=true")]
            at_sink = {labels["alertname"] for d in deliveries.all() if d.receiver == warning
                       for labels in delivered(d)}
            return (all(any(all(h.get(k) == v for k, v in w.items()) for h in held) for w in want)
                    and {w["alertname"] for w in want} <= at_sink)

        deadline = time.monotonic() + WAIT_S
        while not arrived():
            if time.monotonic() > deadline:
                held = [a["labels"] for a in http_get_json(f"{am}/api/v2/alerts?active=true")]
                pytest.fail(f"not every alert reached Alertmanager and {warning} in {WAIT_S}s.\n"
                            f"want: {want}\nAlertmanager: {json.dumps(held)}\n"
                            f"sinks: {[(d.receiver, [l['alertname'] for l in delivered(d)]) for d in deliveries.all()]}\n"
                            f"kube-state-metrics log:\n{ksm.output()}\nprometheus log:\n{prom_proc.output()}")
            time.sleep(0.25)

        job = f'job="{kube_state_metrics.JOB}"'
        series = {}
        for metric in ("kube_statefulset_replicas", "kube_deployment_spec_replicas", "kube_pod_status_phase",
                       "kube_pod_owner", "kube_namespace_status_phase", "kube_persistentvolumeclaim_info",
                       "kube_daemonset_status_desired_number_scheduled"):
            result = http_get_json(f"{prom}/api/v1/query?query=" + urllib.parse.quote(f"{metric}{{{job}}}"))
            series[metric] = len(result["data"]["result"])
        up = http_get_json(f"{prom}/api/v1/query?query=" + urllib.parse.quote(f"up{{{job}}}"))["data"]["result"]
        watched = Watched(
            statefulsets=statefulsets, deployments=deployments, pods=pods, warning_receiver=warning,
            alerts=http_get_json(f"{am}/api/v2/alerts?active=true"), deliveries=deliveries.all(),
            probes=probes, series=series, up=float(up[0]["value"][1]) if up else -1.0, ksm_log=ksm.output(200_000),
            forbidden_secrets=_as_token(apiserver.server, apiserver.pki, kubeconfig,
                                        f"/api/v1/namespaces/{namespace}/secrets"),
            seconds=time.monotonic() - started)
    # Unscheduled pods are deleted at once (no kubelet to confirm): nothing is left for the
    # tests after this one.
    assert not api.names(f"/api/v1/namespaces/{namespace}/pods"), "pods made by pending_pods are left"
    return watched


def expected_alerts(namespace: str, statefulsets: set[str], deployments: set[str],
                    pods: dict[str, str]) -> list[dict]:
    """The label sets that must reach Alertmanager: every StatefulSet and Deployment lacks
    replicas, every pod made by `pending_pods` is not ready; all warnings in the namespace."""
    base = {"namespace": namespace, "severity": "warning"}
    return ([{**base, "alertname": "KubeStatefulSetReplicasMismatch", "statefulset": s} for s in sorted(statefulsets)]
            + [{**base, "alertname": "KubeDeploymentReplicasMismatch", "deployment": d} for d in sorted(deployments)]
            + [{**base, "alertname": "KubePodNotReady", "pod": p} for p in sorted(pods)])
