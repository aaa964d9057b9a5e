"""The Kubernetes objects a stack declares, as manifests, without a cluster.

`make render STACK=<stack>` writes them to `OUT/manifests/`: the program (`__main__.py`) runs
under Pulumi mocks (`tooling.mockrun`), and every `kubernetes:*` resource it registers becomes
one YAML document: its inputs are the object (pulumi-kubernetes sends `apiVersion`, `kind`,
`metadata`, `spec`, ... as they will be applied). Provider resources and components are dropped.

Differences from what `pulumi up` applies, all deliberate:
- every secret value (anything Pulumi marks secret, e.g. `stringData` of a Secret) is
  `<secret>`: no real credential exists offline, and a rendered tree must be safe to share;
- an auto-named object (the tools' Secrets, see components/targets/kubernetes.py) gets its
  logical Pulumi name; the provider adds a random suffix on the cluster. References to it (the
  pod's secret volume) use the same name, so the documents stay consistent.
For a cluster-side render with real values and final names, set
`observability:kubernetes.renderToDirectory` and run `pulumi up` (docs/kubernetes.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Union

import yaml

from tooling.mockrun import SECRET_SIG, SIG_KEY, Registered, run_program

SECRET_PLACEHOLDER = "<secret>"


def redact(value: Any, secret: bool = False) -> Any:
    """Raw inputs with every secret leaf replaced by the placeholder; integral floats as ints
    (the engine's protobuf structs carry every number as a double)."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return redact(value.get("value"), True)
        return {k: redact(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secret) for v in value]
    if secret and isinstance(value, str):
        return SECRET_PLACEHOLDER
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _drop_empty(value: Any) -> Any:
    """Without None values, keys sorted (stable diffs between renders)."""
    if isinstance(value, dict):
        return {k: _drop_empty(v) for k, v in sorted(value.items()) if v is not None}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


def manifest(resource: Registered) -> dict:
    """One Kubernetes object from a registered `kubernetes:*` resource."""
    doc = _drop_empty(redact(resource.raw_inputs))
    meta = doc.setdefault("metadata", {})
    meta.setdefault("name", resource.name)
    # apiVersion/kind first, like every manifest a reader has seen.
    ordered = {"apiVersion": doc.pop("apiVersion"), "kind": doc.pop("kind"), "metadata": doc.pop("metadata")}
    ordered.update(doc)
    return ordered


def is_kubernetes_object(resource: Registered) -> bool:
    return resource.custom and resource.type.startswith("kubernetes:")


# Apply order (what `kubectl apply -f manifests/` and a reader expect): the namespace and
# cluster-wide RBAC, then what pods reference, then the pods' controllers, then what selects them.
KIND_ORDER = (
    "Namespace", "ClusterRole", "ClusterRoleBinding", "NetworkPolicy", "ServiceAccount", "ConfigMap",
    "Secret", "PersistentVolumeClaim", "StatefulSet", "Deployment", "DaemonSet", "Service",
    "PodDisruptionBudget", "Ingress",
)


def _order(obj: dict) -> tuple:
    kind = obj["kind"]
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return rank, kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def manifests_of(resources: list[Registered]) -> list[dict]:
    """Every Kubernetes object, in a stable apply order (registration order under mocks follows
    when inputs resolve, not the program text)."""
    return sorted((manifest(r) for r in resources if is_kubernetes_object(r)), key=_order)


def declared_manifests(stack_file: Union[str, Path], stack: str) -> dict[str, str]:
    """{`manifests/<NN>-<kind>-<name>.yaml`: one YAML document each}, numbered in apply order."""
    doc = yaml.safe_load(Path(stack_file).read_text(encoding="utf-8")) or {}
    run = run_program(stack, doc.get("config") or {})
    if run.error:
        raise RuntimeError(f"the program failed under mocks: {run.error}")
    docs = manifests_of(run.resources)
    width = max(2, len(str(len(docs))))
    files: dict[str, str] = {}
    for i, obj in enumerate(docs, start=1):
        slug = re.sub(r"[^a-z0-9.-]+", "-", obj["metadata"]["name"].lower()).strip("-")
        rel = f"manifests/{i:0{width}d}-{obj['kind'].lower()}-{slug}.yaml"
        files[rel] = yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)
    return files
