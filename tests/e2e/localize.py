"""Map what `make render` produces for containers onto local processes, on a faster clock.

The rendered configs are used as they are except for the rewrites listed here, all applied to a
COPY of the parsed YAML (the render functions are never changed):

Paths. Every file is written under a temp dir `root` mirroring the container layout
(`/etc/prometheus/rules/x.yml` -> `<root>/etc/prometheus/rules/x.yml`), and only these values
are re-rooted: command-line flag values that are absolute paths (`--config.file`,
`--storage.tsdb.path`, `--storage.path`), absolute `rule_files` entries, and Alertmanager's
`*_file` keys (the receivers' secret files under /etc/alertmanager/secrets/).

Hosts. Every `static_configs` target and the `alertmanagers` target is looked up in a
{rendered "host:port": local "127.0.0.1:port"} map the test builds; a target missing from the
map is an error, so nothing ever resolves a service name; so is every `dns_sd_configs` name (a
headless Service resolving each replica), mapped to the local replicas' addresses. Dropped:
`kubernetes_sd_configs` jobs (no cluster here) and `remote_write` (Mimir is not running) unless
the test maps its URL to a local receiver. Added: extra jobs the test asks for
(its exporter and a closed port).

Clock. `scale` divides rule `for:`/`keep_firing_for:`, rule group `interval:`, the global
`evaluation_interval` and Alertmanager's group_wait/group_interval/repeat_interval by the same
factor, so `for: 5m` at scale 60 waits 5 s; global and per-job `scrape_interval` become the
test's short interval. Expressions, range windows (`[5m]`: a counter's rate needs only two
samples), alert names, labels, annotations, routes, receivers and inhibit rules are untouched.

Flags. Only path values are re-rooted (above) and `--web.listen-address=127.0.0.1:<port>` is
appended; the retention flags stay exactly as rendered.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Mapping, Sequence

import yaml

from observability_stack.config.durations import parse_duration

SCALED_RULE_KEYS = ("for", "keep_firing_for")
SCALED_ROUTE_KEYS = ("group_wait", "group_interval", "repeat_interval")


def scaled(duration: str, scale: float) -> str:
    """`duration / scale` as a Prometheus duration in whole milliseconds (at least 1ms)."""
    return f"{max(1, round(parse_duration(duration) * 1000 / scale))}ms"


def under(root: Path, container_path: str) -> Path:
    """Where a container path lives in the local mirror."""
    return root / container_path.lstrip("/")


def local_args(args: Sequence[str], root: Path, listen: str) -> list[str]:
    """Flags with absolute path values re-rooted, plus the loopback listen address."""
    out = []
    for arg in args:
        name, eq, value = arg.partition("=")
        out.append(f"{name}={under(root, value)}" if eq and value.startswith("/") else arg)
    return out + [f"--web.listen-address={listen}"]


def write_files(files: Mapping[str, str], root: Path) -> None:
    """{container path: text} -> files in the mirror."""
    for path, text in files.items():
        target = under(root, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _map_targets(static_configs: list, targets: Mapping[str, str]) -> None:
    for group in static_configs:
        missing = [t for t in group["targets"] if t not in targets]
        if missing:
            raise KeyError(f"no local address for rendered target(s) {missing}")
        group["targets"] = [targets[t] for t in group["targets"]]


def _static_from_dns(entry: dict, resolved: Mapping[str, Sequence[str]]) -> None:
    """`dns_sd_configs` (a headless Service: one A record per replica) -> the local replicas'
    addresses, from {rendered "name:port": [local "127.0.0.1:port", ...]}."""
    groups = []
    for sd in entry.pop("dns_sd_configs"):
        for name in sd["names"]:
            key = f"{name}:{sd['port']}"
            if key not in resolved:
                raise KeyError(f"no local addresses for rendered DNS name {key}")
            groups.append({"targets": list(resolved[key])})
    entry["static_configs"] = groups


def cluster_args(args: Sequence[str], root: Path, listen: str, cluster: str, peers: Sequence[str],
                 peer_timeout: str) -> list[str]:
    """An Alertmanager peer's flags on loopback: paths re-rooted and the web listen address as
    `local_args`; the gossip address and the advertised one become `cluster`, the headless
    Service in `--cluster.peer` becomes the other local peers, and `--cluster.peer-timeout` (how
    long each position waits for the ones before it to notify) is scaled like the route timers."""
    out = []
    for arg in local_args(args, root, listen):
        name = arg.partition("=")[0]
        if name in ("--cluster.listen-address", "--cluster.advertise-address"):
            out.append(f"{name}={cluster}")
        elif name != "--cluster.peer":
            out.append(arg)
    return out + [f"--cluster.peer={p}" for p in peers] + [f"--cluster.peer-timeout={peer_timeout}"]


def prometheus_yml(text: str, root: Path, targets: Mapping[str, str], extra_jobs: Mapping[str, str],
                   scale: float, scrape_interval: str, resolved: Mapping[str, Sequence[str]] = {},
                   remote_write: Mapping[str, str] = {}) -> str:
    """The local copy of prometheus.yml (see the module docstring for every rewrite).

    `resolved` maps DNS service discovery names (`name:port`) to local addresses; `remote_write`
    maps rendered remote-write URLs to local receivers (without it remote write is dropped)."""
    doc = copy.deepcopy(yaml.safe_load(text))
    glob = doc.setdefault("global", {})
    glob["scrape_interval"] = scrape_interval
    if "evaluation_interval" in glob:
        glob["evaluation_interval"] = scaled(glob["evaluation_interval"], scale)
    doc["rule_files"] = [str(under(root, f)) if f.startswith("/") else f for f in doc.get("rule_files", [])]
    for manager in (doc.get("alerting") or {}).get("alertmanagers", []):
        if "dns_sd_configs" in manager:
            _static_from_dns(manager, resolved)
        else:
            _map_targets(manager["static_configs"], targets)
    jobs = []
    for job in doc.get("scrape_configs", []):
        if "kubernetes_sd_configs" in job:
            continue
        if "scrape_interval" in job:
            job["scrape_interval"] = scrape_interval
        if "dns_sd_configs" in job:
            _static_from_dns(job, resolved)
        else:
            _map_targets(job.get("static_configs", []), targets)
        jobs.append(job)
    for name, target in extra_jobs.items():
        jobs.append({"job_name": name, "static_configs": [{"targets": [target]}]})
    doc["scrape_configs"] = jobs
    writes = [dict(w, url=remote_write[w["url"]]) for w in doc.pop("remote_write", []) if w["url"] in remote_write]
    if writes:
        doc["remote_write"] = writes
    return yaml.safe_dump(doc, sort_keys=False)


def rule_file(text: str, scale: float) -> str:
    """A rule file with `for:`/`keep_firing_for:` and group intervals divided by `scale`."""
    doc = copy.deepcopy(yaml.safe_load(text))
    for group in doc.get("groups", []):
        if "interval" in group:
            group["interval"] = scaled(group["interval"], scale)
        for rule in group.get("rules", []):
            for key in SCALED_RULE_KEYS:
                if key in rule:
                    rule[key] = scaled(rule[key], scale)
    return yaml.safe_dump(doc, sort_keys=False, width=200)


def _scale_route(route: dict, scale: float) -> None:
    for key in SCALED_ROUTE_KEYS:
        if key in route:
            route[key] = scaled(route[key], scale)
    for child in route.get("routes", []):
        _scale_route(child, scale)


def alertmanager_yml(text: str, root: Path, scale: float) -> str:
    """The local copy of alertmanager.yml: `*_file` keys re-rooted, route timers scaled."""
    doc = copy.deepcopy(yaml.safe_load(text))
    _scale_route(doc["route"], scale)
    for receiver in doc.get("receivers", []):
        for key, configs in receiver.items():
            if key.endswith("_configs"):
                for entry in configs:
                    for field, value in entry.items():
                        if field.endswith("_file") and isinstance(value, str) and value.startswith("/"):
                            entry[field] = str(under(root, value))
    return yaml.safe_dump(doc, sort_keys=False)
