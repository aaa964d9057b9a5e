"""Real alerting, end to end: the pinned prometheus and alertmanager binaries, on loopback, with
the configs `make render` produces for dev, prod and the payments team overlay.

Per scenario (one Prometheus + one Alertmanager, started once, shared by the tests below; the three
scenarios start at once, each with its own sinks, ports and directory):
- settings come from the committed stack file (tests/scenarios.py) with every receiver's
  credentials pointed at local sinks, same names, kinds, routes and teams (tests/e2e/receivers.py);
- the rendered files and flags are mapped onto a temp dir, local ports and a clock 60x faster
  (tests/e2e/localize.py says exactly what is rewritten); the stack tools that are not running
  (Grafana, Loki, Tempo, Mimir, Pyroscope, collector) keep their scrape jobs, pointed at a healthy
  stub exporter, so StackComponentDown stays quiet; `remote_write` to Mimir is dropped;
- Prometheus' own rules fire from an exporter: HighErrorRate and HighLatency (job `e2e-app`),
  ServiceDown (job `e2e-down`, a closed port) and, in the team overlay, PaymentsFailing (the
  payments team's rule, its scrape target mapped to an exporter) and ServiceDown for the checkout
  team (its target mapped to a closed port: the scrape config's `team` label routes it);
- alerts the rules cannot produce are POSTed straight to Alertmanager's /api/v2/alerts:
  an info alert (the default route) and the inhibition check (a critical and a warning with the
  same alertname and instance, plus a warning on another instance that must still arrive).

Asserted: every alert lands at exactly its intended receiver (Alertmanager's view and what the
sinks received), in the payload shape of that service; critical inhibits warning; the retention
flags are in force (runtimeinfo); every rendered rule is loaded and healthy.
Run alone: `./venv/bin/pytest tests/test_alerting_e2e.py -m slow -s` (about 25 s: the three scenarios run side by side).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from observability_stack.components import prometheus, sizing
from observability_stack.components.render import links_for
from observability_stack.config import Settings, load_settings
from observability_stack.config.durations import parse_duration
from tooling.mockrun import engine_config
from observability_stack.config.loader import parse_raw
from tests.e2e import localize
from tests.e2e.exporter import Exporter, app_metrics, payments_metrics, stub_metrics
from tests.e2e.http_sink import Deliveries, Delivery, HttpSink
from tests.e2e.local_stack import (
    delivered, smtp_sinks, start_prometheus_and_alertmanager, write_local_layout,
)
from tests.e2e.procs import free_port, http_get_json, http_post_json
from tests.e2e.receivers import pointed_at_sinks, routing_key, smtp_password
from tests.scenarios import NS, scenarios

pytestmark = pytest.mark.slow

SCALE = 60  # `for: 5m` waits 5 s
SCRAPE_INTERVAL = "1s"
WAIT = 60  # seconds for every expected notification of a scenario to arrive (about 12 s normally)
SETTLE = 4  # then this long, so a notification that should not arrive has had its chance
BUDGET = 170  # seconds for the whole module: no wait runs past this

# Per scenario, each alert (alertname + the labels that tell it apart) and where it must go:
# "critical"/"warning"/"default" mean the stack's own severity routes (resolved from its
# settings: prod pagerduty/slack/email, the overlay pagerduty/slack/ops-webhook, dev null);
# team receivers are named.
APP = {"job": "e2e-app"}
DOWN = {"job": "e2e-down"}


@dataclass(frozen=True)
class Expected:
    alertname: str
    labels: dict
    receiver: str  # "critical" | "warning" | "default" | a receiver name


EXPECTED = {
    "dev": [
        Expected("HighErrorRate", APP, "critical"),
        Expected("HighLatency", APP, "warning"),
        Expected("ServiceDown", DOWN, "critical"),
    ],
    "prod": [
        Expected("HighErrorRate", APP, "critical"),
        Expected("HighLatency", APP, "warning"),
        Expected("ServiceDown", DOWN, "critical"),
    ],
    "team-overlay": [
        Expected("HighErrorRate", APP, "critical"),
        Expected("HighLatency", APP, "warning"),
        Expected("ServiceDown", DOWN, "critical"),
        Expected("PaymentsFailing", {"team": "payments"}, "team-payments"),
        Expected("ServiceDown", {"job": "checkout-api", "team": "checkout"}, "slack"),
    ],
}
# Posted straight to Alertmanager, in every scenario.
INHIBIT_HOST, CONTROL_HOST = "e2e-host:1", "e2e-host:2"
POSTED = [
    Expected("E2EDefaultRoute", {"severity": "info"}, "default"),
    Expected("E2EInhibition", {"severity": "critical", "instance": INHIBIT_HOST}, "critical"),
    Expected("E2EInhibition", {"severity": "warning", "instance": CONTROL_HOST}, "warning"),
]
INHIBITED = {"alertname": "E2EInhibition", "severity": "warning", "instance": INHIBIT_HOST}
SUMMARY: dict[str, dict] = {}
MODULE_START = [time.monotonic()]


# --- binaries ------------------------------------------------------------------------------------



# --- one running scenario ------------------------------------------------------------------------


@dataclass
class Running:
    name: str
    settings: Settings
    prometheus_url: str
    alertmanager_url: str
    deliveries: list[Delivery]
    expected: list[Expected]  # receivers resolved to names
    rendered: dict[str, str]
    prometheus_args: list[str]
    am_alerts: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # from the scenario's start to every expected delivery, settling included


def sink_settings(name: str, sink: HttpSink, smarthost) -> Settings:
    """The committed stack's settings with every receiver delivering to the local sinks."""
    stack, config = scenarios()[name]
    values, secret_keys = engine_config(config)
    raw = {k[len(NS):]: parse_raw(v) for k, v in values.items() if k.startswith(NS)}
    # One Prometheus and one Alertmanager: this test judges rules and routing; the HA pair and
    # the Alertmanager cluster of the prod stacks have their own fault tests (test_ha_e2e.py).
    raw["highAvailability"] = False
    return load_settings(pointed_at_sinks(raw, sink, smarthost), stack=stack, secret_keys=secret_keys)


