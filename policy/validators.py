"""The stack's policy rules as pure functions: resource type + engine props in, messages out.

Every validator has the signature `(resource_type, props, opts, ctx) -> list[str]`:

- `resource_type` is the Pulumi type token (`docker:index/container:Container`,
  `kubernetes:apps/v1:StatefulSet`, ...);
- `props` are the resource inputs as the engine hands them to a policy pack: camelCase names
  (`persistentVolumeClaimRetentionPolicy`, `initContainers`), secrets already unwrapped, values not
  known during a preview left as Pulumi's "unknown" sentinel strings (a check skips what it cannot
  see: a Container `image` that is still an unknown image id is judged on its RemoteImage);
- `opts` is anything with `protect` and, optionally, `retain_on_delete` (the policy engine's
  `PolicyResourceOptions` has no `retain_on_delete`; the mock runner's `Registered` has both);
- `ctx` is a `PolicyContext`: the environment and the public-exposure opt-ins (`resolve_context`).

An empty list means the resource passes. `policy/__main__.py` wraps each rule in a
`ResourceValidationPolicy`; the tests call these functions directly. Nothing here imports Pulumi.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

# --- context ----------------------------------------------------------------------------------

ENVIRONMENTS = ("dev", "prod")
# A resource that carries this label (Docker container/volume label, Kubernetes object or pod
# label) with the value "prod" is judged as prod whatever the stack says.
ENVIRONMENT_LABELS = ("observability.environment", "observability/environment")


@dataclass(frozen=True)
class PolicyContext:
    environment: str = "dev"
    # docker.allowPublicPorts: published ports may bind to a non-loopback address.
    allow_public_ports: bool = False
    # kubernetes.allowPublicServices: Services may be NodePort/LoadBalancer (and pods use hostPort).
    allow_public_services: bool = False


def _as_object(value: Any) -> dict:
    """A stack config object: a dict, or the JSON string the engine passes for one."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _as_bool(value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def resolve_context(
    policy_config: Optional[Mapping[str, Any]] = None,
    stack_config: Optional[Mapping[str, Any]] = None,
    stack: Optional[str] = None,
) -> PolicyContext:
    """Decide "prod" and the opt-ins, most explicit source first.

    environment: policy config `environment` ("dev"/"prod"; "" or absent = not set) > stack config
    `observability:environment` > the stack name when it is a preset (the program's own rule) >
    "prod" (a stack the policy cannot place gets the stricter rules).
    opt-ins: policy config `allowPublicPorts` / `allowPublicServices` when set (true or false: an
    organisation can forbid exposure whatever the stack says) > the stack's own opt-in settings
    `observability:docker.allowPublicPorts` / `observability:kubernetes.allowPublicServices` >
    false.

    `stack_config` holds keys with or without the `observability:` prefix; object values may be
    dicts or JSON strings (as the engine passes them).
    """
    policy_config = dict(policy_config or {})
    stack_config = {k.split(":", 1)[1] if k.startswith("observability:") else k: v
                    for k, v in (stack_config or {}).items()}

    environment = policy_config.get("environment") or None
    if environment not in ENVIRONMENTS:
        environment = stack_config.get("environment")
    if environment not in ENVIRONMENTS:
        environment = stack if stack in ENVIRONMENTS else "prod"

    def opt_in(policy_key: str, section: str, key: str) -> bool:
        explicit = _as_bool(policy_config.get(policy_key))
        if explicit is not None:
            return explicit
        return _as_bool(_as_object(stack_config.get(section)).get(key)) is True

    return PolicyContext(
        environment=environment,
        allow_public_ports=opt_in("allowPublicPorts", "docker", "allowPublicPorts"),
        allow_public_services=opt_in("allowPublicServices", "kubernetes", "allowPublicServices"),
    )


# --- engine value helpers ----------------------------------------------------------------------

