"""Kubernetes events into Loki (issue 13 section 3), the rendered side: where the events
collector runs, its one replica and its RBAC, and the labels Loki makes of its attributes. The
real run against a kube-apiserver is tests/test_kube_events_e2e.py."""

from __future__ import annotations

import pytest
import yaml

from observability_stack.components import kube_events
from observability_stack.components.render import render_tool, workloads_of
from observability_stack.config import load_settings
from tests.harness import scenario
from tests.k8s_types import DEPLOYMENT
from tests.scenarios import settings_for

EVENTS = "collector/events.yaml"


def _k8s(**raw):
    return load_settings({"target": "kubernetes", **raw}, stack="dev")


def test_the_events_workload_is_one_watcher_with_list_watch_on_events_only():
    """Prod runs the gateway in two replicas (highAvailability); the events watcher stays one."""
    prod = settings_for("prod")
    by_name = {w.name: w for w in workloads_of("collector", prod)}
    assert by_name["collector"].replicas == 2
    events = by_name["collector-events"]
    assert events.replicas == 1 and not events.per_node and not events.headless
    assert events.cluster_rules == ({"apiGroups": ["events.k8s.io"], "resources": ["events"],
                                     "verbs": ["list", "watch"]},)
    assert events.uid != 0 and events.root_reason is None and events.read_only_root
    assert [e.address for e in events.talks_to] == ["collector:4317"]
    assert not any(p.publish or p.ingest for p in events.ports)
    doc = yaml.safe_load(events.config_files[0].content)
    assert doc["receivers"]["k8sobjects"]["objects"] == [
        {"name": "events", "group": "events.k8s.io", "mode": "watch", "exclude_watch_type": ["DELETED"]}]
    assert doc["exporters"] == {"otlp/gateway": {"endpoint": "collector:4317", "tls": {"insecure": True}}}
    # The same file whatever the gateway's shape: what the e2e test runs is what prod runs.
    assert render_tool("collector", prod)[EVENTS] == render_tool("collector", _k8s())[EVENTS]



def test_a_rollout_never_runs_two_watchers():
    """The default RollingUpdate would start the new pod while the old one still watches: both
    would ship every event of the overlap. `Recreate` stops the old one first."""
    run, _ = scenario("prod")
    strategies = {r.inputs["metadata"]["name"]: r.inputs["spec"]["strategy"] for r in run.resources if r.type == DEPLOYMENT}
    assert strategies["collector-events"] == {"type": "Recreate"}
    # Only the watcher: the gateway keeps serving through its rollouts.
    assert strategies["collector"]["type"] == "RollingUpdate"
    assert [n for n, s in strategies.items() if s["type"] == "Recreate"] == ["collector-events"]

@pytest.mark.parametrize("settings", [
    pytest.param(lambda: load_settings({"target": "docker"}, stack="dev"), id="docker"),
    pytest.param(lambda: _k8s(kubernetes={"clusterMonitoring": False}), id="no-cluster-monitoring"),
    pytest.param(lambda: _k8s(components={"loki": {"enabled": False}}), id="no-loki"),
])
def test_no_events_collector_without_a_watched_cluster_and_loki(settings):
    s = settings()
    assert EVENTS not in render_tool("collector", s)
    assert "collector-events" not in {w.name for w in workloads_of("collector", s)}


def test_loki_indexes_exactly_the_event_attributes_the_collector_sets():
    loki = yaml.safe_load(render_tool("loki", _k8s())["loki/loki.yaml"])
    rules = loki["limits_config"]["otlp_config"]["resource_attributes"]
    # Loki's default index labels (service.name, k8s.namespace.name, ...) stay: not ignored.
    assert not rules.get("ignore_defaults")
    assert rules["attributes_config"] == [{"action": "index_label", "attributes": [
        "k8s.object.kind", "k8s.event.reason", "k8s.event.type"]}]
    statements = yaml.safe_load(render_tool("collector", _k8s())[EVENTS])["processors"]["transform/events"]
    targets = {st.split("(", 1)[1].split(",", 1)[0] for st in statements["log_statements"]}
    for attribute in rules["attributes_config"][0]["attributes"]:
        assert f'resource.attributes["{attribute}"]' in targets
    # The involved object's name is a log attribute (structured metadata), not a label.
    assert f'log.attributes["{kube_events.OBJECT_NAME}"]' in targets
    assert kube_events.OBJECT_NAME not in rules["attributes_config"][0]["attributes"]
