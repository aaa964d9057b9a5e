"""Each finding of the upstream audit (issue 11) and each value whose only guard was a golden file,
tested against an independent expectation: upstream facts, literal values, or what the tool would
do with the rendered config. Every test here failed on the code before its fix.
"""

from __future__ import annotations

import fnmatch
import re

import pytest
import yaml

from tests.harness import run_stack

CONTAINER = "docker:index/container:Container"
from tests.k8s_types import STS as STATEFULSET, CONFIGMAP, DAEMONSET


@pytest.fixture(scope="module")
def dev():
    run = run_stack("dev")
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="module")
def prod():
    run = run_stack("prod")
    assert run.error is None, run.error
    return run


def _container(run, service: str) -> dict:
    for c in run.of_type(CONTAINER):
        labels = {e["label"]: e["value"] for e in c.inputs.get("labels", [])}
        if labels.get("observability.tool") == service and not c.name.endswith("-data-init"):
            return c.inputs
    raise KeyError(service)


def _upload(container: dict, suffix: str) -> str:
    return next(u["content"] for u in container["uploads"] if u["file"].endswith(suffix))


def _statefulset(run, name: str) -> dict:
    return next(r.inputs for r in run.of_type(STATEFULSET) if r.inputs["metadata"]["name"] == name)


def _config_map_file(run, workload: str, key: str) -> str:
    for r in run.of_type(CONFIGMAP):
        if r.inputs["metadata"]["name"].startswith(f"{workload}-config-") and key in r.inputs["data"]:
            return r.inputs["data"][key]
    raise KeyError((workload, key))


# --- "logs for this span" ------------------------------------------------------------------------


def _select(query: str, records: list[dict]) -> list[dict]:
    """The subset of LogQL the link uses: `{label=~"re", label="v"}` then `| label="v"` filters,
    applied to records of {"labels": stream labels, "metadata": structured metadata, "line": ...}.
    Line filters (`|= "x"`) test the line. Enough to tell which records a query selects."""
    selector, _, rest = query.partition("}")
    matchers = re.findall(r'(\w+)\s*(=~|=)\s*"([^"]*)"', selector.lstrip("{"))
    filters = re.findall(r'\|\s*(\w+)\s*=\s*"([^"]*)"', rest)
    lines = re.findall(r'\|=\s*"([^"]*)"', rest)
    assert any(op == "=" and v or op == "=~" and not re.fullmatch(v, "") for _, op, v in matchers), \
        f"Loki refuses a selector that matches the empty stream: {query}"
    out = []
    for r in records:
        labels = r["labels"]
        ok = all((labels.get(k, "") == v) if op == "=" else bool(re.fullmatch(v, labels.get(k, "")))
                 for k, op, v in matchers)
        fields = {**labels, **r["metadata"]}
        ok = ok and all(fields.get(k) == v for k, v in filters) and all(s in r["line"] for s in lines)
        if ok:
            out.append(r)
    return out


def _grafana_link_query(link: dict, span: dict) -> str:
    """The LogQL Grafana's Tempo datasource builds for "logs for this span" (tracesToLogsV2, as its
    docs describe): the custom query with `${__trace.traceId}`/`${__span.tags[...]}` filled in,
    or else the tags selector plus `|= "<traceId>"` when filterByTraceID is on."""
    if link.get("customQuery"):
        q = link["query"].replace("$$", "$")
        q = q.replace("${__trace.traceId}", span["traceId"]).replace("${__span.spanId}", span["spanId"])
        return q
    tags = link.get("tags", [])
    selector = ",".join(f'{t.get("value") or t["key"]}="{span["tags"][t["key"]]}"' for t in tags)
    query = "{" + selector + "}"
    if link.get("filterByTraceID"):
        query += f' |= "{span["traceId"]}"'
    return query


def test_logs_for_a_span_are_found_however_they_reached_loki(dev):
    datasources = yaml.safe_load(_upload(_container(dev, "grafana"), "datasources.yaml"))["datasources"]
    tempo = next(d for d in datasources if d["uid"] == "tempo")
    link = tempo["jsonData"]["tracesToLogsV2"]
    assert link["datasourceUid"] == "loki"
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    span = {"traceId": trace, "spanId": "00f067aa0ba902b7", "tags": {"service.name": "checkout"}}
    records = [
        # Sent by the app over OTLP: the id is structured metadata, not in the line.
        {"labels": {"service_name": "checkout"}, "metadata": {"trace_id": trace}, "line": "payment accepted"},
        # Shipped by the log agent from a container's JSON line: no service.name (Loki labels it
        # unknown_service); the agent lifts trace_id into an attribute (structured metadata).
        {"labels": {"service_name": "unknown_service"}, "metadata": {"trace_id": trace},
         "line": '{"event": "payment accepted", "trace_id": "%s"}' % trace},
        # Another trace: must not be selected.
        {"labels": {"service_name": "checkout"}, "metadata": {"trace_id": "0" * 32}, "line": "other"},
    ]
    selected = _select(_grafana_link_query(link, span), records)
    assert selected == records[:2]


