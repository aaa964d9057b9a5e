"""Grafana dashboards as data: the seed's golden-signals and RED boards, plus a stack overview.

Upstream reference: Grafana dashboard JSON model
(https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/).
The golden-signals and RED boards show the seed's queries through the recording rules that
compute them for both metric naming conventions (components/rules.py), filtered by the `team` and
`job` variables.
Dashboards are provisioned read-only (see `grafana.dashboard_provider`): edits belong in this
module, not in the UI, so they cannot drift from what is deployed.

Every panel queries the stack's default metrics datasource by its fixed uid (`mimir` when Mimir
is enabled, else `prometheus`), passed in by `components.grafana`.
"""

from __future__ import annotations

from typing import Optional

from .monitoring import dashboard, panel

from ..config.model import Settings

# The seed's queries (guide section "Grafana可视化"), one per panel, read from the recording rules
# of components/rules.py that compute them for both metric naming conventions (prometheus-client
# `http_requests_total{status}` / `http_request_duration_seconds`, and OpenTelemetry's
# `http_server_request_duration_seconds_*{http_response_status_code}` as the collector
# remote-writes them), per job and team; so one panel shows either kind of service, and the
# `team` and `job` variables filter them.
SELECT = '{job=~"$job", team=~"$team"}'
GOLDEN_SIGNALS: tuple[tuple[str, tuple[tuple[str, str], ...], str], ...] = (
    # (panel title, ((PromQL, legend), ...), unit)
    ("Latency (P95)", ((f"job:http_request_duration_seconds:p95_5m{SELECT}", "{{job}}"),), "s"),
    ("Traffic (QPS by endpoint)",
     ((f"sum by (job, endpoint) (job_endpoint:http_requests:rate5m{SELECT})", "{{job}} {{endpoint}}"),), "reqps"),
    ("Errors (5xx %)", ((f"100 * job:http_request_errors:ratio_rate5m{SELECT}", "{{job}}"),), "percent"),
    # The seed's node CPU needs a node exporter among the scrape targets; the service's own
    # process CPU (both clients export `process_cpu_seconds_total`) is there without one.
    ("Saturation (CPU %)", (
        ("100 * instance:node_cpu_utilisation:ratio_rate5m", "node {{instance}}"),
        (f"100 * job:process_cpu_seconds:rate5m{SELECT}", "process {{job}}"),
    ), "percent"),
)

RED: tuple[tuple[str, tuple[tuple[str, str], ...], str], ...] = (
    ("Rate (requests/s by job, endpoint)",
     ((f"job_endpoint:http_requests:rate5m{SELECT}", "{{job}} {{endpoint}}"),), "reqps"),
    ("Errors (4xx/5xx per second by job)", ((f"job:http_requests_4xx_5xx:rate5m{SELECT}", "{{job}}"),), "reqps"),
    *(
        (f"Duration {name.upper()}",
         ((f"job_endpoint:http_request_duration_seconds:{name}_5m{SELECT}", "{{job}} {{endpoint}}"),), "s")
        for name in ("p50", "p95", "p99")
    ),
)

# Variables of the application boards: every team and job that has request metrics.
VARIABLE_SOURCE = "job:http_requests:rate5m"

# Ingestion rate per tool, from each tool's own metrics (scraped by Prometheus' stack jobs).
INGESTION: dict[str, tuple[str, str, str]] = {
    "prometheus": ("Prometheus samples/s", "sum(rate(prometheus_tsdb_head_samples_appended_total[5m]))", "short"),
    "mimir": ("Mimir samples/s", "sum(rate(cortex_distributor_received_samples_total[5m]))", "short"),
    "loki": ("Loki bytes/s", "sum(rate(loki_distributor_bytes_received_total[5m]))", "Bps"),
    "tempo": ("Tempo spans/s", "sum(rate(tempo_distributor_spans_received_total[5m]))", "short"),
    "collector": ("Collector accepted spans/s", "sum(rate(otelcol_receiver_accepted_spans_total[5m]))", "short"),
}

