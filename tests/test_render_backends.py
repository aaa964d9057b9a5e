"""Loki, Tempo, Mimir, Pyroscope, Grafana (+ dashboards) and the collector: rendered configs and
workloads per scenario.

Each per-environment knob must land where it should and nowhere else; disabled tools produce
nothing and are not referenced by the others; datasource uids are fixed and every link points
at an existing one; the seed's PromQL is in the dashboards; no secret reaches a rendered file.
The collector configs are also checked by a real collector (`validate`) when one is available.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any, Iterator

import pytest
import yaml

from observability_stack.components import collector, dashboards, grafana, loki, mimir, pyroscope, sizing, tempo
from observability_stack.components.render import render_all, render_tool, workloads_of
from observability_stack.components.workload import HealthCheck, SecretFile, pinned_versions
from observability_stack.config import ConfigError, load_settings
from tests import tools
from tests.scenarios import EXAMPLE_BUCKET, SECRET, settings_for

MINE = ("loki", "tempo", "mimir", "pyroscope", "grafana", "collector")
MODULES = {"loki": loki, "tempo": tempo, "mimir": mimir, "pyroscope": pyroscope, "collector": collector}


def custom(environment: str = "dev", **raw: Any):
    """Settings for `environment` with stack config `raw` (prod gets the receivers it requires)."""
    if environment == "prod":
        hook = {"webhook": {"url": SECRET + "http://sink.invalid/hook"}}
        raw.setdefault("alerting", {"receivers": [{"name": "pager", **hook}, {"name": "chat", **hook}],
                                    "routes": {"critical": "pager", "warning": "chat"}})
        if raw.get("highAvailability", True) and raw.get("target", "kubernetes") == "kubernetes":
            raw.setdefault("objectStorage", EXAMPLE_BUCKET)
    return load_settings(raw, stack=environment, secret_keys=["alerting"])


def disabled(*tools: str, environment: str = "dev"):
    return custom(environment, components={t: {"enabled": False} for t in tools})


def _load(text: str, path: str) -> Any:
    return json.loads(text) if path.endswith(".json") else yaml.safe_load(text)


def _doc(s, path: str) -> Any:
    return _load(render_all(s)[path], path)


def _changed(a, b) -> set[str]:
    fa, fb = render_all(a), render_all(b)
    return {p for p in set(fa) | set(fb) if fa.get(p) != fb.get(p)}


def _walk(node: Any, key: str) -> Iterator[Any]:
    """Every value stored under `key`, at any depth."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


def _mine(files: dict[str, str]) -> dict[str, str]:
    return {p: t for p, t in files.items() if p.split("/", 1)[0] in MINE}


# --- per-environment knobs land in one place --------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_retention_logs_changes_only_loki(environment):
    base = custom(environment)
    changed = custom(environment, retention={"logs": "45d"})
    assert _changed(base, changed) == {"loki/loki.yaml"}
    assert _doc(changed, "loki/loki.yaml")["limits_config"]["retention_period"] == "1080h"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_retention_traces_changes_only_tempo(environment):
    base = custom(environment)
    changed = custom(environment, retention={"traces": "3d"})
    assert _changed(base, changed) == {"tempo/tempo.yaml"}
    assert _doc(changed, "tempo/tempo.yaml")["compactor"]["compaction"]["block_retention"] == "72h"


def test_retention_profiles_changes_only_pyroscope():
    assert _changed(custom(), custom(retention={"profiles": "10d"})) == {"pyroscope/config.yaml"}
    assert _doc(custom(retention={"profiles": "10d"}), "pyroscope/config.yaml")["limits"][
        "compactor_blocks_retention_period"] == "240h"


def test_retention_metrics_reaches_mimir():
    doc = _doc(custom(retention={"metrics": "90d"}), "mimir/mimir.yaml")
    assert doc["limits"]["compactor_blocks_retention_period"] == "2160h"
    changed = _changed(custom(), custom(retention={"metrics": "90d"}))
    assert not {p for p in changed if p.split("/", 1)[0] in MINE} - {"mimir/mimir.yaml"}


