"""Replicated Loki and Mimir (issue 15 item 1): the HA shapes upstream supports at the pinned
versions, checked against upstream's facts (docs/upstream-facts.md "Loki: HA monolithic" and
"Mimir: scaled monolithic mode"), not against our own output.

- Loki 3.7.6 HA monolithic: `-target=all` x3, `common.replication_factor` 3, every ring on
  memberlist (the compactor's too, which is what elects exactly one active compactor), each
  replica advertising its pod IP.
- Mimir 3.0.2 scaled monolithic mode: `target: all` x3, every ring `all` runs on memberlist with
  the pod's IP, ingester and store-gateway replication factor 3, no zone awareness.
- Kubernetes: the peers find each other through the headless Service, the NetworkPolicy admits
  gossip and ring gRPC between a tool's own pods only, and the PDB / rollout keep a quorum of
  2 of 3.
The key check over every object-storage kind in HA mode is tests/test_check_keys.py (the
`object-storage-*` scenarios run the prod preset: `highAvailability` on).
"""

from __future__ import annotations

import pytest
import yaml

from observability_stack.components import sizing
from observability_stack.components.render import render_all, workloads_of
from observability_stack.components.targets.kubernetes import selector_labels
from observability_stack.components.workload import MEMBERLIST_PORT
from observability_stack.config import ConfigError, Settings
from tests.harness import scenario
from tests.scenarios import EXAMPLE_BUCKET, OBJECT_STORAGE_KINDS, scenarios, settings_for

PROD_ALERTING = {"receivers": [{"name": "pager", "webhook": {"url": "http://pager.invalid/"}}],
                 "routes": {"critical": "pager", "warning": "pager"}}
from tests.k8s_types import STS, SERVICE, PDB, NETPOL
CONFIGS = {"loki": "loki/loki.yaml", "mimir": "mimir/mimir.yaml"}
GRPC = 9095  # both tools' `server.grpc_listen_port`

# Upstream facts at the pinned tags (docs/upstream-facts.md):
# dskit quorum for a replication factor n: n // 2 + 1 (ring/replication_strategy.go); RF 3 -> 2.
RF = 3
QUORUM = RF // 2 + 1
# Mimir 3.0.2 pkg/mimir/modules.go: All = QueryFrontend, QueryScheduler, Querier, Ingester,
# Distributor, StoreGateway, Ruler, Compactor. Their rings by YAML path (configure-hash-rings.md);
# the query-scheduler's ring is optional (service discovery "dns" by default) and not configured.
MIMIR_ALL_RINGS = {("ingester", "ring"), ("distributor", "ring"), ("compactor", "sharding_ring"),
                   ("store_gateway", "sharding_ring"), ("ruler", "ring")}
MIMIR_NOT_IN_ALL = ("alertmanager", "overrides_exporter")


def ha(**overrides) -> Settings:
    overrides.setdefault("object_storage", EXAMPLE_BUCKET)
    return Settings(environment="prod", alerting=PROD_ALERTING, **overrides)


def docs(settings: Settings) -> dict[str, dict]:
    files = render_all(settings)
    return {tool: yaml.safe_load(files[path]) for tool, path in CONFIGS.items()}


def named(run, typ):
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(typ)}


# -- Loki ---------------------------------------------------------------------------------------


def test_loki_ha_monolithic():
    s = ha()
    doc = docs(s)["loki"]
    assert "target" not in doc  # -target defaults to all (deployment-modes.md "Monolithic mode")
    common = doc["common"]
    assert common["replication_factor"] == RF
    assert common["ring"]["kvstore"]["store"] == "memberlist"
    # applyInstanceConfigs: common.instance_addr -> every ring, the frontend and memberlist's
    # advertise_addr. Never loopback: the other replicas dial this address.
    assert common["instance_addr"] == "${POD_IP}"
    assert doc["memberlist"]["join_members"] == [f"dns+loki-peers:{MEMBERLIST_PORT}"]
    assert doc["memberlist"]["cluster_label"] == "observability.loki"
    # Exactly one active compactor: the compactor ring must be the shared one (an own in-memory
    # ring per replica would make every replica the leader of its own ring, pkg/compactor/
    # compactor.go loop()). applyDynamicRingConfigs copies common.ring into it unless set.
    assert "compactor_ring" not in doc["compactor"]
    assert "kvstore" not in str(doc["compactor"]) and "inmemory" not in yaml.safe_dump(doc)
    # target=all: compactor and query-frontend are reached in-process (modules.go
    # compactorAddress(), worker_service.go); no address pins one replica.
    for key in ("compactor_address", "compactor_grpc_address"):
        assert key not in common
    assert "frontend_worker" not in doc and "frontend" not in doc
    # Data in the bucket, the claim keeps only WAL, index cache and compactor scratch.
    assert doc["schema_config"]["configs"][0]["object_store"] == "s3"
    assert "filesystem" not in common["storage"]


