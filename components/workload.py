"""Target-neutral workload specs: what a tool needs, not how a target provides it.

A tool module describes its container once (image, args, env, ports, config files, secret
files, data volume, resources, user, health check); `components/targets/docker.py` and
`components/targets/kubernetes.py` turn the same `Workload` into Docker or Kubernetes resources.
The idea follows cdk8s-plus (`Probe.fromHttpGet` rendered per target by `_toKube()`).

Nothing here imports a provider SDK. Secret file content is a Pulumi secret Output; everything
else is plain data, so tests can inspect a workload without running Pulumi.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from ..config.durations import parse_bytes, parse_cpu
from ..config.model import Component

_VERSIONS = json.loads((Path(__file__).parent / "versions.json").read_text())


def image(tool: str, component: Component, registry_mirror: Optional[str]) -> str:
    """`<mirror>/<repository>:<tag>` from the pinned table; `components.<tool>.version` overrides the tag."""
    entry = _VERSIONS["images"][tool]
    ref = f"{entry['repository']}:{component.version or entry['tag']}"
    return f"{registry_mirror.rstrip('/')}/{ref}" if registry_mirror else ref


def pinned_versions() -> dict[str, Any]:
    return _VERSIONS


# libyaml's emitter when present: the same YAML as the pure-Python SafeDumper, ~10x faster
# (rendering the configs is most of the program's own time; see benchmarks/).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(data: Any) -> str:
    """Every rendered YAML file goes through here: safe types only, keys in the order built,
    long PromQL kept on one line."""
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, width=200, allow_unicode=True)


def flags(values: dict[str, Any], prefix: str = "--") -> list[str]:
    """Command-line flags from a dict (STYLE 3): `{"a.b": "x", "c": True}` -> `--a.b=x --c`."""
    out = []
    for name, value in values.items():
        if value is True:
            out.append(f"{prefix}{name}")
        elif isinstance(value, (list, tuple)):
            out.extend(f"{prefix}{name}={item}" for item in value)
        elif value is not None and value is not False:
            out.append(f"{prefix}{name}={value}")
    return out


@dataclass(frozen=True)
class Endpoint:
    """One thing a tool serves, as another tool reaches it inside the stack's network.

    Tools declare the endpoints they serve (`serves()` in each tool module); the wiring module
    (`components/wiring.py`) hands each tool the endpoints it consumes. A tool builds every URL
    in its config from these objects *and* declares the same objects as the traffic it sends
    (`Workload.talks_to`), so a NetworkPolicy flow cannot drift from the config that makes it.
    """

    service: str  # DNS name on both targets (Docker network alias, Kubernetes Service)
    port: int
    scheme: str = "http"  # "http", or "grpc" for OTLP/gRPC (addressed as host:port)
    path: str = ""
    # The tool's own metrics endpoint: Prometheus scrapes it as the job named after the tool.
    scrape: bool = False
    # Further workloads of the tool serving the same endpoint when it runs in tiers (the
    # collector's sampling tier): scraped under the same job when the tool runs several replicas.
    tiers: tuple[str, ...] = ()
    # Served by one instance per node on the host's network (a per-node exporter): Prometheus
    # scrapes every node's instance where it can discover nodes, else the service address.
    per_node: bool = False

    @property
    def address(self) -> str:
        return f"{self.service}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}{self.path}"

    def at(self, path: str) -> "Endpoint":
        """The same service and port at another path (e.g. Mimir's `/api/v1/push`)."""
        return dataclasses.replace(self, path=path)


@dataclass(frozen=True)
class Port:
    name: str  # IANA-style name, <= 15 chars (Kubernetes port names)
    port: int
    protocol: str = "TCP"
    # User-facing: published on the Docker bind address; part of the Kubernetes Service either way.
    publish: bool = False
    # Ingest from outside the stack (apps sending telemetry): allowed across namespaces on Kubernetes.
    ingest: bool = False


@dataclass(frozen=True)
class HealthCheck:
    """One health check, two renderings.

    `path`/`port` is the HTTP readiness endpoint (a Kubernetes httpGet probe needs nothing inside
    the image). `docker_test` is the command Docker runs *inside* the container: only what the
    image ships (busybox wget, curl); None when the image has no client at all (distroless or
    scratch images), in which case Docker gets no healthcheck and Prometheus' `up` (ServiceDown,
    StackComponentDown alerts) watches the tool instead.
    """

    path: str
    port: int
    docker_test: Optional[tuple[str, ...]] = None
    initial_delay_seconds: int = 10
    period_seconds: int = 15
    timeout_seconds: int = 5
    failure_threshold: int = 5

    @staticmethod
    def http(path: str, port: int, client: Optional[str] = None, **kwargs: Any) -> "HealthCheck":
        """`client` is the in-image HTTP client: "wget", "curl", an absolute wget path, or None."""
        url = f"http://127.0.0.1:{port}{path}"
        test: Optional[tuple[str, ...]] = None
        if client == "curl":
            test = ("CMD", "curl", "-fsS", "-o", "/dev/null", url)
        elif client:
            test = ("CMD", client, "-q", "-O", "/dev/null", url)
        return HealthCheck(path=path, port=port, docker_test=test, **kwargs)


@dataclass(frozen=True)
class ConfigFile:
    path: str  # absolute path in the container
    content: str

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path)


