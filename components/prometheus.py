"""Prometheus: scrapes the stack and the teams' targets, evaluates rules, sends alerts.

Upstream reference: Prometheus configuration reference
(https://prometheus.io/docs/prometheus/latest/configuration/configuration/), storage docs
(https://prometheus.io/docs/prometheus/latest/storage/) and the image's Dockerfile (busybox,
`USER nobody` = 65534, `/prometheus`, config at `/etc/prometheus/prometheus.yml`). Validated with
`promtool check config` / `check rules` built at the pinned version (tests/test_prometheus.py).

Retention: `--storage.tsdb.retention.time` is `retention.metrics`, capped at 2d when Mimir keeps
the long-term copy (`sizing.local_metrics_retention`); `--storage.tsdb.retention.size` is 85% of
the data volume, so a full disk deletes the oldest blocks instead of stopping ingestion. Prometheus
3.8 deprecates both flags in favour of `storage.tsdb.retention` in the config file; the flags
still work and, unlike the config key, also work when `components.prometheus.version` pins an
older 3.x image.

High availability (`highAvailability`: 2 replicas, kube-prometheus' shape): both replicas scrape
the same targets and evaluate the same rules. Each carries the external label `__replica__` (its
pod name, expanded from the environment, which Prometheus 3 always does) next to `cluster`:
exactly the pair Mimir's HA tracker keys on (Mimir "Configure high-availability deduplication":
default labels `cluster` and `__replica__`), so Mimir keeps one replica's samples and drops the
label. Alerts go to every Alertmanager (resolved through their headless Service) without
`__replica__` (`alert_relabel_configs`), so both replicas' copies of an alert are the same alert
and Alertmanager groups them into one notification. Multi-replica tools are scraped through their
headless Service (DNS service discovery), every replica a target of the tool's job.
"""

from __future__ import annotations


from . import cluster, rules, sizing
from .base import ToolComponent
from .platform import Platform
from .wiring import Links
from .workload import (
    ConfigFile, Endpoint, HealthCheck, Port, Workload, flags, peers_service, to_yaml, tool_workload,
)
from ..config.durations import parse_bytes
from ..config.model import Settings

TOOL = "prometheus"
HTTP_PORT = 9090
UID = GID = 65534
DATA_DIR = "/prometheus"
CONFIG_DIR = "/etc/prometheus"
CONFIG_PATH = f"{CONFIG_DIR}/prometheus.yml"
INTERVAL = sizing.SCRAPE_INTERVAL
# Share of the data volume the TSDB may fill (blocks + WAL + head chunks); the rest is headroom
# for compaction, which briefly needs room for the blocks it merges.
SIZE_RETENTION_SHARE = 0.85
POD_JOB = "kubernetes-pods"
# Mimir's HA tracker labels (distributor `-distributor.ha-tracker.cluster` / `.replica` defaults).
CLUSTER_LABEL = "cluster"
REPLICA_LABEL = "__replica__"
POD_NAME_ENV = "POD_NAME"


def serves(service: str) -> dict[str, Endpoint]:
    http = Endpoint(service, HTTP_PORT, scrape=True)
    return {
        "http": http,
        "query": http.at(""),
        # The remote-write receiver (`--web.enable-remote-write-receiver`), the metrics sink
        # when Mimir is off.
        "write": http.at("/api/v1/write"),
    }


def stack_targets(links: Links) -> dict[str, str]:
    """{job name: target} for every enabled stack component, Prometheus itself first (as
    `localhost`: it scrapes itself without leaving the pod)."""
    targets = {}
    for job, endpoint in links.scrape:
        targets[job] = f"localhost:{endpoint.port}" if job == TOOL else endpoint.address
    return dict(sorted(targets.items(), key=lambda kv: kv[0] != TOOL))


def retention_size(settings: Settings) -> str:
    """`--storage.tsdb.retention.size`: 85% of the volume, in MB (Prometheus' MB is 2^20 bytes)."""
    volume = parse_bytes(sizing.volume_size(settings, TOOL))
    return f"{max(1, int(volume * SIZE_RETENTION_SHARE) // 2**20)}MB"


def _kubernetes_pods_job() -> dict:
    """The seed's annotation-driven pod discovery (`prometheus.io/scrape|path|port`)."""
    return {
        "job_name": POD_JOB,
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
             "action": "keep", "regex": "true"},
            # Completed pods keep their IP for a while; scraping them only produces `up == 0`.
            {"source_labels": ["__meta_kubernetes_pod_phase"], "action": "drop", "regex": "Succeeded|Failed"},
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
             "action": "replace", "target_label": "__metrics_path__", "regex": "(.+)"},
            {"source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
             "action": "replace", "regex": r"([^:]+)(?::\d+)?;(\d+)", "replacement": "$1:$2",
             "target_label": "__address__"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }


def _every_replica(service: str, port: int) -> dict:
    """DNS service discovery of a headless Service: one target per replica (A record)."""
    return {"dns_sd_configs": [{"names": [service], "type": "A", "port": port}]}


