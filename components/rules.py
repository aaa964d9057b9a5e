"""Prometheus rule files: the seed's alerts, golden-signal recording rules, stack self-monitoring
and each team's own rules.

Upstream references: Prometheus alerting and recording rules
(https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/,
https://prometheus.io/docs/prometheus/latest/configuration/recording_rules/) and the recording
rule naming convention `level:metric:operations`
(https://prometheus.io/docs/practices/rules/#naming-and-aggregation).

`rule_files(settings, stack_jobs)` returns {file name: rule-file dict}; `components.prometheus`
serialises them under `prometheus/rules/`. Everything is pure data: no Pulumi, no YAML strings.
Self-monitoring rules are only emitted for components that are enabled, so an alert never
watches a metric that cannot exist.
"""

from __future__ import annotations

from typing import Iterable, Optional

from ..config.model import Settings, Team

# The seed's application metrics (an instrumented app exposes these; see the seed's guide).
REQUESTS = "http_requests_total"
DURATION_BUCKET = "http_request_duration_seconds_bucket"
WINDOW = "5m"


def _rate(selector: str) -> str:
    return f"rate({selector}[{WINDOW}])"


def _record(name: str, expr: str) -> dict:
    return {"record": name, "expr": expr}


def _alert(name: str, expr: str, for_: str | None, severity: str, summary: str, description: str,
           **labels: str) -> dict:
    rule: dict = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **labels}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def _regex(values: Iterable[str]) -> str:
    return "|".join(values)


# --- the seed's golden signals and RED queries as recording rules ----------------------------


def recording_group() -> dict:
    """Pre-computed golden signals / RED (the seed's dashboard queries), per job and endpoint."""
    errors_5xx = f'{REQUESTS}{{status=~"5.."}}'
    errors_4xx_5xx = f'{REQUESTS}{{status=~"[45].."}}'
    rules = [
        # Traffic (the seed: `sum(rate(http_requests_total[5m])) by (job, endpoint)`).
        _record("job:http_requests:rate5m", f"sum by (job) ({_rate(REQUESTS)})"),
        _record("job_endpoint:http_requests:rate5m", f"sum by (job, endpoint) ({_rate(REQUESTS)})"),
        # Errors: the 5xx ratio the HighErrorRate alert uses, and the RED view's 4xx+5xx rate.
        _record("job:http_request_errors:rate5m", f"sum by (job) ({_rate(errors_5xx)})"),
        _record(
            "job:http_request_errors:ratio_rate5m",
            f"sum by (job) ({_rate(errors_5xx)}) / sum by (job) ({_rate(REQUESTS)})",
        ),
        _record("job:http_requests_4xx_5xx:rate5m", f"sum by (job) ({_rate(errors_4xx_5xx)})"),
    ]
    # Duration: p50/p95/p99 per job and per endpoint.
    for quantile, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        rules.append(_record(
            f"job:http_request_duration_seconds:{name}_{WINDOW}",
            f"histogram_quantile({quantile}, sum by (le, job) ({_rate(DURATION_BUCKET)}))",
        ))
        rules.append(_record(
            f"job_endpoint:http_request_duration_seconds:{name}_{WINDOW}",
            f"histogram_quantile({quantile}, sum by (le, job, endpoint) ({_rate(DURATION_BUCKET)}))",
        ))
    # Saturation: CPU utilisation per instance, 0..1 (the seed shows it as 100 - idle%).
    idle = 'node_cpu_seconds_total{mode="idle"}'
    rules.append(_record(
        "instance:node_cpu_utilisation:ratio_rate5m", f"1 - avg by (instance) ({_rate(idle)})"
    ))
    return {"name": "golden-signals", "interval": "30s", "rules": rules}


# --- the seed's application alerts -----------------------------------------------------------


