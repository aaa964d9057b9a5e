"""The seed's Python service watched end to end: examples/python-service as two real processes,
the pinned Prometheus, Alertmanager and collector (gateway + log agent) with the configs the
stack renders, on loopback.

- `shop-prom` runs with prometheus-client metrics (the seed's names), `shop-otel` with
  OpenTelemetry metrics (HTTP semconv) and OTLP logs; both are scrape targets of the team `shop`
  (the stack's `teams[].scrapeTargets`), both get the stack's `telemetryEnv` pointed at the local
  collector gateway, and nothing else about telemetry.
- Prometheus and Alertmanager: tests/e2e/localize.py (60x clock, 1 s scrapes, targets mapped to
  local ports; stack tools that are not running here scrape a healthy stub).
- The collector gateway and log agent: their rendered configs with listeners on loopback and
  exporters pointed at local sinks (tests/e2e/collector_local.py): traces -> an OTLP/gRPC sink
  (Tempo's place), logs -> an OTLP/HTTP sink (Loki's place), metrics -> the local Prometheus'
  remote-write receiver. The agent tails the services' stdout written the way Docker's json-file
  driver writes it (tests/e2e/docker_log.py). Sampling keeps errors and slow traces only
  (`sampling.traces: 0`), so what reaches the trace sink is what tail sampling must keep.
- examples/python-service/load.py drives both: normal traffic, a 5xx burst, slow requests.

Asserted: HighErrorRate and HighLatency fire for both conventions and reach the team's receiver;
error and slow traces arrive whole (root span, every parent present), ordinary ones are dropped;
the log lines the agent ships carry the trace id of their request; the Grafana "logs for this
span" query, built from the provisioned Tempo datasource, selects the agent-shipped and the OTLP
log lines of a failed request (modelled on Loki's OTLP ingestion, see `loki_view`); every panel
query of every provisioned dashboard, variables resolved as Grafana resolves them, returns a
series from the real Prometheus, except those listed in EXPECTED_EMPTY with the reason; ServiceDown
reaches the team's receiver when the service stops. A summary is printed (`-s`).
Run alone: `./venv/bin/pytest tests/test_python_service_e2e.py -s` (about 2 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from observability_stack.components import collector, dashboards, grafana, platform, prometheus
from observability_stack.components.render import links_for, render_tool
from observability_stack.components.stack import telemetry_env
from observability_stack.config import load_settings
from tests import tools
from tests.e2e import localize
from tests.e2e.collector_local import collector_config
from tests.e2e.docker_log import DockerLoggedProcess
from tests.e2e.exporter import Exporter, stub_metrics
from tests.e2e.http_sink import Deliveries, HttpSink
from tests.e2e.otlp_sinks import LogSink, TraceSink
from tests.e2e.procs import Process, free_port, http_get_json
from tests.e2e.loki_model import logql_select, logs_for_span_query
from tests.e2e.local_stack import delivered, pinned_binary, write_local_layout

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "python-service"
TEAM = "shop"
TEAM_RECEIVER = f"team-{TEAM}"
SERVICES = {"shop-prom": "prometheus", "shop-otel": "otel"}  # job (= OTEL_SERVICE_NAME): metrics mode
LOAD_SECONDS, LOAD_RPS, SLOW_DELAY = 8, 10, 1.5
WAIT = 90  # seconds for the alerts to arrive after the load
EXPECTED_ALERTS = [(name, job) for name in ("HighErrorRate", "HighLatency") for job in SERVICES]
# Panel queries that return nothing here, and why (checked to be empty: the list stays honest).
EXPECTED_EMPTY = {
    "node_cpu_utilisation": "needs a node exporter among the scrape targets (the seed's host CPU); none here",
    "cortex_": "Mimir is not run here (AGPL); its scrape job points at a stub",
    "loki_": "Loki is not run here (AGPL); its scrape job points at a stub",
    "tempo_": "Tempo is not run here (AGPL); its scrape job points at a stub",
}


@dataclass
class Run:
    settings: object
    prom: str
    am: str
    deliveries: list
    load: dict  # job -> load.py result
    spans: list
    logs: list
    service_lines: dict  # job -> stdout lines
    panels: list = field(default_factory=list)  # (dashboard, panel, expr, series)
    variables: dict = field(default_factory=dict)
    service_down: list = field(default_factory=list)
    unhealthy_rules: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)


def stack_settings(sink: HttpSink):
    raw = {
        # Keep only errors and slow traces: the trace sink then shows what tail sampling keeps.
        "sampling": {"traces": 0.0},
        "alerting": {
            "receivers": [{"name": "oncall", "webhook": {"url": sink.url("webhook", "oncall")}}],
            "routes": {"critical": "oncall", "warning": "oncall", "default": "oncall"},
        },
        "teams": [{
            "name": TEAM,
            "receiver": {"webhook": {"url": sink.url("webhook", TEAM_RECEIVER)}},
            "scrapeTargets": [{"job": job, "targets": [f"{job}:8000"]} for job in SERVICES],
        }],
    }
    return load_settings(raw, stack="dev", secret_keys=["alerting", "teams"])


def _yaml_file(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def wait_until(check, timeout: float, what: str, diagnostics=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout}s\n{diagnostics()}")
        time.sleep(0.5)


def query(prom: str, expr: str) -> list:
    url = f"{prom}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    answer = http_get_json(url)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def team_alerts(deliveries: Deliveries) -> list[dict]:
    """Label sets of the alerts delivered to the team's receiver."""
    return [labels for d in deliveries.all() if d.receiver == TEAM_RECEIVER for labels in delivered(d)]