def scrape_configs(settings: Settings, links: Links, platform: Platform) -> list[dict]:
    # Per-node exporters at each node's address, the kubelets and the API server (cluster.py).
    replaced, cluster_jobs = cluster.jobs(links.scrape, platform)
    endpoints = dict(links.scrape)
    jobs = []
    for job, target in stack_targets(links).items():
        if job in replaced:
            continue
        if job != TOOL and job in links.peers:
            # Every replica, through its headless Service (and the tool's further tiers).
            endpoint = endpoints[job]
            names = [links.peers[job], *(peers_service(tier) for tier in endpoint.tiers)]
            jobs.append({"job_name": job, "dns_sd_configs": [{"names": names, "type": "A", "port": endpoint.port}]})
        else:
            jobs.append({"job_name": job, "static_configs": [{"targets": [target]}]})
    jobs += cluster_jobs
    for team in settings.teams:
        for target in team.scrape_targets:
            job: dict = {"job_name": target.job, "metrics_path": target.metrics_path}
            if target.scrape_interval:
                job["scrape_interval"] = target.scrape_interval
            job["static_configs"] = [{"targets": list(target.targets), "labels": {"team": team.name}}]
            jobs.append(job)
    if platform.pod_discovery:
        jobs.append(_kubernetes_pods_job())
    return cluster.with_limits(jobs)


def config(settings: Settings, links: Links, platform: Platform) -> dict:
    external = {CLUSTER_LABEL: settings.stack, "environment": settings.environment}
    if TOOL in links.peers:
        external[REPLICA_LABEL] = f"${{{POD_NAME_ENV}}}"
    doc: dict = {
        "global": {
            "scrape_interval": INTERVAL,
            "evaluation_interval": INTERVAL,
            "external_labels": external,
        },
        # Relative to this file, so promtool resolves them in a copy of the layout too.
        "rule_files": ["rules/*.yml"],
    }
    if links.alertmanagers:
        peers = links.peers.get("alertmanager")
        if peers:
            # Every Alertmanager, not one behind the Service: they deduplicate among themselves.
            managers = [_every_replica(peers, e.port) for e in links.alertmanagers]
        else:
            managers = [{"static_configs": [{"targets": [e.address for e in links.alertmanagers]}]}]
        doc["alerting"] = {"alertmanagers": managers}
        if TOOL in links.peers:
            # Both replicas send the same alert; without the replica label it is one alert.
            doc["alerting"]["alert_relabel_configs"] = [{"action": "labeldrop", "regex": REPLICA_LABEL}]
    doc["scrape_configs"] = scrape_configs(settings, links, platform)
    if links.remote_write:
        doc["remote_write"] = [{"url": links.remote_write.url, "send_exemplars": True}]
    return doc


def render(settings: Settings, links: Links, platform: Platform) -> dict[str, str]:
    files = {"prometheus/prometheus.yml": to_yaml(config(settings, links, platform))}
    rule_files = rules.rule_files(settings, stack_targets(links),
                                  volume_stats_namespace=platform.volume_stats_namespace)
    rule_files.update(cluster.rule_files(platform))
    rule_files.update(links.tool_rules)
    for name, doc in rule_files.items():
        # Wide lines: PromQL and annotations stay on one line each instead of being folded.
        files[f"prometheus/rules/{name}"] = to_yaml(doc)
    return files


def args(settings: Settings) -> tuple[str, ...]:
    return tuple(flags({
        "config.file": CONFIG_PATH,
        "storage.tsdb.path": DATA_DIR,
        "storage.tsdb.retention.time": sizing.local_metrics_retention(settings),
        "storage.tsdb.retention.size": retention_size(settings),
        # Tempo's metrics generator and the collector write here when Mimir is off.
        "web.enable-remote-write-receiver": True,
        # Exemplars link metrics to traces in Grafana.
        "enable-feature": "exemplar-storage",
        # `--web.enable-lifecycle` stays off: config changes roll the workload instead, and the
        # /-/reload and /-/quit endpoints stay closed to anyone who can reach port 9090.
    }))


def workloads(settings: Settings, links: Links, platform: Platform) -> tuple[Workload, ...]:
    files = render(settings, links, platform)
    # Everything it scrapes (but itself), Alertmanager (alerts) and Mimir (remote write).
    per_node = cluster.per_node_endpoints(links.scrape, platform)
    talks_to = [e for job, e in links.scrape if job != TOOL and job not in per_node] + list(links.alertmanagers)
    # A multi-replica tool's further tiers, scraped under its job.
    talks_to += [Endpoint(tier, e.port) for job, e in links.scrape if job in links.peers for tier in e.tiers]
    if links.remote_write:
        talks_to.append(links.remote_write)
    replicated = {"pod_name_env": POD_NAME_ENV} if TOOL in links.peers else {}
    return (tool_workload(
        settings, TOOL, service=links.service(TOOL), data_dir=DATA_DIR,
        uid=UID,
        gid=GID,
        args=args(settings),
        ports=(Port("http", HTTP_PORT, publish=True),),
        health=HealthCheck.http("/-/ready", HTTP_PORT, client="wget"),
        config_files=tuple(
            ConfigFile(f"{CONFIG_DIR}/{path.removeprefix('prometheus/')}", text)
            for path, text in files.items()
        ),
        talks_to=tuple(talks_to),
        discovers_pods=platform.pod_discovery,
        cluster_rules=cluster.prometheus_rbac(links.scrape, platform),
        # Team scrape targets (`host:port`) may live anywhere, in or outside the cluster; kubelets
        # and per-node exporters listen on node addresses.
        egress_ports=tuple(sorted({int(target.rsplit(":", 1)[1]) for team in settings.teams
                                   for job in team.scrape_targets for target in job.targets}
                                  | set(cluster.egress_ports(links.scrape, platform)))),
        **replicated,
    ),)


class Prometheus(ToolComponent):
    TYPE = "observability:prometheus:Prometheus"
