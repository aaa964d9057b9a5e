"""`up` against a real kube-apiserver (+ etcd) on loopback (issue 7): the objects the program
declares are admitted and validated by the API server itself, not only by schemas or mocks.

The Pulumi engine and Kubernetes provider come from scripts/build-pulumi.sh, the API server and
etcd from scripts/build-kube-apiserver.sh (both Go modules, versions in components/versions.json);
tests/kube.py runs the server. Marked `engine`; part of `make test`.

There is no kubelet, scheduler or controller manager, so workloads never become ready and claims
are never bound. pulumi-kubernetes 4.25 has no provider-level switch to skip its readiness await
(only `PULUMI_K8S_AWAIT_ALL`, which adds awaits), just the per-object annotation
`pulumi.com/skipAwait: "true"`. TEST-ONLY: the inline program here registers a stack resource
transform adding that annotation to every Kubernetes object before it runs the project's
unchanged `__main__.py`; the project itself never sets it.

Flow: prod's config (passphrase "example") with the generated kubeconfig, StorageClass
`expandable` (allowVolumeExpansion, created through the API first) and `protectData: false`:
1. `up` succeeds; the namespace, StatefulSets, PVCs, Services, NetworkPolicies, ConfigMaps and
   the Secret exist in the API server;
2. a preview right after shows no changes;
3. the claims are marked Bound (what a provisioner would do; the API server allows resizing
   bound claims only), then a retention and ingest change `up` grows them in place, no claim, StatefulSet
   or Service is replaced, and the API server holds the larger requests;
4. `destroy` succeeds and leaves only what is retained on delete: the namespace and the claims.

Between 2 and 3, on the objects that `up` created (issue 13; no second `up`): the cluster watching
itself (kube-state-metrics as its own ServiceAccount, scraped by the rendered Prometheus job, the
workload alerts reaching Alertmanager; tests/e2e/cluster_watch.py) and every ServiceAccount's
RBAC as the API server's authorizer answers SubjectAccessReviews.
"""

from __future__ import annotations

import runpy
import time
from typing import Any

import pulumi
import pytest
from pulumi import automation as auto

from scripts.engine import open_stack
from tests.harness import ROOT
from tests.kube import APIServer, apiserver  # noqa: F401  (fixture)
from tests.enginekit import PROTECTED_KINDS, Events, work_dir
from tests.e2e.cluster_watch import Watched, access_review, expected_alerts, rule_cases, watch_cluster
from tests.e2e.local_stack import delivered
from tests.scenarios import settings_for
from observability_stack.components.registry import TOOLS
from observability_stack.components.render import workloads_of
from observability_stack.components.targets import kubernetes

pytestmark = pytest.mark.engine
NS = "observability"
STORAGE_CLASS = "expandable"
FIGURES: dict[str, Any] = {}
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def _with_skip_await(metadata: Any) -> Any:
    def add(meta):
        meta = dict(meta or {})
        annotations = meta.get("annotations")
        if isinstance(annotations, pulumi.Output):
            meta["annotations"] = annotations.apply(lambda a: {**(a or {}), **SKIP_AWAIT})
        else:
            meta["annotations"] = {**(annotations or {}), **SKIP_AWAIT}
        return meta

    if isinstance(metadata, pulumi.Output):
        return metadata.apply(add)
    return add(metadata)


def _skip_await(args: pulumi.ResourceTransformArgs):
    """TEST-ONLY transform: no controllers run here, so nothing would ever become ready."""
    if not args.type_.startswith("kubernetes:") or args.type_.startswith("pulumi:providers:"):
        return None
    if "metadata" not in args.props and "apiVersion" not in args.props:
        return None
    props = dict(args.props)
    props["metadata"] = _with_skip_await(props.get("metadata"))
    return pulumi.ResourceTransformResult(props=props, opts=args.opts)


