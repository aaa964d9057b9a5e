"""Every link between the tools, resolved once (kube-prometheus `main.libsonnet`'s `values`).

Each tool module declares the endpoints it serves (`serves(service)`: role -> `Endpoint`) and
never imports another tool module. `resolve(settings)` collects the endpoints of the enabled
tools and decides, in this one place, who talks to whom:

- the metrics sink (where the collector and Tempo's metrics generator write): Prometheus'
  remote-write receiver when Prometheus is enabled, so the stack's rules (evaluated there) see
  OTLP metrics too (HighErrorRate on `http_server_request_duration_seconds`); Prometheus' own
  remote write then forwards them to Mimir with everything it scrapes. Without Prometheus, or with
  `highAvailability` (two Prometheus replicas deduplicated by Mimir's HA tracker), Mimir's push
  endpoint;
- Prometheus' remote write: Mimir, when enabled (it keeps the long-term copy);
- the default metrics datasource: Mimir when enabled, else Prometheus;
- traces to Tempo, logs to Loki, both over OTLP, and the log agent to the collector gateway;
- the scrape jobs: every enabled tool's metrics endpoint, one job named after the tool;
- the query endpoints Grafana's datasources point at;
- for tools running several replicas, the headless Service that resolves every one of them.

Tool modules turn the endpoints they receive into config *and* into `Workload.talks_to`, so the
NetworkPolicy flows are derived from the same objects as the URLs (see components/workload.py).
Pure: no Pulumi imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

from .workload import Endpoint, peers_service
from ..config.model import job_name

# Metrics sinks in order of preference: where the rules are evaluated first (see above).
METRICS_SINKS = (("prometheus", "write"), ("mimir", "push"))
# Tools whose query API can be Grafana's default metrics datasource, in order of preference.
METRICS_SOURCES = ("mimir", "prometheus")


@dataclass(frozen=True)
class Names:
    """Service names of one stack instance: the tool name, prefixed for a second instance in the
    same program or namespace (`ObservabilityStack("team-a", ...)` -> `team-a-prometheus`)."""

    prefix: str = ""

    def service(self, tool: str) -> str:
        return f"{self.prefix}{job_name(tool)}"


@dataclass(frozen=True)
class Links:
    names: Names
    # enabled tool -> role -> endpoint, as each tool module declares them
    served: Mapping[str, Mapping[str, Endpoint]]
    alertmanagers: tuple[Endpoint, ...] = ()
    remote_write: Optional[Endpoint] = None
    metrics_sink: Optional[Endpoint] = None
    metrics_source: Optional[str] = None
    traces_otlp: Optional[Endpoint] = None
    logs_otlp: Optional[Endpoint] = None
    gateway_otlp: Optional[Endpoint] = None
    # (job, metrics endpoint) of every enabled tool, in registry order
    scrape: tuple[tuple[str, Endpoint], ...] = ()
    # datasource uid (the tool name) -> query endpoint
    query: Mapping[str, Endpoint] = field(default_factory=dict)
    # tool -> headless Service resolving each of its replicas, for tools running more than one:
    # who must reach *every* replica (Prometheus scraping them, alerting every Alertmanager)
    # resolves this name instead of going through the load-balanced Service.
    peers: Mapping[str, str] = field(default_factory=dict)
    # Rule files about a tool, from the enabled tools that declare them (`monitoring_rules(settings)`
    # in the tool module: node_exporter, kube_state_metrics, cadvisor): {file name: rule file},
    # which Prometheus loads.
    tool_rules: Mapping[str, dict] = field(default_factory=dict)
    # Dashboards about a tool, likewise (`monitoring_dashboards(datasource)`): {file name: dashboard},
    # which Grafana provisions.
    tool_dashboards: Mapping[str, dict] = field(default_factory=dict)

    def service(self, tool: str) -> str:
        return self.names.service(tool)

    def endpoint(self, tool: str, role: str) -> Optional[Endpoint]:
        return self.served.get(tool, {}).get(role)


def _serves(module: object, service: str, replicated: bool) -> Mapping[str, Endpoint]:
    """A tool whose replicated shape splits it into components (Pyroscope's microservices, issue
    15) serves its roles from other workloads then: `serves_replicated(service)`."""
    if replicated and hasattr(module, "serves_replicated"):
        return module.serves_replicated(service)
    return module.serves(service)


def resolve(settings, served_by: Mapping[str, object], names: Names = Names()) -> Links:
    """`served_by`: tool name -> its module (anything with `serves(service)`), in registry order.
    Only enabled tools serve anything; a disabled tool is linked from nowhere."""
    served = {
        tool: _serves(module, names.service(tool), settings.replicas(tool) > 1)
        for tool, module in served_by.items() if settings.enabled(tool)
    }

    def get(tool: str, role: str) -> Optional[Endpoint]:
        return served.get(tool, {}).get(role)

    sink = next((get(t, r) for t, r in METRICS_SINKS if get(t, r)), None)
    if settings.high_availability and get("mimir", "push"):
        # Two Prometheus replicas: a push lands on one of them, and Mimir's HA tracker keeps only
        # the elected replica's samples, so pushes through the other would be dropped. Push to
        # Mimir directly; the stack's rules then see OTLP metrics only through Mimir (README
        # "High availability").
        sink = get("mimir", "push")
    source = next((t for t in METRICS_SOURCES if get(t, "query")), None)
    scrape = tuple(
        (job_name(tool), endpoint)
        for tool, roles in served.items()
        for endpoint in roles.values() if endpoint.scrape
    )
    query = {tool: roles["query"] for tool, roles in served.items() if "query" in roles}
    enabled = [served_by[tool] for tool in served]
    tool_rules = {name: doc for module in enabled if hasattr(module, "monitoring_rules")
                  for name, doc in module.monitoring_rules(settings).items()}
    ds = {"type": "prometheus", "uid": source} if source else None
    tool_dashboards = {name: board for module in enabled if ds and hasattr(module, "monitoring_dashboards")
                       for name, board in module.monitoring_dashboards(ds).items()}
    return Links(
        names=names,
        served=served,
        alertmanagers=tuple(e for e in [get("alertmanager", "http")] if e),
        remote_write=get("mimir", "push"),
        metrics_sink=sink,
        metrics_source=source,
        traces_otlp=get("tempo", "otlp-grpc"),
        logs_otlp=get("loki", "otlp"),
        gateway_otlp=get("collector", "otlp-grpc"),
        scrape=scrape,
        query=query,
        peers={tool: peers_service(names.service(tool)) for tool in served if settings.replicas(tool) > 1},
        tool_rules=tool_rules,
        tool_dashboards=tool_dashboards,
    )
