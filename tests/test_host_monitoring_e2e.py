"""Host monitoring, for real: node_exporter built from its Go module runs on this host, the pinned
Prometheus scrapes it with the stack's rendered job and evaluates the stack's rendered rules, and
the pinned Alertmanager, rendered from the stack's config, delivers to a local webhook sink
(issue 13, "Real tests: node_exporter").

What runs, and how it differs from the deployed stack:
- node_exporter 1.12.1 (`scripts/build-node-exporter.sh`, version checked against
  components/versions.json; missing or another version fails, never skips) with the flags of the
  dev stack's rendered workload. In the container the host's /proc, /sys and / are mounted at the
  workload's `host_mounts` paths (/host/proc, /host/sys, /host/root); a process on the host reads
  them where they are, so each `--path.*` value under a mount's container path is mapped back to
  the host path (`--path.rootfs=/host/root` -> `/`, `--path.udev.data=/host/root/run/udev/data` ->
  `/run/udev/data`). `--web.listen-address=:9100` becomes a free loopback port. Every other flag
  (collectors off, mount-point and device exclusions) is as rendered. When the test runs as root
  it runs node_exporter as the workload's uid/gid (65534, the image's `nobody`) through
  `setpriv`, from a copy of the binary nobody can execute, as the container does.
- Prometheus 3.16.0 and Alertmanager 0.35.0 with the dev stack's rendered files, localized by
  tests/e2e/localize.py (targets mapped to local ports, time 60x faster: rule `for:`, evaluation
  and Alertmanager group timers divided by 60, scrapes every 1 s; expressions and windows as
  rendered). `node-exporter:9100` maps to the node_exporter above; Grafana, Loki, Tempo, Mimir,
  Pyroscope, the collector and cAdvisor are not started, their jobs point at a healthy stub.
- The stack's settings are the committed dev stack plus two webhook receivers routed by severity
  (`critical` and `warning`), pointed at the local sink (tests/e2e/receivers.py).
- The test overlay: the dev stack's rules rendered with
  `node_exporter.monitoring_rules(settings, fs_free_critical=<free fraction of / + 0.05>,
  fs_for="1m")` (1 s at the test's clock), so NodeFilesystemAlmostFull must fire for `/`; every
  other rule is the stack's own.

Asserted through Prometheus' and Alertmanager's HTTP APIs and the sink: the node_exporter target
is up under the rendered job; the seed's Saturation query and the dashboards' Saturation panel
return a CPU percentage; every recording rule over node_exporter metrics that a rendered dashboard
queries returns series for this host, and so does every query of the Node dashboard; every
rendered rule is loaded and healthy; NodeFilesystemAlmostFull reaches Alertmanager and the
critical receiver's webhook with `severity="critical"`, the node_exporter's `instance`, `job` and
`mountpoint="/"`; read-only mounts (the rule's `readonly == 0` clause) do not fire; and at the
stack's default threshold the same expression has a series for `/` exactly when the real disk is
below it (on a roomy disk: the overlay, not a full disk, made it fire). Run alone: `./venv/bin/pytest tests/test_host_monitoring_e2e.py -s` (~15 s).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from observability_stack.components import node_exporter, prometheus
from observability_stack.components.render import links_for, workloads_of
from observability_stack.config import Settings, load_settings
from observability_stack.config.loader import parse_raw
from tests.e2e.exporter import Exporter, stub_metrics
from tests.e2e.http_sink import Deliveries, Delivery, HttpSink
from tests.e2e.local_stack import start_prometheus_and_alertmanager, write_local_layout
from tests.e2e.procs import Process, free_port, http_get_json
from tests.e2e.receivers import pointed_at_sinks
from tests.scenarios import NS, SECURE
from tooling.mockrun import engine_config, stack_file_config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SCALE = 60
SCRAPE_INTERVAL = "1s"
WAIT = 60  # seconds for every query to have data and the alert to arrive (about 6 s normally)
MOUNT = "/"  # the real mount whose free fraction the overlay's threshold sits above
MARGIN = 0.05  # threshold = free fraction of MOUNT + this (disk use moves far less during the test)
CONTROL_BAND = 0.002  # the control's "too close to call": 0.2 % of the disk (500 MB of 250 GB)
FS_FOR = "1m"  # pending time of the overlay's alert: 1 s at SCALE, so it goes pending, then firing
ALERT = "NodeFilesystemAlmostFull"
# The seed guide's Saturation query, verbatim (guide "Grafana可视化", "4. 饱和度（Saturation）- CPU使用率").
SEED_SATURATION = '100 - (avg(rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100)'
RECEIVERS = {"critical": "oncall-critical", "warning": "oncall-warning"}
SUMMARY: dict = {}


# --- node_exporter on this host ----------------------------------------------------------------


def node_exporter_binary() -> str:
    """The build of scripts/build-node-exporter.sh at the version components/versions.json pins."""
    script = ROOT / "scripts" / "build-node-exporter.sh"
    out = subprocess.run(["bash", str(script), "--print-path"], capture_output=True, text=True, timeout=60)
    path = Path(out.stdout.strip()) / "node_exporter"
    if out.returncode != 0 or not path.is_file():
        pytest.fail(f"node_exporter not built: run scripts/build-node-exporter.sh ({out.stderr.strip()})")
    want = json.loads((ROOT / "components" / "versions.json").read_text())["go_modules"]["node_exporter"]["version"]
    version = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    if f"version {want.lstrip('v')} " not in version.stdout + version.stderr:
        pytest.fail(f"{path} is not node_exporter {want}: {version.stdout}{version.stderr}")
    return str(path)


def host_args(workload, listen: str) -> list[str]:
    """The workload's flags for a process on this host (see the module docstring)."""
    mounts = sorted(workload.host_mounts, key=lambda m: len(m.path), reverse=True)
    out = []
    for arg in workload.args:
        name, eq, value = arg.partition("=")
        if name == "--web.listen-address":
            value = listen
        elif name.startswith("--path.") and eq:
            for m in mounts:
                if value == m.path or value.startswith(m.path + "/"):
                    value = os.path.normpath(m.host_path + "/" + value[len(m.path):])
                    break
            else:
                raise AssertionError(f"{arg}: not under any of the workload's host mounts")
        out.append(f"{name}={value}" if eq else arg)
    return out