def resolve(expected: Expected, settings) -> Expected:
    routes = settings.alerting.routes
    by_level = {"critical": routes.critical, "warning": routes.warning, "default": settings.default_route}
    return Expected(expected.alertname, expected.labels, by_level.get(expected.receiver, expected.receiver))


def local_targets(settings, ports: dict[str, str], stub: str, team_targets: dict[str, str]) -> dict[str, str]:
    """{rendered "host:port": local address}: Prometheus and Alertmanager are the real local
    processes, every other stack tool is the stub exporter, team targets as the test maps them."""
    targets = {}
    for job, target in prometheus.stack_targets(links_for(settings)).items():
        targets[target] = ports.get(job, stub)
    targets.update(team_targets)
    return targets


def description(labels: dict) -> str:
    return f"{labels['alertname']} {labels.get('severity')} on {labels.get('instance', '-')}"


def post_alerts(am: str, alerts: list[dict]) -> None:
    http_post_json(f"{am}/api/v2/alerts", [
        {"labels": a, "annotations": {"summary": f"e2e {a['alertname']}", "description": description(a)}}
        for a in alerts
    ])


def am_alerts(am: str) -> list[dict]:
    return http_get_json(f"{am}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true")


def matches(alert_labels: dict, expected: Expected) -> bool:
    return alert_labels.get("alertname") == expected.alertname and all(
        alert_labels.get(k) == v for k, v in expected.labels.items())



def post_test_alerts(am: str) -> None:
    """POST the alerts no rule makes. Inhibition: the critical first and, only once Alertmanager
    holds it, its warning twin (so the inhibitor has the source before the target is grouped)."""
    post_alerts(am, [{"alertname": "E2EInhibition", "severity": "critical", "instance": INHIBIT_HOST}])
    deadline = time.monotonic() + 10
    while not any(a["labels"].get("alertname") == "E2EInhibition" for a in am_alerts(am)):
        assert time.monotonic() < deadline, "Alertmanager did not take the posted alert"
        time.sleep(0.1)
    post_alerts(am, [INHIBITED,
                     {"alertname": "E2EInhibition", "severity": "warning", "instance": CONTROL_HOST},
                     {"alertname": "E2EDefaultRoute", "severity": "info"}])