def single_node_prod():
    """Prod with its data on its own disks (no highAvailability, no object storage): the
    filesystem shape these tests check (tests/test_object_storage.py checks the bucket one)."""
    return custom("prod", highAvailability=False)


def sampling_file(s) -> str:
    """Where tail sampling happens: the gateway, or the sampling tier when the collector runs in
    two tiers (highAvailability, the prod preset)."""
    return "collector/sampling.yaml" if s.replicas("collector") > 1 else "collector/config.yaml"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_sampling_changes_only_collector_config(environment):
    base = custom(environment)
    changed = custom(environment, sampling={"traces": 0.25})
    assert _changed(base, changed) == {sampling_file(base)}
    assert sampling_file(base) == {"dev": "collector/config.yaml", "prod": "collector/sampling.yaml"}[environment]
    policies = _doc(changed, sampling_file(changed))["processors"]["tail_sampling"]["policies"]
    assert {p["name"]: p for p in policies}["ratio"]["probabilistic"]["sampling_percentage"] == 25.0


def test_preset_sampling_and_retention():
    prod = settings_for("prod-receivers")
    policies = _doc(prod, sampling_file(prod))["processors"]["tail_sampling"]["policies"]
    assert [p["type"] for p in policies] == ["status_code", "latency", "probabilistic"]
    assert policies[0]["status_code"] == {"status_codes": ["ERROR"]}
    assert policies[1]["latency"] == {"threshold_ms": 1000}
    assert policies[2]["probabilistic"] == {"sampling_percentage": 5.0}
    assert _doc(prod, "loki/loki.yaml")["limits_config"]["retention_period"] == "720h"
    assert _doc(prod, "tempo/tempo.yaml")["compactor"]["compaction"]["block_retention"] == "336h"
    dev_policies = _doc(settings_for("defaults-dev"), "collector/config.yaml")["processors"]["tail_sampling"]["policies"]
    assert dev_policies[2]["probabilistic"] == {"sampling_percentage": 100.0}


def test_sampling_keep_errors_and_threshold():
    s = custom(sampling={"keepErrors": False, "slowTraceThreshold": "2500ms"})
    policies = _doc(s, "collector/config.yaml")["processors"]["tail_sampling"]["policies"]
    assert [p["name"] for p in policies] == ["slow", "ratio"]
    assert policies[0]["latency"]["threshold_ms"] == 2500


# --- disabled tools: absent and unreferenced --------------------------------------------------


@pytest.mark.parametrize("tool", MINE)
def test_disabled_tool_renders_nothing(tool):
    files = render_all(disabled(tool))
    assert not [p for p in files if p.startswith(f"{tool}/")]


def test_mimir_disabled_everything_writes_to_prometheus():
    files = _mine(render_all(disabled("mimir")))
    assert not [p for p, text in files.items() if "mimir" in text]
    tempo_doc = yaml.safe_load(files["tempo/tempo.yaml"])
    assert tempo_doc["metrics_generator"]["storage"]["remote_write"] == [
        {"url": "http://prometheus:9090/api/v1/write", "send_exemplars": True}]
    col = yaml.safe_load(files["collector/config.yaml"])
    assert col["exporters"]["prometheusremotewrite"]["endpoint"] == "http://prometheus:9090/api/v1/write"
    ds = yaml.safe_load(files["grafana/provisioning/datasources/datasources.yaml"])["datasources"]
    assert [d["uid"] for d in ds if d["isDefault"]] == ["prometheus"]


