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
"""

from __future__ import annotations


from components import rules, sizing
from components.base import ToolComponent
from components.workload import ConfigFile, HealthCheck, Port, Workload, flags, to_yaml, tool_workload
from config.durations import parse_bytes
from config.model import Settings

TOOL = "prometheus"
HTTP_PORT = 9090
UID = GID = 65534
DATA_DIR = "/prometheus"
CONFIG_DIR = "/etc/prometheus"
CONFIG_PATH = f"{CONFIG_DIR}/prometheus.yml"
INTERVAL = "15s"
# Share of the data volume the TSDB may fill (blocks + WAL + head chunks); the rest is headroom
# for compaction, which briefly needs room for the blocks it merges.
SIZE_RETENTION_SHARE = 0.85


# The other tool modules are imported inside functions: they import this module's constants
# too (Grafana's datasource, Tempo's remote write), so module-level imports would be circular.


def _metrics_ports() -> dict[str, int]:
    """Each stack tool's metrics port (the scrape target is the tool's service name)."""
    from components import alertmanager, collector, grafana, loki, mimir, pyroscope, tempo

    return {
        alertmanager.TOOL: alertmanager.HTTP_PORT,
        grafana.TOOL: grafana.HTTP_PORT,
        loki.TOOL: loki.HTTP_PORT,
        tempo.TOOL: tempo.HTTP_PORT,
        mimir.TOOL: mimir.HTTP_PORT,
        pyroscope.TOOL: pyroscope.HTTP_PORT,
        collector.TOOL: collector.METRICS_PORT,  # the collector's own telemetry, not OTLP
    }


def stack_targets(settings: Settings) -> dict[str, str]:
    """{job name: target} for every enabled stack component, Prometheus itself first."""
    targets = {TOOL: f"localhost:{HTTP_PORT}"}
    for tool, port in _metrics_ports().items():
        if settings.enabled(tool):
            targets[tool] = f"{tool}:{port}"
    return targets


def retention_size(settings: Settings) -> str:
    """`--storage.tsdb.retention.size`: 85% of the volume, in MB (Prometheus' MB is 2^20 bytes)."""
    volume = parse_bytes(sizing.volume_size(settings, TOOL))
    return f"{max(1, int(volume * SIZE_RETENTION_SHARE) // 2**20)}MB"


def _kubernetes_pods_job() -> dict:
    """The seed's annotation-driven pod discovery (`prometheus.io/scrape|path|port`)."""
    return {
        "job_name": "kubernetes-pods",
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


def scrape_configs(settings: Settings) -> list[dict]:
    jobs = [
        {"job_name": job, "static_configs": [{"targets": [target]}]}
        for job, target in stack_targets(settings).items()
    ]
    for team in settings.teams:
        for target in team.scrape_targets:
            job: dict = {"job_name": target.job, "metrics_path": target.metrics_path}
            if target.scrape_interval:
                job["scrape_interval"] = target.scrape_interval
            job["static_configs"] = [{"targets": list(target.targets), "labels": {"team": team.name}}]
            jobs.append(job)
    if settings.target == "kubernetes":
        jobs.append(_kubernetes_pods_job())
    return jobs


def config(settings: Settings) -> dict:
    from components import alertmanager, mimir

    doc: dict = {
        "global": {
            "scrape_interval": INTERVAL,
            "evaluation_interval": INTERVAL,
            "external_labels": {"cluster": settings.stack, "environment": settings.environment},
        },
        # Relative to this file, so promtool resolves them in a copy of the layout too.
        "rule_files": ["rules/*.yml"],
    }
    if settings.enabled("alertmanager"):
        doc["alerting"] = {"alertmanagers": [
            {"static_configs": [{"targets": [f"{alertmanager.TOOL}:{alertmanager.HTTP_PORT}"]}]}
        ]}
    doc["scrape_configs"] = scrape_configs(settings)
    if settings.enabled("mimir"):
        doc["remote_write"] = [{
            "url": f"http://{mimir.TOOL}:{mimir.HTTP_PORT}/api/v1/push",
            "send_exemplars": True,
        }]
    return doc


def render(settings: Settings) -> dict[str, str]:
    files = {"prometheus/prometheus.yml": to_yaml(config(settings))}
    for name, doc in rules.rule_files(settings, stack_targets(settings)).items():
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


def workloads(settings: Settings) -> tuple[Workload, ...]:
    files = render(settings)
    # Everything it scrapes, plus Alertmanager (alerts) and Mimir (remote write), both scraped too.
    talks_to = sorted(job for job in stack_targets(settings) if job != TOOL)
    return (tool_workload(
        settings, TOOL, data_dir=DATA_DIR,
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
        discovers_pods=settings.target == "kubernetes",
        # Team scrape targets (`host:port`) may live anywhere, in or outside the cluster.
        egress_ports=tuple(sorted({int(target.rsplit(":", 1)[1]) for team in settings.teams
                                   for job in team.scrape_targets for target in job.targets})),
    ),)


class Prometheus(ToolComponent):
    TYPE = "observability:prometheus:Prometheus"