def application_group(stack_jobs: Iterable[str]) -> dict:
    stack_jobs = list(stack_jobs)
    # The seed's `up == 0`, minus the stack's own jobs: StackComponentDown covers those, so one
    # outage pages once.
    up = f'up{{job!~"{_regex(stack_jobs)}"}}' if stack_jobs else "up"
    return {
        "name": "application",
        "interval": "30s",  # the seed's
        "rules": [
            _alert(
                "HighErrorRate",
                f'sum(rate({REQUESTS}{{status=~"5.."}}[5m])) by (job) / sum(rate({REQUESTS}[5m])) by (job) > 0.05',
                "5m", "critical",
                "High error rate detected",
                "{{ $labels.job }} has {{ $value | humanizePercentage }} error rate",
            ),
            _alert(
                "HighLatency",
                f"histogram_quantile(0.95, rate({DURATION_BUCKET}[5m])) > 1.0",
                "5m", "warning",
                "High latency detected",
                "P95 latency is {{ $value }}s",
            ),
            _alert(
                "ServiceDown",
                f"{up} == 0",
                "1m", "critical",
                "Service is down",
                "{{ $labels.job }} has been down for more than 1 minute",
            ),
        ],
    }


# --- self-monitoring of the stack ------------------------------------------------------------


def _failing(name: str, expr: str, tool: str, summary: str, description: str,
             severity: str = "warning", for_: str = "15m") -> dict:
    return _alert(name, expr, for_, severity, summary, description, component=tool)


def stack_group(settings: Settings, stack_jobs: Iterable[str],
                volume_stats_namespace: Optional[str] = None) -> dict:
    """Alerts about the stack itself, only for enabled components."""
    jobs = list(stack_jobs)
    on = settings.enabled
    rules: list[dict] = []
    if jobs:
        rules.append(_alert(
            "StackComponentDown",
            f'up{{job=~"{_regex(jobs)}"}} == 0',
            "2m", "critical",
            "Observability stack component is down",
            "{{ $labels.job }} ({{ $labels.instance }}) has not answered Prometheus' scrapes for 2 minutes.",
        ))
    rules.append(_failing(
        "PrometheusRuleEvaluationFailures",
        "increase(prometheus_rule_evaluation_failures_total[5m]) > 0",
        "prometheus", "Prometheus fails to evaluate rules",
        "{{ $value | humanize }} evaluations of rule group {{ $labels.rule_group }} failed in 5 minutes; "
        "alerts from it may be missing.",
        severity="critical", for_="10m",
    ))
    # Size retention counts blocks, WAL and head chunks against the limit (tsdb BeyondSizeRetention);
    # past it Prometheus deletes the oldest blocks, so history gets shorter than `retention.metrics`.
    rules.append(_failing(
        "PrometheusStorageNearSizeLimit",
        "(prometheus_tsdb_storage_blocks_bytes + prometheus_tsdb_wal_storage_size_bytes"
        " + prometheus_tsdb_head_chunks_storage_size_bytes)"
        " / (prometheus_tsdb_retention_limit_bytes > 0) > 0.9",
        "prometheus", "Prometheus storage is near its size limit",
        "TSDB uses {{ $value | humanizePercentage }} of the configured retention size; the oldest "
        "data is deleted early. Grow components.prometheus.storage.size or lower retention.metrics.",
        for_="30m",
    ))
    if on("alertmanager"):
        rules.append(_failing(
            "PrometheusAlertmanagerNotificationErrors",
            "rate(prometheus_notifications_errors_total[5m]) > 0",
            "prometheus", "Prometheus cannot send alerts to Alertmanager",
            "Sending alerts to {{ $labels.alertmanager }} fails.",
            severity="critical", for_="10m",
        ))
        rules.append(_failing(
            "AlertmanagerNotificationsFailing",
            "sum by (integration) (rate(alertmanager_notifications_failed_total[5m])) > 0",
            "alertmanager", "Alertmanager cannot deliver notifications",
            "Notifications through {{ $labels.integration }} fail; check the receiver's credentials "
            "and endpoint.",
            severity="critical", for_="10m",
        ))
    if on("mimir"):
        rules.append(_failing(
            "PrometheusRemoteWriteFailing",
            "rate(prometheus_remote_storage_samples_failed_total[5m]) > 0",
            "prometheus", "Prometheus cannot write samples to Mimir",
            "{{ $value | humanize }} samples/s fail to reach {{ $labels.url }}; long-term metrics have gaps.",
        ))
        rules.append(_failing(
            "MimirDiscardingSamples",
            "sum by (reason) (rate(cortex_discarded_samples_total[5m])) > 0",
            "mimir", "Mimir discards samples",
            "{{ $value | humanize }} samples/s discarded ({{ $labels.reason }}).",
        ))
    if on("loki"):
        rules.append(_failing(
            "LokiDiscardingLogs",
            "sum by (reason) (rate(loki_discarded_samples_total[5m])) > 0",
            "loki", "Loki discards log lines",
            "{{ $value | humanize }} lines/s discarded ({{ $labels.reason }}).",
        ))
    if on("tempo"):
        rules.append(_failing(
            "TempoDiscardingSpans",
            "sum by (reason) (rate(tempo_discarded_spans_total[5m])) > 0",
            "tempo", "Tempo discards spans",
            "{{ $value | humanize }} spans/s discarded ({{ $labels.reason }}).",
        ))
    if on("collector"):
        # Counter names gained a `_total` suffix when the collector's telemetry moved to the
        # OpenTelemetry SDK's Prometheus exporter; match both spellings.
        signals = "(spans|log_records|metric_points)(_total)?"
        rules.append(_failing(
            "CollectorExportFailing",
            f'sum by (exporter) (rate({{__name__=~"otelcol_exporter_send_failed_{signals}"}}[5m])) > 0',
            "collector", "The OpenTelemetry collector cannot export telemetry",
            "Exporter {{ $labels.exporter }} drops {{ $value | humanize }} items/s.",
        ))
        rules.append(_failing(
            "CollectorRefusingTelemetry",
            f'sum by (receiver) (rate({{__name__=~"otelcol_receiver_refused_{signals}"}}[5m])) > 0',
            "collector", "The OpenTelemetry collector refuses incoming telemetry",
            "Receiver {{ $labels.receiver }} refuses {{ $value | humanize }} items/s (usually memory "
            "pressure or a failing backend).",
        ))
    if volume_stats_namespace:
        # Only where the kubelet's volume stats exist (the platform says so); otherwise the
        # alert would stay silent.
        namespace = volume_stats_namespace
        rules.append(_failing(
            "StackVolumeFillingUp",
            f'kubelet_volume_stats_available_bytes{{namespace="{namespace}"}}'
            f' / kubelet_volume_stats_capacity_bytes{{namespace="{namespace}"}} < 0.10',
            "storage", "A stack data volume is almost full",
            "{{ $labels.persistentvolumeclaim }} has {{ $value | humanizePercentage }} space left.",
            for_="15m",
        ))
    return {"name": "stack", "rules": rules}