def as_workload_user(binary: str, workload, cleanup: contextlib.ExitStack) -> list[str]:
    """argv running `binary` as the workload's uid/gid when the test runs as root (the container
    never runs it as root; node_exporter warns when it is)."""
    if os.geteuid() != 0:
        return [binary]
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.fail("setpriv (util-linux) not found: needed to run node_exporter as its workload's uid")
    # The build cache (root's home) and pytest's temp dirs are mode 0700: the workload's uid gets
    # a copy in a directory of its own under the system temp dir, removed afterwards.
    workdir = Path(tempfile.mkdtemp(prefix="obs-node-exporter-"))
    cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
    workdir.chmod(0o755)
    copy = workdir / "node_exporter"
    shutil.copy2(binary, copy)
    copy.chmod(0o755)
    return [setpriv, f"--reuid={workload.uid}", f"--regid={workload.gid}", "--clear-groups", "--", str(copy)]


def uids(pid: int) -> set[int]:
    """Real, effective, saved and filesystem uids of a process."""
    line = next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("Uid:"))
    return {int(u) for u in line.split()[1:]}


def free_fraction(path: str) -> float:
    """avail / size the way node_exporter's filesystem collector computes it (statfs: Bavail and
    Blocks, both in units of the block size)."""
    st = os.statvfs(path)
    return st.f_bavail / st.f_blocks


# --- the running stack -------------------------------------------------------------------------


@dataclass
class Running:
    settings: Settings
    prom: str
    am: str
    node_target: str
    threshold: float
    rendered: dict[str, str]
    deliveries: Deliveries
    timings: dict = field(default_factory=dict)
    logs: dict = field(default_factory=dict)

    def query(self, expr: str) -> list[dict]:
        url = f"{self.prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = http_get_json(url)
        assert body["status"] == "success", body
        return body["data"]["result"]


def webhook_settings(sink: HttpSink) -> Settings:
    """The committed dev stack plus a webhook receiver per severity, delivering to `sink`."""
    config = {**stack_file_config("dev"), NS + "alerting": {
        "receivers": [{"name": name, "webhook": {"url": SECURE}} for name in RECEIVERS.values()],
        "routes": {**RECEIVERS, "default": RECEIVERS["warning"]},
    }}
    values, secret_keys = engine_config(config)
    raw = {k[len(NS):]: parse_raw(v) for k, v in values.items() if k.startswith(NS)}
    no_email = lambda receiver: pytest.fail(f"no email receiver expected ({receiver})")  # noqa: E731
    return load_settings(pointed_at_sinks(raw, sink, no_email), stack="dev", secret_keys=secret_keys)


