"""The one list of tools (kube-prometheus lists its components once in `main.libsonnet`).

Adding a tool is one module plus one entry here. Each tool module provides:

- `TOOL`, its name: the `components.<tool>` settings key, the scrape job, the datasource uid;
- `serves(service) -> {role: Endpoint}`: what it serves (its metrics endpoint marked `scrape`);
- `render(settings, links, platform) -> {path: text}`: its config files, as `make render` writes them;
- `workloads(settings, links, platform) -> (Workload, ...)`: the main workload first;
- a `ToolComponent` subclass with its type token `observability:<tool>:<Name>`;
- optionally `monitoring_rules(settings) -> {file: rule file}` and `monitoring_dashboards(datasource)
  -> {file: dashboard}`: rules and dashboards about what the tool exports, which the wiring hands to
  Prometheus and Grafana.

Names are the `components.<tool>` field names (`node_exporter`); services and scrape jobs use
`config.model.job_name` (`node-exporter`).

Order matters only for readers: it is the order of scrape jobs, of `make render`'s listing and of
the components in the stack. Tool modules never import each other: links come from
`components/wiring.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from . import (
    alertmanager, cadvisor, collector, grafana, kube_state_metrics, loki, mimir, node_exporter, prometheus,
    pyroscope, tempo,
)
from .base import ToolComponent


@dataclass(frozen=True)
class Tool:
    name: str
    module: ModuleType
    component: type[ToolComponent]
    # Its image carries busybox `chown`: the Docker backend's volume-ownership helper can run it.
    ships_chown: bool = False

    @property
    def render(self) -> Callable:
        return self.module.render

    @property
    def workloads(self) -> Callable:
        return self.module.workloads


TOOLS: tuple[Tool, ...] = (
    Tool("prometheus", prometheus, prometheus.Prometheus, ships_chown=True),
    Tool("alertmanager", alertmanager, alertmanager.Alertmanager, ships_chown=True),
    Tool("grafana", grafana, grafana.Grafana),
    Tool("loki", loki, loki.Loki),
    Tool("tempo", tempo, tempo.Tempo),
    Tool("mimir", mimir, mimir.Mimir),
    Tool("pyroscope", pyroscope, pyroscope.Pyroscope),
    Tool("collector", collector, collector.Collector),
    # Exporters of the host and the cluster (issue 13); `enabled` unset = where the target can run them.
    Tool("node_exporter", node_exporter, node_exporter.NodeExporter),
    Tool("kube_state_metrics", kube_state_metrics, kube_state_metrics.KubeStateMetrics),
    Tool("cadvisor", cadvisor, cadvisor.Cadvisor),
)
BY_NAME = {tool.name: tool for tool in TOOLS}
NAMES = tuple(BY_NAME)
