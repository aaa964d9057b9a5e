"""Prometheus: rendered config and rules per scenario, the workload, and promtool's verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from observability_stack.components import rules, sizing
from observability_stack.components.render import render_tool, workloads_of
from observability_stack.components.workload import HealthCheck
from observability_stack.config.durations import parse_bytes
from observability_stack.config.model import job_name
from tests.scenarios import ALL_TOOLS, SECRET, SETTINGS_CASES, settings_for
from tests.tools import run, with_service_account


def _config(name: str) -> dict:
    return yaml.safe_load(render_tool("prometheus", settings_for(name))["prometheus/prometheus.yml"])


def _jobs(doc: dict) -> dict[str, dict]:
    return {job["job_name"]: job for job in doc["scrape_configs"]}


def _rules(name: str) -> dict[str, list[dict]]:
    """{file name: [rules of all its groups]}."""
    out = {}
    for path, text in render_tool("prometheus", settings_for(name)).items():
        if path.startswith("prometheus/rules/"):
            out[path.rsplit("/", 1)[1]] = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"]]
    return out


def _flag(args: tuple[str, ...], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    assert len(values) == 1, (name, args)
    return values[0]


# --- prometheus.yml ---------------------------------------------------------------------------


def test_global_and_external_labels():
    doc = _config("prod-receivers")
    assert doc["global"]["scrape_interval"] == doc["global"]["evaluation_interval"] == "15s"
    # A prod pair (highAvailability): Mimir's HA tracker labels, the replica from the pod name.
    assert doc["global"]["external_labels"] == {"cluster": "prod", "environment": "prod", "__replica__": "${POD_NAME}"}
    assert _config("teams")["global"]["external_labels"]["cluster"] == "payments-prod"
    assert _config("defaults-dev")["global"]["external_labels"] == {"cluster": "dev", "environment": "dev"}
    assert doc["rule_files"] == ["rules/*.yml"]


def test_every_enabled_component_is_scraped():
    jobs = _jobs(_config("defaults-dev"))
    dev = settings_for("defaults-dev")
    for tool in ALL_TOOLS:
        assert (job_name(tool) in jobs) == dev.enabled(tool), tool
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["localhost:9090"]}]
    assert jobs["alertmanager"]["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    assert jobs["loki"]["static_configs"] == [{"targets": ["loki:3100"]}]
    assert jobs["tempo"]["static_configs"] == [{"targets": ["tempo:3200"]}]
    assert jobs["mimir"]["static_configs"] == [{"targets": ["mimir:8080"]}]
    assert jobs["pyroscope"]["static_configs"] == [{"targets": ["pyroscope:4040"]}]
    assert jobs["grafana"]["static_configs"] == [{"targets": ["grafana:3000"]}]
    assert jobs["collector"]["static_configs"] == [{"targets": ["collector:8888"]}]
    # Docker: the host exporters by their service names (no node discovery there).
    assert jobs["node-exporter"]["static_configs"] == [{"targets": ["node-exporter:9100"]}]
    assert jobs["cadvisor"]["static_configs"] == [{"targets": ["cadvisor:8080"]}]


def test_minimal_stack_scrapes_only_what_runs():
    doc = _config("prometheus-only")
    assert set(_jobs(doc)) == {"prometheus", "alertmanager"}
    assert "remote_write" not in doc
    assert doc["alerting"]["alertmanagers"][0]["static_configs"] == [{"targets": ["alertmanager:9093"]}]


def test_no_alerting_without_alertmanager():
    from observability_stack.config import load_settings

    s = load_settings({"components": {"alertmanager": {"enabled": False}}}, stack="dev")
    doc = yaml.safe_load(render_tool("prometheus", s)["prometheus/prometheus.yml"])
    assert "alerting" not in doc and "alertmanager" not in _jobs(doc)
    stack_rules = yaml.safe_load(render_tool("prometheus", s)["prometheus/rules/stack.yml"])["groups"][0]["rules"]
    assert not [r for r in stack_rules if "alertmanager" in r["expr"]]


def test_remote_write_iff_mimir():
    assert _config("defaults-dev")["remote_write"] == [{"url": "http://mimir:8080/api/v1/push", "send_exemplars": True}]
    assert "remote_write" not in _config("prometheus-only")


def test_kubernetes_pods_job_only_on_kubernetes():
    assert "kubernetes-pods" not in _jobs(_config("defaults-dev"))
    job = _jobs(_config("prod-receivers"))["kubernetes-pods"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    relabel = job["relabel_configs"]
    keep = relabel[0]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert keep["action"] == "keep" and keep["regex"] == "true"
    by_target = {r.get("target_label"): r for r in relabel}
    assert by_target["__metrics_path__"]["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_path"]
    address = by_target["__address__"]
    assert address["source_labels"] == ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"]
    assert address["replacement"] == "$1:$2"
    assert by_target["namespace"]["source_labels"] == ["__meta_kubernetes_namespace"]
    assert by_target["pod"]["source_labels"] == ["__meta_kubernetes_pod_name"]


def test_team_scrape_targets_carry_the_team_label():
    jobs = _jobs(_config("teams"))
    payments = jobs["payments-api"]
    assert payments["metrics_path"] == "/internal/metrics"
    assert payments["scrape_interval"] == "5s"
    assert payments["static_configs"] == [{"targets": ["payments-api.payments.svc:8000"], "labels": {"team": "payments"}}]
    checkout = jobs["checkout-api"]
    assert "scrape_interval" not in checkout
    assert checkout["static_configs"][0]["labels"] == {"team": "checkout"}
    assert checkout["static_configs"][0]["targets"] == ["checkout:8000", "checkout-2:8000"]


# --- rules ------------------------------------------------------------------------------------


def test_seed_alerts():
    app = {r["alert"]: r for r in _rules("defaults-dev")["application.yml"]}
    assert set(app) == {"HighErrorRate", "HighLatency", "ServiceDown"}
    assert app["HighErrorRate"]["labels"] == {"severity": "critical"} and app["HighErrorRate"]["for"] == "5m"
    assert "> 0.05" in app["HighErrorRate"]["expr"] and 'status=~"5.."' in app["HighErrorRate"]["expr"]
    assert app["HighLatency"]["labels"] == {"severity": "warning"} and "> 1.0" in app["HighLatency"]["expr"]
    assert "histogram_quantile(0.95" in app["HighLatency"]["expr"]
    assert app["ServiceDown"]["labels"] == {"severity": "critical"} and app["ServiceDown"]["for"] == "1m"
    assert app["ServiceDown"]["annotations"]["description"] == "{{ $labels.job }} has been down for more than 1 minute"
    assert app["HighErrorRate"]["annotations"]["description"] == (
        "{{ $labels.job }} has {{ $value | humanizePercentage }} error rate")


def test_recording_rules_follow_the_naming_convention():
    recorded = [r["record"] for r in _rules("defaults-dev")["recording.yml"]]
    for name in ("job:http_requests:rate5m", "job:http_request_errors:ratio_rate5m",
                 "job_endpoint:http_request_duration_seconds:p95_5m", "job_endpoint:http_requests:rate5m"):
        assert name in recorded
    for name in recorded:
        assert len(name.split(":")) == 3, name


def test_stack_rules_follow_enabled_components():
    full = {r["alert"]: r for r in _rules("prod-receivers")["stack.yml"]}
    for alert in ("StackComponentDown", "PrometheusRuleEvaluationFailures", "AlertmanagerNotificationsFailing",
                  "PrometheusRemoteWriteFailing", "LokiDiscardingLogs", "TempoDiscardingSpans",
                  "CollectorExportFailing", "CollectorRefusingTelemetry", "PrometheusStorageNearSizeLimit",
                  "StackVolumeFillingUp"):
        assert alert in full, alert
    assert 'namespace="observability"' in full["StackVolumeFillingUp"]["expr"]
    prod = settings_for("prod-receivers")
    for tool in ALL_TOOLS:
        assert (job_name(tool) in full["StackComponentDown"]["expr"]) == prod.enabled(tool), tool

    minimal = {r["alert"]: r for r in _rules("prometheus-only")["stack.yml"]}
    assert minimal["StackComponentDown"]["expr"] == 'up{job=~"prometheus|alertmanager"} == 0'
    for alert in ("PrometheusRemoteWriteFailing", "LokiDiscardingLogs", "TempoDiscardingSpans",
                  "CollectorExportFailing", "StackVolumeFillingUp"):
        assert alert not in minimal
    text = "\n".join(r["expr"] for r in minimal.values())
    for absent in ("loki_", "tempo_", "otelcol_", "cortex_", "remote_storage"):
        assert absent not in text


def test_service_down_leaves_stack_jobs_to_stack_component_down():
    app = {r["alert"]: r for r in _rules("prometheus-only")["application.yml"]}
    assert app["ServiceDown"]["expr"] == 'up{job!~"prometheus|alertmanager"} == 0'


def test_team_rules_have_their_own_file_and_forced_label():
    files = _rules("teams")
    assert "team-payments.yml" in files and "team-checkout.yml" not in files  # checkout has no rules
    by_name = {r["alert"]: r for r in files["team-payments.yml"]}
    assert by_name["PaymentsFailing"]["labels"] == {"severity": "critical", "team": "payments"}
    assert by_name["PaymentsFailing"]["for"] == "5m"
    assert by_name["PaymentsSlow"]["labels"] == {"severity": "warning", "team": "payments"}
    assert "for" not in by_name["PaymentsSlow"]
    groups = yaml.safe_load(render_tool("prometheus", settings_for("teams"))["prometheus/rules/team-payments.yml"])["groups"]
    assert [g["name"] for g in groups] == ["team-payments"]


# --- flags and workload -----------------------------------------------------------------------


def test_retention_flags_follow_settings():
    dev = workloads_of("prometheus", settings_for("defaults-dev"))[0]
    # dev: 7d metrics, but Mimir holds the long-term copy -> Prometheus keeps 2d locally.
    assert _flag(dev.args, "storage.tsdb.retention.time") == "2d"
    minimal = settings_for("prometheus-only")
    wl = workloads_of("prometheus", minimal)[0]
    assert _flag(wl.args, "storage.tsdb.retention.time") == "10d" == sizing.local_metrics_retention(minimal)
    size = _flag(wl.args, "storage.tsdb.retention.size")
    assert size.endswith("MB")
    volume = parse_bytes(wl.data.size)
    assert wl.data.size == sizing.volume_size(minimal, "prometheus")
    assert 0.80 * volume <= int(size[:-2]) * 2**20 <= 0.86 * volume


def test_explicit_volume_size_drives_size_retention():
    from observability_stack.config import load_settings

    s = load_settings({"components": {"prometheus": {"storage": {"size": "100Gi"}}}}, stack="dev")
    wl = workloads_of("prometheus", s)[0]
    assert wl.data.size == "100Gi"
    assert _flag(wl.args, "storage.tsdb.retention.size") == f"{int(100 * 1024 * 0.85)}MB"


def test_flags():
    args = workloads_of("prometheus", settings_for("prod-receivers"))[0].args
    assert _flag(args, "config.file") == "/etc/prometheus/prometheus.yml"
    assert _flag(args, "storage.tsdb.path") == "/prometheus"
    assert _flag(args, "enable-feature") == "exemplar-storage"
    assert "--web.enable-remote-write-receiver" in args
    assert not [a for a in args if a.startswith("--web.enable-lifecycle")]


def test_workload():
    wl = workloads_of("prometheus", settings_for("prod-receivers"))[0]
    assert wl.name == "prometheus" and wl.image == "prom/prometheus:v3.16.0"
    assert (wl.uid, wl.gid) == (65534, 65534)
    assert wl.read_only_root and wl.data.path == "/prometheus"
    assert wl.health == HealthCheck.http("/-/ready", 9090, client="wget")
    assert wl.port("http").port == 9090 and wl.port("http").publish
    assert wl.discovers_pods
    # Every enabled tool but itself and the per-node exporter (scraped at node addresses), and the
    # collector's sampling tier (scraped under the `collector` job; highAvailability), and
    # Pyroscope's microservices (scraped under the `pyroscope` job).
    prod = settings_for("prod-receivers")
    pyroscope = {f"pyroscope-{c}" for c in ("distributor", "query-frontend", "query-scheduler", "querier",
                                            "store-gateway", "compactor")}
    assert {e.service for e in wl.talks_to} == {job_name(t) for t in ALL_TOOLS if prod.enabled(t)} - {
        "prometheus", "node-exporter"} | {"collector-sampling"} | pyroscope
    assert {10250, 9100} <= set(wl.egress_ports)
    paths = {f.path for f in wl.config_files}
    assert "/etc/prometheus/prometheus.yml" in paths
    assert {"/etc/prometheus/rules/application.yml", "/etc/prometheus/rules/stack.yml",
            "/etc/prometheus/rules/recording.yml"} <= paths

    dev = workloads_of("prometheus", settings_for("defaults-dev"))[0]
    assert not dev.discovers_pods
    minimal = workloads_of("prometheus", settings_for("prometheus-only"))[0]
    assert {e.address for e in minimal.talks_to} == {"alertmanager:9093"}


@pytest.mark.parametrize("name", SETTINGS_CASES)
def test_render_is_pure_and_secret_free(name):
    s = settings_for(name)
    first, second = render_tool("prometheus", s), render_tool("prometheus", s)
    assert first == second
    for text in first.values():
        assert SECRET not in text
        yaml.safe_load(text)


def test_rule_files_api():
    files = rules.rule_files(settings_for("prometheus-only"), ["prometheus", "alertmanager"])
    assert set(files) == {"recording.yml", "application.yml", "stack.yml"}


# --- promtool, the judge ----------------------------------------------------------------------


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return tmp_path / "prometheus"


@pytest.mark.tools
@pytest.mark.parametrize("name", SETTINGS_CASES)
def test_promtool_check_config(name, tmp_path, promtool):
    files = with_service_account(render_tool("prometheus", settings_for(name)), tmp_path)
    directory = _write(tmp_path, files)
    result = run([promtool, "check", "config", str(directory / "prometheus.yml")])
    # rule_files are relative to the config: promtool must have found and checked every one.
    for rel in files:
        if rel.startswith("prometheus/rules/"):
            assert rel.rsplit("/", 1)[1] in result.stdout + result.stderr


@pytest.mark.tools
@pytest.mark.parametrize("name", SETTINGS_CASES)
def test_promtool_check_rules(name, tmp_path, promtool):
    directory = _write(tmp_path, render_tool("prometheus", settings_for(name)))
    rule_files = sorted(str(p) for p in (directory / "rules").glob("*.yml"))
    assert rule_files
    run([promtool, "check", "rules", *rule_files])


@pytest.mark.tools
def test_promtool_rule_unit_tests(tmp_path, promtool):
    """The rules behave: the seed's alerts fire, stack outages page once, team labels stick."""
    directory = _write(tmp_path, render_tool("prometheus", settings_for("teams")))
    tests = {
        "rule_files": sorted(str(p) for p in (directory / "rules").glob("*.yml")),
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": "30s",
                "input_series": [
                    {"series": 'http_requests_total{job="shop", status="500"}', "values": "0+60x40"},
                    {"series": 'http_requests_total{job="shop", status="200"}', "values": "0+540x40"},
                    {"series": 'up{job="shop", instance="shop:8000"}', "values": "0x40"},
                    {"series": 'up{job="loki", instance="loki:3100"}', "values": "0x40"},
                    {"series": "payments_latency_seconds", "values": "5x40"},
                ],
                "promql_expr_test": [
                    {"expr": "job:http_request_errors:ratio_rate5m", "eval_time": "10m",
                     "exp_samples": [{"labels": 'job:http_request_errors:ratio_rate5m{job="shop"}', "value": 0.1}]},
                ],
                "alert_rule_test": [
                    {"alertname": "HighErrorRate", "eval_time": "15m", "exp_alerts": [{
                        "exp_labels": {"severity": "critical", "job": "shop"},
                        "exp_annotations": {"summary": "High error rate detected",
                                            "description": "shop has 10% error rate"},
                    }]},
                    {"alertname": "ServiceDown", "eval_time": "5m", "exp_alerts": [{
                        "exp_labels": {"severity": "critical", "job": "shop", "instance": "shop:8000"},
                        "exp_annotations": {"summary": "Service is down",
                                            "description": "shop has been down for more than 1 minute"},
                    }]},
                    {"alertname": "StackComponentDown", "eval_time": "5m", "exp_alerts": [{
                        "exp_labels": {"severity": "critical", "job": "loki", "instance": "loki:3100"},
                        "exp_annotations": {
                            "summary": "Observability stack component is down",
                            "description": "loki (loki:3100) has not answered Prometheus' scrapes for 2 minutes.",
                        },
                    }]},
                    {"alertname": "PaymentsSlow", "eval_time": "1m", "exp_alerts": [{
                        "exp_labels": {"severity": "warning", "team": "payments"},
                    }]},
                ],
            },
        ],
    }
    test_file = tmp_path / "rules.test.yml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    run([promtool, "test", "rules", str(test_file)])
