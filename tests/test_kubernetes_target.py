"""The Kubernetes target under Pulumi mocks: inventory, hardening, secrets, data safety, flows.

Each scenario runs the real program (`__main__.py`) once (cached); `KubernetesBackend.finish` is
wrapped to capture the workloads it was given, so expectations are derived from the same
target-neutral specs the backend consumed. `tests/test_manifests_schema.py` reuses the runs.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Optional

import pytest
import yaml

from observability_stack.components.targets import kubernetes as k8s_target
from observability_stack.components.targets.kubernetes import TEMPLATE_IGNORED, selector_labels
from tests.harness import SECRET_PREFIX, Registered, Run, plaintext_strings, run_with_workloads, scenario
from tests.scenarios import KUBERNETES as SCENARIOS
from tooling.mockrun import stack_file_config

NS = "observability:"
TOOLS = ("prometheus", "alertmanager", "loki", "tempo", "mimir", "pyroscope", "collector", "grafana")

from tests.k8s_types import STS, DEPLOYMENT, DAEMONSET, PVC, SERVICE, CONFIGMAP, SECRET, NETPOL, PDB
CONTROLLERS = (STS, DEPLOYMENT, DAEMONSET)

def get(obj: Any, path: str) -> Any:
    """`spec.volumeClaimTemplates[0].spec` style lookups; None when absent."""
    for part in path.replace("]", "").replace("[", ".").split("."):
        if part == "":
            continue
        if isinstance(obj, list):
            obj = obj[int(part)] if part.isdigit() and int(part) < len(obj) else None
        elif isinstance(obj, dict):
            obj = obj.get(part)
        else:
            return None
    return obj


def pod_spec(r: Registered) -> dict:
    return r.inputs["spec"]["template"]["spec"]


def by_object_name(run: Run, typ: str) -> dict[str, Registered]:
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(typ)}


# -- inventory ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["prod", "team-overlay", "prod-minimal"])
def test_kinds_and_counts_follow_the_workloads(name):
    run, workloads = scenario(name)
    main = [w for w in workloads if not w.per_node]
    stateful = [w for w in main if w.data is not None]
    expected = {
        "pulumi:providers:kubernetes": 1,
        "kubernetes:core/v1:Namespace": 1,
        "kubernetes:core/v1:ServiceAccount": len(workloads),
        CONFIGMAP: sum(1 for w in workloads if w.config_files),
        SECRET: sum(1 for w in workloads if w.secret_files),
        # A claim per replica of a stateful workload.
        PVC: sum(w.replicas for w in stateful),
        STS: len(stateful),
        DEPLOYMENT: len(main) - len(stateful),
        DAEMONSET: len(workloads) - len(main),
        # Its Service, plus the headless one when its replicas are addressed one by one.
        SERVICE: sum(1 for w in main if w.ports) + sum(1 for w in main if w.headless),
        PDB: sum(1 for w in main if w.replicas > 1),
        # default deny + DNS + one per workload
        NETPOL: 2 + len(workloads),
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole": sum(1 for w in workloads if w.uses_kubernetes_api),
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding": sum(1 for w in workloads if w.uses_kubernetes_api),
    }
    expected = {k: v for k, v in expected.items() if v}
    kube = {t: n for t, n in run.types().items() if t.startswith(("kubernetes:", "pulumi:providers:"))}
    assert kube == expected
    # No Ingress without the opt-in.
    assert not run.of_type("kubernetes:networking.k8s.io/v1:Ingress")


def test_prod_inventory():
    """The documented prod layout (docs/kubernetes.md): every tool, one per-node log agent."""
    run, workloads = scenario("prod")
    assert {w.name for w in workloads} >= set(TOOLS)
    assert set(by_object_name(run, STS)) == {"prometheus", "alertmanager", "loki", "tempo", "mimir", "pyroscope", "grafana",
                                             "pyroscope-store-gateway", "pyroscope-compactor"}
    # highAvailability (the prod preset): the collector in two tiers; the events watcher (one);
    # Pyroscope's stateless microservices (its ingesters are the `pyroscope` StatefulSet).
    assert set(by_object_name(run, DEPLOYMENT)) == {"collector", "collector-sampling", "collector-events",
                                                    "kube-state-metrics", "pyroscope-distributor", "pyroscope-querier",
                                                    "pyroscope-query-frontend", "pyroscope-query-scheduler"}
    assert sorted(w.name for w in workloads if w.per_node) == sorted(
        r.inputs["metadata"]["name"] for r in run.of_type(DAEMONSET))
    assert {w.name for w in workloads if w.per_node} == {"collector-logs", "node-exporter"}


def test_disabled_tools_create_nothing():
    run, workloads = scenario("prod-minimal")
    # The host and cluster exporters stay on (they are not stack backends).
    assert {w.name for w in workloads} == {"prometheus", "alertmanager", "node-exporter", "kube-state-metrics"}
    disabled = ("loki", "tempo", "mimir", "pyroscope", "collector", "grafana")
    for r in run.resources:
        assert not any(f"-{tool}" in r.name for tool in disabled), r.name
        assert not any(tool in str(r.inputs.get("metadata", {}).get("name", "")) for tool in disabled), r.name
    # ... and no flow to them: Prometheus' egress names only Alertmanager and kube-state-metrics
    # inside the namespace (node-exporter is reached at node addresses).
    prom = by_object_name(run, NETPOL)["prometheus"]
    peers = [p for rule in prom.inputs["spec"]["egress"] for p in rule.get("to", []) if "podSelector" in p]
    assert peers == [{"podSelector": {"matchLabels": selector_labels("alertmanager")}},
                     {"podSelector": {"matchLabels": selector_labels("kube-state-metrics")}}]


def test_every_resource_uses_the_explicit_provider_and_is_parented():
    run, _ = scenario("prod")
    providers = run.of_type("pulumi:providers:kubernetes")
    assert len(providers) == 1
    urn = providers[0].urn
    stack = run.named("observability").urn
    for r in run.resources:
        if r.type.startswith("kubernetes:"):
            assert r.provider.startswith(urn + "::"), r.name
            assert r.parent, r.name
    for typ in ("kubernetes:core/v1:Namespace", "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"):
        assert all(r.parent == stack for r in run.of_type(typ))
    # Tool resources are children of their tool component.
    assert run.named("observability-loki-statefulset").parent == run.named("observability-loki").urn


def test_provider_settings():
    run, _ = scenario("prod")
    assert run.of_type("pulumi:providers:kubernetes")[0].inputs == {
        "namespace": "observability", "enableServerSideApply": "true"}
    run, _ = run_with_workloads("prod", {NS + "kubernetes": {
        "kubeconfig": "~/.kube/prod", "context": "prod-admin", "renderToDirectory": "out/yaml"}})
    inputs = run.of_type("pulumi:providers:kubernetes")[0].inputs
    assert inputs["kubeconfig"] == "~/.kube/prod"
    assert inputs["context"] == "prod-admin"
    assert inputs["renderYamlToDirectory"] == "out/yaml"


def test_namespace_from_settings_everywhere():
    run, _ = scenario("team-overlay")
    for r in run.resources:
        if r.type.startswith("kubernetes:") and "ClusterRole" not in r.type and not r.type.endswith("Namespace"):
            assert r.inputs["metadata"]["namespace"] == "observability-payments", r.name
    assert run.of_type("kubernetes:core/v1:Namespace")[0].inputs["metadata"]["name"] == "observability-payments"
    bindings = {b.inputs["subjects"][0]["name"]: b.inputs
                for b in run.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")}
    assert bindings["prometheus"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "prometheus", "namespace": "observability-payments"}]
    # Pod discovery plus cluster monitoring: the role is named for what it grants.
    assert bindings["prometheus"]["roleRef"]["name"] == "observability-payments-prometheus-pod-discovery"
    assert bindings["kube-state-metrics"]["roleRef"]["name"] == "observability-payments-kube-state-metrics-cluster-read"


# -- hardening ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["prod", "team-overlay", "public"])
def test_every_container_is_hardened(name):
    run, workloads = scenario(name)
    spec_of = {w.name: w for w in workloads}
    controllers = [r for t in CONTROLLERS for r in run.of_type(t)]
    assert len(controllers) == len(workloads)
    for r in controllers:
        w = spec_of[r.inputs["metadata"]["name"]]
        pod = pod_spec(r)
        pod_sc = pod["securityContext"]
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["enableServiceLinks"] is False
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False, w.name
            assert sc["capabilities"]["drop"] == ["ALL"], w.name
            assert sc["capabilities"].get("add", []) == list(w.capabilities), w.name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, w.name
            assert sc["readOnlyRootFilesystem"] is w.read_only_root, w.name
            if w.root_reason:
                assert sc["runAsUser"] == 0 and sc["runAsNonRoot"] is False
                assert r.inputs["spec"]["template"]["metadata"]["annotations"]["observability/runs-as-root"] == w.root_reason
            else:
                assert sc["runAsNonRoot"] is True and pod_sc["runAsNonRoot"] is True, w.name
                assert (sc["runAsUser"], sc["runAsGroup"]) == (w.uid, w.gid), w.name
            if w.data is not None and not w.per_node:
                assert pod_sc["fsGroup"] == w.gid, w.name
            res = c["resources"]
            assert set(res["requests"]) == {"cpu", "memory"} and set(res["limits"]) == {"cpu", "memory"}, w.name
            assert res["limits"]["memory"] == w.resources.memory_limit
            for kind in ("readinessProbe", "livenessProbe"):
                get_ = c[kind]["httpGet"]
                assert (get_["path"], get_["port"]) == (w.health.path, w.health.port), (w.name, kind)
            assert c["readinessProbe"]["failureThreshold"] == w.health.failure_threshold
            assert c["image"] == w.image and ":" in c["image"] and not c["image"].endswith(":latest")
        # Scratch paths are emptyDirs; host log paths read-only hostPath mounts.
        mounts = {m["mountPath"]: m for m in pod["containers"][0].get("volumeMounts", [])}
        for path in w.scratch:
            assert path in mounts
        if w.host_logs:
            for path in w.host_logs.paths:
                assert mounts[path]["readOnly"] is True
            assert r.type == DAEMONSET


def test_service_account_tokens_only_for_pod_discovery():
    run, workloads = scenario("prod")
    assert {w.name for w in workloads if w.discovers_pods} == {"prometheus"}
    # Kubernetes API clients: Prometheus, kube-state-metrics and the events collector (RBAC in
    # their ClusterRoles).
    discovering = {w.name for w in workloads if w.uses_kubernetes_api}
    assert discovering == {"prometheus", "kube-state-metrics", "collector-events"}
    for r in run.of_type("kubernetes:core/v1:ServiceAccount"):
        name = r.inputs["metadata"]["name"]
        assert r.inputs["automountServiceAccountToken"] is (name in discovering)
    for r in [r for t in CONTROLLERS for r in run.of_type(t)]:
        name = r.inputs["metadata"]["name"]
        assert pod_spec(r)["automountServiceAccountToken"] is (name in discovering)
        assert pod_spec(r)["serviceAccountName"] == name
    roles = {r.inputs["metadata"]["name"]: r.inputs["rules"]
             for r in run.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")}
    # Exactly: pod discovery, node discovery, kubelet metrics, the API server's endpointslices
    # and /metrics (kube-prometheus' prometheus-clusterRole.yaml plus what discovery needs).
    assert roles["observability-prometheus-pod-discovery"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
    ]
    # kube-state-metrics: list and watch of the kinds it exports, no Secrets or ConfigMaps.
    assert roles["observability-kube-state-metrics-cluster-read"] == [
        {"apiGroups": [""], "resources": ["namespaces", "nodes", "persistentvolumeclaims", "pods"],
         "verbs": ["list", "watch"]},
        {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments", "statefulsets"], "verbs": ["list", "watch"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "watch"]},
    ]
    # The events collector: list and watch on Events, nothing else.
    assert roles["observability-collector-events-cluster-read"] == [
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["list", "watch"]},
    ]


# -- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["prod", "team-overlay", "changed"])
def test_no_secret_value_outside_secrets(name):
    run, workloads = scenario(name)
    assert any(w.secret_files for w in workloads)
    for r in run.resources:
        if not r.type.startswith("kubernetes:"):
            continue
        leaked = [s for s in plaintext_strings(r.raw_inputs) if SECRET_PREFIX in s]
        assert not leaked, f"{r.name} carries a secret in plaintext"
        if r.type == CONFIGMAP:
            assert not any(SECRET_PREFIX in v for v in r.inputs["data"].values())
        if r.type in CONTROLLERS:
            for c in pod_spec(r)["containers"]:
                assert not any(SECRET_PREFIX in e.get("value", "") for e in c.get("env", []))
    secrets = run.of_type(SECRET)
    assert {s.inputs["metadata"]["labels"]["app.kubernetes.io/name"] for s in secrets} == {
        w.name for w in workloads if w.secret_files}
    for s in secrets:
        # Auto-named (no name, so no fingerprint of the content), immutable, every value secret.
        assert "name" not in s.raw_inputs["metadata"]
        assert s.inputs["immutable"] is True
        assert s.inputs["stringData"] and not list(plaintext_strings(s.raw_inputs["stringData"]))


def test_pods_reference_their_secret_and_no_content_hash_annotation():
    run, _ = scenario("prod")
    am = by_object_name(run, STS)["alertmanager"]
    volumes = {v["name"]: v for v in pod_spec(am)["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "observability-alertmanager-secret"  # the mock's auto-name
    assert volumes["secrets"]["secret"]["defaultMode"] == 0o440
    for r in [r for t in CONTROLLERS for r in run.of_type(t)]:
        annotations = r.inputs["spec"]["template"]["metadata"].get("annotations", {})
        assert not any("checksum" in k or "hash" in k for k in annotations)


def test_secret_files_mounted_read_only_at_their_paths():
    run, workloads = scenario("prod")
    for w in (w for w in workloads if w.secret_files):
        r = by_object_name(run, STS if w.data else DEPLOYMENT)[w.name]
        mounts = {m["mountPath"]: m for m in pod_spec(r)["containers"][0]["volumeMounts"]}
        for f in w.secret_files:
            assert mounts[f.path]["name"] == "secrets" and mounts[f.path]["readOnly"] is True


# -- config rolls the pods ---------------------------------------------------------------------


def test_config_map_name_is_a_content_hash():
    prod, _ = scenario("prod")
    changed, _ = scenario("changed")
    before = {r.name: r.inputs["metadata"]["name"] for r in prod.of_type(CONFIGMAP)}
    after = {r.name: r.inputs["metadata"]["name"] for r in changed.of_type(CONFIGMAP)}
    assert set(before) == set(after)
    # Receivers changed: Alertmanager gets a new ConfigMap (its pods roll); names are stable otherwise.
    assert before["observability-alertmanager-config"] != after["observability-alertmanager-config"]
    # Deterministic: the same config gives the same name (mocks, rendered manifests, cluster).
    again, _ = run_with_workloads("prod")
    assert {r.name: r.inputs["metadata"]["name"] for r in again.of_type(CONFIGMAP)} == before
    for r in prod.of_type(CONFIGMAP):
        assert r.inputs["immutable"] is True
    am = by_object_name(changed, STS)["alertmanager"]
    config_volume = next(v for v in pod_spec(am)["volumes"] if v["name"] == "config")
    assert config_volume["configMap"]["name"] == after["observability-alertmanager-config"]


# -- data safety and replacement ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["prod", "team-overlay"])
def test_prod_volumes_retained_and_protected(name):
    run, workloads = scenario(name)
    stateful = {w.name: w for w in workloads if w.data is not None and not w.per_node}
    claims = by_object_name(run, PVC)
    assert set(claims) == {f"data-{n}-{i}" for n, w in stateful.items() for i in range(w.replicas)}
    for n, w in stateful.items():
        for i in range(1, w.replicas):
            assert claims[f"data-{n}-{i}"].protect is True and claims[f"data-{n}-{i}"].retain_on_delete is True
        claim = claims[f"data-{n}-0"]
        assert claim.protect is True and claim.retain_on_delete is True
        assert claim.inputs["spec"]["resources"]["requests"]["storage"] == w.data.size
        sts = by_object_name(run, STS)[n]
        assert sts.protect is True and sts.retain_on_delete is True
        assert sts.inputs["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
        assert sts.ignore_changes == [TEMPLATE_IGNORED]
        template = sts.inputs["spec"]["volumeClaimTemplates"][0]
        # The template yields exactly the claim declared here, which the StatefulSet adopts.
        assert f"{template['metadata']['name']}-{n}-0" == claim.inputs["metadata"]["name"]
        assert template["spec"]["accessModes"] == claim.inputs["spec"]["accessModes"]
    namespace = run.of_type("kubernetes:core/v1:Namespace")[0]
    assert namespace.protect is True and namespace.retain_on_delete is True


def test_unprotected_stack_still_retains_claims():
    run, _ = scenario("unprotected")
    for claim in run.of_type(PVC):
        assert claim.retain_on_delete is True and not claim.protect
    for sts in run.of_type(STS):
        assert not sts.protect and sts.inputs["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    assert run.of_type("kubernetes:core/v1:Namespace")[0].retain_on_delete is True


def test_storage_class_from_settings():
    run, _ = scenario("public")
    for claim in run.of_type(PVC):
        assert claim.inputs["spec"]["storageClassName"] == "fast-ssd"
    for sts in run.of_type(STS):
        assert sts.inputs["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
    prod, _ = scenario("prod")
    assert all("storageClassName" not in c.inputs["spec"] for c in prod.of_type(PVC))


# Fields whose change makes pulumi-kubernetes replace the object (provider/pkg/provider/diff.go,
# `forceNewProperties`, v4), for the kinds that must never be replaced by a routine change.
FORCE_NEW = {
    STS: ["metadata.name", "metadata.namespace", "spec.podManagementPolicy", "spec.revisionHistoryLimit",
          "spec.selector", "spec.serviceName", "spec.volumeClaimTemplates"],
    PVC: ["metadata.name", "metadata.namespace", "spec.accessModes", "spec.selector", "spec.storageClassName",
          "spec.volumeName"],
    SERVICE: ["metadata.name", "metadata.namespace", "spec.clusterIP"],
    DEPLOYMENT: ["metadata.name", "metadata.namespace", "spec.selector"],
    DAEMONSET: ["metadata.name", "metadata.namespace", "spec.selector"],
    "kubernetes:core/v1:Namespace": ["metadata.name"],
}


def _without(inputs: dict, paths: list[str]) -> dict:
    """Inputs as the engine compares them: ignore_changes paths keep their old value."""
    copy_ = copy.deepcopy(inputs)
    for path in paths:
        parts = path.replace("]", "").replace("[", ".").split(".")
        parent = get(copy_, ".".join(parts[:-1]))
        if isinstance(parent, dict):
            parent.pop(parts[-1], None)
    return copy_


# Claims sized by retention: prod on its own disks (with object storage the claims hold one day
# of WAL and cache whatever the retention; tests/test_object_storage.py covers that shape).
SINGLE_NODE = {NS + "highAvailability": False, NS + "objectStorage": None}


def test_retention_sampling_and_receivers_replace_no_statefulset_claim_or_service():
    before, _ = run_with_workloads("prod", copy.deepcopy(SINGLE_NODE))
    after, _ = run_with_workloads("prod", {**copy.deepcopy(SCENARIOS["changed"][1]), **SINGLE_NODE})
    # The change is real: volume sizes, Alertmanager's config and the collector's sampling moved.
    assert {c.name: c.inputs["spec"]["resources"] for c in before.of_type(PVC)} != {
        c.name: c.inputs["spec"]["resources"] for c in after.of_type(PVC)}
    compared = 0
    for typ, fields in FORCE_NEW.items():
        old = {r.name: r for r in before.of_type(typ)}
        new = {r.name: r for r in after.of_type(typ)}
        assert set(old) == set(new), typ
        for name in old:
            assert old[name].ignore_changes == new[name].ignore_changes
            a = _without(old[name].inputs, old[name].ignore_changes)
            b = _without(new[name].inputs, new[name].ignore_changes)
            for field in fields:
                assert get(a, field) == get(b, field), f"{name}: {field} changed -> replacement"
                compared += 1
    assert compared > 50


def test_volume_growth_reaches_the_claim_in_place():
    before, workloads = run_with_workloads("prod", copy.deepcopy(SINGLE_NODE))
    after, _ = run_with_workloads("prod", {**copy.deepcopy(SCENARIOS["changed"][1]), **SINGLE_NODE})
    old = {r.name: r for r in before.of_type(PVC)}
    new = {r.name: r for r in after.of_type(PVC)}
    grown = [n for n in old if new[n].inputs["spec"]["resources"]["requests"]["storage"]
             != old[n].inputs["spec"]["resources"]["requests"]["storage"]]
    # Loki (30d -> 60d), Tempo, Mimir, Pyroscope grow; the size is an in-place field of a claim.
    assert {"observability-loki-data", "observability-tempo-data", "observability-mimir-data",
            "observability-pyroscope-data"} <= set(grown)
    assert "spec.resources" not in FORCE_NEW[PVC]
    # The StatefulSet's template size moved too, and the templates are ignored after creation.
    for sts in after.of_type(STS):
        assert sts.ignore_changes == [TEMPLATE_IGNORED]
        name = sts.inputs["metadata"]["name"]
        claim = next(c for c in after.of_type(PVC) if c.inputs["metadata"]["name"] == f"data-{name}-0")
        template_size = get(sts.inputs, "spec.volumeClaimTemplates[0].spec.resources.requests.storage")
        assert template_size == claim.inputs["spec"]["resources"]["requests"]["storage"]
        # Created after (and adopted by) the StatefulSet's controller: the claim exists first.
        assert claim.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    # Users are told how growth reaches the volume, per derived claim.
    warnings = [line for line in after.logs if "allowVolumeExpansion" in line]
    assert any(line.startswith("data-loki-0 requests") for line in warnings)
    assert all("never shrinks" in line for line in warnings)


def test_explicit_size_is_not_warned_about():
    run, _ = run_with_workloads("prod", {NS + "components": {"loki": {"storage": {"size": "500Gi"}}}})
    claim = by_object_name(run, PVC)["data-loki-0"]
    assert claim.inputs["spec"]["resources"]["requests"]["storage"] == "500Gi"
    assert not any(line.startswith("data-loki-0 ") for line in run.logs)


# -- exposure ----------------------------------------------------------------------------------


def test_services_cluster_ip_by_default_and_in_cluster_urls():
    run, workloads = scenario("prod")
    for svc in run.of_type(SERVICE):
        if svc.inputs["metadata"]["name"].endswith("-peers"):
            # Headless (tests/test_high_availability.py): DNS records only, never a user-facing type.
            assert svc.inputs["spec"]["clusterIP"] == "None" and "type" not in svc.inputs["spec"]
            continue
        assert svc.inputs["spec"]["type"] == "ClusterIP"
        assert "clusterIP" not in svc.inputs["spec"]
    urls = run.outputs["urls"]
    assert urls["grafana"]["http"] == "http://grafana.observability.svc.cluster.local:3000"
    assert run.outputs["internalUrls"]["loki"] == "http://loki:3100"
    # A tool's address is where the stack's own links point (its `http` endpoint): for replicated
    # Pyroscope the distributor, not the ingesters that come first among its workloads.
    assert run.outputs["internalUrls"]["pyroscope"] == "http://pyroscope-distributor:4040"
    assert run.outputs["internalUrls"]["mimir"] == "http://mimir:8080"
    env = run.outputs["telemetryEnv"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector.observability.svc.cluster.local:4317"
    # Replicated Pyroscope (microservices, issue 15): pushes go to the distributor, queries to the
    # query-frontend (both published).
    assert env["PYROSCOPE_SERVER_ADDRESS"] == "http://pyroscope-distributor.observability.svc.cluster.local:4040"
    assert urls["pyroscope"]["query"] == "http://pyroscope-query-frontend.observability.svc.cluster.local:4040"
    # Every ingest port has an in-cluster URL.
    for w in workloads:
        for p in w.ports:
            if p.ingest and not w.per_node:
                tool = next(t for t in urls if w.name.startswith(t))
                assert urls[tool][p.name].endswith(f".svc.cluster.local:{p.port}")


def test_public_services_and_grafana_ingress():
    run, workloads = scenario("public")
    for svc in run.of_type(SERVICE):
        if svc.inputs["metadata"]["name"].endswith("-peers"):
            assert "type" not in svc.inputs["spec"]
            continue
        w = next(w for w in workloads if w.name == svc.inputs["metadata"]["name"])
        assert svc.inputs["spec"]["type"] == ("NodePort" if any(p.publish for p in w.ports) else "ClusterIP")
    (ingress,) = run.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    spec = ingress.inputs["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"hosts": ["grafana.example.com"], "secretName": "grafana-tls"}]
    rule = spec["rules"][0]
    assert rule["host"] == "grafana.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "grafana", "port": {"number": 3000}}
    assert run.outputs["urls"]["grafana"]["ingress"] == "https://grafana.example.com/"
    # No Grafana, no Ingress.
    off = copy.deepcopy(SCENARIOS["public"][1])
    off[NS + "components"] = {"grafana": {"enabled": False}}
    assert not run_with_workloads("prod", off)[0].of_type("kubernetes:networking.k8s.io/v1:Ingress")


def test_pod_disruption_budget_when_replicas_above_one():
    run, _ = run_with_workloads("prod", {NS + "highAvailability": False,
                                         NS + "components": {"collector": {"replicas": 2}}})
    pdbs = by_object_name(run, PDB)
    # The collector's two tiers; nothing else runs more than one.
    assert set(pdbs) == {"collector", "collector-sampling"}
    assert pdbs["collector"].inputs["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels("collector")}}
    assert by_object_name(run, DEPLOYMENT)["collector"].inputs["spec"]["replicas"] == 2
    assert by_object_name(run, STS)["alertmanager"].inputs["spec"]["replicas"] == 1


# -- network policies --------------------------------------------------------------------------


def workload_of(host: str) -> str:
    """A workload's Service name, or its headless Service `<name>-peers`."""
    return host.removesuffix("-peers")