@contextlib.contextmanager
def running_scenario(name: str, tmp: Path):
    begun = time.monotonic()
    deliveries = Deliveries()
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(HttpSink(deliveries))
        settings = sink_settings(name, sink, smtp_sinks(stack, deliveries))
        app = stack.enter_context(Exporter(app_metrics))
        payments = stack.enter_context(Exporter(payments_metrics))
        stub = stack.enter_context(Exporter(stub_metrics))
        closed = f"127.0.0.1:{free_port()}"  # nobody listens: up == 0
        prom_addr, am_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"

        # Team scrape targets of the overlay: payments -> its exporter, checkout -> a closed port
        # (its ServiceDown then carries the scrape config's `team="checkout"` label).
        team_targets = {}
        for team in settings.teams:
            for target in team.scrape_targets:
                for host in target.targets:
                    team_targets[host] = payments.target if team.name == "payments" else closed

        root = tmp / "root"
        targets = local_targets(settings, {"prometheus": prom_addr, "alertmanager": am_addr},
                                stub.target, team_targets)
        rendered, prom_w, am_w = write_local_layout(
            settings, root, targets, {"e2e-app": app.target, "e2e-down": closed},
            scale=SCALE, scrape_interval=SCRAPE_INTERVAL)
        prom, am, prom_proc, am_proc = start_prometheus_and_alertmanager(stack, root, prom_w, am_w, prom_addr,
                                                                          am_addr, tmp)
        prom_args = localize.local_args(prom_w.args, root, prom_addr)

        post_test_alerts(am)

        expected = [resolve(e, settings) for e in EXPECTED[name] + POSTED]
        delivering = {r for r, rec in settings.receiver_map().items() if rec.kinds()}

        def all_arrived(got: list[Delivery]) -> bool:
            seen = {(d.receiver, n) for d in got for n in alertnames(d)}
            return all((e.receiver, e.alertname) in seen for e in expected if e.receiver in delivering)

        def am_has_all() -> bool:
            current = am_alerts(am)
            return all(any(matches(a["labels"], e) for a in current) for e in expected)

        deadline = min(time.monotonic() + WAIT, MODULE_START[0] + BUDGET)
        while not (am_has_all() and all_arrived(deliveries.all())):
            if time.monotonic() > deadline:
                pytest.fail(f"{name}: not every alert arrived within {WAIT}s.\n"
                            f"Alertmanager: {json.dumps([a['labels'] for a in am_alerts(am)])}\n"
                            f"Sinks: {[(d.service, d.receiver, alertnames(d)) for d in deliveries.all()]}\n"
                            f"prometheus log:\n{prom_proc.output()}\nalertmanager log:\n{am_proc.output()}")
            time.sleep(0.25)
        time.sleep(SETTLE)
        yield Running(name, settings, prom, am, deliveries.all(), expected, rendered, prom_args, am_alerts(am),
                      round(time.monotonic() - begun, 1))


SCENARIOS = ["dev", "prod", "team-overlay"]


@pytest.fixture(scope="module")
def started(tmp_path_factory, report):
    """Every scenario's stack, started at once: each spends its time waiting on scaled timers
    (scrapes, `for:`, group_wait), so side by side they take the time of one (~17 s, not ~50 s).
    {scenario: Running, or what stopped it from running (raised again by its own tests only)}."""
    loops: list[asyncio.AbstractEventLoop] = []

    def enter(cm):
        # Secret settings are Pulumi Outputs, made on the thread's event loop (threads have none).
        loops.append(asyncio.new_event_loop())
        asyncio.set_event_loop(loops[-1])
        return cm.__enter__()

    with contextlib.ExitStack() as stack, ThreadPoolExecutor(len(SCENARIOS)) as pool:
        stack.callback(lambda: [loop.close() for loop in loops])
        cms = {name: running_scenario(name, tmp_path_factory.mktemp(name)) for name in SCENARIOS}
        futures = {name: pool.submit(enter, cm) for name, cm in cms.items()}
        outcomes: dict[str, object] = {}
        for name, future in futures.items():
            try:
                outcomes[name] = future.result()
                stack.push(cms[name].__exit__)
            except BaseException as exc:  # pytest.fail's Failed included: that scenario's tests re-raise it
                outcomes[name] = exc
        yield outcomes