def fs_alerts(deliveries: list[Delivery]) -> list[tuple[str, dict]]:
    return [(d.receiver, a["labels"]) for d in deliveries if d.service == "webhook"
            for a in d.body["alerts"] if a["labels"].get("alertname") == ALERT and a["status"] == "firing"]


def dashboards(rendered: dict[str, str]) -> dict[str, dict]:
    return {Path(p).stem: json.loads(t) for p, t in rendered.items() if p.startswith("grafana/dashboards/")}


def panel_queries(board: dict) -> list[tuple[str, str]]:
    """(panel title, expr) of every panel target, rows' nested panels included."""
    out = []
    for p in board.get("panels", []):
        for inner in [p, *p.get("panels", [])]:
            out += [(inner.get("title", ""), t["expr"]) for t in inner.get("targets", []) if t.get("expr")]
    return out


def recording_rules(rendered: dict[str, str]) -> dict[str, str]:
    """{record name: expr} over every rendered rule file."""
    out = {}
    for path, text in rendered.items():
        if path.startswith("prometheus/rules/"):
            for group in yaml.safe_load(text)["groups"]:
                out.update({r["record"]: r["expr"] for r in group["rules"] if "record" in r})
    return out


NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def node_records_on_dashboards(rendered: dict[str, str]) -> set[str]:
    """Recording rules a rendered dashboard queries whose expression reads node_exporter's
    metrics (`node_*`)."""
    records = recording_rules(rendered)
    used = {name for board in dashboards(rendered).values() for _, expr in panel_queries(board)
            for name in NAME.findall(expr) if name in records}
    return {r for r in used if any(n.startswith("node_") for n in NAME.findall(records[r]))}


def with_all_variables(expr: str) -> str:
    """A dashboard query with every `=~"$var"` matching anything (Grafana's All)."""
    return re.sub(r'=~"\$\w+"', '=~".*"', expr)


def missing(run: Running) -> list[str]:
    """What the checks need and is not there yet: queries without data, the alert at the sink."""
    queries = [SEED_SATURATION, *sorted(node_records_on_dashboards(run.rendered)),
               *(with_all_variables(e) for _, e in panel_queries(dashboards(run.rendered)["node"]))]
    out = [f"no data: {q}" for q in queries if not run.query(q)]
    return out + ([] if fs_alerts(run.deliveries.all()) else [f"{ALERT} not delivered"])


