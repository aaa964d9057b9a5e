"""cAdvisor: per-container CPU, memory, network and filesystem metrics on Docker.

On Kubernetes the kubelet serves the same metrics at `/metrics/cadvisor` (components/cluster.py),
so this tool runs on Docker only (config: `components.cadvisor`, `HostAgent.TARGETS`).

Upstream references: cAdvisor v0.52.1 README.md's `docker run` line (kept verbatim in
reference/upstream-run/cadvisor-v0.52.1.txt: `/` at `/rootfs`, `/var/run`, `/sys`,
`/var/lib/docker`, `/dev/disk` read-only, `--privileged`, `--device=/dev/kmsg`) and
`docs/runtime_options.md` (`--docker_only`, `--housekeeping_interval`, `--disable_metrics`,
`--store_container_labels`). Here it runs as root (the Docker state it reads is root-only) with
every capability dropped but DAC_READ_SEARCH, no new privileges and read-only mounts, without
`/dev/kmsg` (cAdvisor then disables OOM events, which nothing here uses) and without `/dev/disk`
(only a UUID-to-device map, empty when absent; binding a missing host path would fail the
container on hosts without udev); tests/test_cadvisor_spec.py compares it with the reference. It
still reads the Docker socket under `/var/run` to name containers: whoever controls this
container controls the Docker daemon (README).
"""

from __future__ import annotations

from .base import ToolComponent
from .monitoring import WINDOW, dashboard, grid, record, rule_file, variable
from .platform import Platform
from .wiring import Links
from .workload import Endpoint, HealthCheck, HostMount, Port, Workload, flags, tool_workload
from ..config.model import Settings, job_name

TOOL = "cadvisor"
JOB = job_name(TOOL)
PORT = 8080
HOST_MOUNTS = (
    HostMount("/", "/rootfs"),
    HostMount("/var/run", "/var/run"),
    HostMount("/sys", "/sys"),
    HostMount("/var/lib/docker", "/var/lib/docker"),
)
# Metric families the Containers dashboard does not use: per-CPU, scheduler, TCP/UDP tables,
# NUMA and perf series multiply the series count per container (runtime_options.md).
DISABLED_METRICS = ("advtcp", "cpu_topology", "cpuset", "hugetlb", "memory_numa", "percpu", "perf_event",
                    "process", "referenced_memory", "resctrl", "sched", "tcp", "udp")


def serves(service: str) -> dict[str, Endpoint]:
    return {"metrics": Endpoint(service, PORT, path="/metrics", scrape=True)}


def args() -> tuple[str, ...]:
    return tuple(flags({
        "port": PORT,
        "docker_only": "true",
        "housekeeping_interval": "30s",
        "store_container_labels": "false",
        "disable_metrics": ",".join(DISABLED_METRICS),
    }))


def render(settings: Settings, links: Links, platform: Platform) -> dict[str, str]:
    return {}  # flags only


def workloads(settings: Settings, links: Links, platform: Platform) -> tuple[Workload, ...]:
    return (tool_workload(
        settings, TOOL, service=links.service(TOOL),
        uid=0, gid=0,
        root_reason="reads the container runtime's state and cgroups, which are readable by root only "
                    "(upstream runs cAdvisor privileged; here only DAC_READ_SEARCH is kept)",
        capabilities=("DAC_READ_SEARCH",),
        args=args(),
        ports=(Port("metrics", PORT),),
        health=HealthCheck.http("/healthz", PORT, client="wget"),
        host_mounts=HOST_MOUNTS,
        per_node=True,
        tolerate_all_nodes=True,
    ),)


# --- rules and the Containers dashboard ---------------------------------------------------------

# Docker containers have a `name`; the root cgroup and system slices do not.
SEL = f'job="{JOB}", name!=""'


def monitoring_rules(settings: Settings) -> dict[str, dict]:
    return {"containers.yml": rule_file({"name": "container-records", "rules": [
        record("name:container_cpu_usage_seconds:rate5m",
               f"sum by (name) (rate(container_cpu_usage_seconds_total{{{SEL}}}[{WINDOW}]))"),
        record("name:container_memory_working_set_bytes:sum",
               f"sum by (name) (container_memory_working_set_bytes{{{SEL}}})"),
        record("name:container_network_receive_bytes:rate5m",
               f"sum by (name) (rate(container_network_receive_bytes_total{{{SEL}}}[{WINDOW}]))"),
        record("name:container_network_transmit_bytes:rate5m",
               f"sum by (name) (rate(container_network_transmit_bytes_total{{{SEL}}}[{WINDOW}]))"),
        record("name:container_fs_usage_bytes:sum", f"sum by (name) (container_fs_usage_bytes{{{SEL}}})"),
    ]})}


def monitoring_dashboards(ds: dict) -> dict[str, dict]:
    n = 'name=~"$name"'
    panels = grid([
        ("CPU (cores)", [(f"name:container_cpu_usage_seconds:rate5m{{{n}}}", "{{name}}")], "short"),
        ("Memory working set", [(f"name:container_memory_working_set_bytes:sum{{{n}}}", "{{name}}")], "bytes"),
        ("Network received", [(f"name:container_network_receive_bytes:rate5m{{{n}}}", "{{name}}")], "Bps"),
        ("Network sent", [(f"name:container_network_transmit_bytes:rate5m{{{n}}}", "{{name}}")], "Bps"),
        ("Filesystem used", [(f"name:container_fs_usage_bytes:sum{{{n}}}", "{{name}}")], "bytes"),
    ], ds)
    return {"containers.json": dashboard(
        "containers", "Containers", ["containers"], panels,
        (variable("name", f"label_values(container_last_seen{{{SEL}}}, name)", ds),))}


class Cadvisor(ToolComponent):
    TYPE = "observability:cadvisor:Cadvisor"