def program() -> None:
    pulumi.runtime.register_resource_transform(_skip_await)
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def _storage(api, ns: str) -> dict[str, str]:
    return {c["metadata"]["name"]: c["spec"]["resources"]["requests"]["storage"]
            for c in api.items(f"/api/v1/namespaces/{ns}/persistentvolumeclaims")}


@pytest.fixture(scope="module")
def deployed(engine, apiserver: APIServer):
    base, env = engine
    api = apiserver.api
    api.request("POST", "/apis/storage.k8s.io/v1/storageclasses", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS}, "provisioner": "example.com/none",
        "allowVolumeExpansion": True, "reclaimPolicy": "Retain", "volumeBindingMode": "Immediate"})
    extra = {"observability:environment": "prod", "observability:protectData": False,
             "observability:kubernetes": {"namespace": NS, "kubeconfig": str(apiserver.kubeconfig),
                                          "storageClass": STORAGE_CLASS}}
    wd = work_dir(base, "ci-apiserver", "prod", extra)
    stack = open_stack("ci-apiserver", wd, env)
    stack.workspace.program = program
    FIGURES["apiserver startup s"] = apiserver.startup_s
    out: list[str] = []
    start = time.perf_counter()
    try:
        up = stack.up(on_output=out.append)
    except auto.CommandError as e:
        pytest.fail(f"up against the real API server failed:\n{e}\n" + "\n".join(out[-80:]))
    FIGURES["up s"] = time.perf_counter() - start
    yield base, env, stack, api, up
    try:
        stack.destroy(on_output=lambda _: None)
    except auto.CommandError:
        pass


