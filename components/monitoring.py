"""Small builders for rule and dashboard data shared by the cluster/host monitoring modules
(components/cluster.py, node_exporter.py, kube_state_metrics.py, cadvisor.py).

Rules follow Prometheus' rule-file format (alerting/recording rules reference) and the
`level:metric:operations` naming convention; every alert carries the seed's `severity` label so
Alertmanager's routing works unchanged. Dashboards follow Grafana's dashboard JSON model, as
components/dashboards.py does; they are provisioned read-only by components/grafana.py.
Pure data: no Pulumi, no YAML strings.
"""

from __future__ import annotations

from typing import Optional

SCHEMA_VERSION = 39
WINDOW = "5m"


def record(name: str, expr: str) -> dict:
    return {"record": name, "expr": expr}


def alert(name: str, expr: str, for_: Optional[str], severity: str, summary: str, description: str) -> dict:
    rule: dict = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def rule_file(*groups: dict) -> dict:
    return {"groups": [g for g in groups if g["rules"]]}


def panel(pid: int, title: str, targets: list[tuple[str, str]], unit: str, ds: dict,
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


def grid(specs: list[tuple[str, list[tuple[str, str]], str]], ds: dict, width: int = 12) -> list[dict]:
    """Panels two per row from (title, [(expr, legend)], unit)."""
    per_row = 24 // width
    return [panel(i + 1, title, targets, unit, ds, x=(i % per_row) * width, y=(i // per_row) * 8, w=width)
            for i, (title, targets, unit) in enumerate(specs)]


def variable(name: str, query: str, ds: dict) -> dict:
    """A query template variable (`label_values(...)`), multi-select with All."""
    return {"name": name, "type": "query", "datasource": ds, "query": {"query": query, "refId": name},
            "refresh": 2, "includeAll": True, "multi": True, "current": {},
            "sort": 1}


def dashboard(uid: str, title: str, tags: list[str], panels: list[dict], variables: tuple[dict, ...] = ()) -> dict:
    return {
        "uid": uid,
        "title": title,
        "tags": ["observability-stack", *tags],
        "editable": False,
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "templating": {"list": list(variables)},
        "annotations": {"list": []},
        "panels": panels,
    }