# --- Grafana variables and panels, as Grafana resolves them ------------------------------------

LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def resolve(expr: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        expr = expr.replace(f"${name}", value)
    return expr


def dashboard_queries(settings, prom: str) -> tuple[dict, list]:
    """Variables in order: each `label_values(selector, label)` query asks Prometheus' label values
    API (what Grafana's Prometheus datasource does), earlier variables interpolated; the value is
    the dashboard's `current` (All), which a multi-value variable with `allValue` turns into that
    regex. Then every target expression with the variables interpolated."""
    out, variables = [], {}
    for name, board in dashboards.dashboards(settings, links_for(settings).metrics_source).items():
        values: dict[str, str] = {}
        for var in board["templating"]["list"]:
            m = LABEL_VALUES.match(var["query"])
            assert m, var["query"]
            selector = resolve(m["selector"], values)
            url = (f"{prom}/api/v1/label/{m['label']}/values?"
                   f"{urllib.parse.urlencode({'match[]': selector})}")
            options = http_get_json(url)["data"]
            variables[f"{name}:{var['name']}"] = options
            assert var["current"]["value"] == ["$__all"] and var["includeAll"]
            values[var["name"]] = var["allValue"]
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = resolve(target["expr"], values)
                assert "$" not in expr, expr
                out.append((name, panel["title"], expr, len(query(prom, expr))))
    return variables, out


# --- the run ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def running(tmp: Path):
    timings = {}
    started = time.monotonic()
    prometheus_bin, alertmanager_bin = pinned_binary("prometheus"), pinned_binary("alertmanager")
    otelcol = tools.otelcol()
    deliveries = Deliveries()
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(HttpSink(deliveries))
        traces = stack.enter_context(TraceSink())
        logs = stack.enter_context(LogSink())
        stub = stack.enter_context(Exporter(stub_metrics))
        settings = stack_settings(sink)
        root = tmp / "root"

        port = {name: free_port() for name in
                ("prom", "am", "otlp_grpc", "otlp_http", "health", "telemetry", "agent_health", *SERVICES)}
        prom_addr, am_addr = f"127.0.0.1:{port['prom']}", f"127.0.0.1:{port['am']}"
        targets = {target: stub.target for target in prometheus.stack_targets(links_for(settings)).values()}
        targets.update({"localhost:9090": prom_addr, "alertmanager:9093": am_addr,
                        f"collector:{collector.METRICS_PORT}": f"127.0.0.1:{port['telemetry']}"})
        targets.update({f"{job}:8000": f"127.0.0.1:{port[job]}" for job in SERVICES})
        _, prom_w, am_w = write_local_layout(settings, root, targets, {})

        # The collector: gateway and log agent, as rendered, on loopback, exporting to the sinks.
        rendered = render_tool("collector", settings)
        gateway = collector_config(
            yaml.safe_load(rendered["collector/config.yaml"]),
            {collector.OTLP_GRPC_PORT: port["otlp_grpc"], collector.OTLP_HTTP_PORT: port["otlp_http"],
             collector.HEALTH_PORT: port["health"], collector.METRICS_PORT: port["telemetry"]},
            {"otlp/tempo": f"127.0.0.1:{traces.port}", "otlphttp/loki": f"{logs.base_url}/otlp",
             "prometheusremotewrite": f"http://{prom_addr}/api/v1/write"})
        containers = root / platform.DOCKER_LOGS.lstrip("/")
        containers.mkdir(parents=True, exist_ok=True)
        agent = collector_config(
            yaml.safe_load(rendered["collector/agent.yaml"]), {collector.HEALTH_PORT: port["agent_health"]},
            {"otlp/gateway": f"127.0.0.1:{port['otlp_grpc']}"}, root=root)

        am_proc = stack.enter_context(Process(
            "alertmanager", [alertmanager_bin, *localize.local_args(am_w.args, root, am_addr)], tmp / "am.log"))
        prom_proc = stack.enter_context(Process(
            "prometheus", [prometheus_bin, *localize.local_args(prom_w.args, root, prom_addr)], tmp / "prom.log"))
        gw_proc = stack.enter_context(Process(
            "collector", [otelcol, f"--config={_yaml_file(tmp / 'gateway.yaml', gateway)}"], tmp / "gateway.log"))
        agent_proc = stack.enter_context(Process(
            "collector-logs", [otelcol, f"--config={_yaml_file(tmp / 'agent.yaml', agent)}"], tmp / "agent.log"))
        am, prom = f"http://{am_addr}", f"http://{prom_addr}"
        am_proc.wait_ready(f"{am}/-/ready")
        prom_proc.wait_ready(f"{prom}/-/ready")
        gw_proc.wait_ready(f"http://127.0.0.1:{port['health']}/")
        agent_proc.wait_ready(f"http://127.0.0.1:{port['agent_health']}/")

        # The services: the stack's telemetryEnv (endpoint = the gateway) and nothing else about
        # telemetry but their name, mode and faster export intervals.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APP_"))}
        env.update(telemetry_env(settings, f"http://127.0.0.1:{port['otlp_grpc']}", None))
        services = {}
        for job, mode in SERVICES.items():
            service_env = {**env, "OTEL_SERVICE_NAME": job, "APP_METRICS": mode,
                           "APP_OTLP_LOGS": "1" if mode == "otel" else "0",
                           "OTEL_METRIC_EXPORT_INTERVAL": "1000", "OTEL_BSP_SCHEDULE_DELAY": "500",
                           "OTEL_BLRP_SCHEDULE_DELAY": "500"}
            services[job] = stack.enter_context(DockerLoggedProcess(
                job, [sys.executable, str(EXAMPLE / "app.py"), "--port", str(port[job])], containers,
                service_env, tmp / f"{job}.stderr"))
        for job in SERVICES:
            Process.wait_ready(services[job], f"http://127.0.0.1:{port[job]}/")  # same polling
        timings["started"] = round(time.monotonic() - started, 1)

        def diagnostics() -> str:
            return (f"sinks: {[(d.receiver, [(l['alertname'], l.get('job')) for l in delivered(d)]) for d in deliveries.all()]}\n"
                    f"prometheus:\n{prom_proc.output()}\ngateway:\n{gw_proc.output()}\nagent:\n{agent_proc.output()}\n"
                    + "".join(f"{j} stderr:\n{(tmp / f'{j}.stderr').read_text()[-3000:]}\n" for j in SERVICES))

        # Load both services at once: normal, 5xx burst, slow.
        loaders = {job: subprocess.Popen(
            [sys.executable, str(EXAMPLE / "load.py"), "--url", f"http://127.0.0.1:{port[job]}",
             "--seconds", str(LOAD_SECONDS), "--rps", str(LOAD_RPS), "--slow-delay", str(SLOW_DELAY)],
            stdout=subprocess.PIPE, text=True) for job in SERVICES}
        load = {job: json.loads(p.communicate(timeout=LOAD_SECONDS * 3 + 60)[0]) for job, p in loaders.items()}
        timings["load done"] = round(time.monotonic() - started, 1)

        def all_fired():
            got = {(a["alertname"], a.get("job")) for a in team_alerts(deliveries) if a.get("team") == TEAM}
            return set(EXPECTED_ALERTS) <= got

        wait_until(all_fired, WAIT, "HighErrorRate/HighLatency did not reach the team for both conventions",
                   diagnostics)
        timings["alerts at team receiver"] = round(time.monotonic() - started, 1)
        # Tail sampling decides after `decision_wait` (10 s); give the logs the same time.
        wanted = {t for r in load.values() for t in r["errors"]["error_traces"] + r["slow"]["slow_traces"]}
        wait_until(lambda: wanted <= {s.trace_id for s in traces.spans.all()}, 40,
                   "error and slow traces did not reach the trace sink", diagnostics)
        time.sleep(3)
        run = Run(settings, prom, am, [], load, traces.spans.all(), logs.records.all(),
                  {job: list(p.lines) for job, p in services.items()}, timings=timings)
        run.variables, run.panels = dashboard_queries(settings, prom)
        run.unhealthy_rules = [(rule["name"], rule.get("lastError")) for group in
                               http_get_json(f"{prom}/api/v1/rules")["data"]["groups"]
                               for rule in group["rules"] if rule["health"] != "ok"]

        # ServiceDown: stop the prometheus-client service; its team target's `up` goes to 0.
        services["shop-prom"].stop()
        run.service_down = wait_until(
            lambda: [a for a in team_alerts(deliveries) if a["alertname"] == "ServiceDown"], 40,
            "ServiceDown did not reach the team's receiver", diagnostics)
        timings["service down at team receiver"] = round(time.monotonic() - started, 1)
        run.deliveries = deliveries.all()
        yield run


@pytest.fixture(scope="module")
def run(tmp_path_factory, request):
    # The workloads hold pulumi Outputs, which need a current event loop; an earlier test module
    # may have closed or unset the main thread's.
    asyncio.set_event_loop(asyncio.new_event_loop())
    with running(tmp_path_factory.mktemp("python-service")) as result:
        yield result
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print("\npython-service e2e:", json.dumps(result.timings))
            fired = sorted({(labels["alertname"], labels.get("job"), labels.get("team"), d.receiver)
                            for d in result.deliveries for labels in delivered(d)})
            for alert in fired:
                print("  alert delivered:", alert)
            for board, title, expr, n in result.panels:
                print(f"  panel {board} / {title}: {'data' if n else 'EMPTY'} ({n} series) {expr}")


# --- the checks ------------------------------------------------------------------------------------


def test_load_produced_errors_and_slow_requests(run):
    for job, result in run.load.items():
        assert result["normal"]["statuses"] == {"200": LOAD_SECONDS * LOAD_RPS}, (job, result["normal"])
        assert result["errors"]["statuses"].get("500") == LOAD_SECONDS * LOAD_RPS // 2, (job, result["errors"])
        assert result["slow"]["statuses"] == {"200": LOAD_SECONDS * LOAD_RPS}, (job, result["slow"])


@pytest.mark.parametrize("alertname,job", EXPECTED_ALERTS)
def test_alert_reaches_team_receiver(run, alertname, job):
    """HighErrorRate and HighLatency for the prometheus-client service (`shop-prom`) and the
    OpenTelemetry one (`shop-otel`): labelled with the team, delivered to the team's receiver,
    never to the severity route's `oncall`."""
    got = [(d.receiver, labels) for d in run.deliveries for labels in delivered(d)
           if labels["alertname"] == alertname and labels.get("job") == job]
    assert got, f"{alertname} for {job} not delivered"
    assert {receiver for receiver, _ in got} == {TEAM_RECEIVER}
    assert all(labels.get("team") == TEAM for _, labels in got)


def test_every_rule_evaluates(run):
    """With both conventions' series present, every rule evaluates (no many-to-many joins,
    no duplicate label sets)."""
    assert not run.unhealthy_rules


def test_service_down_reaches_team_receiver(run):
    assert any(a.get("job") == "shop-prom" and a.get("team") == TEAM for a in run.service_down)
    assert not [d for d in run.deliveries if d.receiver == "oncall"
                for labels in delivered(d) if labels.get("job") in SERVICES]


def _traces(spans) -> dict[str, list]:
    out: dict[str, list] = {}
    for span in spans:
        out.setdefault(span.trace_id, []).append(span)
    return out


@pytest.mark.parametrize("kind", ["error_traces", "slow_traces"])
def test_error_and_slow_traces_arrive_whole(run, kind):
    by_trace = _traces(run.spans)
    phase = "errors" if kind == "error_traces" else "slow"
    for job, result in run.load.items():
        ids = result[phase][kind]
        assert ids, (job, phase)
        for trace_id in ids:
            spans = by_trace.get(trace_id)
            assert spans, f"{job}: {kind[:-1]} {trace_id} never arrived"
            span_ids = {s.span_id for s in spans}
            roots = [s for s in spans if not s.parent_span_id]
            assert len(roots) == 1 and roots[0].name == "GET /orders/{order_id}", [s.name for s in spans]
            # Whole: every parent is there, and the spans the request makes.
            assert all(s.parent_span_id in span_ids for s in spans if s.parent_span_id), spans
            names = {s.name for s in spans}
            assert "process_order" in names
            assert {s.service for s in spans} == {job}
            if kind == "error_traces":
                assert roots[0].status_code == 2 and any(s.name == "process_order" and s.status_code == 2
                                                         for s in spans)
            else:
                assert "slow_dependency" in names
                assert (roots[0].end_ns - roots[0].start_ns) / 1e9 >= SLOW_DELAY


def test_ordinary_traces_are_sampled_out(run):
    """`sampling.traces: 0`: only the error and slow traces are kept by the tail sampler."""
    kept = {t for r in run.load.values() for t in r["errors"]["error_traces"] + r["slow"]["slow_traces"]}
    assert set(_traces(run.spans)) == kept


def _agent_records(run):
    # The agent's records come from files (filelog sets log.file.path); the service's own OTLP
    # records do not.
    return [r for r in run.logs if "log.file.path" in r.attributes]


def test_agent_shipped_lines_carry_their_request_trace_id(run):
    agent = _agent_records(run)
    assert agent, "the log agent shipped nothing"
    for job, result in run.load.items():
        failed = set(result["errors"]["error_traces"])
        lines = [r for r in agent if json.loads(r.body).get("service") == job
                 and json.loads(r.body).get("event") == "order_failed"]
        assert {r.attributes.get("trace_id") for r in lines} == failed, job
        for r in lines:
            # The agent keeps the line as the body and lifts trace_id/span_id out of it.
            body = json.loads(r.body)
            assert r.attributes["trace_id"] == body["trace_id"] and r.attributes["span_id"] == body["span_id"]


def test_otlp_logs_carry_trace_context(run):
    otlp = [r for r in run.logs if r.resource.get("service.name") == "shop-otel"]
    failed = set(run.load["shop-otel"]["errors"]["error_traces"])
    assert {r.trace_id for r in otlp if r.body == "order_failed"} == failed


def test_logs_for_this_span_query_selects_agent_and_otlp_lines(run):
    """From a failed request's span, Grafana's "logs for this span" link must find that request's
    log lines whichever way they were shipped: by the log agent (stdout, JSON body with trace_id)
    and by OTLP (trace_id as a field, structured metadata in Loki)."""
    by_trace = _traces(run.spans)
    report = {}
    for job in SERVICES:
        trace_id = run.load[job]["errors"]["error_traces"][0]
        root = next(s for s in by_trace[trace_id] if not s.parent_span_id)
        q = logs_for_span_query(run.settings, job, trace_id, root.span_id)
        picked = logql_select(q, run.logs)
        agent = [r for r in _agent_records(run) if r.attributes.get("trace_id") == trace_id]
        otlp = [r for r in run.logs if r.trace_id == trace_id and "log.file.path" not in r.attributes]
        report[job] = {"query": q, "agent lines": len(agent), "agent selected": sum(r in picked for r in agent),
                       "otlp lines": len(otlp), "otlp selected": sum(r in picked for r in otlp)}
    print("\nlogs for this span:", json.dumps(report, indent=1))
    assert all(r["agent lines"] for r in report.values()) and report["shop-otel"]["otlp lines"]
    missing = {f"{kind} lines of {job}" for job, r in report.items() for kind in ("agent", "otlp")
               if r[f"{kind} selected"] < r[f"{kind} lines"]}
    gaps = known_gaps(run.settings)
    explained = {m for m in missing if any(m.startswith(kind) for kind in gaps)}
    assert missing == explained, f"the trace-to-logs query misses: {sorted(missing - explained)}; {json.dumps(report)}"
    if missing:
        # Only for the reasons the current configs give; once they are fixed the assertion above
        # is the whole test.
        pytest.xfail("; ".join(f"{kind}: {why}" for kind, why in gaps.items()))


def known_gaps(settings) -> dict[str, str]:
    """Why the provisioned link cannot find some lines today, read from the configs themselves."""
    gaps = {}
    t2l = next(d for d in grafana.datasources(links_for(settings)) if d["uid"] == "tempo")["jsonData"]["tracesToLogsV2"]
    if not t2l.get("customQuery"):
        gaps["otlp"] = ("tracesToLogsV2 has no custom query: the built-in one filters the line for the trace "
                        "id, which OTLP records keep as structured metadata (issue 11)")
    if "service.name" not in render_tool("collector", settings)["collector/agent.yaml"]:
        gaps["agent"] = ("the log agent sets no service.name on the lines it ships, so Loki labels them "
                         "service_name=unknown_service and the link's {service_name=...} selector misses them")
    return gaps


def test_dashboard_variables_resolve(run):
    for name, options in run.variables.items():
        if name.endswith(":team"):
            assert TEAM in options, (name, options)
        else:
            assert set(SERVICES) <= set(options), (name, options)


def test_every_dashboard_panel_query_returns_series(run):
    unexplained = [(board, title, expr) for board, title, expr, n in run.panels
                   if not n and not any(key in expr for key in EXPECTED_EMPTY)]
    assert not unexplained, f"panel queries without data: {unexplained}"
    # The list of expected-empty queries stays honest: each one is indeed empty here.
    wrongly_listed = [(title, expr) for _, title, expr, n in run.panels
                      if n and any(key in expr for key in EXPECTED_EMPTY)]
    assert not wrongly_listed, wrongly_listed
