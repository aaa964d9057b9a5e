"""Prometheus rule files: the seed's alerts, golden-signal recording rules, stack self-monitoring
and each team's own rules.

Upstream references: Prometheus alerting and recording rules
(https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/,
https://prometheus.io/docs/prometheus/latest/configuration/recording_rules/) and the recording
rule naming convention `level:metric:operations`
(https://prometheus.io/docs/practices/rules/#naming-and-aggregation).

Application rules know two metric naming conventions (prometheus-client and OpenTelemetry HTTP
semantic conventions, see below) and keep each series' `team` label, so team routing works.

`rule_files(settings, stack_jobs)` returns {file name: rule-file dict}; `components.prometheus`
serialises them under `prometheus/rules/`. Everything is pure data: no Pulumi, no YAML strings.
Self-monitoring rules are only emitted for components that are enabled, so an alert never
watches a metric that cannot exist.
"""

from __future__ import annotations

from typing import Iterable, Optional

from ..config.model import Settings, Team

# Two naming conventions for the same HTTP server signals.
#
# prometheus-client (the seed): `http_requests_total{status, endpoint}` and the histogram
# `http_request_duration_seconds`, scraped from the service; a team's scrape target carries
# `team=<name>` from the scrape config.
#
# OpenTelemetry HTTP semantic conventions: the histogram `http.server.request.duration` (unit `s`)
# with `http.response.status_code` and `http.route`, sent by OTLP to the collector and remote-written
# by its `prometheusremotewrite` exporter. At the pinned collector (0.141.0: exporter config default
# `add_metric_suffixes: true`; pkg/translator/prometheusremotewrite uses otlptranslator v1.0.0
# `MetricNamer{WithMetricSuffixes: true}` and `LabelNamer`) that arrives as
# `http_server_request_duration_seconds_{bucket,sum,count}` with labels `http_response_status_code`,
# `http_route`, `le`; the resource's `service.name` (with `service.namespace/` when set) becomes
# `job`, `service.instance.id` becomes `instance`, and no other resource attribute becomes a label
# (they go to `target_info`). So these series carry no `team`: it is taken from the team scrape
# target with the same `job` (`up{team!=""}`), which is why an OpenTelemetry service's
# `service.name` must equal its scrape job's name (examples/python-service/README.md).
REQUESTS = "http_requests_total"
DURATION_BUCKET = "http_request_duration_seconds_bucket"
STATUS = "status"
ENDPOINT = "endpoint"
OTEL_DURATION = "http_server_request_duration_seconds"
OTEL_COUNT = f"{OTEL_DURATION}_count"
OTEL_BUCKET = f"{OTEL_DURATION}_bucket"
OTEL_STATUS = "http_response_status_code"
OTEL_ROUTE = "http_route"
WINDOW = "5m"
# Every application aggregation keeps these, so a team's alerts reach the team's receiver.
BY = ("job", "team")
# Teams by job, from the team scrape targets (`group` is 1 whatever `up` is, so a down target
# still names its team).
TEAM_OF_JOB = 'group by (job, team) (up{team!=""})'

_5XX = '"5.."'
_4XX_5XX = '"[45].."'


def _rate(selector: str) -> str:
    return f"rate({selector}[{WINDOW}])"


def _sel(metric: str, label: str | None = None, regex: str | None = None) -> str:
    return f"{metric}{{{label}=~{regex}}}" if label else metric


def _by(*extra: str) -> str:
    return ", ".join((*extra, *BY)) if extra and extra[0] == "le" else ", ".join((*BY, *extra))


def _with_team(vector: str) -> str:
    """An OpenTelemetry series vector with the `team` of the team scrape target of the same job;
    series of jobs no team scrapes pass through unchanged (team-less)."""
    return f"({vector} * on (job) group_left (team) {TEAM_OF_JOB} or {vector} unless on (job) {TEAM_OF_JOB})"


def _otel_sum(metric: str, by: str, status_regex: str | None = None) -> str:
    rate = _rate(_sel(metric, OTEL_STATUS, status_regex) if status_regex else metric)
    return f"sum by ({by}) ({_with_team(rate)})"


def requests_rate(*extra: str, status_regex: str | None = None) -> str:
    """Requests/s per job and team (and `extra` labels), for both conventions. OpenTelemetry's
    `http_route` is renamed `endpoint` so both conventions group alike."""
    prom = f"sum by ({_by(*extra)}) ({_rate(_sel(REQUESTS, STATUS, status_regex) if status_regex else REQUESTS)})"
    if ENDPOINT in extra:
        renamed = tuple(OTEL_ROUTE if e == ENDPOINT else e for e in extra)
        otel = (f'label_replace({_otel_sum(OTEL_COUNT, _by(*renamed), status_regex)}, '
                f'"{ENDPOINT}", "$1", "{OTEL_ROUTE}", "(.*)")')
        otel = f"sum without ({OTEL_ROUTE}) ({otel})"
    else:
        otel = _otel_sum(OTEL_COUNT, _by(*extra), status_regex)
    return f"({prom} or {otel})"


