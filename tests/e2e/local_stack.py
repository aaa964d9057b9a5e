"""Real Prometheus and Alertmanager on loopback with the rendered configs: the pinned binaries,
the local file layout (tests/e2e/localize.py) and what a notification carries. Shared by the
end-to-end tests (test_alerting_e2e.py, test_python_service_e2e.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from observability_stack.components import alertmanager, prometheus
from observability_stack.components.render import render_all, workloads_of
from observability_stack.config import Settings
from tests import tools
from tests.e2e import localize
from tests.e2e.http_sink import Delivery

SUBJECT = re.compile(r"^\[FIRING:(\d+)\] (\S+)")


def pinned_binary(name: str) -> str:
    """The pinned build of `name`; fails (never skips) when missing or at another version."""
    path = tools.find(name)
    if not path:
        pytest.fail(f"{name} not found: run scripts/build-prom-tools.sh (builds the pinned version)")
    versions = json.loads((Path(alertmanager.__file__).parent / "versions.json").read_text())
    want = versions["images"][name]["tag"].lstrip("v")

    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    if f"version {want} " not in out.stdout + out.stderr:
        pytest.fail(f"{path} is not {name} {want}: {out.stdout}{out.stderr}")
    return path



def write_local_layout(settings: Settings, root: Path, targets: dict[str, str], extra_jobs: dict[str, str],
                       scale: int = 60, scrape_interval: str = "1s"):
    """Write the rendered Prometheus and Alertmanager files (local copies, see tests/e2e/localize.py)
    and the receivers' secret files under `root`; returns (rendered, prometheus and alertmanager
    workloads)."""
    rendered = render_all(settings)
    prom_w, am_w = workloads_of("prometheus", settings)[0], workloads_of("alertmanager", settings)[0]
    # The workloads mount exactly what `make render` writes, at their container paths.
    assert {f.content for f in prom_w.config_files} == {
        text for path, text in rendered.items() if path.startswith("prometheus/")}
    assert [f.content for f in am_w.config_files] == [rendered["alertmanager/alertmanager.yml"]]
    files = {}
    for f in prom_w.config_files:
        if f.path == prometheus.CONFIG_PATH:
            files[f.path] = localize.prometheus_yml(f.content, root, targets, extra_jobs, scale, scrape_interval)
        else:
            files[f.path] = localize.rule_file(f.content, scale)
    for f in am_w.config_files:
        files[f.path] = localize.alertmanager_yml(f.content, root, scale)
    # Secret files: the paths the workload mounts, with the values settings hold (the workload's
    # pulumi Outputs cannot be read outside a deployment).
    secrets = alertmanager.secret_values(settings)
    assert sorted(s.path for s in am_w.secret_files) == sorted(secrets)
    files.update({path: value.get_secret_value() for path, value in secrets.items()})
    localize.write_files(files, root)
    for data in (prometheus.DATA_DIR, alertmanager.DATA_DIR):
        localize.under(root, data).mkdir(parents=True, exist_ok=True)
    return rendered, prom_w, am_w



def delivered(d: Delivery) -> list[dict]:
    """The alerts one notification carries: full label sets where the payload has them (webhook,
    PagerDuty's custom_details), else `{"alertname": ...}` once per alert counted in the subject
    (email) or the attachment's fallback text (Slack)."""
    if d.service == "webhook":
        return [a["labels"] for a in d.body["alerts"]]
    if d.service == "pagerduty":
        return [a["labels"] for a in d.body["payload"]["custom_details"]["firing"]]
    text = d.body["Subject"] if d.service == "email" else d.body["attachments"][0]["fallback"]
    match = SUBJECT.match(text)
    assert match, f"{d.service} notification without a [FIRING:n] subject: {text!r}"
    return [{"alertname": match.group(2)}] * int(match.group(1))


def smtp_sinks(stack, deliveries):
    """`smarthost(receiver)` for sink_settings-style helpers: one SMTP sink per email receiver,
    started on first use and stopped with `stack` (a contextlib.ExitStack)."""
    from tests.e2e.smtp_sink import SmtpSink

    started: dict = {}

    def smarthost(receiver: str) -> str:
        if receiver not in started:
            started[receiver] = stack.enter_context(SmtpSink(receiver, deliveries))
        return started[receiver].smarthost

    return smarthost


def start_prometheus_and_alertmanager(stack, root: Path, prom_w, am_w, prom_addr: str, am_addr: str,
                                      logs: Path) -> tuple:
    """The pinned Alertmanager, then Prometheus, from a `write_local_layout` tree, both ready;
    stopped with `stack`. Returns their base URLs and processes: (prom, am, prom_proc, am_proc)."""
    from tests.e2e.procs import Process

    am_proc = stack.enter_context(Process(
        "alertmanager", [pinned_binary("alertmanager"), *localize.local_args(am_w.args, root, am_addr)],
        logs / "alertmanager.log"))
    prom_proc = stack.enter_context(Process(
        "prometheus", [pinned_binary("prometheus"), *localize.local_args(prom_w.args, root, prom_addr)],
        logs / "prometheus.log"))
    am, prom = f"http://{am_addr}", f"http://{prom_addr}"
    am_proc.wait_ready(f"{am}/-/ready")
    prom_proc.wait_ready(f"{prom}/-/ready")
    return prom, am, prom_proc, am_proc