def test_up_is_admitted_by_the_api_server(deployed):
    _, _, _, api, up = deployed
    assert up.summary.result == "succeeded"
    api.get(f"/api/v1/namespaces/{NS}")
    statefulsets = api.names(f"/apis/apps/v1/namespaces/{NS}/statefulsets")
    claims = api.names(f"/api/v1/namespaces/{NS}/persistentvolumeclaims")
    services = api.names(f"/api/v1/namespaces/{NS}/services")
    policies = api.names(f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies")
    configmaps = api.names(f"/api/v1/namespaces/{NS}/configmaps") - {"kube-root-ca.crt"}
    secrets = api.names(f"/api/v1/namespaces/{NS}/secrets")
    # + Pyroscope's store-gateway and compactor (its microservices, issue 15).
    assert len(statefulsets) == 9, statefulsets
    # One claim per replica: prod runs highAvailability (Alertmanager x3, Prometheus x2, Loki x3,
    # Mimir x3, Tempo x3, Pyroscope's ingesters, store-gateways and compactors x3) plus Grafana's.
    assert len(claims) == 24, claims
    assert services and policies and configmaps and secrets, (services, policies, configmaps, secrets)
    assert api.names(f"/apis/apps/v1/namespaces/{NS}/daemonsets")
    assert api.names(f"/apis/apps/v1/namespaces/{NS}/deployments")
    for claim in api.items(f"/api/v1/namespaces/{NS}/persistentvolumeclaims"):
        assert claim["spec"]["storageClassName"] == STORAGE_CLASS
    FIGURES["objects"] = sum(map(len, (statefulsets, claims, services, policies, configmaps, secrets)))


def test_high_availability_objects_are_admitted(deployed):
    """Issue 14: PDBs, topology spread, headless Services and the gossip port, as the API server
    holds them."""
    _, _, _, api, _ = deployed
    pdbs = {p["metadata"]["name"]: p for p in api.items(f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets")}
    pyroscope = {"pyroscope", *(f"pyroscope-{c}" for c in ("distributor", "query-frontend", "query-scheduler",
                                                            "querier", "store-gateway", "compactor"))}
    assert set(pdbs) == {"alertmanager", "prometheus", "collector", "collector-sampling", "loki", "mimir", "tempo",
                         *pyroscope}, set(pdbs)
    assert all(p["spec"]["maxUnavailable"] == 1 for p in pdbs.values())
    workloads = {w["metadata"]["name"]: w for path in ("statefulsets", "deployments")
                 for w in api.items(f"/apis/apps/v1/namespaces/{NS}/{path}")}
    for name in pdbs:
        spec = workloads[name]["spec"]
        assert spec["replicas"] == (3 if name in {"alertmanager", "loki", "mimir", "tempo", *pyroscope} else 2), name
        keys = [c["topologyKey"] for c in spec["template"]["spec"]["topologySpreadConstraints"]]
        assert keys == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"], name
    assert workloads["alertmanager"]["spec"]["podManagementPolicy"] == "OrderedReady"
    services = {s["metadata"]["name"]: s for s in api.items(f"/api/v1/namespaces/{NS}/services")}
    headless = {n: s for n, s in services.items() if n.endswith("-peers")}
    assert set(headless) == {"alertmanager-peers", "prometheus-peers", "collector-peers", "collector-sampling-peers",
                             "loki-peers", "mimir-peers", "tempo-peers", *(f"{n}-peers" for n in pyroscope)}
    assert all(s["spec"]["clusterIP"] == "None" for s in headless.values())
    assert headless["alertmanager-peers"]["spec"].get("publishNotReadyAddresses") is True
    am = next(p for p in api.items(f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies")
              if p["metadata"]["name"] == "alertmanager")
    gossip = [r for r in am["spec"]["ingress"] if any(p["port"] == 9094 for p in r["ports"])]
    assert [sorted(p["protocol"] for p in r["ports"]) for r in gossip] == [["TCP", "UDP"]]
    # Issue 15: Loki and Mimir rings gossip on 7946/TCP and dial each other's gRPC port 9095, both
    # only from the tool's own pods; their headless Services publish not-ready pods (ring join).
    policies = {p["metadata"]["name"]: p for p in api.items(f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies")}
    for tool in ("loki", "mimir"):
        assert headless[f"{tool}-peers"]["spec"].get("publishNotReadyAddresses") is True
        assert 7946 in {p["port"] for p in headless[f"{tool}-peers"]["spec"]["ports"]}
        ring = [r for r in policies[tool]["spec"]["ingress"] if any(p["port"] in (7946, 9095) for p in r["ports"])]
        assert ring and all(r["from"] == [{"podSelector": {"matchLabels": workloads[tool]["spec"]["selector"]["matchLabels"]}}]
                            for r in ring), ring
        assert {(p["protocol"], p["port"]) for r in ring for p in r["ports"]} == {("TCP", 7946), ("TCP", 9095)}
        env = workloads[tool]["spec"]["template"]["spec"]["containers"][0]["env"]
        assert any(e["name"] == "POD_IP" and e["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP" for e in env)
    # Issue 15: memberlist (7946, TCP) between Tempo's replicas and between Pyroscope's components.
    for name in ("tempo", *pyroscope):
        ring = [r for r in policies[name]["spec"]["ingress"] if any(p["port"] == 7946 for p in r["ports"])]
        assert ring and all(p["protocol"] == "TCP" for r in ring for p in r["ports"]), name
        assert headless[f"{name}-peers"]["spec"].get("publishNotReadyAddresses") is True, name
        assert 7946 in {p["port"] for p in headless[f"{name}-peers"]["spec"]["ports"]}, name
    FIGURES["HA objects"] = len(pdbs) + len(headless)


def test_preview_right_after_up_shows_no_changes(deployed):
    _, _, stack, _, _ = deployed
    result = stack.preview(on_output=lambda _: None)
    assert set(result.change_summary) == {auto.OpType.SAME}, result.change_summary


# --- issue 13: the cluster watching itself, and every ServiceAccount's RBAC ---------------------
# Run here, on the objects `up` just created, instead of a second `up` (tests/e2e/cluster_watch.py).

# Just outside what any tool of the stack needs, asked for every ServiceAccount `up` created.
REFUSED = (
    {"verb": "get", "resource": "secrets", "namespace": NS},
    {"verb": "list", "resource": "secrets"},
    {"verb": "watch", "resource": "secrets"},
    {"verb": "get", "resource": "configmaps", "namespace": NS},
    {"verb": "create", "resource": "pods", "namespace": NS},
    {"verb": "create", "resource": "pods", "subresource": "exec", "namespace": NS},
    {"verb": "get", "resource": "nodes", "subresource": "proxy"},
    {"verb": "create", "resource": "serviceaccounts", "subresource": "token", "namespace": NS},
    {"verb": "delete", "group": "apps", "resource": "statefulsets", "namespace": NS},
    {"verb": "escalate", "group": "rbac.authorization.k8s.io", "resource": "clusterroles"},
)
WRITES = ("create", "update", "patch", "delete")


@pytest.fixture(scope="module")
def watched(deployed, apiserver: APIServer, tmp_path_factory, module_event_loop) -> Watched:
    """kube-state-metrics as its ServiceAccount, Prometheus and Alertmanager as rendered, run
    until the alerts arrive; all stopped (and the pods it made deleted) before the tests read."""
    result = watch_cluster(apiserver, NS, tmp_path_factory.mktemp("cluster-watch"))
    FIGURES["cluster watch s"] = result.seconds
    return result


def test_kube_state_metrics_probe_paths_answer(watched: Watched):
    """The workload's probe (liveness and readiness: /livez on the metrics port, which asks the API
    server's /livez as the ServiceAccount) and upstream's other two answer 200 on v2.19.1."""
    assert watched.probes == {"workload probe": 200, "metrics /livez": 200, "metrics /healthz": 200,
                              "telemetry /readyz": 200}


def test_kube_state_metrics_reads_every_kind_with_its_own_service_account(watched: Watched):
    assert watched.up == 1.0
    assert watched.series["kube_statefulset_replicas"] == len(watched.statefulsets)
    assert watched.series["kube_deployment_spec_replicas"] == len(watched.deployments)
    assert watched.series["kube_pod_owner"] >= len(watched.pods)
    for metric in ("kube_pod_status_phase", "kube_namespace_status_phase", "kube_persistentvolumeclaim_info",
                   "kube_daemonset_status_desired_number_scheduled"):
        assert watched.series[metric] > 0, (metric, watched.series)
    # Every list/watch it makes is allowed: the API server refuses with "forbidden".
    assert "forbidden" not in watched.ksm_log.lower(), watched.ksm_log[-4000:]
    assert watched.forbidden_secrets == 403


def test_replicas_and_not_ready_alerts_reach_alertmanager(watched: Watched):
    """No kubelet or controller: every StatefulSet and Deployment of the stack lacks replicas, and
    the pods made for the StatefulSets stay Pending; each alert carries the namespace and the
    object's name, and the warning route delivers it."""
    held = [a["labels"] for a in watched.alerts]
    for want in expected_alerts(NS, watched.statefulsets, watched.deployments, watched.pods):
        assert any(all(h.get(k) == v for k, v in want.items()) for h in held), (want, held)
    # 9 StatefulSets (Pyroscope's store-gateway and compactor too); OrderedReady makes pod 0 of each.
    assert len(watched.statefulsets) == 9 and watched.deployments and len(watched.pods) == 9
    names = {labels["alertname"] for d in watched.deliveries if d.receiver == watched.warning_receiver
             for labels in delivered(d)}
    assert {"KubeStatefulSetReplicasMismatch", "KubeDeploymentReplicasMismatch", "KubePodNotReady"} <= names
    FIGURES["k8s alerts at Alertmanager"] = sum(a["labels"]["alertname"].startswith("Kube") for a in watched.alerts)


def test_every_service_account_may_do_what_its_tool_needs_and_no_more(deployed):
    """SubjectAccessReviews answered by the real API server's RBAC authorizer: each ServiceAccount
    may do every (verb, resource) of its workload's rendered ClusterRole rules, no write on those
    resources, and nothing in REFUSED; one without rules may not even list pods."""
    _, _, _, api, _ = deployed
    settings = settings_for("prod")
    needs = {w.name: kubernetes.cluster_rules(w) if w.uses_kubernetes_api else []
             for tool in TOOLS if settings.enabled(tool.name) for w in workloads_of(tool.name, settings)}
    accounts = api.names(f"/api/v1/namespaces/{NS}/serviceaccounts") - {"default"}
    assert accounts == set(needs), (accounts, set(needs))
    assert {n for n, rules in needs.items() if rules} >= {"prometheus", "kube-state-metrics"}
    wrong, asked = [], 0
    for account, rules in sorted(needs.items()):
        user = f"system:serviceaccount:{NS}:{account}"
        granted = rule_cases(rules)
        for case in granted:
            for namespace in (None,) if "path" in case else (None, NS):
                asked += 1
                if not access_review(api, user, **case, namespace=namespace):
                    wrong.append((account, "refused", case, namespace))
        refused = list(REFUSED) + [{**c, "verb": verb} for c in granted if "path" not in c for verb in WRITES]
        if not rules:
            refused += [{"verb": "list", "resource": "pods"}, {"verb": "list", "resource": "nodes"}]
        for case in refused:
            asked += 1
            if access_review(api, user, **case):
                wrong.append((account, "allowed", case))
    assert not wrong, wrong
    FIGURES["access reviews"] = asked


def test_retention_change_grows_claims_in_place(deployed):
    _, _, stack, api, _ = deployed
    # A provisioner would bind the claims; the API server resizes bound claims only.
    for name in api.names(f"/api/v1/namespaces/{NS}/persistentvolumeclaims"):
        api.request("PATCH", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{name}/status",
                    {"status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"]}},
                    content_type="application/merge-patch+json")
    before = _storage(api, NS)
    stack.set_config("observability:retention.metrics", auto.ConfigValue("90d"), path=True)
    stack.set_config("observability:retention.logs", auto.ConfigValue("60d"), path=True)
    # With object storage (the committed prod stack) the storage backends' claims hold a day of
    # WAL and cache: ingest, not retention, sizes them.
    stack.set_config("observability:ingest.logGbPerDay", auto.ConfigValue("80"), path=True)
    events, out = Events(), []
    start = time.perf_counter()
    try:
        result = stack.up(on_event=events, on_output=out.append)
    except auto.CommandError as e:
        pytest.fail(f"retention change up failed:\n{e}\n" + "\n".join(out[-80:]))
    FIGURES["retention up s"] = time.perf_counter() - start
    assert result.summary.result == "succeeded"
    replaced = events.replaced()
    assert not [r for r in replaced if r[0] in PROTECTED_KINDS], replaced
    updated = {t for op, t, _ in events.ops if op == "update"}
    assert "kubernetes:core/v1:PersistentVolumeClaim" in updated
    after = _storage(api, NS)
    grown = {n: (before[n], after[n]) for n in before if before[n] != after[n]}
    assert grown, (before, after)
    FIGURES["claims grown"] = grown


def test_destroy_leaves_only_retained_namespace_and_claims(deployed, capsys):
    _, _, stack, api, _ = deployed
    result = stack.destroy(on_output=lambda _: None)
    assert result.summary.result == "succeeded"
    assert not api.names(f"/apis/apps/v1/namespaces/{NS}/statefulsets")
    assert not api.names(f"/apis/apps/v1/namespaces/{NS}/deployments")
    assert not api.names(f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies")
    assert not api.names(f"/api/v1/namespaces/{NS}/services")
    api.get(f"/api/v1/namespaces/{NS}")  # retained on delete
    assert len(api.names(f"/api/v1/namespaces/{NS}/persistentvolumeclaims")) == 24  # one per replica
    with capsys.disabled():
        print("\napiserver: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in FIGURES.items()))