def test_loki_single_node_on_a_bucket_keeps_its_one_instance_shape():
    doc = docs(ha(high_availability=False))["loki"]
    assert doc["common"]["replication_factor"] == 1 and doc["common"]["instance_addr"] == "127.0.0.1"
    assert doc["common"]["ring"] == {"kvstore": {"store": "inmemory"}} and "memberlist" not in doc
    w = workloads_of("loki", ha(high_availability=False))[0]
    assert w.replicas == 1 and w.pod_ip_env is None and "-config.expand-env=true" not in w.args


# -- Mimir --------------------------------------------------------------------------------------


def test_mimir_scaled_monolithic():
    doc = docs(ha())["mimir"]
    assert doc["target"] == "all"
    rings = {(c, r) for c, block in doc.items() if isinstance(block, dict)
             for r, ring in block.items() if isinstance(ring, dict) and "kvstore" in ring and r != "ha_tracker"}
    assert rings == MIMIR_ALL_RINGS
    for component, ring in MIMIR_ALL_RINGS:
        assert doc[component][ring]["kvstore"] == {"store": "memberlist"}, component
        assert doc[component][ring]["instance_addr"] == "${POD_IP}", component
        assert not doc[component][ring].get("zone_awareness_enabled"), component
    assert doc["ingester"]["ring"]["replication_factor"] == RF
    assert doc["store_gateway"]["sharding_ring"]["replication_factor"] == RF
    assert doc["memberlist"]["join_members"] == [f"dns+mimir-peers:{MEMBERLIST_PORT}"]
    assert doc["memberlist"]["advertise_addr"] == doc["frontend"]["address"] == "${POD_IP}"
    assert doc["memberlist"]["cluster_label"] == "observability.mimir"
    for absent in MIMIR_NOT_IN_ALL:
        assert absent not in doc
    assert not doc.get("ingest_storage", {}).get("enabled")  # classic architecture
    # The HA tracker's KV store is the same memberlist (Prometheus pair deduplication).
    assert doc["distributor"]["ha_tracker"]["kvstore"] == {"store": "memberlist"}
    assert doc["blocks_storage"]["backend"] == "s3" and "filesystem" not in doc["blocks_storage"]
    assert doc["blocks_storage"]["tsdb"]["dir"].startswith("/data/")  # WAL + head on the claim


def test_mimir_single_node_keeps_in_memory_rings():
    doc = docs(ha(high_availability=False))["mimir"]
    assert doc["ingester"]["ring"]["replication_factor"] == 1 and "memberlist" not in doc
    assert doc["ingester"]["ring"]["instance_addr"] == "127.0.0.1"


# -- every object-storage kind, HA on: the scenarios the key check runs -------------------------


@pytest.mark.parametrize("name", [*sorted(OBJECT_STORAGE_KINDS), "prod"])
def test_key_check_scenarios_render_the_replicated_shape(name):
    s = settings_for(name)
    assert s.target == "kubernetes" and s.replicas("loki") == s.replicas("mimir") == 3
    rendered = docs(s)
    kind = next(k for k in ("s3", "gcs", "azure") if getattr(s.object_storage, k) is not None)
    assert rendered["loki"]["common"]["replication_factor"] == RF
    assert rendered["loki"]["schema_config"]["configs"][0]["object_store"] == kind
    assert rendered["mimir"]["ingester"]["ring"]["replication_factor"] == RF
    assert rendered["mimir"]["blocks_storage"]["backend"] == kind
    for tool in CONFIGS:
        w = workloads_of(tool, s)[0]
        assert w.pod_ip_env == "POD_IP" and "-config.expand-env=true" in w.args
        assert w.args.count("-config.expand-env=true") == 1  # also there for credentials (s3, azure keys)
    assert "object-storage-single-node" in scenarios()


# -- Kubernetes: peers, policies, quorum --------------------------------------------------------


@pytest.mark.parametrize("tool", ["loki", "mimir"])
def test_peers_find_each_other_and_only_each_other(tool):
    run, workloads = scenario("prod")
    w = next(x for x in workloads if x.name == tool)
    services = named(run, SERVICE)
    headless = services[f"{tool}-peers"].inputs["spec"]
    # The join name is this headless Service, resolving every pod, ready or not (a replica
    # joins the ring before it can be ready).
    joined = docs(settings_for("prod"))[tool]["memberlist"]["join_members"]
    assert joined == [f"dns+{tool}-peers:{MEMBERLIST_PORT}"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["ports"]} >= {MEMBERLIST_PORT, GRPC}
    pod = named(run, STS)[tool].inputs["spec"]["template"]["spec"]
    env = pod["containers"][0]["env"]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in env
    assert "-config.expand-env=true" in pod["containers"][0]["args"]
    # NetworkPolicy: gossip and ring gRPC from the tool's own pods; gossip from nobody else.
    spec = named(run, NETPOL)[tool].inputs["spec"]
    me = [{"podSelector": {"matchLabels": selector_labels(tool)}}]
    own = [{"protocol": "TCP", "port": MEMBERLIST_PORT}, {"protocol": "TCP", "port": GRPC}]
    for direction, peer in (("ingress", "from"), ("egress", "to")):
        rules = [r for r in spec[direction] if r.get(peer) == me]
        assert sorted((p["port"] for r in rules for p in r["ports"])) == sorted(p["port"] for p in own), direction
    for rule in spec["ingress"]:
        if any(p["port"] in (MEMBERLIST_PORT, GRPC) for p in rule["ports"]):
            assert rule["from"] == me
    assert w.replicas == RF