@pytest.fixture(scope="module")
def run(tmp_path_factory, module_event_loop):
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("host")
    ne_bin = node_exporter_binary()
    deliveries = Deliveries()
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(HttpSink(deliveries))
        stub = stack.enter_context(Exporter(stub_metrics))
        settings = webhook_settings(sink)
        assert settings.enabled("node_exporter"), "the dev stack runs node_exporter by default"

        (ne_w,) = workloads_of("node_exporter", settings)
        ne_addr = f"127.0.0.1:{free_port()}"
        ne_proc = stack.enter_context(Process(
            "node_exporter", [*as_workload_user(ne_bin, ne_w, stack), *host_args(ne_w, ne_addr)],
            tmp / "node_exporter.log"))
        ne_proc.wait_ready(f"http://{ne_addr}/metrics")
        if os.geteuid() == 0:  # setpriv exec'd node_exporter in place: same pid, the workload's uid
            assert uids(ne_proc.proc.pid) == {ne_w.uid}, uids(ne_proc.proc.pid)

        threshold = round(free_fraction(MOUNT) + MARGIN, 4)
        prom_addr, am_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        ports = {"prometheus": prom_addr, "alertmanager": am_addr, node_exporter.JOB: ne_addr}
        targets = {target: ports.get(job, stub.target)
                   for job, target in prometheus.stack_targets(links_for(settings)).items()}
        root = tmp / "root"
        # The test overlay: the stack renders its rules through the tool module's hook, with the
        # filesystem threshold above MOUNT's free fraction.
        overlay = functools.partial(node_exporter.monitoring_rules, fs_free_critical=threshold, fs_for=FS_FOR)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(node_exporter, "monitoring_rules", overlay)
            rendered, prom_w, am_w = write_local_layout(settings, root, targets, {},
                                                        scale=SCALE, scrape_interval=SCRAPE_INTERVAL)
        _, _, prom_proc, am_proc = start_prometheus_and_alertmanager(stack, root, prom_w, am_w, prom_addr,
                                                                     am_addr, tmp)
        running = Running(settings, f"http://{prom_addr}", f"http://{am_addr}", ne_addr, threshold,
                          rendered, deliveries)
        running.timings["processes up"] = round(time.monotonic() - started, 1)

        deadline = time.monotonic() + WAIT
        while lacking := missing(running):
            if time.monotonic() > deadline:
                pytest.fail(f"after {WAIT}s: {lacking}\n"
                            f"sink: {[(d.receiver, d.body) for d in deliveries.all()]}\n"
                            f"node_exporter log:\n{ne_proc.output()}\nprometheus log:\n{prom_proc.output()}\n"
                            f"alertmanager log:\n{am_proc.output()}")
            time.sleep(0.25)
        running.timings["alert delivered"] = round(time.monotonic() - started, 1)
        running.logs = {"node_exporter": ne_proc, "prometheus": prom_proc, "alertmanager": am_proc}
        yield running
        # What fired in these real processes, for the report (issue 13's closing note).
        firing = http_get_json(f"{running.prom}/api/v1/alerts")["data"]["alerts"]
        SUMMARY["firing in Prometheus"] = sorted({(a["labels"]["alertname"], a["labels"].get("severity", ""))
                                                  for a in firing if a["state"] == "firing"})
        SUMMARY["delivered"] = sorted({(d.receiver, a["labels"]["alertname"], a["labels"].get("severity", ""))
                                       for d in deliveries.all() for a in d.body.get("alerts", [])})
        SUMMARY["threshold"] = threshold
    SUMMARY["seconds"] = {**running.timings, "total": round(time.monotonic() - started, 1)}


@pytest.fixture(scope="module", autouse=True)
def report(request):
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nhost monitoring e2e: {json.dumps(SUMMARY)}")


# --- the checks --------------------------------------------------------------------------------