@pytest.fixture(scope="module", params=SCENARIOS)
def run(request, started):
    running = started[request.param]
    if isinstance(running, BaseException):
        raise running
    yield running
    routed: dict[str, int] = {}
    for alert in running.am_alerts:
        if alert["status"]["state"] == "active":
            for receiver in alert["receivers"]:
                routed[receiver["name"]] = routed.get(receiver["name"], 0) + 1
    SUMMARY[request.param] = {"alerts routed by Alertmanager": routed,
                              "inhibited": sum(a["status"]["state"] == "suppressed" for a in running.am_alerts),
                              "alerts delivered per receiver": distinct_alerts(running.deliveries),
                              "notifications": len(running.deliveries),
                              "seconds to every delivery": running.seconds}


@pytest.fixture(scope="module", autouse=True)
def report(request):
    MODULE_START[0] = time.monotonic()
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nalerting e2e: {len(SUMMARY)} scenarios run")
        for name, info in SUMMARY.items():
            print(f"  {name}: {json.dumps(info)}")


# --- reading what the sinks received ---------------------------------------------------------------




def alertnames(d: Delivery) -> set[str]:
    return {labels["alertname"] for labels in delivered(d)}


def distinct_alerts(deliveries: list[Delivery]) -> dict[str, int]:
    """{"service:receiver": alerts delivered}: the most alerts of one alertname any notification
    carried, summed over alertnames (repeat notifications of the same group count once)."""
    most: dict[tuple[str, str], int] = {}
    for d in deliveries:
        counts: dict[str, int] = {}
        for labels in delivered(d):
            counts[labels["alertname"]] = counts.get(labels["alertname"], 0) + 1
        for name, n in counts.items():
            key = (f"{d.service}:{d.receiver}", name)
            most[key] = max(most.get(key, 0), n)
    out: dict[str, int] = {}
    for (receiver, _), n in sorted(most.items()):
        out[receiver] = out.get(receiver, 0) + n
    return out


def kind_of(settings, receiver: str) -> list[str]:
    return settings.receiver_map()[receiver].kinds()


# --- the checks --------------------------------------------------------------------------------


def test_rules_loaded(run: Running):
    """Every rendered rule file's groups and rules are loaded, evaluated and healthy."""
    import yaml

    want = {}
    for path, text in run.rendered.items():
        if path.startswith("prometheus/rules/"):
            for group in yaml.safe_load(text)["groups"]:
                want[group["name"]] = [r.get("alert") or r.get("record") for r in group["rules"]]
    groups = http_get_json(f"{run.prometheus_url}/api/v1/rules")["data"]["groups"]
    got = {g["name"]: [r["name"] for r in g["rules"]] for g in groups}
    assert got == want
    unhealthy = [(g["name"], r["name"], r.get("lastError")) for g in groups for r in g["rules"]
                 if r["health"] != "ok"]
    assert not unhealthy


BYTES = re.compile(r"(\d+)([KMGTPE]i)?B")


def _retention(text: str) -> tuple[float, Optional[int]]:
    """runtimeinfo's `storageRetention`, e.g. "2d or 7GiB665MiB", as (seconds, bytes)."""
    seconds, size = 0.0, None
    for part in text.split(" or "):
        if re.fullmatch(f"(?:{BYTES.pattern})+", part):
            size = sum(int(n) * 1024 ** ("KMGTPE".index(u[0]) + 1 if u else 0) for n, u in BYTES.findall(part))
        else:
            seconds = parse_duration(part)
    return seconds, size


def test_retention_in_force(run: Running):
    """The running Prometheus keeps what the rendered flags (from settings and sizing) say."""
    info = http_get_json(f"{run.prometheus_url}/api/v1/status/runtimeinfo")["data"]
    seconds, size = _retention(info["storageRetention"])
    flag = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in run.prometheus_args if "=" in a}
    assert flag["--storage.tsdb.retention.time"] == sizing.local_metrics_retention(run.settings)
    assert seconds == parse_duration(sizing.local_metrics_retention(run.settings))
    assert flag["--storage.tsdb.retention.size"] == prometheus.retention_size(run.settings)
    assert size == int(prometheus.retention_size(run.settings).removesuffix("MB")) * 2**20