# Pulumi's sentinels for values not known during a preview (pulumi_policy.proxy; a test checks
# they match). A check that meets one skips that value rather than guessing.
UNKNOWN_VALUES = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in UNKNOWN_VALUES


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping) or is_unknown(obj):
            return None
        obj = obj.get(key)
    return obj


def _list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def _resource_name(props: Mapping[str, Any]) -> str:
    name = props.get("name") or _get(props, "metadata", "name")
    return name if isinstance(name, str) and not is_unknown(name) else "<unnamed>"


# Kubernetes kinds whose pod spec we can find, and where.
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

DOCKER_CONTAINER = "docker:index/container:Container"
DOCKER_IMAGE = "docker:index/remoteImage:RemoteImage"
DOCKER_VOLUME = "docker:index/volume:Volume"
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_CONFIGMAP = "kubernetes:core/v1:ConfigMap"
K8S_PVC = "kubernetes:core/v1:PersistentVolumeClaim"
K8S_STATEFULSET = "kubernetes:apps/v1:StatefulSet"
K8S_DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    path = _POD_SPEC_PATHS.get(resource_type)
    if path is None:
        return None
    spec = _get(props, *path)
    return spec if isinstance(spec, Mapping) else None


def pod_containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(kind, container) for containers and init containers (ephemeral ones carry no resources)."""
    for kind in ("initContainers", "containers"):
        for c in _list(spec.get(kind)):
            if isinstance(c, Mapping):
                yield ("init container" if kind == "initContainers" else "container"), c


def _container_label(kind: str, c: Mapping[str, Any]) -> str:
    name = c.get("name")
    return f"{kind} {name!r}" if isinstance(name, str) and not is_unknown(name) else kind


def labels_of(resource_type: str, props: Mapping[str, Any]) -> dict[str, str]:
    """Docker `labels` ([{label, value}]) or Kubernetes object and pod template labels."""
    found: dict[str, str] = {}
    if resource_type.startswith("docker:"):
        for item in _list(props.get("labels")):
            if isinstance(item, Mapping) and isinstance(item.get("label"), str):
                found[item["label"]] = str(item.get("value", ""))
    else:
        for labels in (_get(props, "metadata", "labels"), _get(props, "spec", "template", "metadata", "labels")):
            if isinstance(labels, Mapping):
                found.update({str(k): str(v) for k, v in labels.items()})
    return found


def is_prod(resource_type: str, props: Mapping[str, Any], ctx: PolicyContext) -> bool:
    if ctx.environment == "prod":
        return True
    labels = labels_of(resource_type, props)
    return any(labels.get(key) == "prod" for key in ENVIRONMENT_LABELS)


# --- rule 1: images pinned ---------------------------------------------------------------------

# Tags that name a moving target rather than a release.
FLOATING_TAGS = frozenset({"latest", "stable", "edge", "nightly", "main", "master", "head"})
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_problem(ref: Any) -> Optional[str]:
    """Why an image reference is not pinned, or None when it is (exact tag or digest)."""
    if ref is None or ref == "":
        return "has no image"
    if not isinstance(ref, str):
        return f"image {ref!r} is not a string"
    if is_unknown(ref) or _IMAGE_ID.match(ref):
        return None  # an image id (Docker: the RemoteImage's, judged there)
    name, _, digest = ref.partition("@")
    if digest:
        return None if _DIGEST.match(digest) else f"image {ref!r} has a malformed digest"
    last = name.rsplit("/", 1)[-1]  # a registry's ":port" is before the last "/"
    if ":" not in last:
        return f"image {ref!r} has no tag (it means :latest): pin an exact version or a digest"
    tag = last.rsplit(":", 1)[1]
    if not tag:
        return f"image {ref!r} has an empty tag"
    if tag.lower() in FLOATING_TAGS:
        return f"image {ref!r} uses the floating tag {tag!r}: pin an exact version or a digest"
    return None


def check_images_pinned(resource_type: str, props: Mapping[str, Any], opts: Any = None,
                        ctx: PolicyContext = PolicyContext()) -> list[str]:
    """Docker RemoteImage `name`, Docker Container `image`, every Kubernetes pod container."""
    out: list[str] = []
    if resource_type == DOCKER_IMAGE:
        problem = image_problem(props.get("name"))
        if problem:
            out.append(f"RemoteImage {_resource_name(props)}: {problem}")
    elif resource_type == DOCKER_CONTAINER:
        # Absent: an output of a RemoteImage not resolved here (its image id); the RemoteImage's
        # own `name` is judged instead. The provider never creates a container without an image.
        if props.get("image") is None:
            return out
        problem = image_problem(props.get("image"))
        if problem:
            out.append(f"Container {_resource_name(props)}: {problem}")
    else:
        spec = pod_spec(resource_type, props)
        if spec is not None:
            for kind, c in pod_containers(spec):
                problem = image_problem(c.get("image"))
                if problem:
                    out.append(f"{_resource_name(props)} {_container_label(kind, c)}: {problem}")
            for c in _list(spec.get("ephemeralContainers")):
                if isinstance(c, Mapping):
                    problem = image_problem(c.get("image"))
                    if problem:
                        out.append(f"{_resource_name(props)} {_container_label('ephemeral container', c)}: {problem}")
    return out


# --- rule 2: memory limits ---------------------------------------------------------------------

_ZERO_QUANTITY = re.compile(r"^\s*0+(\.0*)?\s*[A-Za-z]*\s*$")


def check_memory_limits(resource_type: str, props: Mapping[str, Any], opts: Any = None,
                        ctx: PolicyContext = PolicyContext()) -> list[str]:
    """Docker Container `memory` (MB) > 0; every Kubernetes (init) container `resources.limits.memory`."""
    out: list[str] = []
    if resource_type == DOCKER_CONTAINER:
        memory = props.get("memory")
        if is_unknown(memory):
            return out
        if not isinstance(memory, (int, float)) or isinstance(memory, bool) or memory <= 0:
            out.append(f"Container {_resource_name(props)}: no memory limit (set `memory`, in MB)")
        return out
    spec = pod_spec(resource_type, props)
    if spec is None:
        return out
    for kind, c in pod_containers(spec):
        limit = _get(c, "resources", "limits", "memory")
        if is_unknown(limit):
            continue
        if limit is None or limit == "" or (isinstance(limit, (int, float)) and limit <= 0) or (
            isinstance(limit, str) and _ZERO_QUANTITY.match(limit)
        ):
            out.append(f"{_resource_name(props)} {_container_label(kind, c)}: no memory limit "
                       f"(set resources.limits.memory)")
    return out


# --- rule 3: prod data volumes protected -------------------------------------------------------


def _kept(opts: Any) -> bool:
    return bool(getattr(opts, "protect", False)) or bool(getattr(opts, "retain_on_delete", False))


def check_data_protected(resource_type: str, props: Mapping[str, Any], opts: Any = None,
                         ctx: PolicyContext = PolicyContext()) -> list[str]:
    """In prod: Docker Volumes and PVCs protected (or retained on delete); StatefulSet claim
    templates not deleted with the set or on scale-down (`persistentVolumeClaimRetentionPolicy`;
    absent means Retain, the Kubernetes default)."""
    if not is_prod(resource_type, props, ctx):
        return []
    out: list[str] = []
    if resource_type in (DOCKER_VOLUME, K8S_PVC) and not _kept(opts):
        kind = "Volume" if resource_type == DOCKER_VOLUME else "PersistentVolumeClaim"
        out.append(f"{kind} {_resource_name(props)}: a prod data volume must be protected "
                   f"(protect=True, or retain_on_delete) so no update can delete its data")
    if resource_type == K8S_STATEFULSET and _list(_get(props, "spec", "volumeClaimTemplates")):
        policy = _get(props, "spec", "persistentVolumeClaimRetentionPolicy") or {}
        for when in ("whenDeleted", "whenScaled"):
            value = _get(policy, when)
            if isinstance(value, str) and not is_unknown(value) and value != "Retain":
                out.append(f"StatefulSet {_resource_name(props)}: persistentVolumeClaimRetentionPolicy."
                           f"{when} is {value!r}; prod volume claims must be retained (Retain)")
    return out


# --- rule 4: no public exposure without opt-in -------------------------------------------------


def is_loopback(address: Any) -> bool:
    if not isinstance(address, str) or not address.strip():
        return False  # Docker's default is 0.0.0.0: every interface
    address = address.strip().strip("[]")
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# A documented per-workload exception to the hostNetwork rule (the stack sets it on node_exporter,
# which reads the node's own interfaces); hostPort stays refused either way.
HOST_NETWORK_ANNOTATION = "observability/host-network"


def _host_network_reason(resource_type: str, props: Mapping[str, Any]) -> bool:
    path = _POD_SPEC_PATHS.get(resource_type)
    if not path or path[-1] != "spec":
        return False
    annotations = _get(props, *path[:-1], "metadata", "annotations")
    reason = annotations.get(HOST_NETWORK_ANNOTATION) if isinstance(annotations, Mapping) else None
    return isinstance(reason, str) and bool(reason.strip())


def check_public_exposure(resource_type: str, props: Mapping[str, Any], opts: Any = None,
                          ctx: PolicyContext = PolicyContext()) -> list[str]:
    """Docker published ports on a non-loopback address (or host networking) need
    `docker.allowPublicPorts`; Kubernetes NodePort/LoadBalancer Services, external IPs, hostPort
    and hostNetwork need `kubernetes.allowPublicServices`."""
    out: list[str] = []
    name = _resource_name(props)
    if resource_type == DOCKER_CONTAINER and not ctx.allow_public_ports:
        for p in _list(props.get("ports")):
            if not isinstance(p, Mapping) or is_unknown(p.get("ip")):
                continue
            ip = p.get("ip")
            if not is_loopback(ip):
                where = ip if isinstance(ip, str) and ip else "0.0.0.0 (no ip set)"
                out.append(f"Container {name}: port {p.get('internal')} is published on {where}; "
                           f"bind it to 127.0.0.1 or opt in with observability:docker.allowPublicPorts")
        if props.get("networkMode") == "host":
            out.append(f"Container {name}: host networking exposes every port; opt in with "
                       f"observability:docker.allowPublicPorts")
    if resource_type.startswith("kubernetes:") and not ctx.allow_public_services:
        if resource_type == K8S_SERVICE:
            kind = _get(props, "spec", "type")
            if kind in ("LoadBalancer", "NodePort"):
                out.append(f"Service {name}: type {kind} exposes the stack outside the cluster; opt in "
                           f"with observability:kubernetes.allowPublicServices")
            if _list(_get(props, "spec", "externalIPs")):
                out.append(f"Service {name}: externalIPs expose the stack outside the cluster; opt in "
                           f"with observability:kubernetes.allowPublicServices")
        spec = pod_spec(resource_type, props)
        if spec is not None:
            if spec.get("hostNetwork") is True and not _host_network_reason(resource_type, props):
                out.append(f"{name}: hostNetwork exposes every port on the node; opt in with "
                           f"observability:kubernetes.allowPublicServices (or, for a host exporter, record "
                           f"why on the pod template as the annotation {HOST_NETWORK_ANNOTATION})")
            for kind, c in pod_containers(spec):
                for p in _list(c.get("ports")):
                    if isinstance(p, Mapping) and isinstance(p.get("hostPort"), int) and p["hostPort"] > 0:
                        out.append(f"{name} {_container_label(kind, c)}: hostPort {p['hostPort']} is "
                                   f"reachable on the node's address; opt in with "
                                   f"observability:kubernetes.allowPublicServices")
    return out


# --- rule 5: no credentials in ConfigMaps ------------------------------------------------------

# Keys whose literal value is a credential (matched on the key's last word, case-insensitive).
_CREDENTIAL_KEY = re.compile(
    r"(?:^|[_.\-])(password|passwd|secret|client_secret|secret_key|secret_access_key|token|"
    r"access_token|bearer_token|auth_token|api_key|apikey|routing_key|service_key|"
    r"integration_key|api_url|webhook_url|private_key|credentials|"
    # Object storage (issue 15): Azure `account_key` / Tempo `storage_account_key`.
    r"account_key)$",
    re.IGNORECASE,
)
# `key: value`, `key = value`, `"key": "value"` on one line (YAML, INI, JSON, flags).
_KEY_VALUE = re.compile(
    r"""(?P<key>["']?[A-Za-z_][A-Za-z0-9_.\-]*["']?)\s*[:=]\s*(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s,#"'{\[][^\n]*)"""
)
# Values that are references, not credentials: environment or file expansion, empty, booleans.
_REFERENCE_VALUE = re.compile(
    r"""^(?:\$\{[^}]*\}|\$__(?:file|env|vault)\{[^}]*\}|\$[A-Z_][A-Z0-9_]*|%\([^)]*\)s|"""
    r"""\{\{.*\}\}|<[^>]*>|null|~|true|false|none|yes|no|\[\]|\{\}|""|'')$""",
    re.IGNORECASE,
)
# Keys that share a credential's name but take one word from a fixed set: the collector's
# `loadbalancing` exporter `routing_key` (contrib loadbalancingexporter README: service, traceID,
# metric, resource, streamID, attributes) is not PagerDuty's 32-character integration key.
_ENUMERATED = {"routing_key": frozenset({"service", "traceid", "metric", "resource", "streamid", "attributes"})}
# Credentials recognisable by their shape, wherever they appear.
CREDENTIAL_PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{8,}")),
    ("a Slack token", re.compile(r"\bxox[abprse]-[A-Za-z0-9-]{10,}")),
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    ("a bearer token", re.compile(r"\bBearer[ \t]+(?!\$)[A-Za-z0-9\-._~+/]{16,}=*", re.IGNORECASE)),
    ("credentials in a URL", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@${}]+:(?!\$)[^\s/@{}]+@[^\s/]")),
    ("a PagerDuty integration key", re.compile(
        r"""(?:routing_key|service_key|integration_key)["']?\s*[:=]\s*["']?[A-Za-z0-9]{32}\b""", re.IGNORECASE)),
)