def dns_discovery(doc: Any) -> list[tuple[list[str], int]]:
    """([names], port) of every Prometheus `dns_sd_configs` entry and collector `dns` resolver."""
    found = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "dns_sd_configs":
                found += [(entry["names"], entry["port"]) for entry in value]
            elif key == "dns" and isinstance(value, dict) and "hostname" in value:
                found.append(([value["hostname"]], int(value["port"])))
            else:
                found += dns_discovery(value)
    elif isinstance(doc, list):
        for item in doc:
            found += dns_discovery(item)
    return found


def _name_of(peer: dict) -> Optional[str]:
    labels = peer.get("podSelector", {}).get("matchLabels", {})
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return None
    return labels.get("app.kubernetes.io/name")


def _flows(policies: dict[str, Registered], direction: str) -> set[tuple[str, str, int]]:
    """(source, destination, port) allowed between this stack's pods by pod-selector peers."""
    found = set()
    for owner, policy in policies.items():
        for rule in policy.inputs["spec"].get(direction, []):
            for peer in rule.get("from" if direction == "ingress" else "to", []):
                other = _name_of(peer)
                if other is None:
                    continue
                for port in rule.get("ports", []):
                    found.add((other, owner, port["port"]) if direction == "ingress" else (owner, other, port["port"]))
    return found