def test_each_alert_reaches_exactly_its_receiver(run: Running):
    # Alertmanager's own view: each alert is routed to exactly the intended receiver.
    for e in run.expected:
        found = [a for a in run.am_alerts if matches(a["labels"], e)]
        assert found, f"{e} not in Alertmanager"
        for a in found:
            assert [r["name"] for r in a["receivers"]] == [e.receiver], (e, a["labels"])
    # What reached the sinks: per (service, receiver) exactly the alert names routed there.
    want: dict[tuple[str, str], set[str]] = {}
    for e in run.expected:
        for kind in kind_of(run.settings, e.receiver):
            want.setdefault((kind, e.receiver), set()).add(e.alertname)
    got: dict[tuple[str, str], set[str]] = {}
    for d in run.deliveries:
        got.setdefault((d.service, d.receiver), set()).update(alertnames(d))
    assert got == want
    # No notification carries an alert meant for another receiver: full label sets must match an
    # alert expected here, and no notification holds more alerts of a name than expected here.
    for d in run.deliveries:
        mine = [e for e in run.expected if e.receiver == d.receiver]
        alerts = delivered(d)
        for labels in alerts:
            if len(labels) > 1:
                assert any(matches(labels, e) for e in mine), (d.service, d.receiver, labels)
        for name in {a["alertname"] for a in alerts}:
            assert sum(a["alertname"] == name for a in alerts) <= sum(e.alertname == name for e in mine)


def test_payload_shapes(run: Running):
    receivers = run.settings.receiver_map()
    # dev's only receiver is the null receiver: nothing may arrive anywhere.
    assert bool(run.deliveries) == any(r.kinds() for r in receivers.values())
    for d in run.deliveries:
        config = getattr(receivers[d.receiver], d.service)
        if d.service == "slack":
            assert d.body["channel"] == config.channel
            attachment = d.body["attachments"][0]
            assert attachment["title"] in {a["alertname"] for a in delivered(d)}
            assert attachment["text"] and attachment["fallback"].startswith("[FIRING:")
        elif d.service == "pagerduty":
            body = d.body
            assert body["routing_key"] == routing_key(d.receiver)
            assert body["event_action"] == "trigger"
            assert body["dedup_key"]
            payload = body["payload"]
            assert payload["summary"].startswith("[FIRING:")
            # Events v2 severity follows the alerts' severity label (the render maps it).
            severities = {a.get("severity") for a in delivered(d)}
            assert len(severities) == 1, severities
            expected = {"critical": "critical", "warning": "warning"}.get(severities.pop(), "info")
            assert payload["severity"] == expected
            assert payload["source"]
            assert payload["custom_details"]["num_firing"] == len(payload["custom_details"]["firing"])
        elif d.service == "email":
            message = d.body
            assert message["To"] == config.to and message["From"] == config.from_
            assert message["Subject"].startswith("[FIRING:")
            assert d.headers["rcpt_to"] == [config.to] and d.headers["mail_from"] == config.from_
            html = message.get_body(("html",)).get_content()
            assert all(name in html for name in alertnames(d))
            if config.auth_password:
                assert d.headers["auth"] == (config.auth_username or config.from_, smtp_password(d.receiver))
        elif d.service == "webhook":
            body = d.body
            assert body["version"] == "4" and body["status"] == "firing"
            assert body["receiver"] == d.receiver
            assert all(a["labels"]["alertname"] and a["status"] == "firing" for a in body["alerts"])


def test_critical_inhibits_warning(run: Running):
    """Alertmanager marks the warning inhibited by its critical twin, and no sink ever got it,
    while the warning on another instance was delivered (test_each_alert_reaches...)."""
    inhibited = [a for a in run.am_alerts if all(a["labels"].get(k) == v for k, v in INHIBITED.items())]
    assert len(inhibited) == 1 and inhibited[0]["status"]["inhibitedBy"], inhibited
    critical = [a for a in run.am_alerts if a["fingerprint"] in inhibited[0]["status"]["inhibitedBy"]]
    assert [a["labels"]["severity"] for a in critical] == ["critical"]
    for d in run.deliveries:
        text = json.dumps(d.body) if d.service != "email" else d.body.as_string()
        assert description(INHIBITED) not in text
        if d.service == "webhook" or d.service == "slack":
            assert description({**INHIBITED, "instance": CONTROL_HOST}) in text or "E2EInhibition" not in text