@dataclass(frozen=True)
class SecretFile:
    path: str  # absolute path in the container
    content: Any  # a pulumi.Output[str] marked secret; never a plain string

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path)


@dataclass(frozen=True)
class DataVolume:
    path: str  # mount path of the tool's data dir
    size: str  # Kubernetes quantity, from `components.sizing`
    # True when `size` is derived from retention x ingest (not pinned by
    # `components.<tool>.storage.size`): the Kubernetes backend warns how such a claim grows.
    derived: bool = True
    # The key a user pins the size with, for that warning (the backend knows no tool names).
    size_key: str = ""


@dataclass(frozen=True)
class HostLogs:
    """Read-only host directories a log shipper needs (Docker json logs / Kubernetes pod logs)."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class HostMount:
    """A host directory mounted read-only (a host exporter reads /proc, /sys, / through these).
    Host-to-container mount propagation, so filesystems mounted later are seen too (what
    node_exporter's README asks for: `-v /:/host:ro,rslave`)."""

    host_path: str
    path: str  # in the container


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str

    @staticmethod
    def of(component: Component) -> "Resources":
        r = component.resources
        return Resources(r.requests.cpu, r.requests.memory, r.limits.cpu, r.limits.memory)

    # Parsed amounts (bytes, cores): footprints and the Docker backend's MB / decimal CPUs.
    memory_limit_bytes = property(lambda self: parse_bytes(self.memory_limit))
    memory_request_bytes = property(lambda self: parse_bytes(self.memory_request))
    cpu_limit_cores = property(lambda self: parse_cpu(self.cpu_limit))
    cpu_request_cores = property(lambda self: parse_cpu(self.cpu_request))


@dataclass(frozen=True)
class Workload:
    name: str  # service name: the DNS name other tools use on both targets
    image: str
    uid: int
    gid: int
    ports: tuple[Port, ...]
    health: HealthCheck
    resources: Resources
    args: tuple[str, ...] = ()
    command: Optional[tuple[str, ...]] = None  # entrypoint override; None keeps the image's
    env: dict[str, str] = field(default_factory=dict)  # never secrets: use secret_files or secret_env
    config_files: tuple[ConfigFile, ...] = ()
    secret_files: tuple[SecretFile, ...] = ()
    data: Optional[DataVolume] = None
    scratch: tuple[str, ...] = ()  # writable paths when the root filesystem is read-only
    read_only_root: bool = True
    host_logs: Optional[HostLogs] = None
    # Endpoints of other workloads this one sends traffic to: exactly the endpoints its config
    # addresses (Kubernetes NetworkPolicy egress, and ingress on the peer, on that port only).
    talks_to: tuple[Endpoint, ...] = ()
    # TCP ports it sends to outside the stack, at addresses only known at run time (receivers,
    # team scrape targets): Kubernetes NetworkPolicy egress to any address on these ports.
    egress_ports: tuple[int, ...] = ()
    # Prometheus' pod discovery: a ServiceAccount token and get/list/watch on pods.
    discovers_pods: bool = False
    # The stack's web UI: the one workload a Kubernetes Ingress may route to.
    web_ui: bool = False
    # A per-node agent that reads the host's container logs: the backend keeps its own log
    # output out of what it reads (Platform.container_logs).
    reads_container_logs: bool = False
    # Pod annotations/labels on Kubernetes; container labels on Docker.
    labels: dict[str, str] = field(default_factory=dict)
    # One instance per node (Kubernetes DaemonSet) instead of one for the stack.
    per_node: bool = False
    # Why this workload runs as uid 0 (only the log agent, to read root-owned host log files);
    # it still gets a read-only root filesystem and only the DAC_READ_SEARCH capability.
    root_reason: Optional[str] = None
    # Extra Linux capabilities beyond none (all others are dropped).
    capabilities: tuple[str, ...] = ()
    # Instances (Kubernetes; the Docker target runs one). More than one gets a PodDisruptionBudget,
    # topology spread and one-at-a-time rollouts from the backend.
    replicas: int = 1
    # Never two instances, not even during a rollout (Kubernetes: the `Recreate` strategy, the old
    # pod stops before the new one starts): a watcher whose every instance would ship the same
    # data (the events collector). The price is a gap of one restart instead of duplicates.
    singleton: bool = False
    # The replicas are each addressed (scraping every replica, alerting every Alertmanager, load
    # balancing by trace ID) or find each other (gossip): a headless Service `peers_service(name)`
    # with one A record per pod. "ready": ready pods only (load-balancing targets); "all": ready
    # or not (gossip peers must find each other before they are ready); "": none.
    headless: str = ""
    # Env vars that receive the pod's own name / IP (Kubernetes downward API): what tells replicas
    # apart (Prometheus' `__replica__` external label) and what a gossip peer advertises. Only set
    # on multi-replica workloads, which only the Kubernetes target runs.
    pod_name_env: Optional[str] = None
    pod_ip_env: Optional[str] = None
    # Seconds a new pod must stay ready before the rollout moves on to the next one (time for a
    # gossip peer to sync its state from the others).
    min_ready_seconds: int = 0
    # Environment variables whose values are secrets (pulumi Output[str] marked secret), for tools
    # that read a credential only from their environment (object storage keys expanded into a
    # config by `-config.expand-env`). Kubernetes: a Secret and `secretKeyRef`; never plain `env`.
    secret_env: dict[str, Any] = field(default_factory=dict)
    # Annotations on the workload's identity (Kubernetes ServiceAccount), e.g. for workload
    # identity (`eks.amazonaws.com/role-arn`).
    service_account_annotations: dict[str, str] = field(default_factory=dict)
    # Labels on the pod (Kubernetes) besides the stack's own, for what selects pods by label: Azure
    # workload identity's webhook mutates only pods labelled `azure.workload.identity/use: "true"`.
    # Never part of a selector, so adding one rolls the pods and replaces nothing.
    pod_labels: dict[str, str] = field(default_factory=dict)
    # Host directories mounted read-only (HostMount), and the host's PID / network namespaces:
    # what a host exporter needs (node_exporter's README and kube-prometheus' DaemonSet). A
    # workload on the host network has no Docker network alias: the Docker backend keeps it in the
    # stack network and shares only the PID namespace (see components/targets/docker.py).
    host_mounts: tuple[HostMount, ...] = ()
    host_pid: bool = False
    # Why it needs the host's network namespace (None: it does not). The Kubernetes backend
    # records the reason on the pod (`observability/host-network`), which the policy pack reads
    # as the documented exception to "hostNetwork exposes every port on the node".
    host_network: Optional[str] = None
    # Kubernetes API access it needs cluster-wide, as RBAC PolicyRule dicts (apiGroups,
    # resources, verbs, or nonResourceURLs): the backend grants exactly these (plus pod discovery
    # when `discovers_pods`) to its ServiceAccount and mounts the token. Ignored on Docker.
    cluster_rules: tuple[dict, ...] = ()
    # Runs on every node, control-plane nodes included (an exporter of the node itself).
    tolerate_all_nodes: bool = False

    @property
    def uses_kubernetes_api(self) -> bool:
        return self.discovers_pods or bool(self.cluster_rules)

    def port(self, name: str) -> Port:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no port {name!r}")


# dskit's memberlist gossip (Loki, Mimir, Tempo, Pyroscope): the default `memberlist.bind_port`
# (dskit kv/memberlist/memberlist_client.go, 7946). dskit gossips over its own TCP transport
# (kv/memberlist/tcp_transport.go: packets and streams both over TCP), so no UDP port.
MEMBERLIST_PORT = 7946


def memberlist(peers: str, cluster_label: Optional[str] = None) -> dict:
    """The `memberlist` block of a dskit tool whose replicas find each other through the headless
    Service `peers` (`dns+` names are resolved, and re-resolved, by dskit's DNS provider: the
    same join_members form Grafana's Helm charts use).

    `cluster_label`: dskit drops gossip whose label differs (Mimir docs "Configure hash rings",
    "Cluster label verification"): a pod IP reused by another tool's or another stack's gossip
    member cannot merge the two clusters. Set it from the first deploy: adding it to a running
    cluster needs upstream's three-step migration."""
    block = {"join_members": [f"dns+{peers}:{MEMBERLIST_PORT}"], "bind_port": MEMBERLIST_PORT}
    if cluster_label:
        block["cluster_label"] = cluster_label
    return block


# The env var holding a replica's own pod IP (Kubernetes downward API, Workload.pod_ip_env). A
# replicated dskit tool advertises it in its rings and to memberlist, written `${POD_IP}` in its
# config (`advertise_addr()`); the tool expands it at startup (`-config.expand-env=true`, added
# by SingleBinary when the config references it).
POD_IP_ENV = "POD_IP"


def advertise_addr() -> str:
    """`${POD_IP}` for a replicated tool's config (never 127.0.0.1: the other replicas dial it)."""
    from .objectstorage import ref  # objectstorage imports this module: imported when called

    return ref(POD_IP_ENV)


def peers_service(name: str) -> str:
    """The headless Service that resolves every replica of workload `name` (one A record per pod)."""
    return f"{name}-peers"


def tool_workload(settings: Any, tool: str, *, service: Optional[str] = None,
                  data_dir: Optional[str] = None, **fields: Any) -> Workload:
    """A tool's main workload: its service name, the pinned image (with the registry mirror) and
    the resources `components.sizing.resources` resolves (explicit values, else derived from
    ingest, else the tool's base), plus a data volume at `data_dir` sized by
    `components.sizing`. Everything tool-specific comes in as `fields`."""
    from . import sizing  # sizing builds this module's Resources: imported when called, not at load

    component = getattr(settings.components, tool)
    data = None
    if data_dir:
        data = DataVolume(data_dir, sizing.volume_size(settings, tool), derived=component.storage.size is None,
                          size_key=f"components.{tool}.storage.size")
    fields.setdefault("replicas", settings.replicas(tool))
    # Every multi-replica tool is resolvable replica by replica (components/wiring.py `peers`):
    # Prometheus scrapes each one.
    if fields["replicas"] > 1:
        fields.setdefault("headless", "ready")
    return Workload(name=service or tool, image=image(tool, component, settings.registry_mirror),
                    resources=sizing.resources(settings, tool), data=data, **fields)


@dataclass(frozen=True)
class SingleBinary:
    """The shape Loki, Tempo, Mimir and Pyroscope share (Grafana's dskit-based single binaries):
    uid = gid, one YAML file given by `-config.file`, readiness at `/ready` on the HTTP port
    (user-facing; `ingest` when apps push to it), optional extra ports, then the gRPC port, and
    scratch paths (/tmp) on a read-only root. `client` is the image's HTTP client for the Docker
    healthcheck (None: distroless, Prometheus' `up` watches it instead)."""

    tool: str
    uid: int
    data_dir: str
    config_path: str
    rendered: str  # path of the config in `make render`'s output
    http_port: int
    grpc_port: Optional[int] = None
    ingest: bool = True
    client: Optional[str] = None
    scratch: tuple[str, ...] = ("/tmp",)

    def render(self, config: dict) -> dict[str, str]:
        return {self.rendered: to_yaml(config)}

    def functions(self, config: Any) -> tuple[Any, Any]:
        """A tool module's `render` and `workloads` (components/registry.py) for a tool whose only
        input is its config document, `config(settings, links) -> dict`."""

        def render(settings: Any, links: Any, platform: Any) -> dict[str, str]:
            return self.render(config(settings, links))

        def workloads(settings: Any, links: Any, platform: Any) -> tuple[Workload, ...]:
            return self.workloads(settings, links, config(settings, links))

        return render, workloads

    def workloads(self, settings: Any, links: Any, config: dict, extra_ports: tuple[Port, ...] = (),
                  **fields: Any) -> tuple[Workload, ...]:
        ports = (Port("http", self.http_port, publish=True, ingest=self.ingest), *extra_ports)
        if self.grpc_port:
            ports += (Port("grpc", self.grpc_port),)
        # Object storage (issue 15): credentials as secret env/files, the expand-env flag, egress
        # to the store, workload-identity annotations; nothing when the data stays on the claim.
        from .objectstorage import bucket_for, workload_fields

        storage = workload_fields(bucket_for(settings, self.tool))
        if storage:
            fields["egress_ports"] = tuple(fields.get("egress_ports", ())) + storage.pop("egress_ports")
        extra_args = storage.pop("extra_args", ())
        service = links.service(self.tool)
        if links.peers.get(self.tool):
            # Replicas (issue 15): rings gossip over memberlist through the headless Service
            # (ready or not: a starting replica must join the ring before it can become ready),
            # and replicas call each other over gRPC (distributor -> ingester, querier ->
            # ingester, query-frontend <-> querier). Both flows are declared like any other, so
            # the NetworkPolicy admits exactly these ports between the tool's own pods.
            ports += (Port("memberlist", MEMBERLIST_PORT),)
            peer_flows: tuple[Endpoint, ...] = (Endpoint(service, MEMBERLIST_PORT, scheme="tcp"),)
            if self.grpc_port:
                peer_flows += (Endpoint(service, self.grpc_port, scheme="grpc"),)
            fields["talks_to"] = tuple(fields.get("talks_to", ())) + peer_flows
            fields["headless"] = "all"
            fields.setdefault("min_ready_seconds", 30)
            if advertise_addr() in to_yaml(config):
                # The config advertises the pod's IP (`advertise_addr()`): the downward API sets
                # it, the tool expands it (the flag may already be there for storage credentials).
                fields.setdefault("pod_ip_env", POD_IP_ENV)
                from .objectstorage import EXPAND_ENV_FLAG

                if EXPAND_ENV_FLAG not in extra_args:
                    extra_args += (EXPAND_ENV_FLAG,)
        extra_secret_files = storage.pop("extra_secret_files", ())
        return (tool_workload(
            settings, self.tool, service=service, data_dir=self.data_dir,
            uid=self.uid, gid=self.uid,
            args=tuple(flags({"config.file": self.config_path}, prefix="-")) + extra_args,
            ports=ports,
            health=HealthCheck.http("/ready", self.http_port, client=self.client),
            config_files=(ConfigFile(self.config_path, to_yaml(config)),),
            scratch=self.scratch,
            **({"secret_files": extra_secret_files} if extra_secret_files else {}),
            **storage,
            **fields,
        ),)