@pytest.mark.parametrize("name", ["prod", "team-overlay", "prod-minimal", "public"])
def test_network_policies_cover_every_declared_flow_and_nothing_else(name):
    run, workloads = scenario(name)
    by_name = {w.name: w for w in workloads}
    policies = {r.inputs["metadata"]["name"]: r for r in run.of_type(NETPOL)}
    deny = policies.pop("default-deny").inputs["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = policies.pop("allow-dns").inputs["spec"]
    assert dns["policyTypes"] == ["Egress"] and {p["port"] for p in dns["egress"][0]["ports"]} == {53}
    assert set(policies) == set(by_name)

    # Independent of `talks_to`: every `<service>:<port>` of another workload that a workload's
    # rendered config files address is a flow the policies must allow, and nothing else is.
    declared = {
        (w.name, workload_of(host), int(port))
        for w in workloads for text in [f.content for f in w.config_files] + list(w.args)
        for host, port in re.findall(r"\b([a-z][a-z0-9-]*):(\d{2,5})\b", text)
        if workload_of(host) in by_name and (host != w.name or host.endswith("-peers"))
    }
    # DNS discovery names a headless Service and its port apart (Prometheus `dns_sd_configs`,
    # the collector load balancer's `dns` resolver).
    declared |= {
        (w.name, workload_of(host), int(port))
        for w in workloads for f in w.config_files
        for names, port in dns_discovery(yaml.safe_load(f.content))
        for host in names if workload_of(host) in by_name
    }
    # A dskit ring (memberlist `join_members`) advertises each member at `server.grpc_listen_port`
    # (Mimir 3.0.2 `-ingester.ring.instance-port`: "defaults to -server.grpc-listen-port"; Loki's
    # lifecycler and Tempo's likewise): the replicas dial each other there (distributor ->
    # ingester, querier -> ingester), an address no config spells out. Pyroscope's rings advertise
    # the HTTP port instead and its components are separate workloads (docs/upstream-facts.md
    # section 18): distributor -> ingesters, frontend -> scheduler, querier -> scheduler,
    # frontend, ingesters, store-gateways.
    declared |= {
        (w.name, w.name, doc["server"]["grpc_listen_port"])
        for w in workloads for f in w.config_files
        for doc in [yaml.safe_load(f.content)]
        if isinstance(doc, dict) and doc.get("memberlist", {}).get("join_members")
        and "grpc_listen_port" in doc.get("server", {})
    }
    ring_flows = {("pyroscope-distributor", "pyroscope", 4040), ("pyroscope-query-frontend", "pyroscope-query-scheduler", 4040),
                  ("pyroscope-querier", "pyroscope-query-scheduler", 4040), ("pyroscope-querier", "pyroscope-query-frontend", 4040),
                  ("pyroscope-querier", "pyroscope", 4040), ("pyroscope-querier", "pyroscope-store-gateway", 4040)}
    declared |= {f for f in ring_flows if f[0] in by_name}
    assert declared, "the stack declares flows"
    assert _flows(policies, "ingress") == declared
    assert _flows(policies, "egress") == declared

    settings_public = name == "public"
    stores_in_bucket = NS + "objectStorage" in stack_file_config(SCENARIOS[name][0])
    for owner, policy in policies.items():
        w = by_name[owner]
        spec = policy.inputs["spec"]
        assert spec["podSelector"] == {"matchLabels": selector_labels(owner)}
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        # Ingress beyond pod peers: ingest ports from any namespace; published ports when public.
        open_ports: set[int] = set()
        for rule in spec.get("ingress", []):
            peers = rule.get("from")
            ports = {p["port"] for p in rule["ports"]}
            if peers is None:
                assert settings_public and ports == {p.port for p in w.ports if p.publish}, owner
            elif peers == [{"namespaceSelector": {}}]:
                open_ports |= ports
            else:
                assert all(_name_of(p) for p in peers), owner
        # (In "public", Grafana's port is already open to anywhere through the NodePort rule.)
        assert open_ports == {p.port for p in w.ports if p.ingest}, owner
        # Egress beyond pod peers: only Prometheus (discovery, API server, team targets) and
        # Alertmanager (receivers).
        external = [rule for rule in spec.get("egress", []) if not all(_name_of(p) for p in rule.get("to", [{}]))]
        if owner == "prometheus":
            assert external[0] == {"to": [{"namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "NotIn",
                "values": [run.of_type("kubernetes:core/v1:Namespace")[0].inputs["metadata"]["name"]]}]}}]}
            assert {p["port"] for p in external[1]["ports"]} == {443, 6443}
            # Kubelets (10250) and node-exporter (9100) listen on node addresses.
            assert {9100, 10250} <= {p["port"] for p in external[2]["ports"]}
            assert all(peer.get("ipBlock") for rule in external[1:] for peer in rule["to"])
        elif owner in ("kube-state-metrics", "collector-events"):
            assert len(external) == 1 and {p["port"] for p in external[0]["ports"]} == {443, 6443}
        elif owner == "alertmanager":
            assert len(external) == 1 and all(peer.get("ipBlock") for peer in external[0]["to"])
        elif (owner in ("loki", "tempo", "mimir", "pyroscope") or owner.startswith("pyroscope-")) and stores_in_bucket:
            # The object store (the committed prod stacks' example S3 bucket: HTTPS).
            assert [{p["port"] for p in rule["ports"]} for rule in external] == [{443}], owner
            assert all(peer.get("ipBlock") for peer in external[0]["to"])
        else:
            assert external == [], owner