# On-disk size of the TSDBs (the tools that report it themselves).
DISK: dict[str, tuple[str, str]] = {
    "prometheus": ("Prometheus TSDB blocks", "prometheus_tsdb_storage_blocks_bytes"),
    "mimir": ("Mimir ingester TSDB blocks", "sum(cortex_ingester_tsdb_storage_blocks_bytes)"),
}


# One panel builder for every dashboard of the stack (components/monitoring.py).
_panel = panel


def _variable(name: str, query: str, ds: dict) -> dict:
    """A multi-value query variable defaulting to All; All matches every value, including series
    without the label (`.*` matches the empty string), so team-less services show too."""
    return {
        "name": name,
        "label": name,
        "type": "query",
        "datasource": ds,
        # No `definition`: the UI's display copy of the query, not part of Grafana's dashboard
        # schema (tests/test_dashboards_schema.py); Grafana derives it from `query`.
        "query": query,
        "refresh": 2,  # on time range change
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
    }


def application_variables(ds: dict) -> list[dict]:
    return [
        _variable("team", f"label_values({VARIABLE_SOURCE}, team)", ds),
        _variable("job", f'label_values({VARIABLE_SOURCE}{{team=~"$team"}}, job)', ds),
    ]


def _dashboard(uid: str, title: str, tags: list[str], panels: list[dict],
               variables: Optional[list[dict]] = None) -> dict:
    return dashboard(uid, title, tags, panels, tuple(variables or ()))


def _grid(queries: tuple[tuple[str, tuple[tuple[str, str], ...], str], ...], ds: dict) -> list[dict]:
    return [
        _panel(i + 1, title, list(targets), unit, ds, x=(i % 2) * 12, y=(i // 2) * 8)
        for i, (title, targets, unit) in enumerate(queries)
    ]


def golden_signals(ds: dict) -> dict:
    return _dashboard("golden-signals", "Golden signals", ["golden-signals"], _grid(GOLDEN_SIGNALS, ds),
                      application_variables(ds))


def red(ds: dict) -> dict:
    return _dashboard("red", "RED (rate, errors, duration)", ["red"], _grid(RED, ds), application_variables(ds))


def stack_overview(settings: Settings, ds: dict) -> dict:
    panels = [
        _panel(1, "Up per job", [("up", "{{job}} {{instance}}")], "short", ds, x=0, y=0, w=24, h=6,
               kind="state-timeline"),
    ]
    ingestion = [(expr, title) for tool, (title, expr, _) in INGESTION.items() if settings.enabled(tool)]
    if ingestion:
        panels.append(_panel(2, "Ingestion rates", ingestion, "short", ds, x=0, y=6))
    disk = [(expr, title) for tool, (title, expr) in DISK.items() if settings.enabled(tool)]
    if disk:
        panels.append(_panel(3, "TSDB size on disk", disk, "bytes", ds, x=12, y=6))
    alerts = [('count by (severity) (ALERTS{alertstate="firing"})', "firing {{severity}}")]
    if settings.enabled("alertmanager"):
        alerts.append(('sum(alertmanager_alerts{state="active"})', "active in Alertmanager"))
    panels.append(_panel(4, "Alerts", alerts, "short", ds, x=0, y=14, w=24))
    return _dashboard("stack-overview", "Observability stack overview", ["stack"], panels)


def dashboards(settings: Settings, metrics_uid: Optional[str]) -> dict[str, dict]:
    """{file name: dashboard}; none without a metrics datasource to query."""
    if metrics_uid is None:
        return {}
    ds = {"type": "prometheus", "uid": metrics_uid}
    return {
        "golden-signals.json": golden_signals(ds),
        "red.json": red(ds),
        "stack-overview.json": stack_overview(settings, ds),
    }