def error_ratio() -> str:
    """5xx / all per job and team, each convention divided by its own total."""
    prom = (f"sum by ({_by()}) ({_rate(_sel(REQUESTS, STATUS, _5XX))})"
            f" / sum by ({_by()}) ({_rate(REQUESTS)})")
    otel = f"{_otel_sum(OTEL_COUNT, _by(), _5XX)} / {_otel_sum(OTEL_COUNT, _by())}"
    return f"({prom} or {otel})"


def latency_quantile(quantile: float, *extra: str) -> str:
    prom = f"sum by ({_by('le', *extra)}) ({_rate(DURATION_BUCKET)})"
    if ENDPOINT in extra:
        renamed = tuple(OTEL_ROUTE if e == ENDPOINT else e for e in extra)
        otel = (f'sum without ({OTEL_ROUTE}) (label_replace({_otel_sum(OTEL_BUCKET, _by("le", *renamed))}, '
                f'"{ENDPOINT}", "$1", "{OTEL_ROUTE}", "(.*)"))')
    else:
        otel = _otel_sum(OTEL_BUCKET, _by("le", *extra))
    return f"histogram_quantile({quantile}, {prom} or {otel})"


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
    """Pre-computed golden signals / RED (the seed's dashboard queries) per job and team, and per
    endpoint, for both conventions; the dashboards query these."""
    rules = [
        # Traffic (the seed: `sum(rate(http_requests_total[5m])) by (job, endpoint)`).
        _record("job:http_requests:rate5m", requests_rate()),
        _record("job_endpoint:http_requests:rate5m", requests_rate(ENDPOINT)),
        # Errors: the 5xx ratio the HighErrorRate alert uses, and the RED view's 4xx+5xx rate.
        _record("job:http_request_errors:rate5m", requests_rate(status_regex=_5XX)),
        _record("job:http_request_errors:ratio_rate5m", error_ratio()),
        _record("job:http_requests_4xx_5xx:rate5m", requests_rate(status_regex=_4XX_5XX)),
    ]
    # Duration: p50/p95/p99 per job and per endpoint.
    for quantile, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        rules.append(_record(f"job:http_request_duration_seconds:{name}_{WINDOW}", latency_quantile(quantile)))
        rules.append(_record(f"job_endpoint:http_request_duration_seconds:{name}_{WINDOW}",
                             latency_quantile(quantile, ENDPOINT)))
    # Saturation: CPU utilisation per instance, 0..1 (the seed shows it as 100 - idle%). Needs a
    # node exporter among the scrape targets; the service's own CPU comes with either client.
    idle = 'node_cpu_seconds_total{mode="idle"}'
    rules.append(_record(
        "instance:node_cpu_utilisation:ratio_rate5m", f"1 - avg by (instance) ({_rate(idle)})"
    ))
    rules.append(_record(
        "job:process_cpu_seconds:rate5m", f"sum by ({_by()}) ({_rate('process_cpu_seconds_total')})"
    ))
    return {"name": "golden-signals", "interval": "30s", "rules": rules}


# --- the seed's application alerts -----------------------------------------------------------


def application_group(stack_jobs: Iterable[str]) -> dict:
    stack_jobs = list(stack_jobs)
    # The seed's `up == 0`, minus the stack's own jobs: StackComponentDown covers those, so one
    # outage pages once. `up` of a team scrape target carries `team`.
    up = f'up{{job!~"{_regex(stack_jobs)}"}}' if stack_jobs else "up"
    return {
        "name": "application",
        "interval": "30s",  # the seed's
        "rules": [
            # The seed aggregated `by (job)`, which dropped `team`: a team's error-rate alert
            # then went to the global critical route instead of the team's receiver.
            _alert(
                "HighErrorRate",
                f"{error_ratio()} > 0.05",
                "5m", "critical",
                "High error rate detected",
                "{{ $labels.job }} has {{ $value | humanizePercentage }} error rate",
            ),
            # The seed's per-series p95, per job and team (one alert per service, not per
            # method/endpoint/instance series).
            _alert(
                "HighLatency",
                f"{latency_quantile(0.95)} > 1.0",
                "5m", "warning",
                "High latency detected",
                "P95 latency of {{ $labels.job }} is {{ $value | humanizeDuration }}",
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
        # One rate per signal: `rate` drops the metric name, so a single rate over all three
        # names yields duplicate label sets (receiver `otlp` takes spans, logs and metrics) and
        # the rule fails to evaluate ("vector cannot contain metrics with the same labelset",
        # seen with the real collector in tests/test_python_service_e2e.py).
        def per_signal(prefix: str, by: str) -> str:
            return " or ".join(
                f'sum by ({by}) (rate({{__name__=~"{prefix}_{signal}(_total)?"}}[5m])) > 0'
                for signal in ("spans", "log_records", "metric_points"))

        rules.append(_failing(
            "CollectorExportFailing",
            per_signal("otelcol_exporter_send_failed", "exporter"),
            "collector", "The OpenTelemetry collector cannot export telemetry",
            "Exporter {{ $labels.exporter }} drops {{ $value | humanize }} items/s.",
        ))
        rules.append(_failing(
            "CollectorRefusingTelemetry",
            per_signal("otelcol_receiver_refused", "receiver"),
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