def test_prometheus_is_the_metrics_sink_and_mimir_the_default_datasource():
    # OTLP metrics and span metrics go where the rules are evaluated (Prometheus), which forwards
    # everything to Mimir; Grafana reads the long-term copy (components/wiring.py).
    files = render_all(custom())
    tempo_doc = yaml.safe_load(files["tempo/tempo.yaml"])
    assert tempo_doc["metrics_generator"]["storage"]["remote_write"][0]["url"] == "http://prometheus:9090/api/v1/write"
    col = yaml.safe_load(files["collector/config.yaml"])
    assert col["exporters"]["prometheusremotewrite"]["endpoint"] == "http://prometheus:9090/api/v1/write"
    prom = yaml.safe_load(files["prometheus/prometheus.yml"])
    assert prom["remote_write"][0]["url"] == "http://mimir:8080/api/v1/push"
    ds = yaml.safe_load(files["grafana/provisioning/datasources/datasources.yaml"])["datasources"]
    assert [d["uid"] for d in ds if d["isDefault"]] == ["mimir"]
    assert {d["uid"]: d["url"] for d in ds}["mimir"] == "http://mimir:8080/prometheus"
    # Without Prometheus, Mimir takes the writes itself.
    files = render_all(disabled("prometheus", "alertmanager"))
    col = yaml.safe_load(files["collector/config.yaml"])
    assert col["exporters"]["prometheusremotewrite"]["endpoint"] == "http://mimir:8080/api/v1/push"


def test_no_metrics_backend_means_no_generator_no_metrics_pipeline_no_dashboards():
    s = disabled("mimir", "prometheus", "alertmanager")
    files = render_all(s)
    assert "metrics_generator" not in yaml.safe_load(files["tempo/tempo.yaml"])
    assert "overrides" not in yaml.safe_load(files["tempo/tempo.yaml"])
    col = yaml.safe_load(files["collector/config.yaml"])
    assert "metrics" not in col["service"]["pipelines"] and "prometheusremotewrite" not in col["exporters"]
    assert not [p for p in files if p.startswith("grafana/dashboards/")]
    tempo_ds = {d["uid"]: d for d in _datasources(s)}["tempo"]["jsonData"]
    assert "tracesToMetrics" not in tempo_ds and "serviceMap" not in tempo_ds


@pytest.mark.parametrize("tool", ["tempo", "loki", "pyroscope", "alertmanager", "prometheus", "mimir"])
def test_disabled_tool_is_not_referenced(tool):
    # Alertmanager needs Prometheus (a config rule), so they go together.
    files = _mine(render_all(disabled(tool, *(["alertmanager"] if tool == "prometheus" else []))))
    for path, text in files.items():
        if path.endswith(".json") and tool in ("tempo", "loki", "pyroscope"):
            continue  # dashboards only reference the metrics datasource; checked below
        doc = _load(text, path)
        assert tool not in set(_walk(doc, "datasourceUid")), path
        assert tool not in set(_walk(doc, "uid")), path
    links = [v for p, t in files.items() for v in _walk(_load(t, p), "datasourceUid")]
    assert tool not in links


def test_tempo_disabled_collector_and_grafana():
    s = disabled("tempo")
    col = _doc(s, "collector/config.yaml")
    assert "traces" not in col["service"]["pipelines"]
    assert "tail_sampling" not in col["processors"] and "otlp/tempo" not in col["exporters"]
    by_uid = {d["uid"]: d for d in _datasources(s)}
    assert "derivedFields" not in by_uid["loki"]["jsonData"]
    assert "exemplarTraceIdDestinations" not in by_uid["mimir"]["jsonData"]


def test_loki_disabled_no_log_agent_no_logs_pipeline():
    s = disabled("loki")
    files = render_all(s)
    assert "collector/agent.yaml" not in files
    assert "logs" not in yaml.safe_load(files["collector/config.yaml"])["service"]["pipelines"]
    assert [w.name for w in workloads_of("collector", s)] == ["collector"]


def test_collector_without_any_backend_is_refused():
    # Refused by the settings loader before anything renders (config/loader.py).
    with pytest.raises(ConfigError, match="components.collector.enabled"):
        disabled("tempo", "loki", "mimir", "prometheus", "alertmanager")


def test_minimal_stack_renders_none_of_mine():
    assert not _mine(render_all(settings_for("prometheus-only")))


# --- Grafana: fixed uids, links, dashboards ---------------------------------------------------


def _datasources(s) -> list[dict]:
    return _doc(s, "grafana/provisioning/datasources/datasources.yaml")["datasources"]


