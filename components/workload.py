"""Target-neutral workload specs: what a tool needs, not how a target provides it.

A tool module describes its container once (image, args, env, ports, config files, secret
files, data volume, resources, user, health check); `components/targets/docker.py` and
`components/targets/kubernetes.py` turn the same `Workload` into Docker or Kubernetes resources.
The idea follows cdk8s-plus (`Probe.fromHttpGet` rendered per target by `_toKube()`).

Nothing here imports a provider SDK. Secret file content is a Pulumi secret Output; everything
else is plain data, so tests can inspect a workload without running Pulumi.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from config.durations import parse_bytes, parse_cpu
from config.model import Component

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


@dataclass(frozen=True)
class HostLogs:
    """Read-only host directories a log shipper needs (Docker json logs / Kubernetes pod logs)."""

    paths: tuple[str, ...]


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

    @property
    def memory_limit_bytes(self) -> int:
        return parse_bytes(self.memory_limit)

    @property
    def memory_request_bytes(self) -> int:
        return parse_bytes(self.memory_request)

    @property
    def cpu_limit_cores(self) -> float:
        return parse_cpu(self.cpu_limit)

    @property
    def cpu_request_cores(self) -> float:
        return parse_cpu(self.cpu_request)


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
    env: dict[str, str] = field(default_factory=dict)  # never secrets: use secret_files
    config_files: tuple[ConfigFile, ...] = ()
    secret_files: tuple[SecretFile, ...] = ()
    data: Optional[DataVolume] = None
    scratch: tuple[str, ...] = ()  # writable paths when the root filesystem is read-only
    read_only_root: bool = True
    host_logs: Optional[HostLogs] = None
    # Other workloads this one sends traffic to (Kubernetes NetworkPolicy egress).
    talks_to: tuple[str, ...] = ()
    # TCP ports it sends to outside the stack, at addresses only known at run time (receivers,
    # team scrape targets): Kubernetes NetworkPolicy egress to any address on these ports.
    egress_ports: tuple[int, ...] = ()
    # Prometheus' pod discovery: a ServiceAccount token and get/list/watch on pods.
    discovers_pods: bool = False
    # Pod annotations/labels on Kubernetes; container labels on Docker.
    labels: dict[str, str] = field(default_factory=dict)
    # One instance per node (Kubernetes DaemonSet) instead of one for the stack.
    per_node: bool = False
    # Why this workload runs as uid 0 (only the log agent, to read root-owned host log files);
    # it still gets a read-only root filesystem and only the DAC_READ_SEARCH capability.
    root_reason: Optional[str] = None
    # Extra Linux capabilities beyond none (all others are dropped).
    capabilities: tuple[str, ...] = ()

    def port(self, name: str) -> Port:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no port {name!r}")


def tool_workload(settings: Any, tool: str, *, data_dir: Optional[str] = None, **fields: Any) -> Workload:
    """A tool's main workload: its service name, the pinned image (with the registry mirror) and
    the resources `components.sizing.resources` resolves (explicit values, else derived from
    ingest, else the tool's base), plus a data volume at `data_dir` sized by
    `components.sizing`. Everything tool-specific comes in as `fields`."""
    from components import sizing

    component = getattr(settings.components, tool)
    data = DataVolume(data_dir, sizing.volume_size(settings, tool)) if data_dir else None
    return Workload(name=tool, image=image(tool, component, settings.registry_mirror),
                    resources=sizing.resources(settings, tool), data=data, **fields)