# --- teams -----------------------------------------------------------------------------------


def team_group(team: Team) -> dict:
    rules = []
    for rule in team.alert_rules:
        entry: dict = {"alert": rule.alert, "expr": rule.expr}
        if rule.for_:
            entry["for"] = rule.for_
        # `team` is forced: it is what routes the alert to the team's receiver.
        entry["labels"] = {**rule.labels, "team": team.name}
        if rule.annotations:
            entry["annotations"] = dict(rule.annotations)
        rules.append(entry)
    return {"name": f"team-{team.name}", "rules": rules}


def rule_files(settings: Settings, stack_jobs: Iterable[str], *,
               volume_stats_namespace: Optional[str] = None) -> dict[str, dict]:
    """{file name: rule file} for `prometheus/rules/`. `stack_jobs`: the stack's own scrape jobs;
    `volume_stats_namespace`: where kubelet volume stats exist (the platform's), if anywhere."""
    stack_jobs = list(stack_jobs)
    files = {
        "recording.yml": {"groups": [recording_group()]},
        "application.yml": {"groups": [application_group(stack_jobs)]},
        "stack.yml": {"groups": [stack_group(settings, stack_jobs, volume_stats_namespace)]},
    }
    for team in settings.teams:
        if team.alert_rules:
            files[f"team-{team.name}.yml"] = {"groups": [team_group(team)]}
    return files