@pytest.mark.parametrize("scenario", ["defaults-dev", "prod-receivers", "teams"])
def test_datasource_uids_fixed_and_links_resolve(scenario):
    s = settings_for(scenario)
    ds = _datasources(s)
    uids = {d["uid"] for d in ds}
    assert uids == {"prometheus", "mimir", "loki", "tempo", "pyroscope", "alertmanager"}
    assert {d["uid"]: d["type"] for d in ds} == {
        "prometheus": "prometheus", "mimir": "prometheus", "loki": "loki", "tempo": "tempo",
        "pyroscope": "grafana-pyroscope-datasource", "alertmanager": "alertmanager"}
    assert sum(d["isDefault"] for d in ds) == 1
    links = set(_walk(ds, "datasourceUid"))
    assert links <= uids
    assert links == {"tempo", "loki", "mimir", "pyroscope"}
    for path, text in render_all(s).items():
        if path.startswith("grafana/dashboards/"):
            assert set(_walk(json.loads(text), "uid")) - {None} <= uids | {json.loads(text)["uid"]}


def test_tempo_datasource_cross_links():
    by_uid = {d["uid"]: d for d in _datasources(settings_for("prod-receivers"))}
    data = by_uid["tempo"]["jsonData"]
    assert data["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert data["tracesToMetrics"]["datasourceUid"] == "mimir"
    assert data["tracesToProfiles"]["datasourceUid"] == "pyroscope"
    assert data["serviceMap"]["datasourceUid"] == "mimir"
    assert data["nodeGraph"] == {"enabled": True}
    assert "lokiSearch" not in data  # removed in Grafana 11 (grafana/grafana #84346)
    assert data["tracesToLogsV2"]["customQuery"] is True
    assert {f["datasourceUid"] for f in by_uid["loki"]["jsonData"]["derivedFields"]} == {"tempo"}
    for uid in ("prometheus", "mimir"):
        assert {d["datasourceUid"] for d in by_uid[uid]["jsonData"]["exemplarTraceIdDestinations"]} == {"tempo"}
    assert by_uid["alertmanager"]["jsonData"]["implementation"] == "prometheus"
    assert by_uid["alertmanager"]["url"] == "http://alertmanager:9093"


def test_trace_links_without_mimir_use_prometheus():
    data = {d["uid"]: d for d in _datasources(disabled("mimir"))}["tempo"]["jsonData"]
    assert data["tracesToMetrics"]["datasourceUid"] == data["serviceMap"]["datasourceUid"] == "prometheus"


def test_literal_dollars_are_escaped_in_provisioning():
    for path, text in render_all(settings_for("prod-receivers")).items():
        if path.startswith("grafana/provisioning/"):
            # Grafana interpolates $VAR / ${VAR} in provisioning files; a literal `$` is `$$`.
            assert not re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", "")), path
    text = render_all(settings_for("prod-receivers"))["grafana/provisioning/datasources/datasources.yaml"]
    assert "$${__value.raw}" in text and "$$__tags" in text
    derived = {d["uid"]: d for d in _datasources(settings_for("prod-receivers"))}["loki"]["jsonData"]["derivedFields"]
    regex = re.compile(derived[0]["matcherRegex"])
    assert regex.search('{"level": "info", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}').group(1) == \
        "4bf92f3577b34da6a3ce929d0e0e4736"
    assert regex.search("msg=done trace_id=abc123 span_id=1").group(1) == "abc123"


def _norm(expr: str) -> str:
    return re.sub(r"\s+", "", expr)


def test_seed_promql_in_dashboards():
    """The boards read the recording rules that compute the seed's queries for both naming
    conventions: every recorded name a panel uses is recorded, every seed signal has its panel,
    and the seed's own PromQL is in the recording rules (prometheus-client side)."""
    from observability_stack.components import rules

    files = render_all(settings_for("defaults-dev"))
    golden = json.loads(files["grafana/dashboards/golden-signals.json"])
    red = json.loads(files["grafana/dashboards/red.json"])
    recorded = {r["record"]: r["expr"] for r in rules.recording_group()["rules"]}
    used = {name for board in (golden, red) for e in _walk(board, "expr")
            for name in re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", e)}
    assert used and used <= set(recorded), used - set(recorded)
    assert {"job:http_request_duration_seconds:p95_5m", "job_endpoint:http_requests:rate5m",
            "job:http_request_errors:ratio_rate5m", "instance:node_cpu_utilisation:ratio_rate5m",
            "job:http_requests_4xx_5xx:rate5m", "job_endpoint:http_request_duration_seconds:p50_5m",
            "job_endpoint:http_request_duration_seconds:p95_5m",
            "job_endpoint:http_request_duration_seconds:p99_5m"} <= used
    rule_text = _norm(" ".join(recorded.values()))
    for fragment in ('rate(http_requests_total{status=~"5.."}[5m])', 'rate(http_requests_total{status=~"[45].."}[5m])',
                     "rate(http_request_duration_seconds_bucket[5m])", 'rate(node_cpu_seconds_total{mode="idle"}[5m])',
                     'rate(http_server_request_duration_seconds_count{http_response_status_code=~"5.."}[5m])'):
        assert _norm(fragment) in rule_text, fragment
    for board in (golden, red):
        assert [v["name"] for v in board["templating"]["list"]] == ["team", "job"]


def test_stack_overview_follows_enabled_tools():
    full = json.loads(render_all(settings_for("defaults-dev"))["grafana/dashboards/stack-overview.json"])
    exprs = list(_walk(full, "expr"))
    assert "up" in exprs and any("ALERTS" in e for e in exprs)
    assert any("loki_distributor" in e for e in exprs) and any("cortex_" in e for e in exprs)
    small = json.loads(render_all(disabled("loki", "mimir", "alertmanager"))["grafana/dashboards/stack-overview.json"])
    small_exprs = " ".join(_walk(small, "expr"))
    assert "loki_" not in small_exprs and "cortex_" not in small_exprs and "alertmanager_" not in small_exprs
    assert {b["uid"] for b in dashboards.dashboards(settings_for("defaults-dev"), "mimir").values()} == {
        "golden-signals", "red", "stack-overview"}


def test_dashboard_provider_points_at_mounted_dashboards():
    s = settings_for("defaults-dev")
    files = render_all(s)
    provider = yaml.safe_load(files["grafana/provisioning/dashboards/dashboards.yaml"])["providers"][0]
    assert provider["allowUiUpdates"] is False and provider["disableDeletion"] is True
    paths = {f.path for f in workloads_of("grafana", s, admin_password="x")[0].config_files}
    for name in ("golden-signals.json", "red.json", "stack-overview.json"):
        assert f"{provider['options']['path']}/{name}" in paths
    assert f"{grafana.PROVISIONING_DIR}/datasources/datasources.yaml" in paths


# --- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["prod-receivers", "teams", "receiver-edges"])
def test_no_secret_in_rendered_files(scenario):
    for path, text in _mine(render_all(settings_for(scenario))).items():
        assert SECRET not in text, path


def test_grafana_password_only_as_a_secret_file():
    s = load_settings({"grafana": {"adminPassword": SECRET + "grafana"}}, stack="dev", secret_keys=["grafana"])
    marker = object()
    (w,) = workloads_of("grafana", s, admin_password=marker)
    assert w.env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == grafana.ADMIN_PASSWORD_PATH
    assert "GF_SECURITY_ADMIN_PASSWORD" not in w.env
    assert w.secret_files == (SecretFile(grafana.ADMIN_PASSWORD_PATH, marker),)
    blob = json.dumps([w.env, w.args, [f.content for f in w.config_files], render_all(s)])
    assert SECRET not in blob
    assert w.env["GF_SECURITY_ADMIN_USER"] == "admin"
    assert w.env["GF_ANALYTICS_REPORTING_ENABLED"] == w.env["GF_ANALYTICS_CHECK_FOR_UPDATES"] == "false"
    assert w.env["GF_PATHS_PROVISIONING"] == grafana.PROVISIONING_DIR


def test_grafana_anonymous_access_follows_settings():
    assert grafana.env(custom())["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    on = grafana.env(custom(grafana={"anonymousAccess": True}))
    assert on["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and on["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


# --- workloads --------------------------------------------------------------------------------


def _all_workloads(s):
    out = []
    for name, module in MODULES.items():
        if s.enabled(name):
            out.extend(workloads_of(name, s))
    if s.enabled("grafana"):
        out.extend(workloads_of("grafana", s, admin_password="pw"))
    return out


@pytest.mark.parametrize("scenario", ["defaults-dev", "prod-receivers"])
def test_images_pinned_from_version_table(scenario):
    table = pinned_versions()["images"]
    for w in _all_workloads(settings_for(scenario)):
        tool = next(t for t in ("collector", "pyroscope") if w.name.startswith(t)) if w.name.startswith(
            ("collector", "pyroscope")) else w.name
        assert w.image == f"{table[tool]['repository']}:{table[tool]['tag']}"
        assert not w.image.endswith(":latest")
    mirrored = custom(registryMirror="mirror.example.com/hub", components={"loki": {"version": "3.6.4"}})
    (w,) = workloads_of("loki", mirrored)
    assert w.image == "mirror.example.com/hub/grafana/loki:3.6.4"


def test_workload_identity_health_and_ports():
    s = settings_for("defaults-dev")
    by_name = {w.name: w for w in _all_workloads(s)}
    expected = {"loki": (10001, 10001), "tempo": (10001, 10001), "mimir": (10001, 10001),
                "pyroscope": (10001, 10001), "grafana": (472, 0), "collector": (10001, 10001),
                "collector-logs": (0, 0)}
    assert {n: (w.uid, w.gid) for n, w in by_name.items()} == expected
    assert by_name["loki"].health == HealthCheck.http("/ready", 3100, client=None)
    assert by_name["mimir"].health == HealthCheck.http("/ready", 8080, client=None)
    assert by_name["tempo"].health == HealthCheck.http("/ready", 3200, client=None)  # 2.10: no busybox
    assert by_name["grafana"].health.docker_test[:2] == ("CMD", "curl")
    assert by_name["collector"].health == HealthCheck.http("/", 13133, client=None)
    ports = {n: {p.name: p for p in w.ports} for n, w in by_name.items()}
    assert ports["loki"]["http"].port == 3100 and ports["loki"]["http"].publish and ports["loki"]["http"].ingest
    assert ports["loki"]["grpc"].port == 9095
    assert ports["mimir"]["http"].port == 8080 and ports["mimir"]["http"].publish and ports["mimir"]["http"].ingest
    assert ports["tempo"]["http"].publish and not ports["tempo"]["otlp-grpc"].publish
    assert ports["tempo"]["otlp-grpc"].ingest and ports["tempo"]["otlp-http"].port == 4318
    assert ports["grafana"]["http"].port == 3000 and ports["grafana"]["http"].publish
    assert {(p.port, p.publish, p.ingest) for p in ports["collector"].values()} == {
        (4317, True, True), (4318, True, True), (13133, False, False), (8888, False, False)}
    assert ports["collector"]["metrics"].port == collector.METRICS_PORT
    for name in ("loki", "tempo", "mimir", "pyroscope", "grafana"):
        assert by_name[name].data is not None and by_name[name].data.size == sizing.volume_size(s, name)
    assert by_name["loki"].data.path == "/loki" and by_name["mimir"].data.path == "/data"
    assert by_name["tempo"].data.path == "/var/tempo" and by_name["grafana"].data.path == "/var/lib/grafana"
    assert by_name["collector"].data is None and by_name["collector-logs"].data is None
    assert all(w.read_only_root for w in by_name.values())
    # Every config file a workload mounts is what render() produced, at the path its args name.
    for name in ("loki", "tempo", "mimir"):
        (cfg,) = by_name[name].config_files
        assert f"-config.file={cfg.path}" in by_name[name].args


def test_tempo_otlp_published_only_without_collector():
    ports = {p.name: p for p in workloads_of("tempo", disabled("collector"))[0].ports}
    assert ports["otlp-grpc"].publish and ports["otlp-http"].publish


@pytest.mark.parametrize("target,path,glob", [
    ("docker", "/var/lib/docker/containers", "/var/lib/docker/containers/*/*-json.log"),
    ("kubernetes", "/var/log/pods", "/var/log/pods/*/*/*.log"),
])
def test_log_agent_per_target(target, path, glob):
    s = custom(target=target)
    workloads = workloads_of("collector", s)
    # (Kubernetes also runs the events watcher, collector-events, in between.)
    gateway, agent = workloads[0], workloads[-1]
    assert agent.name == "collector-logs" and agent.per_node
    assert agent.uid == 0 and agent.root_reason and agent.capabilities == ("DAC_READ_SEARCH",)
    assert agent.read_only_root and agent.host_logs.paths == (path,)
    assert [p.port for p in agent.ports] == [collector.HEALTH_PORT] and not any(p.publish for p in agent.ports)
    assert [e.address for e in agent.talks_to] == ["collector:4317"]
    assert not gateway.per_node and gateway.root_reason is None and gateway.host_logs is None
    doc = yaml.safe_load(agent.config_files[0].content)
    assert doc["receivers"]["filelog"]["include"] == [glob]
    ops = doc["receivers"]["filelog"]["operators"]
    assert ops[0]["type"] == "container"
    moved = {op["to"] for op in ops if op["type"] == "move"}
    assert {"attributes.trace_id", "attributes.span_id", "attributes.level"} <= moved
    assert doc["exporters"]["otlp/gateway"]["endpoint"] == "collector:4317"
    assert doc["service"]["pipelines"] == {"logs": {"receivers": ["filelog"], "processors": ["memory_limiter", "batch"],
                                                    "exporters": ["otlp/gateway"]}}


def test_gateway_exports_and_telemetry():
    single = custom("prod", highAvailability=False)
    assert _doc(single, "collector/config.yaml")["exporters"]["otlp/tempo"] == {"endpoint": "tempo:4317", "tls": {"insecure": True}}
    assert "collector/sampling.yaml" not in render_tool("collector", single)
    # Two tiers (prod's highAvailability): the sampling tier exports to Tempo.
    sampling = _doc(settings_for("prod-receivers"), "collector/sampling.yaml")
    assert sampling["exporters"] == {"otlp/tempo": {"endpoint": "tempo:4317", "tls": {"insecure": True}}}
    doc = _doc(settings_for("prod-receivers"), "collector/config.yaml")
    assert doc["exporters"]["otlphttp/loki"] == {"endpoint": "http://loki:3100/otlp"}
    assert doc["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"
    reader = doc["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert reader == {"host": "0.0.0.0", "port": 8888}
    recv = doc["receivers"]["otlp"]["protocols"]
    assert recv["grpc"]["endpoint"] == "0.0.0.0:4317" and recv["http"]["endpoint"] == "0.0.0.0:4318"


def test_loki_single_tenant_schema_and_retention():
    doc = _doc(single_node_prod(), "loki/loki.yaml")
    assert doc["auth_enabled"] is False
    (schema,) = doc["schema_config"]["configs"]
    assert schema == {"from": loki.SCHEMA_FROM, "store": "tsdb", "object_store": "filesystem", "schema": "v13",
                      "index": {"prefix": "index_", "period": "24h"}}
    assert _doc(settings_for("defaults-dev"), "loki/loki.yaml")["schema_config"] == doc["schema_config"]
    assert doc["compactor"]["retention_enabled"] is True and doc["compactor"]["delete_request_store"] == "filesystem"
    assert doc["limits_config"]["allow_structured_metadata"] is True
    assert doc["common"]["ring"]["kvstore"]["store"] == "inmemory" and doc["common"]["replication_factor"] == 1
    assert doc["analytics"]["reporting_enabled"] is False
    assert all(str(p).startswith("/loki") for p in _walk(doc, "path_prefix"))


def test_tempo_receivers_storage_and_generator():
    doc = _doc(single_node_prod(), "tempo/tempo.yaml")
    protocols = doc["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols == {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}
    assert doc["storage"]["trace"]["backend"] == "local"
    assert all(p.startswith("/var/tempo/") for p in _walk(doc, "path"))
    assert doc["overrides"]["defaults"]["metrics_generator"]["processors"] == ["service-graphs", "span-metrics"]
    assert doc["usage_report"] == {"reporting_enabled": False}


def test_mimir_single_node_paths_under_data():
    doc = _doc(single_node_prod(), "mimir/mimir.yaml")
    assert doc["multitenancy_enabled"] is False and doc["usage_stats"] == {"enabled": False}
    assert doc["blocks_storage"]["backend"] == "filesystem"
    # Every ring in memory; memberlist only for the HA tracker (a Prometheus pair: highAvailability).
    ha = _doc(settings_for("prod-receivers"), "mimir/mimir.yaml")
    assert ha["distributor"]["ha_tracker"] == {"enable_ha_tracker": True, "kvstore": {"store": "memberlist"}}
    assert ha["limits"]["accept_ha_samples"] is True
    assert "ha_tracker" not in doc["distributor"]
    assert set(_walk(doc, "store")) == {"inmemory"}
    assert set(_walk(doc, "replication_factor")) == {1}
    assert "ha_tracker" not in _doc(settings_for("defaults-dev"), "mimir/mimir.yaml")["distributor"]
    paths = [v for k in ("dir", "data_dir", "sync_dir", "filepath", "rule_path") for v in _walk(doc, k)]
    assert paths and all(p.startswith("/data/") for p in paths)
    assert doc["limits"]["compactor_blocks_retention_period"] == "720h"


def test_sizing_reaches_workloads():
    s = custom(components={"loki": {"storage": {"size": "42Gi"}}})
    assert workloads_of("loki", s)[0].data.size == "42Gi"


# --- real collector -------------------------------------------------------------------------

def _otelcol() -> str:
    return tools.otelcol()


@pytest.mark.parametrize("scenario", ["dev", "prod", "nomimir", "docker-k8s"])
def test_collector_configs_validate(scenario, tmp_path):
    """`otelcol validate` from a collector built at the pinned version with only the components
    these configs use (builder manifest: see the report / module docstring)."""
    binary = _otelcol()
    s = {"dev": settings_for("defaults-dev"), "prod": settings_for("prod-receivers"), "nomimir": disabled("mimir", "tempo"),
         "docker-k8s": custom(target="kubernetes")}[scenario]
    for path, text in render_tool("collector", s).items():
        cfg = tmp_path / path.replace("/", "-")
        cfg.write_text(text)
        result = subprocess.run([binary, "validate", f"--config={cfg}"], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, f"{path}\n{result.stdout}\n{result.stderr}"


def test_log_agent_pipeline_keeps_seed_fields(tmp_path):
    """Run the agent's operators on a Docker json-file log and read what it would ship (the
    collector's `debug` exporter stands in for the gateway)."""
    binary = _otelcol()
    assert "debug" in subprocess.run([binary, "components"], capture_output=True, text=True).stdout
    container = tmp_path / "containers" / "0123abcd"
    container.mkdir(parents=True)
    app_line = json.dumps({"level": "error", "message": "payment failed",
                           "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"})
    lines = [{"log": app_line + "\n", "stream": "stdout", "time": "2025-11-24T10:00:00.000000001Z"},
             {"log": "plain text\n", "stream": "stderr", "time": "2025-11-24T10:00:01.000000001Z"}]
    (container / "0123abcd-json.log").write_text("".join(json.dumps(line) + "\n" for line in lines))
    doc = yaml.safe_load(render_tool("collector", custom(target="docker"))["collector/agent.yaml"])
    filelog = doc["receivers"]["filelog"]
    filelog["include"] = [str(tmp_path / "containers/*/*-json.log")]
    filelog["start_at"] = "beginning"
    doc["exporters"] = {"debug": {"verbosity": "detailed"}}
    doc["service"]["pipelines"]["logs"]["exporters"] = ["debug"]
    doc["extensions"]["health_check"]["endpoint"] = "127.0.0.1:0"
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen([binary, f"--config={cfg}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "-> trace_id: Str(4bf92f3577b34da6a3ce929d0e0e4736)" in out, out
    assert "-> span_id: Str(00f067aa0ba902b7)" in out
    assert "-> level: Str(error)" in out
    assert "-> container.id: Str(0123abcd)" in out
    assert "-> message:" not in out  # only the seed's fields become attributes
    assert "Body: Str(plain text" in out
