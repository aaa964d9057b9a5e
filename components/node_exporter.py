"""node_exporter: the host's CPU, memory, filesystems, network and clock, on both targets.

Upstream references: node_exporter's README at v1.12.1 (`--path.procfs`, `--path.sysfs`,
`--path.rootfs`; "the host's root filesystem mounted read-only with rslave propagation, host PID
namespace"), and kube-prometheus v0.18.0 `manifests/nodeExporter-daemonset.yaml` (hostNetwork,
hostPID, uid 65534, read-only `/` and `/sys`, the collectors and devices it turns off, tolerate
every taint). Rule names and thresholds are informed by the node-mixin (NodeFilesystemSpaceFillingUp
with `predict_linear`, NodeFilesystemAlmostOutOfSpace, NodeNetworkReceiveErrs, NodeClockSkewDetected,
NodeMemoryHighUtilization), written for this stack.

Kubernetes: a DaemonSet on the host network and PID namespace; Prometheus scrapes every node's
address at :9100 (components/cluster.py). Unlike kube-prometheus there is no kube-rbac-proxy in
front: host metrics are served in plaintext on the node's port 9100 (README).
Docker: one container with the same mounts and the host's PID namespace, on the stack's network
(Prometheus reaches it as `node-exporter:9100`, nothing is published on the host); its network
counters are then the container's own interfaces, not the host's (README).
"""

from __future__ import annotations

from .base import ToolComponent
from .monitoring import WINDOW, alert, dashboard, grid, record, rule_file, variable
from .platform import Platform
from .wiring import Links
from .workload import Endpoint, HealthCheck, HostMount, Port, Workload, flags, tool_workload
from ..config.model import Settings, job_name

TOOL = "node_exporter"
JOB = job_name(TOOL)
PORT = 9100
UID = GID = 65534  # the image's `nobody`
HOST_MOUNTS = (HostMount("/proc", "/host/proc"), HostMount("/sys", "/host/sys"), HostMount("/", "/host/root"))
# Pseudo and container filesystems are not the node's disks (kube-prometheus' exclusions).
MOUNT_POINTS_EXCLUDE = r"^/(dev|proc|sys|run/k3s/containerd/.+|var/lib/docker/.+|var/lib/kubelet/pods/.+)($|/)"
VIRTUAL_DEVICES = r"^(veth.*|[a-f0-9]{15})$"


def serves(service: str) -> dict[str, Endpoint]:
    return {"metrics": Endpoint(service, PORT, path="/metrics", scrape=True, per_node=True)}


def args() -> tuple[str, ...]:
    return tuple(flags({
        "web.listen-address": f":{PORT}",
        "path.procfs": "/host/proc",
        "path.sysfs": "/host/sys",
        "path.rootfs": "/host/root",
        "path.udev.data": "/host/root/run/udev/data",
        # Hardware the nodes of a cluster rarely have; hwmon is slow on some kernels.
        "no-collector.wifi": True,
        "no-collector.hwmon": True,
        "no-collector.btrfs": True,
        "collector.filesystem.mount-points-exclude": MOUNT_POINTS_EXCLUDE,
        "collector.netclass.ignored-devices": VIRTUAL_DEVICES,
        "collector.netdev.device-exclude": VIRTUAL_DEVICES,
    }))


def render(settings: Settings, links: Links, platform: Platform) -> dict[str, str]:
    return {}  # flags only, no config file


def workloads(settings: Settings, links: Links, platform: Platform) -> tuple[Workload, ...]:
    return (tool_workload(
        settings, TOOL, service=links.service(TOOL),
        uid=UID, gid=GID,
        args=args(),
        ports=(Port("metrics", PORT),),
        health=HealthCheck.http("/", PORT, client="wget"),
        host_mounts=HOST_MOUNTS,
        host_pid=True,
        host_network="reads the node's own network interfaces (node_exporter's README and kube-prometheus "
                     "run it on the host network); serves only node metrics, on port 9100",
        per_node=True,
        tolerate_all_nodes=True,
    ),)


# --- rules -----------------------------------------------------------------------------------

SEL = f'job="{JOB}"'
FS = f'{SEL}, fstype!="", mountpoint!=""'


