"""`make bench-pipeline` (part of `make bench`): the rendered prod stack under load, real processes.

Everything runs on 127.0.0.1, every wait is bounded, every process is stopped in `finally`:
1. Prometheus (the pinned binary from scripts/build-prom-tools.sh) with the rendered prod
   `prometheus.yml`, rules and flags, scraping our synthetic exporter at the prod preset's
   `ingest.metricsSamplesPerSecond` and at the seed's headline of 100K samples/s, remote-writing
   to a local receiver. Reports samples/s, active series, peak RSS against the derived memory
   limit, CPU, remote-write lag and failed/dropped samples, rule evaluation time.
2. The OpenTelemetry collector (scripts/build-otelcol.sh) with the rendered prod gateway config,
   exporters pointed at local sinks, under OTLP/HTTP load: at the preset's incoming span rate,
   then stepped up until `memory_limiter` refuses. Reports spans/s accepted, kept and refused,
   peak RSS against the derived limit, and whether it refused or died.
3. Alertmanager (pinned binary) with the rendered prod config, receivers pointed at a local sink:
   notifications/s delivered for N alert groups.

Localization (a copy of each rendered file, the render functions untouched): paths re-rooted
and service names mapped to loopback ports (tests/e2e/localize.py); Prometheus' `remote_write`
URL points at the receiver (every other remote-write key as rendered); the stack's own scrape
jobs point at a stub; the collector's endpoints bind to 127.0.0.1 and its exporters point at
sinks. The collector's `memory_limiter` takes percentages of the container's cgroup memory
limit; outside a container, collector v0.141 falls back to the host's total memory
(internal/memorylimiter/iruntime/total_memory_linux.go: "If memory is not defined ... we
fallback to /proc/meminfo"), so the local copy sets the same figures in MiB (`limit_mib` = 80%
and `spike_limit_mib` = 20% of the derived limit). GOMEMLIMIT is set as the workload sets it.

Absolute figures depend on the machine (cores, memory, disk); the ratios to the derived limits
are the point. See README.md, "Performance".
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from benchmarks.loadgen import (  # noqa: E402
    SERIES_PER_TARGET, FastSink, GrpcSink, OtlpLoad, SyntheticExporter, WriteSink,
)
from observability_stack.components import alertmanager, collector, prometheus, sizing  # noqa: E402
from observability_stack.components.render import links_for, render_all, workloads_of  # noqa: E402
from observability_stack.config import load_settings  # noqa: E402
from observability_stack.config.durations import parse_duration  # noqa: E402
from observability_stack.config.loader import stack_config_values  # noqa: E402
from tests.e2e import localize  # noqa: E402
from tests.e2e.http_sink import HttpSink  # noqa: E402
from tests.e2e.procs import Process, free_port, http_post_json  # noqa: E402
from tests.e2e.receivers import pointed_at_sinks  # noqa: E402

MIB = 2**20
SEED_SAMPLES_PER_SECOND = 100_000  # the seed's headline for one Prometheus node


def prod_raw() -> dict:
    doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    raw, _ = stack_config_values(doc["config"])
    return raw


def prod_settings(**overrides):
    """The prod stack's settings (placeholder secrets), with `overrides` merged on top."""
    from observability_stack.config.loader import deep_merge

    return load_settings(deep_merge(prod_raw(), overrides), stack="prod")