def _snake(key: str) -> str:
    """`basicAuthPassword` -> `basic_auth_password`, so camelCase keys match too."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def _unquote(text: str) -> str:
    text = text.strip()
    if text[:1] not in ("\"", "'"):
        text = re.split(r"\s#", text, maxsplit=1)[0].rstrip(" ,")  # trailing comment, JSON comma
        while text.endswith(("}", "]")) and text.count(text[-1]) > text.count("{" if text[-1] == "}" else "["):
            text = text[:-1].rstrip(" ,")  # the closing brace of an inline JSON/YAML object
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


def credential_findings(text: str) -> list[str]:
    """What looks like a credential in a config file's text (never the value itself)."""
    found: list[str] = []
    for label, pattern in CREDENTIAL_PATTERNS:
        if pattern.search(text):
            found.append(label)
    for line in text.splitlines():
        for m in _KEY_VALUE.finditer(line):
            key = _unquote(m.group("key"))
            value = _unquote(m.group("value"))
            if not _CREDENTIAL_KEY.search(_snake(key)) or not value:
                continue
            if _REFERENCE_VALUE.match(value):
                continue
            if value.lower() in _ENUMERATED.get(_snake(key), ()):
                continue
            found.append(f"a literal value for `{key}` (use `{key}_file` or a Secret)")
    return sorted(set(found))