@pytest.mark.parametrize("tool", ["loki", "mimir"])
def test_disruptions_and_rollouts_keep_a_quorum(tool):
    run, _ = scenario("prod")
    sts = named(run, STS)[tool].inputs["spec"]
    replicas = sts["replicas"]
    pdb = named(run, PDB)[tool].inputs["spec"]
    # At most one replica down at a time, voluntarily or in a rollout: RF 3 leaves 2 = quorum.
    assert replicas - pdb["maxUnavailable"] >= QUORUM
    assert pdb["selector"] == {"matchLabels": selector_labels(tool)}
    # StatefulSet RollingUpdate replaces one pod at a time and waits for it to be ready
    # (maxUnavailable unset = 1), then minReadySeconds for the ring to see it.
    assert sts["updateStrategy"] == {"type": "RollingUpdate"} and sts["minReadySeconds"] >= 30
    spread = sts["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    # Claims are retained whatever happens to the StatefulSet (WAL of each replica).
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["loki", "mimir"])
def test_two_replicas_are_refused_one_line_naming_the_key(tool):
    with pytest.raises(ConfigError) as err:
        ha(components={tool: {"replicas": 2}})
    assert err.value.problems == [
        f"observability:components.{tool}.replicas: 2 is not allowed ({tool} writes everything to 3 replicas "
        f"and needs 2 of them, so 2 replicas stop at the first one lost; use 1 or at least 3)"]
    assert ha(components={tool: {"replicas": 5}}).replicas(tool) == 5
    assert ha(components={tool: {"replicas": 1}}).replicas(tool) == 1


# -- sizing: per replica ------------------------------------------------------------------------


def test_claims_and_memory_are_per_replica():
    ingest = {"metricsSamplesPerSecond": 300_000, "logGbPerDay": 200}
    single = ha(high_availability=False, ingest=ingest)
    three, five = ha(ingest=ingest), ha(ingest=ingest, components={"loki": {"replicas": 5}, "mimir": {"replicas": 5}})
    for tool in ("loki", "mimir"):
        # RF 3 over 3 replicas: each holds every stream, as the one node did; over 5: 3/5 of it.
        assert sizing.estimated_bytes(three, tool) == pytest.approx(sizing.estimated_bytes(single, tool))
        assert sizing.estimated_bytes(five, tool) == pytest.approx(sizing.estimated_bytes(single, tool) * 3 / 5)
    # Mimir memory: the ingester part follows the series a replica holds, the distributor part
    # the pushes it receives (1/replicas of them).
    series_bytes = sizing.active_series(single) / sizing.MIMIR_SERIES_PER_INGESTER * sizing.MIMIR_INGESTER_BYTES
    push_bytes = 300_000 / sizing.MIMIR_SAMPLES_PER_DISTRIBUTOR_GB * 1e9
    assert sizing.derived_memory(single, "mimir")[0] == pytest.approx(series_bytes + push_bytes)
    assert sizing.derived_memory(three, "mimir")[0] == pytest.approx(series_bytes + push_bytes / 3)


# -- the key check judges the replicated render (positive controls) -----------------------------


def test_key_check_needs_the_pod_ip_env_and_knows_the_ring_keys(tmp_path):
    import shutil

    from keycheck.check import check_dir
    from tests.test_check_keys import render_scenario

    rendered = render_scenario("object-storage-gcs", tmp_path / "r")  # GCS: no credential env at all
    assert check_dir(rendered).problems == []
    broken = tmp_path / "broken"
    shutil.copytree(rendered, broken)
    for path in (broken / "manifests").glob("*statefulset-loki.yaml"):
        doc = yaml.safe_load(path.read_text())
        container = doc["spec"]["template"]["spec"]["containers"][0]
        container["env"] = [e for e in container.get("env", []) if e["name"] != "POD_IP"]
        path.write_text(yaml.safe_dump(doc))
    mimir = broken / "mimir/mimir.yaml"
    mimir.write_text(mimir.read_text().replace("join_members:", "join_member:"))
    found = check_dir(broken).problems
    assert any("env POD_IP: the config references ${POD_IP} but the workload does not set it" in p
               for p in found), found
    assert any(p.startswith("mimir/mimir.yaml: memberlist.join_member: unknown key") for p in found), found