def test_node_exporter_scraped_by_the_rendered_job(run: Running):
    (target,) = [t for t in http_get_json(f"{run.prom}/api/v1/targets")["data"]["activeTargets"]
                 if t["scrapePool"] == node_exporter.JOB]
    assert target["health"] == "up", target
    assert target["labels"]["instance"] == run.node_target
    # The rendered job's limits are in force on this target (scrape_pools' config as loaded).
    config = yaml.safe_load(http_get_json(f"{run.prom}/api/v1/status/config")["data"]["yaml"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == node_exporter.JOB]
    (rendered,) = [j for j in yaml.safe_load(run.rendered["prometheus/prometheus.yml"])["scrape_configs"]
                   if j["job_name"] == node_exporter.JOB]
    assert job["sample_limit"] == rendered["sample_limit"] and job["label_limit"] == rendered["label_limit"]
    # The host's own collectors answered (as the workload's user when the test runs as root).
    failed = run.query(f'node_scrape_collector_success{{job="{node_exporter.JOB}", '
                       'collector=~"cpu|meminfo|filesystem|loadavg|netdev|timex"} != 1')
    assert not failed, failed


def test_seed_saturation_query_returns_a_cpu_percentage(run: Running):
    (sample,) = run.query(SEED_SATURATION)
    assert 0 <= float(sample["value"][1]) <= 100
    # The golden-signals dashboard's Saturation panel shows the node's CPU for this host.
    board = dashboards(run.rendered)["golden-signals"]
    node = [e for title, e in panel_queries(board) if title.startswith("Saturation") and "node" in e]
    assert node, "the Saturation panel has no node CPU query"
    for expr in node:
        result = run.query(with_all_variables(expr))
        assert [r["metric"].get("instance") for r in result] == [run.node_target], (expr, result)
        assert all(0 <= float(r["value"][1]) <= 100 for r in result), (expr, result)


def test_node_recording_rules_on_dashboards_return_values(run: Running):
    records = node_records_on_dashboards(run.rendered)
    # Every record of the node rule file is on a dashboard (the Node board), plus the seed's CPU.
    node_file = yaml.safe_load(run.rendered["prometheus/rules/node.yml"])
    assert {r["record"] for g in node_file["groups"] for r in g["rules"] if "record" in r} <= records
    for record in sorted(records):
        result = run.query(record)
        assert result, f"{record} has no series"
        assert {r["metric"].get("instance") for r in result} == {run.node_target}, (record, result)
        assert all(v == v for r in result for v in [float(r["value"][1])]), (record, result)  # not NaN
    # Every query of the Node dashboard, with All selected, shows this host.
    for title, expr in panel_queries(dashboards(run.rendered)["node"]):
        assert run.query(with_all_variables(expr)), (title, expr)


def test_every_rendered_rule_is_loaded_and_healthy(run: Running):
    want = {}
    for path, text in run.rendered.items():
        if path.startswith("prometheus/rules/"):
            for group in yaml.safe_load(text)["groups"]:
                want[group["name"]] = [r.get("alert") or r.get("record") for r in group["rules"]]
    groups = http_get_json(f"{run.prom}/api/v1/rules")["data"]["groups"]
    assert {g["name"]: [r["name"] for r in g["rules"]] for g in groups} == want
    unhealthy = [(g["name"], r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert not unhealthy


def test_filesystem_alert_reaches_alertmanager_and_the_critical_receiver(run: Running):
    expected = {"alertname": ALERT, "severity": "critical", "job": node_exporter.JOB,
                "instance": run.node_target, "mountpoint": MOUNT}
    matches = lambda labels: all(labels.get(k) == v for k, v in expected.items())  # noqa: E731
    # Alertmanager holds it, routed by severity to the critical receiver only.
    am = http_get_json(f"{run.am}/api/v2/alerts?active=true")
    held = [a for a in am if matches(a["labels"])]
    assert held, [a["labels"] for a in am]
    assert all([r["name"] for r in a["receivers"]] == [RECEIVERS["critical"]] for a in held)
    # The webhook received it with the labels a responder needs, and nowhere else.
    got = fs_alerts(run.deliveries.all())
    assert any(receiver == RECEIVERS["critical"] and matches(labels) for receiver, labels in got), got
    assert {receiver for receiver, _ in got} == {RECEIVERS["critical"]}
    assert all(labels.get("fstype") and labels.get("device") for _, labels in got), got
    assert held[0]["annotations"]["summary"]


def test_filesystem_alert_skips_read_only_mounts(run: Running):
    """The rule's `readonly == 0`: a read-only mount below the threshold never fires (only
    checked when this host has one; the test's host has a read-only tmpfs)."""
    ro = {r["metric"]["mountpoint"] for r in run.query(f'node_filesystem_readonly{{job="{node_exporter.JOB}"}} == 1')}
    firing = {a["labels"]["mountpoint"] for a in http_get_json(f"{run.prom}/api/v1/alerts")["data"]["alerts"]
              if a["labels"]["alertname"] == ALERT}
    assert MOUNT in firing and not ro & firing, (ro, firing)


def test_default_threshold_follows_the_real_disk(run: Running):
    """The control: the stack's own expression (default threshold) has a series for MOUNT exactly
    when MOUNT's real free fraction is below that threshold. On a roomy disk that shows the overlay,
    not a full disk, made the alert fire; on a host whose disk really is nearly full (a CI machine
    that has just built every tool from nothing can be) it shows the default rule catches it.
    Only a disk sitting within CONTROL_BAND of the threshold cannot tell, and is reported as such."""
    (default,) = [r for g in node_exporter.monitoring_rules(run.settings)["node.yml"]["groups"]
                  for r in g["rules"] if r.get("alert") == ALERT]
    default_threshold = inspect.signature(node_exporter.monitoring_rules).parameters["fs_free_critical"].default
    assert f"< {default_threshold} " in default["expr"]
    free = free_fraction(MOUNT)
    if abs(free - default_threshold) < CONTROL_BAND:
        pytest.skip(f"{MOUNT} is {free:.4f} free, within {CONTROL_BAND} of the default threshold "
                    f"{default_threshold}: the control cannot decide")
    series = [r for r in run.query(default["expr"]) if r["metric"].get("mountpoint") == MOUNT]
    assert bool(series) == (free < default_threshold), (free, default_threshold, series)
