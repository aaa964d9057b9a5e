"""Replicated Tempo (issue 15): upstream's scalable monolithic mode on object storage, checked in
the rendered config and in the manifests the Kubernetes backend declares under mocks.

The expectations are upstream's facts at the pinned tag (docs/upstream-facts.md, "Tempo 2.10.8:
replicated shape"), not the module's output: the target name, the replication factor and its
quorum, memberlist on the default dskit port, and the querier's frontend worker address that
`initQuerier` requires outside `all`. The key check (tests/test_check_keys.py) runs on every
scenario; the object-storage scenarios are prod stacks, so they cover s3, gcs and azure in HA.
"""

from __future__ import annotations

import pytest
import yaml

from observability_stack.components.render import render_all, workloads_of
from observability_stack.components.targets.kubernetes import selector_labels
from observability_stack.config import ConfigError, load_settings
from tests.harness import run_with_workloads
from tests.scenarios import KUBERNETES, OBJECT_STORAGE_KINDS, settings_for

# Upstream facts (Tempo 2.10.8; docs/upstream-facts.md):
TARGET = "scalable-single-binary"  # cmd/tempo/app/modules.go `ScalableSingleBinary`
RF = 3  # configuration/_index.md ingester block; example/docker-compose/distributed
MEMBERLIST_PORT = 7946  # dskit memberlist default bind_port; the scalable example's bind_port
DEFAULT_RF = 1  # modules/ingester/config.go: what Tempo runs with when nothing is set

from tests.k8s_types import STS, SERVICE, PDB, NETPOL


def tempo_config(settings) -> dict:
    return yaml.safe_load(render_all(settings)["tempo/tempo.yaml"])


def named(run, typ):
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(typ)}


@pytest.mark.parametrize("scenario", sorted(OBJECT_STORAGE_KINDS))
def test_every_storage_kind_runs_scalable_monolithic_with_rf3(scenario):
    settings = settings_for(scenario)
    assert settings.high_availability and settings.replicas("tempo") == RF
    doc = tempo_config(settings)
    assert doc["target"] == TARGET
    trace = doc["storage"]["trace"]
    # Blocks meet in the bucket: no replica keeps them on its own disk.
    assert trace["backend"] == OBJECT_STORAGE_KINDS[scenario] and OBJECT_STORAGE_KINDS[scenario] in trace and "local" not in trace
    ring = doc["ingester"]["lifecycler"]["ring"]
    assert ring["replication_factor"] == RF and ring["kvstore"]["store"] == "memberlist"
    assert doc["compactor"]["ring"]["kvstore"]["store"] == "memberlist"
    assert doc["compactor"]["compaction"]["block_retention"]  # the merge kept the retention
    # Every process joins the same gossip cluster, through a name that resolves every replica.
    assert doc["memberlist"]["bind_port"] == MEMBERLIST_PORT
    # Its own gossip cluster: a label no other tool's memberlist carries.
    assert "tempo" in doc["memberlist"]["cluster_label"]
    [join] = doc["memberlist"]["join_members"]
    host, port = join.removeprefix("dns+").rsplit(":", 1)
    assert join.startswith("dns+") and int(port) == MEMBERLIST_PORT
    # The querier's workers reach every query-frontend: the same names, on the gRPC server port.
    frontend_host, frontend_port = doc["querier"]["frontend_worker"]["frontend_address"].rsplit(":", 1)
    assert frontend_host == host and int(frontend_port) == doc["server"]["grpc_listen_port"]


def test_the_names_the_config_uses_are_headless_services_of_every_replica():
    run, workloads = run_with_workloads(*KUBERNETES["prod"])
    doc = tempo_config(settings_for("prod"))
    host = doc["memberlist"]["join_members"][0].removeprefix("dns+").rsplit(":", 1)[0]
    service = named(run, SERVICE)[host].inputs["spec"]
    assert service["clusterIP"] == "None"
    # Not-ready pods too: a starting replica must join the ring before it can become ready.
    assert service["publishNotReadyAddresses"] is True
    assert service["selector"] == selector_labels("tempo")
    ports = {p["port"] for p in service["ports"]}
    assert {MEMBERLIST_PORT, doc["server"]["grpc_listen_port"]} <= ports


def test_quorum_survives_a_voluntary_disruption_and_a_rollout():
    run, _ = run_with_workloads(*KUBERNETES["prod"])
    doc = tempo_config(settings_for("prod"))
    rf = doc["ingester"]["lifecycler"]["ring"]["replication_factor"]
    quorum = rf // 2 + 1  # dskit's write/read quorum (the distributor waits for n/2+1 ingesters)
    spec = named(run, STS)["tempo"].inputs["spec"]
    pdb = named(run, PDB)["tempo"].inputs["spec"]
    assert spec["replicas"] == rf == RF
    assert spec["replicas"] - pdb["maxUnavailable"] >= quorum
    # A StatefulSet rolling update replaces one pod at a time and waits for it to be ready.
    assert spec["updateStrategy"] == {"type": "RollingUpdate"} and spec["podManagementPolicy"] == "OrderedReady"
    assert spec["minReadySeconds"] >= 30
    spread = spec["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_peer_ports_open_only_between_tempo_pods():
    run, _ = run_with_workloads(*KUBERNETES["prod"])
    grpc = tempo_config(settings_for("prod"))["server"]["grpc_listen_port"]
    spec = named(run, NETPOL)["tempo"].inputs["spec"]
    me = [{"podSelector": {"matchLabels": selector_labels("tempo")}}]
    for port in (MEMBERLIST_PORT, grpc):
        assert any(r["from"] == me and {"protocol": "TCP", "port": port} in r["ports"] for r in spec["ingress"]), port
        assert any(r["to"] == me and {"protocol": "TCP", "port": port} in r["ports"] for r in spec["egress"]), port
    # Nobody else reaches the gossip port.
    for rule in spec["ingress"]:
        if any(p["port"] == MEMBERLIST_PORT for p in rule["ports"]):
            assert rule["from"] == me


def test_the_claim_holds_the_wals_only():
    settings = settings_for("prod")
    doc = tempo_config(settings)
    [tempo] = workloads_of("tempo", settings)
    mount = tempo.data.path
    paths = [doc["storage"]["trace"]["wal"]["path"], doc["metrics_generator"]["storage"]["path"]]
    assert all(p.startswith(mount + "/") for p in paths), paths
    single = settings_for("dev")  # no bucket: blocks on the claim
    assert "local" in tempo_config(single)["storage"]["trace"]


def test_explicit_replica_counts():
    def settings(replicas, ha=True):
        raw = {"alerting": {"receivers": [{"name": "p", "webhook": {"url": "http://pager.invalid/"}}],
                            "routes": {"critical": "p", "warning": "p"}},
               "highAvailability": ha, "objectStorage": {"gcs": {"bucket": "observability"}},
               "components": {"tempo": {"replicas": replicas}}}
        return load_settings(raw, stack="prod", secret_keys=["alerting"])

    # Two replicas could not keep a quorum of 2 after losing one: refused, one line naming the key.
    with pytest.raises(ConfigError) as err:
        settings(2)
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith("observability:components.tempo.replicas: 2 is not allowed")
    assert tempo_config(settings(5))["ingester"]["lifecycler"]["ring"]["replication_factor"] == RF
    # One replica is the monolithic `all` (the default target): no ring peers, upstream's RF 1.
    one = tempo_config(settings(1))
    assert "target" not in one and "memberlist" not in one and "ingester" not in one
    assert "querier" not in one
    assert DEFAULT_RF == 1  # what `ingester` left out means (modules/ingester/config.go)