def _configmap_texts(props: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    data = props.get("data")
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(value, str) and not is_unknown(value):
                yield str(key), value
    binary = props.get("binaryData")
    if isinstance(binary, Mapping):
        for key, value in binary.items():
            if isinstance(value, str) and not is_unknown(value):
                try:
                    yield str(key), base64.b64decode(value, validate=False).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    continue


def check_configmap_credentials(resource_type: str, props: Mapping[str, Any], opts: Any = None,
                                ctx: PolicyContext = PolicyContext()) -> list[str]:
    """ConfigMaps are readable by anyone who can read the namespace: credentials go in Secrets
    and are referenced by `*_file` settings."""
    if resource_type != K8S_CONFIGMAP:
        return []
    out = []
    for key, text in _configmap_texts(props):
        for finding in credential_findings(text):
            out.append(f"ConfigMap {_resource_name(props)} key {key!r}: contains {finding}")
    return out


# --- rule 6: Grafana anonymous access off in prod ---------------------------------------------

_TRUE = frozenset({"true", "1", "t", "yes", "y", "on"})
_ANON_INI = re.compile(r"^\s*\[auth\.anonymous\]\s*$(?P<body>(?:\n(?!\s*\[).*)*)", re.MULTILINE)
_ENABLED_LINE = re.compile(r"^\s*enabled\s*=\s*(?P<v>\S+)", re.MULTILINE)


def _env_pairs(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, name, value) for every environment variable of a container."""
    if resource_type == DOCKER_CONTAINER:
        for item in _list(props.get("envs")):
            if isinstance(item, str) and "=" in item:
                k, _, v = item.partition("=")
                yield f"Container {_resource_name(props)}", k, v
        return
    spec = pod_spec(resource_type, props)
    if spec is None:
        return
    for kind, c in pod_containers(spec):
        for e in _list(c.get("env")):
            if isinstance(e, Mapping) and isinstance(e.get("name"), str) and isinstance(e.get("value"), str):
                yield f"{_resource_name(props)} {_container_label(kind, c)}", e["name"], e["value"]


def check_grafana_anonymous(resource_type: str, props: Mapping[str, Any], opts: Any = None,
                            ctx: PolicyContext = PolicyContext()) -> list[str]:
    """In prod: no GF_AUTH_ANONYMOUS_ENABLED=true, no `[auth.anonymous] enabled = true` in a ConfigMap."""
    if not is_prod(resource_type, props, ctx):
        return []
    out = []
    for where, key, value in _env_pairs(resource_type, props):
        if key == "GF_AUTH_ANONYMOUS_ENABLED" and value.strip().lower() in _TRUE:
            out.append(f"{where}: GF_AUTH_ANONYMOUS_ENABLED={value} gives anyone Grafana access in prod")
    if resource_type == K8S_CONFIGMAP:
        for key, text in _configmap_texts(props):
            for section in _ANON_INI.finditer(text):
                for m in _ENABLED_LINE.finditer(section.group("body")):
                    if m.group("v").lower() in _TRUE:
                        out.append(f"ConfigMap {_resource_name(props)} key {key!r}: [auth.anonymous] "
                                   f"enabled = {m.group('v')} in prod")
    return out


# --- rule 7: replicas spread and roll one at a time --------------------------------------------

# Node-level topology keys: replicas spread over these survive the loss of one node (or zone).
_SPREAD_KEYS = frozenset({"kubernetes.io/hostname", "topology.kubernetes.io/zone"})


def _spreads(spec: Mapping[str, Any]) -> bool:
    for c in _list(spec.get("topologySpreadConstraints")):
        if isinstance(c, Mapping) and c.get("topologyKey") in _SPREAD_KEYS:
            return True
    anti = _get(spec, "affinity", "podAntiAffinity") or {}
    terms = _list(anti.get("requiredDuringSchedulingIgnoredDuringExecution")) + [
        t.get("podAffinityTerm") for t in _list(anti.get("preferredDuringSchedulingIgnoredDuringExecution"))
        if isinstance(t, Mapping)]
    return any(isinstance(t, Mapping) and t.get("topologyKey") in _SPREAD_KEYS for t in terms)


def check_replicas_spread(resource_type: str, props: Mapping[str, Any], opts: Any = None,
                          ctx: PolicyContext = PolicyContext()) -> list[str]:
    """A Deployment or StatefulSet with more than one replica spreads them over nodes or zones
    (topologySpreadConstraints or podAntiAffinity): otherwise the scheduler may put every replica
    on one node, and losing it loses them all. Its rollout takes down at most one at a time."""
    if resource_type not in (K8S_DEPLOYMENT, K8S_STATEFULSET):
        return []
    spec = props.get("spec") or {}
    count = spec.get("replicas")
    if not isinstance(count, (int, float)) or isinstance(count, bool) or count <= 1:
        return []
    out = []
    pod = pod_spec(resource_type, props) or {}
    if not _spreads(pod):
        out.append(f"{_resource_name(props)}: {int(count)} replicas with no topologySpreadConstraints or "
                   f"podAntiAffinity on kubernetes.io/hostname or topology.kubernetes.io/zone (one node "
                   f"can hold them all)")
    if resource_type == K8S_DEPLOYMENT:
        unavailable = _get(spec, "strategy", "rollingUpdate", "maxUnavailable")
        if _get(spec, "strategy", "type") == "Recreate":
            out.append(f"{_resource_name(props)}: strategy Recreate takes every replica down at once")
        elif isinstance(unavailable, int) and not isinstance(unavailable, bool) and unavailable > 1:
            out.append(f"{_resource_name(props)}: rollingUpdate.maxUnavailable {unavailable} takes more "
                       f"than one replica down at once")
    return out


# --- the rule table ----------------------------------------------------------------------------

Validator = Callable[[str, Mapping[str, Any], Any, PolicyContext], list]


@dataclass(frozen=True)
class Rule:
    name: str  # the policy name (PulumiPolicy config keys, --policy-pack-config)
    description: str
    check: Validator
    # Policy config keys this rule reads (resolve_context); the pack declares a schema for them.
    config: tuple[str, ...] = ()


RULES: tuple[Rule, ...] = (
    Rule("images-pinned",
         "Images are pinned: an exact tag or a digest, never latest or untagged.",
         check_images_pinned),
    Rule("memory-limits",
         "Every container has a memory limit (Docker `memory`, Kubernetes resources.limits.memory).",
         check_memory_limits),
    Rule("prod-data-protected",
         "Prod data volumes are protected or retained (Docker Volume, PVC, StatefulSet claim templates).",
         check_data_protected, ("environment",)),
    Rule("no-public-exposure",
         "No LoadBalancer/NodePort Service or non-loopback published port without the stack's explicit opt-in.",
         check_public_exposure, ("allowPublicPorts", "allowPublicServices")),
    Rule("no-configmap-credentials",
         "No credential-looking data in a ConfigMap: keep credentials in Secrets and use *_file settings.",
         check_configmap_credentials),
    Rule("grafana-anonymous-off-in-prod",
         "Grafana anonymous access is off in prod.",
         check_grafana_anonymous, ("environment",)),
    Rule("replicas-spread",
         "A workload with several replicas spreads them over nodes or zones and rolls out one at a time.",
         check_replicas_spread),
)


def check_all(resource_type: str, props: Mapping[str, Any], opts: Any = None,
              ctx: PolicyContext = PolicyContext(),
              rules: Iterable[Rule] = RULES) -> list[tuple[str, str]]:
    """(rule name, message) for every violation of every rule by one resource."""
    return [(rule.name, msg) for rule in rules for msg in rule.check(resource_type, props, opts, ctx)]
