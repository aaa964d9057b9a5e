"""Kubernetes target: one `Workload` -> ServiceAccount, ConfigMap, Secret, workload, Service, ...

Upstream references: pulumi-kubernetes v4 (`Provider` options, the replacement table in
`provider/pkg/provider/diff.go`), the Kubernetes API reference (apps/v1, core/v1,
networking.k8s.io/v1, policy/v1, rbac.authorization.k8s.io/v1), the Pod Security Standards
("restricted") for the security context, and Prometheus' `kubernetes_sd_config` for the RBAC its
pod discovery needs. docs/kubernetes.md is the user-facing version of this docstring.

Layout (logical names `f"{name}-<role>"`, every resource on the explicit provider):

- stack component children: the `kubernetes.Provider` (kubeconfig / context / namespace from
  settings, `render_yaml_to_directory` for render-only mode, server-side apply), the Namespace,
  the ClusterRole + ClusterRoleBinding of each Kubernetes API client (pod discovery, a
  workload's `cluster_rules`: Prometheus, kube-state-metrics, the events collector), and the
  namespace-wide NetworkPolicies (default deny, DNS);
- tool component children, per workload: ServiceAccount, ConfigMap (config files), Secret
  (secret files), PersistentVolumeClaim (stateful tools), StatefulSet / Deployment / DaemonSet,
  Service, its NetworkPolicy, an Ingress (Grafana, when enabled), and for a multi-replica workload
  a PodDisruptionBudget and, when its replicas address each other, a headless Service.

Several replicas (`Workload.replicas`, `highAvailability`): a PodDisruptionBudget
(`maxUnavailable: 1`: a node drain never takes two at once), `topologySpreadConstraints` from
`kubernetes.topologySpread` (zone: best effort, `ScheduleAnyway`, so a one-zone cluster still
schedules; hostname: `DoNotSchedule`, maxSkew 1), a headless Service `<name>-peers`
(`publishNotReadyAddresses` for gossip peers, which must find each other before they are ready),
and rollouts that keep quorum: a StatefulSet's RollingUpdate replaces one pod at a time, in
reverse ordinal order, waiting for each to be ready (and `minReadySeconds` when the workload asks
for time to resync); a Deployment surges one new pod before taking an old one down
(`maxUnavailable: 0`). `podManagementPolicy` stays `OrderedReady` for every StatefulSet: it is
immutable (changing it replaces the StatefulSet) and it only governs scaling and first creation,
never the update order. Claims `data-<name>-<i>` are declared for every ordinal.

Kubernetes object names are fixed and equal the workload name (`prometheus`), so other tools reach
each other at `http://<name>:<port>` as on Docker, except where a new name is what rolls the pods:

- ConfigMap `<name>-config-<sha256 of its content, 10 hex>`: a config change is a new, immutable
  ConfigMap, the pod template references the new name and the pods roll. Deterministic, so it is
  the same name under mocks, in rendered manifests and on the cluster.
- Secret: Pulumi auto-naming (`<logical name>-<random suffix>`, no `metadata.name`). A content
  hash in a name or a pod annotation would publish a fingerprint of the credentials to anyone who
  can read pods (and a short password can be brute-forced from it); a random suffix says nothing
  about the content. pulumi-kubernetes replaces a Secret whose data changes (immutable Secret,
  replacement fields `data`/`stringData`); auto-named, the replacement gets a new random name,
  the pod template references it and the pods roll.

Data: a stateful workload is a StatefulSet (persistentVolumeClaimRetentionPolicy Retain/Retain)
whose volumeClaimTemplate `data` yields the claim `data-<name>-0`. That claim is also declared
here as an explicit PersistentVolumeClaim, created before the StatefulSet (which then adopts it):
its `spec.resources.requests.storage` is the size from `components.sizing`, and pulumi-kubernetes
updates that field in place (it is not a replacement field of a PVC), so a retention increase
expands the volume (the StorageClass needs `allowVolumeExpansion: true`; otherwise the API server
rejects the update and nothing is replaced; a warning per derived claim says so on every run).
The templates only matter when the StatefulSet is created: `ignore_changes` on them keeps the
StatefulSet's replacement fields (selector, serviceName, volumeClaimTemplates,
podManagementPolicy, revisionHistoryLimit) free of anything derived from retention, sampling or
receivers. The claim and the Namespace (deleting a namespace deletes its claims) are always
`retain_on_delete`; with `protectData` they and the StatefulSet are also protected.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from ..base import Deployed, StackFlags
from ..platform import Platform, kubernetes as kubernetes_platform
from ..workload import Workload, peers_service
from ...config.model import TOPOLOGY_KEYS, Kubernetes

PART_OF = "observability"
MANAGED_BY = "pulumi"
DATA_CLAIM = "data"  # volumeClaimTemplate name: the StatefulSet's claim is `data-<name>-0`
STOP_GRACE_SECONDS = 30  # same as the Docker target: time to flush WAL/TSDB head on SIGTERM
SCRATCH_SIZE_LIMIT = "1Gi"  # emptyDir per scratch path (read-only root filesystem)
HOST_NETWORK_ANNOTATION = "observability/host-network"
SECRET_FILE_MODE = 0o440  # owner + fsGroup read only
CONFIG_FILE_MODE = 0o444
# Pod discovery (Prometheus `kubernetes_sd_configs: [{role: pod}]`) lists and watches pods in
# every namespace; it needs nothing else.
POD_DISCOVERY_RULES = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
# Where the API server listens as seen by NetworkPolicy (after the `kubernetes` Service's DNAT):
# 443 on most managed clusters, 6443 on kubeadm/k3s/kind.
API_SERVER_PORTS = (443, 6443)
ANYWHERE = ({"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}})
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
# ignore_changes of the StatefulSet (see the module docstring): the templates only matter when
# the StatefulSet is created; afterwards the explicit claim carries the size. (The storage class
# and access modes of that claim are replacement fields of the claim itself, which is protected
# in prod and always retained: changing them fails loudly instead of swapping the volume.)
TEMPLATE_IGNORED = "spec.volumeClaimTemplates"
# Ports a notification goes out on, per receiver kind, when its URL names none.


def selector_labels(workload_name: str) -> dict[str, str]:
    """Pod selector of a workload: fixed, never derived from anything a config change touches."""
    return {"app.kubernetes.io/name": workload_name, "app.kubernetes.io/part-of": PART_OF}


def labels(workload_name: str, stack: str) -> dict[str, str]:
    return {**selector_labels(workload_name), "app.kubernetes.io/instance": stack,
            "app.kubernetes.io/managed-by": MANAGED_BY}


def file_keys(paths: list[str]) -> dict[str, str]:
    """{absolute path: ConfigMap/Secret key}: the base name, made unique and key-safe."""
    keys: dict[str, str] = {}
    used: set[str] = set()
    for path in paths:
        base = re.sub(r"[^-._a-zA-Z0-9]", "-", posixpath.basename(path)) or "file"
        key, n = base, 2
        while key in used:
            key, n = f"{base}-{n}", n + 1
        used.add(key)
        keys[path] = key
    return keys


def config_map_name(workload: Workload) -> str:
    """`<name>-config-<hash>`: deterministic, changes exactly when a config file changes."""
    digest = hashlib.sha256(
        json.dumps([[f.path, f.content] for f in workload.config_files], sort_keys=True).encode()
    ).hexdigest()
    return f"{workload.name}-config-{digest[:10]}"


def replicas(workload: Workload) -> int:
    return 1 if workload.per_node else max(1, workload.replicas)


def topology_spread(kubernetes: Kubernetes, workload_name: str) -> list[dict]:
    """`topologySpreadConstraints` of a multi-replica workload (see the module docstring)."""
    return [{
        "maxSkew": 1,
        "topologyKey": TOPOLOGY_KEYS[key],
        "whenUnsatisfiable": "DoNotSchedule" if key == "hostname" else "ScheduleAnyway",
        "labelSelector": {"matchLabels": selector_labels(workload_name)},
    } for key in kubernetes.topology_spread]


# Downward API fields behind Workload.pod_name_env / pod_ip_env.
POD_FIELDS = {"pod_name_env": "metadata.name", "pod_ip_env": "status.podIP"}


def probe(workload: Workload, liveness: bool = False) -> dict:
    """Readiness and liveness from the same `HealthCheck` the Docker target uses. Liveness gets
    twice the failure threshold: a tool that is slow to become ready (WAL replay, ring join) is
    taken out of the Service, not restarted in a loop."""
    h = workload.health
    return {
        "httpGet": {"path": h.path, "port": h.port, "scheme": "HTTP"},
        "initialDelaySeconds": h.initial_delay_seconds,
        "periodSeconds": h.period_seconds,
        "timeoutSeconds": h.timeout_seconds,
        "failureThreshold": h.failure_threshold * (2 if liveness else 1),
        "successThreshold": 1,
    }


def _ports(ports) -> list[dict]:
    return [{"protocol": proto, "port": port} for proto, port in ports]


def _protocols(w: Workload) -> dict[int, list[str]]:
    """{port: its protocols}: a gossip port is served over TCP and UDP alike."""
    found: dict[int, list[str]] = {}
    for p in w.ports:
        if p.protocol not in found.setdefault(p.port, []):
            found[p.port].append(p.protocol)
    return found


class KubernetesBackend:
    """Turns workloads into Kubernetes resources; see the module docstring for the layout."""

    def __init__(self, name: str, kubernetes: Kubernetes, flags: StackFlags, parent: pulumi.Resource, *,
                 provider: Optional[k8s.Provider] = None, namespace: Optional[k8s.core.v1.Namespace] = None):
        """`provider` / `namespace`: a program's own, used instead of creating them (the
        Namespace must be named `kubernetes.namespace`: configs refer to that name)."""
        self.name = name
        self.k = kubernetes
        self.flags = flags
        self.parent = parent
        k = kubernetes
        self.provider = provider or k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=k.kubeconfig,
            context=k.context,
            namespace=k.namespace,
            # Render-only mode: manifests are written there and nothing is applied (Secrets in
            # plaintext in those files); see docs/kubernetes.md.
            render_yaml_to_directory=k.render_to_directory,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        self.namespace = namespace or self._namespace(name, parent)
        # The namespace name as an Output: every namespaced object depends on the Namespace.
        self.ns = self.namespace.metadata.name
        # Workload name -> (logical name, parent, workload), for the NetworkPolicies in finish().
        self._deployed: dict[str, tuple[str, pulumi.Resource, Workload]] = {}

    def platform(self) -> Platform:
        return kubernetes_platform(self.k.namespace, self.k.cluster_monitoring)

    def _namespace(self, name: str, parent: pulumi.Resource) -> k8s.core.v1.Namespace:
        k = self.k
        protect = self.flags.protect_data
        return k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": k.namespace,
                "labels": {
                    "app.kubernetes.io/part-of": PART_OF,
                    "app.kubernetes.io/managed-by": MANAGED_BY,
                    # Report (not enforce) pods that miss the "restricted" Pod Security Standard:
                    # the collector's per-node log agent needs read-only hostPath mounts.
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                },
            },
            # Deleting a namespace deletes every claim in it: the namespace outlives the stack.
            opts=self._opts(parent, protect=protect, retain_on_delete=True),
        )

    # -- helpers ----------------------------------------------------------------------------------

    def _opts(self, parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, **kwargs)

    def _meta(self, name: Optional[str], workload_name: str, **extra) -> dict:
        meta = {"namespace": self.ns, "labels": labels(workload_name, self.flags.stack), **extra}
        if name is not None:
            meta["name"] = name
        return meta

    def _service_type(self, w: Workload) -> str:
        user_facing = any(p.publish for p in w.ports)
        return self.k.service_type if user_facing else "ClusterIP"

    # -- the backend interface ----------------------------------------------------------------------

    def deploy(self, name: str, workload: Workload, parent: pulumi.Resource) -> Deployed:
        w = workload
        self._deployed[w.name] = (name, parent, w)
        protect = self.flags.protect_data

        account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=self._meta(w.name, w.name, **(
                {"annotations": dict(w.service_account_annotations)} if w.service_account_annotations else {})),
            # A token only for a Kubernetes API client (pod discovery, `cluster_rules`).
            automount_service_account_token=w.uses_kubernetes_api,
            opts=self._opts(parent),
        )
        if w.uses_kubernetes_api:
            self._cluster_rbac(name, w, account)

        volumes: list[dict] = []
        mounts: list[dict] = []
        depends_on: list[pulumi.Resource] = []

        if w.config_files:
            keys = file_keys([f.path for f in w.config_files])
            config_map = k8s.core.v1.ConfigMap(
                f"{name}-config",
                metadata=self._meta(config_map_name(w), w.name),
                data={keys[f.path]: f.content for f in w.config_files},
                immutable=True,
                opts=self._opts(parent),
            )
            self._mount_files("config", {"configMap": {"name": config_map.metadata.name}},
                              CONFIG_FILE_MODE, keys, volumes, mounts)

        if w.secret_files:
            keys = file_keys([f.path for f in w.secret_files])
            secret = k8s.core.v1.Secret(
                f"{name}-secret",
                # No metadata.name: auto-named, see the module docstring.
                metadata=self._meta(None, w.name),
                type="Opaque",
                string_data={keys[f.path]: pulumi.Output.secret(f.content) for f in w.secret_files},
                immutable=True,
                opts=self._opts(parent),
            )
            self._mount_files("secrets", {"secret": {"secretName": secret.metadata.name}},
                              SECRET_FILE_MODE, keys, volumes, mounts)

        env_from_secret: list[dict] = []
        if w.secret_env:
            # Secret environment (object storage keys): its own auto-named Secret, read through
            # secretKeyRef, so the value is in no ConfigMap, pod spec or argument.
            env_secret = k8s.core.v1.Secret(
                f"{name}-secret-env",
                metadata=self._meta(None, w.name),
                type="Opaque",
                string_data={key: pulumi.Output.secret(value) for key, value in sorted(w.secret_env.items())},
                immutable=True,
                opts=self._opts(parent),
            )
            env_from_secret = [{"name": key, "valueFrom": {"secretKeyRef": {
                "name": env_secret.metadata.name, "key": key}}} for key in sorted(w.secret_env)]

        for i, path in enumerate(w.scratch):
            volumes.append({"name": f"scratch-{i}", "emptyDir": {"sizeLimit": SCRATCH_SIZE_LIMIT}})
            mounts.append({"name": f"scratch-{i}", "mountPath": path})

        if w.host_logs is not None:
            for i, path in enumerate(w.host_logs.paths):
                volumes.append({"name": f"host-logs-{i}", "hostPath": {"path": path, "type": "Directory"}})
                mounts.append({"name": f"host-logs-{i}", "mountPath": path, "readOnly": True})

        for i, m in enumerate(w.host_mounts):
            # HostToContainer: filesystems the host mounts later show up too (node_exporter).
            volumes.append({"name": f"host-{i}", "hostPath": {"path": m.host_path, "type": "Directory"}})
            mounts.append({"name": f"host-{i}", "mountPath": m.path, "readOnly": True,
                           "mountPropagation": "HostToContainer"})

        if w.data is not None and not w.per_node:
            mounts.append({"name": DATA_CLAIM, "mountPath": w.data.path})
            depends_on.extend(self._claim(name, w, parent, ordinal) for ordinal in range(replicas(w)))

        pod = self._pod_template(w, volumes, mounts, account.metadata.name, env_from_secret)
        meta = self._meta(w.name, w.name)
        selector = {"matchLabels": selector_labels(w.name)}
        if w.per_node:
            controller = k8s.apps.v1.DaemonSet(
                f"{name}-daemonset", metadata=meta,
                spec={"selector": selector, "template": pod,
                      "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}},
                opts=self._opts(parent),
            )
        elif w.data is not None:
            controller = k8s.apps.v1.StatefulSet(
                f"{name}-statefulset", metadata=meta,
                spec={
                    "replicas": replicas(w),
                    "selector": selector,
                    "serviceName": w.name,
                    "podManagementPolicy": "OrderedReady",
                    "revisionHistoryLimit": 10,
                    "updateStrategy": {"type": "RollingUpdate"},
                    **({"minReadySeconds": w.min_ready_seconds} if w.min_ready_seconds else {}),
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                    "template": pod,
                    "volumeClaimTemplates": [self._claim_template(w)],
                },
                opts=self._opts(parent, depends_on=depends_on, ignore_changes=[TEMPLATE_IGNORED],
                                protect=protect, retain_on_delete=protect),
            )
        else:
            controller = k8s.apps.v1.Deployment(
                f"{name}-deployment", metadata=meta,
                spec={"replicas": replicas(w), "selector": selector, "template": pod,
                      "revisionHistoryLimit": 10, "strategy": self._deployment_strategy(w),
                      **({"minReadySeconds": w.min_ready_seconds} if w.min_ready_seconds else {})},
                opts=self._opts(parent),
            )

        if replicas(w) > 1 and not w.per_node:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb", metadata=self._meta(w.name, w.name),
                spec={"maxUnavailable": 1, "selector": selector},
                opts=self._opts(parent),
            )

        internal: dict[str, pulumi.Output[str]] = {}
        external: dict[str, pulumi.Output[str]] = {}
        # A per-node agent gets no Service: nothing addresses "one of the nodes' agents".
        if w.ports and not w.per_node:
            service = k8s.core.v1.Service(
                f"{name}-service", metadata=self._meta(w.name, w.name),
                spec={
                    "type": self._service_type(w),
                    "selector": selector_labels(w.name),
                    "ports": [{"name": p.name, "port": p.port, "targetPort": p.name, "protocol": p.protocol}
                              for p in w.ports],
                },
                opts=self._opts(parent, depends_on=[controller]),
            )
            svc = service.metadata.name
            ns = self.k.namespace
            for p in w.ports:
                internal[p.name] = svc.apply(lambda s, p=p: f"http://{s}:{p.port}")
                if p.publish or p.ingest:
                    external[p.name] = svc.apply(lambda s, p=p: f"http://{s}.{ns}.svc.cluster.local:{p.port}")
            if self.k.ingress.enabled and w.web_ui:
                external["ingress"] = self._ingress(name, w, service, parent)
        if w.headless and not w.per_node:
            self._headless_service(name, w, parent, controller)
        return Deployed(internal_urls=internal, external_urls=external)

    def _deployment_strategy(self, w: Workload) -> dict:
        if w.singleton:
            # The default RollingUpdate surges one new pod while the old one still runs.
            return {"type": "Recreate"}
        if replicas(w) > 1:
            # Keep every replica serving during a rollout: one extra pod first, then one old one out.
            return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
        return {"type": "RollingUpdate"}

    def _headless_service(self, name: str, w: Workload, parent: pulumi.Resource,
                          controller: pulumi.Resource) -> k8s.core.v1.Service:
        """`<name>-peers`: one DNS A record per pod (Workload.headless)."""
        return k8s.core.v1.Service(
            f"{name}-peers", metadata=self._meta(peers_service(w.name), w.name),
            spec={
                "clusterIP": "None",
                "publishNotReadyAddresses": w.headless == "all",
                "selector": selector_labels(w.name),
                "ports": [{"name": p.name, "port": p.port, "targetPort": p.name, "protocol": p.protocol}
                          for p in w.ports],
            },
            opts=self._opts(parent, depends_on=[controller]),
        )

    def finish(self, workloads: list[Workload]) -> None:
        """NetworkPolicies, once every workload (and so every flow) is known."""
        prefix = f"{self.flags.instance}-" if self.flags.instance else ""
        k8s.networking.v1.NetworkPolicy(
            f"{self.name}-networkpolicy-default-deny",
            metadata={"name": f"{prefix}default-deny", "namespace": self.ns,
                      "labels": {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": MANAGED_BY}},
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            opts=self._opts(self.parent),
        )
        k8s.networking.v1.NetworkPolicy(
            f"{self.name}-networkpolicy-dns",
            metadata={"name": f"{prefix}allow-dns", "namespace": self.ns,
                      "labels": {"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": MANAGED_BY}},
            spec={"podSelector": {}, "policyTypes": ["Egress"],
                  "egress": [{"to": [DNS_PEER], "ports": _ports([("UDP", 53), ("TCP", 53)])}]},
            opts=self._opts(self.parent),
        )
        for spec_name, spec in network_policy_specs(self.k, workloads).items():
            name, parent, _ = self._deployed[spec_name]
            k8s.networking.v1.NetworkPolicy(
                f"{name}-networkpolicy",
                metadata=self._meta(spec_name, spec_name),
                spec=spec,
                opts=self._opts(parent),
            )

    # -- pieces -------------------------------------------------------------------------------------

    @staticmethod
    def _mount_files(volume: str, source: dict, mode: int, keys: dict[str, str],
                     volumes: list[dict], mounts: list[dict]) -> None:
        """A ConfigMap or Secret volume, and one subPath mount per file: nothing the image ships
        in those directories is hidden."""
        kind, spec = next(iter(source.items()))
        volumes.append({"name": volume, kind: {**spec, "defaultMode": mode}})
        mounts.extend({"name": volume, "mountPath": path, "subPath": key, "readOnly": True}
                      for path, key in keys.items())

    def _pod_template(self, w: Workload, volumes: list[dict], mounts: list[dict],
                      account: pulumi.Output[str], secret_env: Optional[list[dict]] = None) -> dict:
        root = w.root_reason is not None
        uid, gid = (0, 0) if root else (w.uid, w.gid)
        downward = [{"name": getattr(w, attr), "valueFrom": {"fieldRef": {"fieldPath": path}}}
                    for attr, path in POD_FIELDS.items() if getattr(w, attr)]
        container = {
            "name": w.name,
            "image": w.image,
            "imagePullPolicy": "IfNotPresent",
            "args": list(w.args),
            "env": downward + [{"name": k, "value": v} for k, v in sorted(w.env.items())] + list(secret_env or []),
            "ports": [{"name": p.name, "containerPort": p.port, "protocol": p.protocol} for p in w.ports],
            "readinessProbe": probe(w),
            "livenessProbe": probe(w, liveness=True),
            "resources": {
                "requests": {"cpu": w.resources.cpu_request, "memory": w.resources.memory_request},
                "limits": {"cpu": w.resources.cpu_limit, "memory": w.resources.memory_limit},
            },
            "securityContext": {
                "runAsNonRoot": not root,
                "runAsUser": uid,
                "runAsGroup": gid,
                "allowPrivilegeEscalation": False,
                "privileged": False,
                "readOnlyRootFilesystem": w.read_only_root,
                "capabilities": {"drop": ["ALL"], **({"add": list(w.capabilities)} if w.capabilities else {})},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": mounts,
        }
        if w.command:
            container["command"] = list(w.command)
        for key in ("args", "env", "ports", "volumeMounts"):
            if not container[key]:
                del container[key]
        if root:
            # Documented exception (Workload.root_reason), recorded on the pod for reviewers.
            annotations = {**w.labels, "observability/runs-as-root": w.root_reason}
        else:
            annotations = dict(w.labels)
        if w.host_network:
            # Documented exception (Workload.host_network), read by the policy pack.
            annotations[HOST_NETWORK_ANNOTATION] = w.host_network
        pod_security = {
            "runAsNonRoot": not root,
            "runAsUser": uid,
            "runAsGroup": gid,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        if w.data is not None or w.secret_files:
            # Volume and secret files group-owned by the tool's gid; chown only on a mismatch.
            pod_security["fsGroup"] = gid
            pod_security["fsGroupChangePolicy"] = "OnRootMismatch"
        spec = {
            "serviceAccountName": account,
            "automountServiceAccountToken": w.uses_kubernetes_api,
            # No `<SERVICE>_PORT` variables: tools read some of those names as their own settings.
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": STOP_GRACE_SECONDS,
            "securityContext": pod_security,
            "containers": [container],
        }
        if replicas(w) > 1:
            spec["topologySpreadConstraints"] = topology_spread(self.k, w.name)
        if w.host_network:
            spec["hostNetwork"] = True
            # Cluster DNS still resolves service names from the host network.
            spec["dnsPolicy"] = "ClusterFirstWithHostNet"
        if w.host_pid:
            spec["hostPID"] = True
        if w.tolerate_all_nodes:
            # Every node, tainted control-plane nodes included (kube-prometheus' node-exporter).
            spec["tolerations"] = [{"operator": "Exists"}]
        if volumes:
            spec["volumes"] = volumes
        metadata: dict = {"labels": {**w.pod_labels, **labels(w.name, self.flags.stack)}}
        if annotations:
            metadata["annotations"] = annotations
        return {"metadata": metadata, "spec": spec}

    def _claim_spec(self, w: Workload) -> dict:
        spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": w.data.size}}}
        if self.k.storage_class:
            spec["storageClassName"] = self.k.storage_class
        return spec

    def _claim_template(self, w: Workload) -> dict:
        return {"metadata": {"name": DATA_CLAIM, "labels": labels(w.name, self.flags.stack)},
                "spec": self._claim_spec(w)}

    def _claim(self, name: str, w: Workload, parent: pulumi.Resource,
               ordinal: int = 0) -> k8s.core.v1.PersistentVolumeClaim:
        """The claim the StatefulSet would create (`data-<name>-<ordinal>`), owned here so it can
        grow. Ordinal 0 keeps its logical name from before replicas existed (no replacement)."""
        claim_name = f"{DATA_CLAIM}-{w.name}-{ordinal}"
        protect = self.flags.protect_data
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data" + (f"-{ordinal}" if ordinal else ""),
            metadata=self._meta(claim_name, w.name, annotations={
                # Readiness of a claim means nothing to us (the StatefulSet's rollout is awaited),
                # and awaiting it deadlocks with WaitForFirstConsumer storage classes
                # (pulumi-kubernetes #895, #4179).
                "pulumi.com/skipAwait": "true",
            }),
            spec=self._claim_spec(w),
            # Always kept on delete (the StatefulSet's own policy is Retain too); protected in prod.
            opts=self._opts(parent, protect=protect, retain_on_delete=True),
        )
        if w.data.derived:
            storage_class = self.k.storage_class or "the cluster's default StorageClass"
            pulumi.log.warn(
                f"{claim_name} requests {w.data.size}, derived from retention x ingest. When that grows, "
                f"Pulumi expands the claim in place: the claim must be bound and {storage_class} must "
                f"have allowVolumeExpansion: true, otherwise the update is rejected and nothing is replaced (pin "
                f"{w.data.size_key} to the current size, or migrate the data). A claim "
                f"never shrinks: when lowering retention, pin {w.data.size_key} to the "
                f"current size.",
                resource=claim,
            )
        return claim

    def _cluster_rbac(self, name: str, w: Workload, account: k8s.core.v1.ServiceAccount) -> None:
        """ClusterRole bound to the workload's ServiceAccount: pod discovery (pods get/list/watch)
        when it discovers pods, plus exactly its `cluster_rules`, nothing else."""
        role_name = cluster_role_name(self.k.namespace, w)
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-clusterrole",
            metadata={"name": role_name, "labels": labels(w.name, self.flags.stack)},
            rules=cluster_rules(w),
            opts=self._opts(self.parent),
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-clusterrolebinding",
            metadata={"name": role_name, "labels": labels(w.name, self.flags.stack)},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                      "name": role.metadata.name},
            subjects=[{"kind": "ServiceAccount", "name": account.metadata.name,
                       "namespace": self.ns}],
            opts=self._opts(self.parent),
        )

    def _ingress(self, name: str, w: Workload, service: k8s.core.v1.Service,
                 parent: pulumi.Resource) -> pulumi.Output[str]:
        ingress = self.k.ingress
        port = next((p for p in w.ports if p.publish), w.ports[0])
        spec: dict = {"rules": [{"host": ingress.host, "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": service.metadata.name,
                                    "port": {"number": port.port}}},
        }]}}]}
        if ingress.class_name:
            spec["ingressClassName"] = ingress.class_name
        if ingress.tls_secret:
            spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret}]
        resource = k8s.networking.v1.Ingress(
            f"{name}-ingress", metadata=self._meta(w.name, w.name), spec=spec, opts=self._opts(parent),
        )
        scheme = "https" if ingress.tls_secret else "http"
        return resource.metadata.apply(lambda _: f"{scheme}://{ingress.host}/")


def cluster_rules(w: Workload) -> list[dict]:
    """The RBAC rules of a workload's ClusterRole."""
    return (POD_DISCOVERY_RULES if w.discovers_pods else []) + [dict(rule) for rule in w.cluster_rules]


