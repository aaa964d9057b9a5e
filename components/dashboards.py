"""Grafana dashboards as data: the seed's golden-signals and RED boards, plus a stack overview.

Upstream reference: Grafana dashboard JSON model
(https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/).
The PromQL of the golden-signals and RED boards is the seed's, verbatim (whitespace aside).
Dashboards are provisioned read-only (see `grafana.dashboard_provider`): edits belong in this
module, not in the UI, so they cannot drift from what is deployed.

Every panel queries the stack's default metrics datasource by its fixed uid (`mimir` when Mimir
is enabled, else `prometheus`), passed in by `components.grafana`.
"""

from __future__ import annotations

from typing import Optional

from ..config.model import Settings

SCHEMA_VERSION = 39

# The seed's queries (guide section "Grafana可视化"), one name per panel.
GOLDEN_SIGNALS: tuple[tuple[str, str, str], ...] = (
    # (panel title, PromQL, unit)
    ("Latency (P95)", "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))", "s"),
    ("Traffic (QPS by endpoint)", "sum(rate(http_requests_total[5m])) by (endpoint)", "reqps"),
    ("Errors (5xx %)",
     'sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) * 100', "percent"),
    ("Saturation (CPU %)", '100 - (avg(rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100)', "percent"),
)

RED: tuple[tuple[str, str, str], ...] = (
    ("Rate (requests/s by job, endpoint)", "sum(rate(http_requests_total[5m])) by (job, endpoint)", "reqps"),
    ("Errors (4xx/5xx per second by job)", 'sum(rate(http_requests_total{status=~"[45].."}[5m])) by (job)', "reqps"),
    ("Duration P50",
     "histogram_quantile(0.50, sum(rate(http_request_duration_seconds_bucket[5m])) by (le, endpoint))", "s"),
    ("Duration P95",
     "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[5m])) by (le, endpoint))", "s"),
    ("Duration P99",
     "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[5m])) by (le, endpoint))", "s"),
)

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


def _panel(pid: int, title: str, targets: list[tuple[str, str]], unit: str, ds: dict,
           x: int, y: int, w: int = 12, h: int = 8, kind: str = "timeseries") -> dict:
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": ds,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
        if kind == "timeseries" else {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": ds, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _dashboard(uid: str, title: str, tags: list[str], panels: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "tags": ["observability-stack", *tags],
        "editable": False,
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def _grid(queries: tuple[tuple[str, str, str], ...], ds: dict) -> list[dict]:
    return [
        _panel(i + 1, title, [(expr, "")], unit, ds, x=(i % 2) * 12, y=(i // 2) * 8)
        for i, (title, expr, unit) in enumerate(queries)
    ]


def golden_signals(ds: dict) -> dict:
    return _dashboard("golden-signals", "Golden signals", ["golden-signals"], _grid(GOLDEN_SIGNALS, ds))


def red(ds: dict) -> dict:
    return _dashboard("red", "RED (rate, errors, duration)", ["red"], _grid(RED, ds))


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