def test_network_policy_external_ports_follow_receivers_and_scrape_targets():
    run, _ = scenario("team-overlay")
    policies = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.of_type(NETPOL)}
    # Slack, PagerDuty and the webhook are HTTPS.
    def outside(rules):  # ports of the rules to addresses outside the stack
        return {p["port"] for rule in rules if any("ipBlock" in peer for peer in rule["to"]) for p in rule["ports"]}

    assert outside(policies["alertmanager"]["egress"]) == {443}
    prom_ports = {p["port"] for rule in policies["prometheus"]["egress"]
                  if any("ipBlock" in peer for peer in rule["to"]) for p in rule["ports"]}
    # API server, the teams' `host:8000` targets, kubelets and node-exporter on node addresses.
    assert prom_ports == {443, 6443, 8000, 9100, 10250}
    run, _ = scenario("prod")
    policies = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in run.of_type(NETPOL)}
    assert outside(policies["alertmanager"]["egress"]) == {443, 587}


def test_grafana_reachable_from_the_ingress_controller_when_enabled():
    run, _ = run_with_workloads("prod", {NS + "kubernetes": {
        "ingress": {"enabled": True, "host": "grafana.example.com"}}})
    grafana = by_object_name(run, NETPOL)["grafana"].inputs["spec"]
    assert {"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": 3000}]} in grafana["ingress"]
    (ingress,) = run.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert "tls" not in ingress.inputs["spec"] and "ingressClassName" not in ingress.inputs["spec"]
    assert run.outputs["urls"]["grafana"]["ingress"] == "http://grafana.example.com/"