def cluster_role_name(namespace: str, w: Workload) -> str:
    # A pod-discovering workload keeps the name its role had since 0.1.0, even now that cluster
    # monitoring adds rules to it: a new name would replace the ClusterRole on upgrade
    # (tests/test_upgrade_in_place.py). Other API clients' roles are named for what they do.
    suffix = "pod-discovery" if w.discovers_pods else "cluster-read"
    return f"{namespace}-{w.name}-{suffix}"


def network_policy_specs(kubernetes: Kubernetes, workloads: list[Workload]) -> dict[str, dict]:
    """One NetworkPolicy spec per workload: exactly the flows the stack declares.

    On top of `default-deny` (all ingress and egress) and `allow-dns` (egress to kube-dns):
    - ingress to W from each workload whose `talks_to` names one of W's endpoints, on exactly
      the ports it addresses;
    - ingress to W's `ingest` ports from any namespace (applications sending telemetry);
    - ingress to W's `publish` ports from anywhere when the service type is NodePort or
      LoadBalancer (node and load-balancer traffic has no pod identity), and to Grafana's from any
      namespace when the Ingress is enabled (wherever the ingress controller runs);
    - egress from W to each endpoint in its `talks_to`, on that endpoint's port;
    - a pod-discovering workload (Prometheus): egress to pods in every *other* namespace on any
      port (annotation-driven scraping can target any port) and to the teams' extra scrape targets;
    - a Kubernetes API client (pod discovery or `cluster_rules`): egress to the API server (443
      and 6443 anywhere: its address is the cluster's);
    - egress to W's `egress_ports` anywhere: destinations outside the stack that the tool module
      derives from settings (Alertmanager's receivers, Prometheus' team scrape targets).
    """
    by_name = {w.name: w for w in workloads}
    namespace = kubernetes.namespace
    public = kubernetes.service_type != "ClusterIP"
    ingress_enabled = kubernetes.ingress.enabled
    specs: dict[str, dict] = {}
    for w in workloads:
        ingress_rules: list[dict] = []
        served = _protocols(w)
        for talker in sorted(workloads, key=lambda t: t.name):
            used = sorted({e.port for e in talker.talks_to if e.service == w.name and e.port in served})
            if used:
                ingress_rules.append({"from": [{"podSelector": {"matchLabels": selector_labels(talker.name)}}],
                                      "ports": _ports((proto, port) for port in used for proto in served[port])})
        ingest = [(p.protocol, p.port) for p in w.ports if p.ingest]
        if ingest:
            ingress_rules.append({"from": [{"namespaceSelector": {}}], "ports": _ports(ingest)})
        published = [(p.protocol, p.port) for p in w.ports if p.publish]
        if published and public:
            ingress_rules.append({"ports": _ports(published)})
        elif published and ingress_enabled and w.web_ui:
            ingress_rules.append({"from": [{"namespaceSelector": {}}], "ports": _ports(published)})

        egress_rules: list[dict] = []
        for target in sorted({e.service for e in w.talks_to}):
            peer = by_name.get(target)
            if peer is None:
                continue  # a disabled tool: no flow (wiring links nothing to it anyway)
            served = _protocols(peer)
            used = sorted({e.port for e in w.talks_to if e.service == target and e.port in served})
            egress_rules.append({"to": [{"podSelector": {"matchLabels": selector_labels(target)}}],
                                 "ports": _ports((proto, port) for port in used for proto in served[port])})
        if w.discovers_pods:
            egress_rules.append({"to": [{"namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [namespace]}]}}]})
        if w.uses_kubernetes_api:
            egress_rules.append({"to": list(ANYWHERE), "ports": _ports(("TCP", p) for p in API_SERVER_PORTS)})
        if w.egress_ports:
            egress_rules.append({"to": list(ANYWHERE), "ports": _ports(("TCP", p) for p in w.egress_ports)})

        spec: dict = {"podSelector": {"matchLabels": selector_labels(w.name)},
                      "policyTypes": ["Ingress", "Egress"]}
        if ingress_rules:
            spec["ingress"] = ingress_rules
        if egress_rules:
            spec["egress"] = egress_rules
        specs[w.name] = spec
    return specs