def tool_path(script: str, name: Optional[str] = None) -> str:
    """A pinned binary: the cached build when complete (the scripts publish a build only when it
    is whole), else built now by its script (which locks the shared cache)."""
    def located(printed: str) -> Optional[str]:
        for directory in printed.strip().split(":"):
            path = Path(directory) / name if name else Path(directory)
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
        return None

    script_path = str(ROOT / "scripts" / script)
    cached = located(subprocess.run(["bash", script_path, "--print-path"], capture_output=True, text=True).stdout)
    if cached:
        return cached
    print(f"building with scripts/{script} (cached afterwards)...", file=sys.stderr)
    out = subprocess.run(["bash", script_path], stdout=subprocess.PIPE, text=True)
    found = located(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else None
    if not found:
        raise SystemExit(f"scripts/{script} did not produce {name or 'its binary'}")
    return found


# --- measuring a process ------------------------------------------------------------------------


class Sampler:
    """Polls /proc/<pid> every `interval`: peak RSS and CPU seconds (user + system)."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval = pid, interval
        self.peak_rss = 0  # since the last reset_peak()
        self.overall_peak = 0  # since the start, the costly first scrapes included
        self.rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / self._tick

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.rss = int(line.split()[1]) * 1024
                        self.peak_rss = max(self.peak_rss, self.rss)
                        self.overall_peak = max(self.overall_peak, self.rss)
            except OSError:
                return
            self._stop.wait(self.interval)

    def reset_peak(self) -> None:
        self.peak_rss = self.rss

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def scrape(url: str, timeout: float = 30) -> dict[str, list[tuple[str, float]]]:
    """A /metrics page as {metric name: [(labels text, value)]}."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode()
    found: dict[str, list[tuple[str, float]]] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and not line.startswith("#"):
            found.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
    return found


def total(metrics: dict, name: str, where: Callable[[str], bool] = lambda labels: True) -> float:
    return sum(v for labels, v in metrics.get(name, []) if where(labels))


def maximum(metrics: dict, name: str) -> float:
    return max((v for _, v in metrics.get(name, [])), default=0.0)


def mib(n: float) -> str:
    return f"{n / MIB:,.0f} MiB"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


@dataclass
class Table:
    title: str
    header: tuple[str, ...]
    rows: list[tuple] = field(default_factory=list)

    def print(self) -> None:
        print(f"\n### {self.title}\n")
        print("| " + " | ".join(self.header) + " |")
        print("|" + "---|" * len(self.header))
        for row in self.rows:
            print("| " + " | ".join(str(c) for c in row) + " |")
        sys.stdout.flush()


# --- Prometheus -------------------------------------------------------------------------------


def _prometheus_files(settings, root: Path, exporter: str, targets: int, write_url: str,
                      port: int) -> list[str]:
    """Write the localized prod config + rules under `root`; return the localized flags."""
    files = render_all(settings)
    stub = exporter  # the stack's own jobs: a healthy stub (these tools are not running)
    mapping = {target: stub for target in prometheus.stack_targets(links_for(settings)).values()}
    mapping[prometheus.stack_targets(links_for(settings))[prometheus.TOOL]] = f"127.0.0.1:{port}"
    mapping[f"{alertmanager.TOOL}:{alertmanager.HTTP_PORT}"] = stub
    rendered = yaml.safe_load(files["prometheus/prometheus.yml"])
    text = localize.prometheus_yml(files["prometheus/prometheus.yml"], root, mapping, {}, scale=1,
                                   scrape_interval=rendered["global"]["scrape_interval"])
    doc = yaml.safe_load(text)
    # Synthetic application targets: one job per target (one exporter, a path per target).
    for i in range(targets):
        doc["scrape_configs"].append({"job_name": f"app-{i:03d}", "metrics_path": f"/metrics/{i}",
                                      "static_configs": [{"targets": [exporter]}]})
    # Remote write as rendered, only the URL points at the local receiver.
    doc["remote_write"] = [{**entry, "url": write_url} for entry in rendered["remote_write"]]
    conf_dir = localize.under(root, prometheus.CONFIG_DIR)
    localize.write_files({f"{prometheus.CONFIG_DIR}/{p.removeprefix('prometheus/')}": t
                          for p, t in files.items() if p.startswith("prometheus/")}, root)
    (conf_dir / "prometheus.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return localize.local_args(prometheus.args(settings), root, f"127.0.0.1:{port}")


def prometheus_run(binary: str, samples_per_second: float, seconds: float, label: str) -> dict:
    """Prometheus at `samples_per_second` (settings derived for that ingest) for `seconds`."""
    settings = prod_settings(ingest={"metricsSamplesPerSecond": samples_per_second})
    resources = workloads_of("prometheus", settings)[0].resources
    interval = parse_duration(prometheus.INTERVAL)
    series_wanted = samples_per_second * interval
    targets = max(1, round(series_wanted / SERIES_PER_TARGET))
    with tempfile.TemporaryDirectory(prefix="bench-prom-") as tmp, \
            SyntheticExporter() as exporter, WriteSink(204) as receiver:
        root, port = Path(tmp), free_port()
        argv = [binary, *_prometheus_files(settings, root, exporter.address, targets,
                                           f"{receiver.url}/api/v1/push", port)]
        # What --auto-gomemlimit (on by default in Prometheus 3) takes from the container's limit.
        go_limit = int(resources.memory_limit_bytes * sizing.PROMETHEUS_GOMEMLIMIT_RATIO)
        proc = _start_with_env("prometheus", argv, root / "prometheus.log", {"GOMEMLIMIT": str(go_limit)})
        base = f"http://127.0.0.1:{port}"
        try:
            proc.wait_ready(f"{base}/-/ready", timeout=60)
            with Sampler(proc.proc.pid) as sampler:
                # Warm-up: two scrape intervals create every series (the costly first scrape).
                time.sleep(2 * interval + 2)
                sampler.reset_peak()
                m0, t0, c0 = scrape(f"{base}/metrics"), time.monotonic(), sampler.cpu_seconds()
                ours0 = time.process_time()
                time.sleep(seconds)
                m1, t1, c1 = scrape(f"{base}/metrics"), time.monotonic(), sampler.cpu_seconds()
                peak, steady = sampler.overall_peak, sampler.peak_rss
                up = _query(base, 'count(up{job=~"app-.*"} == 1)')
                slowest_scrape = _query(base, 'max(scrape_duration_seconds{job=~"app-.*"})')
            ours = time.process_time() - ours0
            alive = proc.proc.poll() is None
        finally:
            proc.stop()
    dt = t1 - t0
    appended = (total(m1, "prometheus_tsdb_head_samples_appended_total")
                - total(m0, "prometheus_tsdb_head_samples_appended_total")) / dt
    sent = (total(m1, "prometheus_remote_storage_samples_total")
            - total(m0, "prometheus_remote_storage_samples_total")) / dt
    highest = maximum(m1, "prometheus_remote_storage_highest_timestamp_in_seconds")
    queue_sent = maximum(m1, "prometheus_remote_storage_queue_highest_sent_timestamp_seconds")
    return {
        "label": label, "target": samples_per_second, "targets": targets, "samples": appended,
        "series": maximum(m1, "prometheus_tsdb_head_series"), "peak": peak, "steady": steady,
        "limit": resources.memory_limit_bytes, "request": resources.memory_request_bytes,
        "cpu": (c1 - c0) / dt, "cpu_limit": resources.cpu_limit_cores,
        "rw_sent": sent, "rw_lag": max(0.0, highest - queue_sent) if queue_sent else float("nan"),
        "rw_failed": total(m1, "prometheus_remote_storage_samples_failed_total"),
        "rw_dropped": total(m1, "prometheus_remote_storage_samples_dropped_total"),
        "rw_pending": total(m1, "prometheus_remote_storage_samples_pending"),
        "rule_max": maximum(m1, "prometheus_rule_group_last_duration_seconds"),
        "rule_failures": total(m1, "prometheus_rule_evaluation_failures_total"),
        "scrape_failures": total(m1, "prometheus_target_scrapes_exceeded_sample_limit_total"),
        "alive": alive, "receiver_requests": receiver.requests, "up": up, "slowest_scrape": slowest_scrape,
        "ours": ours / dt, "exporter_errors": exporter.errors,
        "bytes_per_series": steady / max(1.0, maximum(m1, "prometheus_tsdb_head_series")),
    }


def _query(base: str, promql: str) -> float:
    """An instant query's single value (0 when empty)."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=30) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def _verdict(r: dict) -> str:
    """Held = every sample ingested, forwarded without lag, rules on time, every target scraped."""
    problems = []
    if r["samples"] < 0.9 * r["target"]:
        problems.append("samples short")
    if r["up"] < r["targets"]:
        problems.append("scrapes timed out")
    if r["rw_sent"] < 0.9 * r["samples"] or r["rw_lag"] > 30:
        problems.append("remote write behind")
    if r["rule_max"] > 15:
        problems.append("rules slower than their interval")
    return "**yes**" if not problems else "**no**: " + ", ".join(problems)


def prometheus_part(seconds: float) -> list[dict]:
    binary = tool_path("build-prom-tools.sh", "prometheus")
    preset = prod_settings().ingest.metrics_samples_per_second
    runs = [prometheus_run(binary, preset, seconds, "prod preset"),
            prometheus_run(binary, SEED_SAMPLES_PER_SECOND, seconds, "seed headline")]
    table = Table("Prometheus v" + _version("prometheus") + ": rendered prod config, remote write to a local receiver",
                  ("figure", *(f"{r['label']} ({r['target']:,.0f}/s)" for r in runs)))
    table.rows += [
        ("scrape targets x series", *(f"{r['targets']} x {SERIES_PER_TARGET:,}" for r in runs)),
        ("samples/s ingested (vs expected)", *(f"{r['samples']:,.0f} ({ratio(r['samples'], r['target'])})" for r in runs)),
        ("active series (head)", *(f"{r['series']:,.0f}" for r in runs)),
        ("peak RSS (whole run) / derived memory limit", *(f"{mib(r['peak'])} / {mib(r['limit'])} = {r['peak'] / r['limit']:.0%}" for r in runs)),
        ("peak RSS (measured window) / derived request", *(f"{mib(r['steady'])} / {mib(r['request'])} = {r['steady'] / r['request']:.0%}" for r in runs)),
        ("RSS bytes per active series (window peak / series)", *(f"{r['bytes_per_series']:,.0f}" for r in runs)),
        ("app targets up at the end / slowest scrape", *(f"{r['up']:.0f} of {r['targets']} / {r['slowest_scrape']:.1f} s" for r in runs)),
        ("CPU cores used / limit", *(f"{r['cpu']:.2f} / {r['cpu_limit']:g}" for r in runs)),
        ("CPU of the bench's exporter + receiver (Python)", *(f"{r['ours']:.2f} cores" for r in runs)),
        ("remote write samples/s sent (vs ingested)", *(f"{r['rw_sent']:,.0f} ({ratio(r['rw_sent'], r['samples'])})" for r in runs)),
        ("remote write lag (highest ts - highest sent ts)", *(f"{r['rw_lag']:.1f} s" for r in runs)),
        ("remote write samples failed / dropped / pending", *(f"{r['rw_failed']:.0f} / {r['rw_dropped']:.0f} / {r['rw_pending']:.0f}" for r in runs)),
        ("slowest rule group (last evaluation) vs 15s interval", *(f"{r['rule_max'] * 1000:.1f} ms ({ratio(r['rule_max'], 15)})" for r in runs)),
        ("rule evaluation failures", *(f"{r['rule_failures']:.0f}" for r in runs)),
        ("still running at the end", *("yes" if r["alive"] else "NO" for r in runs)),
        ("held the load", *(_verdict(r) for r in runs)),
    ]
    table.print()
    return runs


def _version(tool: str) -> str:
    return json.loads((ROOT / "components" / "versions.json").read_text())["images"][tool]["tag"].lstrip("v")


# --- collector ----------------------------------------------------------------------------------


def _collector_config(settings, limit_bytes: int, grpc_sink: str, http_sink: str,
                      ports: dict[str, int]) -> dict:
    doc = copy.deepcopy(yaml.safe_load(render_all(settings)["collector/config.yaml"]))
    protocols = doc["receivers"]["otlp"]["protocols"]
    protocols["grpc"]["endpoint"] = f"127.0.0.1:{ports['grpc']}"
    protocols["http"]["endpoint"] = f"127.0.0.1:{ports['http']}"
    doc["extensions"]["health_check"]["endpoint"] = f"127.0.0.1:{ports['health']}"
    prom = doc["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    prom.update(host="127.0.0.1", port=ports["metrics"])
    for name, exporter in doc["exporters"].items():
        exporter["endpoint"] = grpc_sink if name.startswith("otlp/") else http_sink
    limiter = doc["processors"]["memory_limiter"]
    # The percentages of the container's limit, as MiB (see the module docstring).
    limit_mib = limit_bytes // MIB
    doc["processors"]["memory_limiter"] = {
        "check_interval": limiter["check_interval"],
        "limit_mib": limit_mib * limiter.pop("limit_percentage") // 100,
        "spike_limit_mib": limit_mib * limiter.pop("spike_limit_percentage") // 100,
    }
    return doc


def collector_part(step_seconds: float, preset_seconds: float) -> dict:
    binary = tool_path("build-otelcol.sh")
    settings = prod_settings()
    workload = workloads_of("collector", settings)[0]
    limit = workload.resources.memory_limit_bytes
    incoming = sizing.collector_spans_per_second(settings)
    ports = {k: free_port() for k in ("grpc", "http", "health", "metrics")}
    steps: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-otel-") as tmp, GrpcSink() as tempo, WriteSink(200) as http:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump(_collector_config(settings, limit, tempo.endpoint, http.url, ports)))
        # The workload's environment (GOMEMLIMIT), as the container gets it.
        proc = _start_with_env("collector", [binary, f"--config={config}"], Path(tmp) / "collector.log",
                               dict(workload.env))
        metrics_url = f"http://127.0.0.1:{ports['metrics']}/metrics"
        try:
            proc.wait_ready(f"http://127.0.0.1:{ports['health']}/", timeout=60)
            load = OtlpLoad("127.0.0.1", ports["http"])
            with Sampler(proc.proc.pid) as sampler:
                idle = sampler.rss or sampler_wait(sampler)
                multipliers = [1.0, 2.0, 3.0, 4.0, 6.0, 8.0]
                for i, k in enumerate(multipliers):
                    if proc.proc.poll() is not None:
                        break
                    sampler.reset_peak()
                    m0, a0, s0 = scrape(metrics_url), load.accepted_spans, dict(load.statuses)
                    offered = load.run(incoming * k, preset_seconds if i == 0 else step_seconds)
                    peak = sampler.peak_rss
                    # Let the step's traces be decided and exported (decision wait + a batch) before
                    # counting what was kept; nothing is sent meanwhile.
                    time.sleep(parse_duration(collector.DECISION_WAIT) + 3)
                    m1 = scrape(metrics_url) if proc.proc.poll() is None else m0
                    seconds = preset_seconds if i == 0 else step_seconds
                    refused_requests = sum(n - s0.get(code, 0) for code, n in load.statuses.items() if code != 200)
                    step = {
                        "k": k, "target": incoming * k, "offered": offered,
                        "accepted": _delta(m0, m1, "otelcol_receiver_accepted_spans_total") / seconds,
                        "refused": _delta(m0, m1, "otelcol_receiver_refused_spans_total") / seconds,
                        "refused_requests": refused_requests,
                        "kept": _delta(m0, m1, "otelcol_exporter_sent_spans_total") / seconds,
                        "dropped_early": _delta(m0, m1, "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early_total"),
                        "peak": max(peak, sampler.peak_rss), "alive": proc.proc.poll() is None,
                        "client_accepted": (load.accepted_spans - a0) / seconds,
                    }
                    steps.append(step)
                    if step["refused"] > 0 or refused_requests:
                        break
            alive = proc.proc.poll() is None
            log = proc.output(100_000)
        finally:
            proc.stop()
    preset = steps[0]
    first_refusal = next((s for s in steps if s["refused"] > 0 or s["refused_requests"]), None)
    table = Table("Collector v" + _version("collector") + ": rendered prod gateway, OTLP/HTTP load, exporters to local sinks",
                  ("step (x preset's incoming spans/s)", "offered spans/s", "accepted spans/s", "kept spans/s",
                   "refused spans/s", "traces dropped before a decision", "peak RSS / derived limit", "alive"))
    for s in steps:
        table.rows.append((f"{s['k']:g}x ({s['target']:,.0f}/s)", f"{s['offered']:,.0f}", f"{s['accepted']:,.0f}",
                           f"{s['kept']:,.0f} ({s['kept'] / max(s['accepted'], 1):.1%})", f"{s['refused']:,.0f}",
                           f"{s['dropped_early']:.0f}", f"{mib(s['peak'])} / {mib(limit)} = {s['peak'] / limit:.0%}",
                           "yes" if s["alive"] else "NO"))
    table.print()
    print(f"\npreset: `ingest.spansPerSecond` {settings.ingest.spans_per_second:g} kept / "
          f"`sampling.traces` {settings.sampling.traces:g} = {incoming:,.0f} spans/s incoming; "
          f"idle RSS {mib(idle)}; `num_traces` {sizing.num_traces(settings):,}; "
          f"memory_limiter refuses above {limit * 60 // 100 // MIB} MiB of heap (80% - 20% spike of {mib(limit)}); "
          f"expected kept share about 7% (5% sampled + 1% error traces + 1% slow traces).")
    if first_refusal:
        print(f"memory_limiter started refusing at {first_refusal['k']:g}x the preset's load "
              f"({first_refusal['offered']:,.0f} spans/s offered); the collector "
              f"{'kept running (refused, not killed)' if alive else 'DIED'}; peak RSS {mib(first_refusal['peak'])} "
              f"= {first_refusal['peak'] / limit:.0%} of the limit.")
        print(f"collector log: 'Refusing data' lines: {log.count('Refusing data')}")
    else:
        print(f"no refusal up to {steps[-1]['offered']:,.0f} spans/s offered: the load generator "
              f"(Python, this machine) saturated first.")
    return {"preset": preset, "steps": steps, "limit": limit, "idle": idle, "incoming": incoming,
            "alive": alive, "first_refusal": first_refusal}


def _delta(m0: dict, m1: dict, name: str) -> float:
    return total(m1, name) - total(m0, name)


def sampler_wait(sampler: Sampler) -> int:
    time.sleep(1)
    return sampler.rss


def _start_with_env(name: str, argv: list[str], log: Path, env: dict) -> Process:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return Process(name, argv, log)
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- Alertmanager ---------------------------------------------------------------------------------


def alertmanager_part(groups: list[int]) -> list[dict]:
    binary = tool_path("build-prom-tools.sh", "alertmanager")
    results = []
    for n in groups:
        # Receivers point at a sink (tests/e2e/receivers.py); every alert here routes to the
        # warning receiver (Slack), whose sink answers as Slack does and only counts.
        with tempfile.TemporaryDirectory(prefix="bench-am-") as tmp, FastSink() as slack, \
                HttpSink() as others:
            root = Path(tmp)
            raw = pointed_at_sinks(prod_raw(), others, lambda receiver: "127.0.0.1:1")
            for receiver in raw["alerting"]["receivers"]:
                if "slack" in receiver:
                    receiver["slack"]["apiUrl"] = f"{slack.url}/slack/{receiver['name']}"
            settings = load_settings(raw, stack="prod")
            text = render_all(settings)["alertmanager/alertmanager.yml"]
            # The receivers' secret files, filled as the targets fill them (URLs of the sinks).
            localize.write_files({path: value.get_secret_value()
                                  for path, value in alertmanager.secret_values(settings).items()}, root)
            conf = root / "alertmanager.yml"
            conf.write_text(localize.alertmanager_yml(text, root, scale=1))
            port, cluster = free_port(), free_port()
            proc = Process("alertmanager", [binary, f"--config.file={conf}", f"--storage.path={root / 'data'}",
                                            f"--web.listen-address=127.0.0.1:{port}",
                                            f"--cluster.listen-address=127.0.0.1:{cluster}"], root / "am.log")
            try:
                proc.wait_ready(f"http://127.0.0.1:{port}/-/ready", timeout=30)
                cpu = Sampler(proc.proc.pid)
                cpu0 = cpu.cpu_seconds()
                group_wait = parse_duration(settings.alerting.group_wait)
                alerts = [{"labels": {"alertname": f"BenchAlert{i}", "service": f"svc-{i}", "severity": "warning",
                                      "cluster": "prod"}, "annotations": {"summary": "bench"}} for i in range(n)]
                t0 = time.monotonic()
                for i in range(0, n, 500):
                    http_post_json(f"http://127.0.0.1:{port}/api/v2/alerts", alerts[i:i + 500], timeout=60)
                first = last = None
                deadline = t0 + group_wait + 60
                while time.monotonic() < deadline:
                    if slack.requests and first is None:
                        first = time.monotonic()
                    if slack.requests >= n:
                        last = time.monotonic()
                        break
                    time.sleep(0.02)
                metrics = scrape(f"http://127.0.0.1:{port}/metrics")
                count = slack.requests
                cpu_used = cpu.cpu_seconds() - cpu0
            finally:
                proc.stop()
        done = last is not None
        end = last or time.monotonic()
        results.append({"groups": n, "delivered": count, "complete": done, "all": end - t0,
                        "rate": count / max(end - (first or end), 0.05), "group_wait": group_wait,
                        "failed": total(metrics, "alertmanager_notifications_failed_total"),
                        "attempts": total(metrics, "alertmanager_notifications_total"),
                        "cpu": cpu_used,
                        "others": len(others.deliveries.all())})
    table = Table("Alertmanager v" + _version("alertmanager") + ": rendered prod config, one warning alert per "
                  "group (group_by alertname, cluster, service) -> the Slack receiver (local sink)",
                  ("alert groups", "notifications delivered", "last delivered after posting",
                   "notifications/s (first to last delivery)", "failed attempts",
                   "Alertmanager CPU per attempt", "sent elsewhere"))
    for r in results:
        table.rows.append((f"{r['groups']:,}", f"{r['delivered']:,} ({'all' if r['complete'] else 'INCOMPLETE'})",
                           f"{r['all']:.1f} s (group_wait {r['group_wait']:g} s)", f"{r['rate']:,.0f}",
                           f"{r['failed']:.0f}", f"{1000 * r['cpu'] / max(r['attempts'], 1):.1f} ms",
                           r["others"]))
    table.print()
    return results


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="prometheus,collector,alertmanager")
    parser.add_argument("--seconds", type=float, default=60, help="measured window per Prometheus load")
    parser.add_argument("--step-seconds", type=float, default=15, help="each collector load step")
    parser.add_argument("--alert-groups", default="100,300,1000")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    started = time.monotonic()
    print(f"## pipeline under load ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the start; absolute figures depend on the machine and what else runs "
          f"on it, the ratios to the derived limits are the point)")
    if "prometheus" in parts:
        prometheus_part(args.seconds)
    if "collector" in parts:
        collector_part(args.step_seconds, max(args.step_seconds, 30))
    if "alertmanager" in parts:
        alertmanager_part([int(n) for n in args.alert_groups.split(",")])
    print(f"\n(pipeline bench took {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.1f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