def monitoring_rules(settings: Settings, *, fs_free_critical: float = 0.05, fs_for: str = "30m") -> dict[str, dict]:
    """Node recording rules (what the Node dashboard queries) and alerts. `fs_free_critical` /
    `fs_for`: the free-space ratio and pending time of NodeFilesystemAlmostFull (the end-to-end
    test lowers them to see it fire)."""
    avail = f"node_filesystem_avail_bytes{{{FS}}}"
    size = f"node_filesystem_size_bytes{{{FS}}}"
    writable = f"node_filesystem_readonly{{{FS}}} == 0"
    records = {"name": "node-records", "rules": [
        # Busy share of all CPUs: 1 - (idle + iowait + steal) seconds per CPU second.
        record("instance:node_cpu_utilisation:rate5m",
               f'1 - sum by (instance) (rate(node_cpu_seconds_total{{{SEL}, mode=~"idle|iowait|steal"}}[{WINDOW}]))'
               f' / count by (instance) (node_cpu_seconds_total{{{SEL}, mode="idle"}})'),
        record("instance:node_load1_per_cpu:ratio",
               f'node_load1{{{SEL}}} / on (instance) count by (instance) (node_cpu_seconds_total{{{SEL}, mode="idle"}})'),
        record("instance:node_memory_utilisation:ratio",
               f"1 - node_memory_MemAvailable_bytes{{{SEL}}} / node_memory_MemTotal_bytes{{{SEL}}}"),
        record("instance_mountpoint:node_filesystem_avail:ratio", f"{avail} / {size}"),
        record("instance:node_network_receive_bytes:rate5m",
               f'sum by (instance) (rate(node_network_receive_bytes_total{{{SEL}, device!="lo"}}[{WINDOW}]))'),
        record("instance:node_network_transmit_bytes:rate5m",
               f'sum by (instance) (rate(node_network_transmit_bytes_total{{{SEL}, device!="lo"}}[{WINDOW}]))'),
    ]}
    errors = lambda way: (  # noqa: E731
        f"rate(node_network_{way}_errs_total{{{SEL}}}[{WINDOW}])"
        f" / rate(node_network_{way}_packets_total{{{SEL}}}[{WINDOW}]) > 0.01")
    alerts = {"name": "node", "rules": [
        alert("NodeCPUHigh", "instance:node_cpu_utilisation:rate5m > 0.9", "15m", "warning",
              "A node's CPU is saturated",
              "{{ $labels.instance }} has used {{ $value | humanizePercentage }} of its CPU for 15 minutes."),
        alert("NodeMemoryHigh", "instance:node_memory_utilisation:ratio > 0.9", "15m", "warning",
              "A node is running out of memory",
              "{{ $labels.instance }} uses {{ $value | humanizePercentage }} of its memory."),
        alert("NodeFilesystemFillingUp",
              f"{avail} / {size} < 0.4 and predict_linear({avail}[6h], 24 * 3600) < 0 and {writable}",
              "1h", "warning", "A filesystem fills up within a day",
              "{{ $labels.mountpoint }} on {{ $labels.instance }} is predicted to fill up within 24 hours "
              "at the rate of the last six hours."),
        alert("NodeFilesystemAlmostFull", f"{avail} / {size} < {fs_free_critical} and {writable}",
              fs_for, "critical", "A filesystem is almost full",
              "{{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | humanizePercentage }} space left."),
        alert("NodeNetworkReceiveErrors", errors("receive"), "1h", "warning",
              "A network interface drops received packets",
              "{{ $labels.device }} on {{ $labels.instance }}: {{ $value | humanizePercentage }} of received packets are errors."),
        alert("NodeNetworkTransmitErrors", errors("transmit"), "1h", "warning",
              "A network interface fails to transmit packets",
              "{{ $labels.device }} on {{ $labels.instance }}: {{ $value | humanizePercentage }} of sent packets are errors."),
        # Offset beyond 50ms and not converging (node-mixin's condition).
        alert("NodeClockSkew",
              f"(node_timex_offset_seconds{{{SEL}}} > 0.05 and deriv(node_timex_offset_seconds{{{SEL}}}[5m]) >= 0)"
              f" or (node_timex_offset_seconds{{{SEL}}} < -0.05 and deriv(node_timex_offset_seconds{{{SEL}}}[5m]) <= 0)",
              "10m", "warning", "A node's clock is skewed",
              "{{ $labels.instance }}'s clock is {{ $value | humanizeDuration }} off; check NTP."),
    ]}
    return {"node.yml": rule_file(records, alerts)}


def monitoring_dashboards(ds: dict) -> dict[str, dict]:
    inst = 'instance=~"$instance"'
    panels = grid([
        ("CPU utilisation", [(f'instance:node_cpu_utilisation:rate5m{{{inst}}}', "{{instance}}")], "percentunit"),
        ("Load per CPU (1m)", [(f'instance:node_load1_per_cpu:ratio{{{inst}}}', "{{instance}}")], "short"),
        ("Memory utilisation", [(f'instance:node_memory_utilisation:ratio{{{inst}}}', "{{instance}}")], "percentunit"),
        ("Filesystem space left", [(f'instance_mountpoint:node_filesystem_avail:ratio{{{inst}}}',
                                    "{{instance}} {{mountpoint}}")], "percentunit"),
        ("Network received", [(f'instance:node_network_receive_bytes:rate5m{{{inst}}}', "{{instance}}")], "Bps"),
        ("Network sent", [(f'instance:node_network_transmit_bytes:rate5m{{{inst}}}', "{{instance}}")], "Bps"),
    ], ds)
    return {"node.json": dashboard("node", "Node", ["node"], panels,
                                   (variable("instance", f'label_values(node_uname_info{{{SEL}}}, instance)', ds),))}


class NodeExporter(ToolComponent):
    TYPE = "observability:node_exporter:NodeExporter"
