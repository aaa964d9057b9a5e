"""Alertmanager: routing tree, receivers, secret files, the workload, and amtool's verdict."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pulumi
import pytest
import yaml

from observability_stack.components.render import render_tool, workloads_of
from observability_stack.components import alertmanager
from observability_stack.components.workload import HealthCheck
from tests.scenarios import SECRET, SETTINGS_CASES, settings_for
from tests.tools import run


def _config(name: str) -> dict:
    return yaml.safe_load(render_tool("alertmanager", settings_for(name))["alertmanager/alertmanager.yml"])


def _receivers(name: str) -> dict[str, dict]:
    return {r["name"]: r for r in _config(name)["receivers"]}


def _flag(args: tuple[str, ...], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    assert len(values) == 1, (name, args)
    return values[0]


# --- alertmanager.yml -------------------------------------------------------------------------


def test_root_route_and_globals():
    doc = _config("prod-receivers")
    assert doc["global"] == {"resolve_timeout": "5m"}
    route = doc["route"]
    assert route["receiver"] == "email"
    assert route["group_by"] == ["alertname", "cluster", "service"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("10s", "10s", "12h")


def test_severity_routes_use_matchers():
    routes = _config("prod-receivers")["route"]["routes"]
    assert routes == [
        {"matchers": ['severity="critical"'], "receiver": "pagerduty"},
        {"matchers": ['severity="warning"'], "receiver": "slack"},
    ]
    assert "match" not in yaml.safe_dump(_config("prod-receivers")).replace("matchers", "")


def test_team_routes_come_first():
    routes = _config("teams")["route"]["routes"]
    assert routes[:2] == [
        {"matchers": ['team="payments"'], "receiver": "team-payments"},
        {"matchers": ['team="checkout"'], "receiver": "slack"},
    ]
    assert [r["matchers"] for r in routes[2:]] == [['severity="critical"'], ['severity="warning"']]


def test_inhibit_rules():
    assert _config("defaults-dev")["inhibit_rules"] == [{
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": ["alertname", "instance"],
    }]


def test_dev_has_a_null_receiver():
    doc = _config("defaults-dev")
    assert doc["receivers"] == [{"name": "null"}]
    assert doc["route"]["receiver"] == "null"


def test_receiver_kinds():
    r = _receivers("receiver-edges")
    secrets = alertmanager.SECRETS_DIR
    assert r["slack"]["slack_configs"] == [{
        "api_url_file": f"{secrets}/slack-slack-api_url",
        "channel": "#alerts",
        "title": "{{ .GroupLabels.alertname }}",
        "text": "{{ range .Alerts }}{{ .Annotations.description }}{{ end }}",
        "send_resolved": True,
    }]
    severity = alertmanager.PAGERDUTY_SEVERITY
    assert r["pagerduty"]["pagerduty_configs"] == [{
        "routing_key_file": f"{secrets}/pagerduty-pagerduty-routing_key", "severity": severity,
    }]
    assert r["pd-eu"]["pagerduty_configs"] == [{
        "routing_key_file": f"{secrets}/pd-eu-pagerduty-routing_key", "severity": severity,
        "url": "http://sink:8080/v2/enqueue",
    }]
    assert r["email"]["email_configs"] == [{
        "to": "team@example.com", "from": "am@example.com", "smarthost": "smtp.example.com:587",
        "auth_username": "am@example.com",  # defaults to `from` when a password is set
        "auth_password_file": f"{secrets}/email-email-auth_password", "require_tls": True,
    }]
    assert r["mail-noauth"]["email_configs"] == [{
        "to": "ops@example.com", "from": "am@example.com", "smarthost": "mail:25", "require_tls": False,
    }]
    assert r["mail-user"]["email_configs"][0]["auth_username"] == "relay"
    assert r["hook"]["webhook_configs"] == [{"url_file": f"{secrets}/hook-webhook-url"}]
    assert set(r["everything"]) == {"name", "slack_configs", "pagerduty_configs", "email_configs", "webhook_configs"}
    assert r["blackhole"] == {"name": "blackhole"}


def test_inline_team_receiver():
    r = _receivers("teams")
    assert r["team-payments"]["slack_configs"][0]["channel"] == "#payments"
    assert r["team-payments"]["slack_configs"][0]["api_url_file"].endswith("/team-payments-slack-api_url")


@pytest.mark.parametrize("name", SETTINGS_CASES)
def test_render_holds_no_secret(name):
    text = render_tool("alertmanager", settings_for(name))["alertmanager/alertmanager.yml"]
    assert SECRET not in text
    for line in text.splitlines():
        key = line.strip().lstrip("- ").split(":", 1)[0]
        assert key not in ("api_url", "routing_key", "service_key", "auth_password"), line


def test_secret_files_match_the_config():
    s = settings_for("receiver-edges")
    values = alertmanager.secret_values(s)
    referenced = set()
    for receiver in alertmanager.config(s)["receivers"]:
        for kind, entries in receiver.items():
            if kind == "name":
                continue
            for entry in entries:
                referenced |= {v for k, v in entry.items() if k.endswith("_file")}
    assert set(values) == referenced
    assert all(p.startswith("/etc/alertmanager/secrets/") for p in values)
    assert values["/etc/alertmanager/secrets/hook-webhook-url"].get_secret_value() == SECRET + "http://sink:8080/hook?token=x"


def test_workload():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        wl = workloads_of("alertmanager", settings_for("receiver-edges"))[0]
        assert wl.name == "alertmanager" and wl.image == "prom/alertmanager:v0.35.0"
        assert (wl.uid, wl.gid) == (65534, 65534)
        assert wl.data.path == "/alertmanager" and wl.data.size == "1Gi"
        assert wl.health == HealthCheck.http("/-/ready", 9093, client="wget")
        assert wl.port("http").port == 9093 and wl.port("http").publish
        assert _flag(wl.args, "config.file") == "/etc/alertmanager/alertmanager.yml"
        assert _flag(wl.args, "storage.path") == "/alertmanager"
        assert "--cluster.listen-address=" in wl.args
        assert [f.path for f in wl.config_files] == ["/etc/alertmanager/alertmanager.yml"]
        assert {f.path for f in wl.secret_files} == set(alertmanager.secret_values(settings_for("receiver-edges")))
        for secret_file in wl.secret_files:
            assert isinstance(secret_file.content, pulumi.Output)
            assert loop.run_until_complete(secret_file.content.is_secret())
    finally:
        loop.close()
        asyncio.set_event_loop(None)


# --- amtool, the judge ------------------------------------------------------------------------


def _write(tmp_path: Path, name: str) -> Path:
    """alertmanager.yml with its secrets under tmp_path, as the container would see them."""
    s = settings_for(name)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for path, value in alertmanager.secret_values(s, str(secrets)).items():
        Path(path).write_text(value.get_secret_value())
    config_path = tmp_path / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(alertmanager.config(s, str(secrets)), sort_keys=False))
    return config_path


@pytest.mark.tools
@pytest.mark.parametrize("name", SETTINGS_CASES)
def test_amtool_check_config(name, tmp_path, amtool):
    run([amtool, "check-config", str(_write(tmp_path, name))])


@pytest.mark.tools
@pytest.mark.parametrize("name", SETTINGS_CASES)
def test_amtool_check_config_of_the_rendered_file(name, tmp_path, amtool):
    """The file exactly as rendered (absolute /etc/alertmanager/secrets paths) is valid too."""
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_tool("alertmanager", settings_for(name))["alertmanager/alertmanager.yml"])
    run([amtool, "check-config", str(path)])


@pytest.mark.tools
@pytest.mark.parametrize("labels, receiver", [
    (["team=payments", "severity=critical", "alertname=PaymentsFailing"], "team-payments"),
    (["team=checkout", "severity=warning"], "slack"),
    (["severity=critical", "alertname=ServiceDown"], "pagerduty"),
    (["severity=warning", "alertname=HighLatency"], "slack"),
    (["severity=info", "alertname=Other"], "email"),
    (["alertname=NoSeverity"], "email"),
    (["team=unknown", "severity=critical"], "pagerduty"),
])
def test_amtool_routes(labels, receiver, tmp_path, amtool):
    config_path = _write(tmp_path, "teams")
    run([amtool, "config", "routes", "test", f"--config.file={config_path}",
         f"--verify.receivers={receiver}", *labels])


@pytest.mark.tools
def test_amtool_routes_dev_default(tmp_path, amtool):
    config_path = _write(tmp_path, "defaults-dev")
    run([amtool, "config", "routes", "test", f"--config.file={config_path}", "--verify.receivers=null",
         "severity=critical"])