# --- directories a tool defaults to, and image directories hidden by a mount ----------------------


# `VOLUME` lines of the upstream images at the pinned tags (Dockerfiles read at the tag; see
# docs/upstream-facts.md "Relative default paths and image volumes").
IMAGE_VOLUMES = {
    "prometheus": ("/prometheus",),
    "alertmanager": ("/alertmanager",),
    "pyroscope": ("/data", "/data-compactor", "/data-metastore"),
}


@pytest.mark.parametrize("service", sorted(IMAGE_VOLUMES))
def test_no_anonymous_docker_volume_for_an_image_volume(dev, service):
    c = _container(dev, service)
    mounted = {v["containerPath"] for v in c.get("volumes", [])} | set(c.get("tmpfs") or {})
    for path in IMAGE_VOLUMES[service]:
        assert path in mounted, f"{service}: Docker would create an anonymous volume for {path}"


def test_pyroscope_compactor_works_on_the_data_volume(prod):
    config = yaml.safe_load(_config_map_file(prod, "pyroscope", "config.yaml"))
    # Upstream default `./data-compactor` (pkg/compactor/compactor.go at v1.16.0) resolves to
    # `/data-compactor` on the read-only root filesystem.
    data_dir = config["compactor"]["data_dir"]
    mounts = {m["mountPath"] for m in _statefulset(prod, "pyroscope")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
              if m["name"] == "data"}
    assert mounts == {"/data"} and data_dir.startswith("/data/")


def test_loki_rules_directory_exists_on_kubernetes(prod):
    config = yaml.safe_load(_config_map_file(prod, "loki", "loki.yaml"))
    # With object storage (the committed prod stack) the ruler keeps its local directory.
    storage = config["common"]["storage"]
    rules = storage["filesystem"]["rules_directory"] if "filesystem" in storage else config["ruler"]["storage"]["local"]["directory"]
    pod = _statefulset(prod, "loki")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    by_path = {m["mountPath"]: volumes.get(m["name"], {"claim": True})
               for m in pod["containers"][0]["volumeMounts"]}
    # A fresh claim at /loki is empty: the image's /loki/rules is hidden under it. The directory
    # must be a mount point of its own (an emptyDir exists as soon as the pod starts).
    assert rules in by_path and "emptyDir" in by_path[rules], by_path


# --- values whose only guard was a golden file ------------------------------------------------------


def test_loki_schema_start_date_never_changes(prod):
    # NEVER change: Loki finds existing index tables by this date; moving it hides every log
    # stored before. A schema change is a new entry with a later `from`.
    config = yaml.safe_load(_config_map_file(prod, "loki", "loki.yaml"))
    assert config["schema_config"]["configs"][0]["from"] == "2025-01-01"
    assert config["schema_config"]["configs"][0]["schema"] == "v13"


def test_kubernetes_log_agent_excludes_exactly_its_own_pods(prod):
    config = yaml.safe_load(_config_map_file(prod, "collector-logs", "config.yaml"))
    filelog = config["receivers"]["filelog"]

    def shipped(path: str) -> bool:
        return any(fnmatch.fnmatch(path, g) for g in filelog["include"]) and not any(
            fnmatch.fnmatch(path, g) for g in filelog.get("exclude", []))

    # The kubelet's layout: /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log
    assert not shipped("/var/log/pods/observability_collector-logs-x7k2p_0b1c/collector-logs/0.log")
    assert shipped("/var/log/pods/observability_collector-7d9f8-abcde_0b1c/collector/0.log")
    assert shipped("/var/log/pods/payments_api-5f6d-x2x_9a1e/api/3.log")


def test_docker_resources_are_the_configured_amounts(dev):
    # Literal values (the dev preset): Docker takes CPUs as a decimal and memory in MB.
    assert _container(dev, "alertmanager")["cpus"] == "0.25"  # 250m
    assert _container(dev, "prometheus")["cpus"] == "1.0"  # as the provider reads it back (no diff)
    # Derived from the dev preset's ingest (components/sizing.py), worked by hand: 2,000 samples/s
    # x 15 s = 30,000 series x 2,048 B + 96 MiB = 154.6 MiB -> request 192Mi, limit 2x -> 320Mi.
    assert _container(dev, "prometheus")["memory"] == 320
    # 50 spans/s / ratio 1.0 x 10 s = 500 held spans x 2,048 B + 64 MiB -> 128Mi, limit 2x -> 192Mi.
    assert _container(dev, "collector")["memory"] == 192


def test_generated_grafana_password_is_long(dev):
    (password,) = [r for r in dev.resources if r.type == "random:index/randomPassword:RandomPassword"]
    # 24 characters of [A-Za-z0-9]: ~143 bits. Shorter is guessable offline.
    assert password.inputs["length"] == 24 and password.inputs["special"] is False
