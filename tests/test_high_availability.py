"""High availability (issue 14) under Pulumi mocks and in the rendered configs: what the prod
preset's `highAvailability` turns into, and what it must never turn into (a replaced StatefulSet,
a Docker stack, a replicated single-node tool).

The real processes (Alertmanager x3, Prometheus x2, the two collector tiers) are exercised by
tests/test_ha_e2e.py; the real API server admits the manifests in tests/test_engine_apiserver.py.
"""

from __future__ import annotations

import pytest
import yaml

from observability_stack.components.render import links_for, render_all, workloads_of
from observability_stack.config import ConfigError, Settings
from observability_stack.config.model import HA_REPLICAS
from observability_stack.components.targets.kubernetes import selector_labels
from tests.harness import assert_gossip_only_between_peers, run_with_workloads, scenario
from tests.scenarios import EXAMPLE_BUCKET

NS = "observability:"
from tests.k8s_types import STS, DEPLOYMENT, SERVICE, PDB, NETPOL
PROD_ALERTING = {"receivers": [{"name": "pager", "webhook": {"url": "http://pager.invalid/"}}],
                 "routes": {"critical": "pager", "warning": "pager"}}
# Pyroscope's microservices (tests/test_ha_pyroscope.py): the ingesters keep the tool's name.
PYROSCOPE = {"pyroscope", *(f"pyroscope-{c}" for c in ("distributor", "query-frontend", "query-scheduler", "querier",
                                                        "store-gateway", "compactor"))}


def named(run, typ):
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(typ)}


def prod(**overrides) -> Settings:
    if overrides.get("high_availability", True) and overrides.get("target", "kubernetes") == "kubernetes":
        overrides.setdefault("object_storage", EXAMPLE_BUCKET)
    return Settings(environment="prod", alerting=PROD_ALERTING, **overrides)


# -- settings ----------------------------------------------------------------------------------


def test_prod_preset_turns_it_on_and_counts_follow():
    s = prod()
    assert s.high_availability
    assert {t: s.replicas(t) for t in HA_REPLICAS} == {"alertmanager": 3, "prometheus": 2, "collector": 2,
                                                       "loki": 3, "mimir": 3, "tempo": 3, "pyroscope": 3}
    for tool in ("grafana",):
        assert s.replicas(tool) == 1
    # Loki and Mimir replicate only on object storage (a single-node prod keeps one of each).
    assert prod(high_availability=False).replicas("loki") == 1
    assert prod(high_availability=False).replicas("tempo") == 1
    no_bucket = Settings(environment="prod", alerting=PROD_ALERTING, high_availability=False,
                         components={"alertmanager": {"replicas": 3}})
    assert no_bucket.replicas("mimir") == 1 and no_bucket.replicas("alertmanager") == 3
    assert Settings().replicas("alertmanager") == 1  # dev
    assert prod(components={"alertmanager": {"replicas": 5}}).replicas("alertmanager") == 5
    # An override applies without HA too (on Kubernetes).
    assert prod(high_availability=False, components={"prometheus": {"replicas": 2}}).replicas("prometheus") == 2
    assert prod().kubernetes.topology_spread == ["zone", "hostname"]
    assert prod(kubernetes={"topologySpread": "zone"}).kubernetes.topology_spread == ["zone"]
    assert prod(kubernetes={"topologySpread": "both"}).kubernetes.topology_spread == ["zone", "hostname"]


def test_docker_refuses_it_with_one_message_naming_the_key():
    with pytest.raises(ConfigError) as err:
        Settings(environment="prod", alerting=PROD_ALERTING, target="docker")
    assert err.value.problems == [
        "observability:highAvailability: true is not allowed on the docker target (one host cannot be "
        "highly available; use the kubernetes target or set it false)"]
    Settings(environment="prod", alerting=PROD_ALERTING, target="docker", high_availability=False)


# -- rendered configs --------------------------------------------------------------------------


def test_alertmanager_cluster_flags_and_ports():
    am = workloads_of("alertmanager", prod())[0]
    assert am.replicas == 3 and am.headless == "all" and am.pod_ip_env == "POD_IP"
    assert "--cluster.peer=alertmanager-peers:9094" in am.args
    assert "--cluster.listen-address=0.0.0.0:9094" in am.args
    assert "--cluster.advertise-address=$(POD_IP):9094" in am.args
    assert {(p.port, p.protocol) for p in am.ports} == {(9093, "TCP"), (9094, "TCP"), (9094, "UDP")}
    single = workloads_of("alertmanager", prod(high_availability=False))[0]
    assert "--cluster.listen-address=" in single.args and not single.headless
    assert {p.port for p in single.ports} == {9093}


def test_prometheus_pair_labels_and_alerting():
    files = render_all(prod())
    doc = yaml.safe_load(files["prometheus/prometheus.yml"])
    assert doc["global"]["external_labels"]["__replica__"] == "${POD_NAME}"
    assert doc["global"]["external_labels"]["cluster"] == "prod"
    assert doc["alerting"]["alertmanagers"] == [
        {"dns_sd_configs": [{"names": ["alertmanager-peers"], "type": "A", "port": 9093}]}]
    assert doc["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "__replica__"}]
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert jobs["alertmanager"]["dns_sd_configs"] == [{"names": ["alertmanager-peers"], "type": "A", "port": 9093}]
    assert jobs["collector"]["dns_sd_configs"] == [
        {"names": ["collector-peers", "collector-sampling-peers"], "type": "A", "port": 8888}]
    assert jobs["loki"]["dns_sd_configs"] == [{"names": ["loki-peers"], "type": "A", "port": 3100}]
    assert jobs["tempo"]["dns_sd_configs"] == [{"names": ["tempo-peers"], "type": "A", "port": 3200}]
    assert jobs["grafana"]["static_configs"] == [{"targets": ["grafana:3000"]}]  # one replica
    wl = workloads_of("prometheus", prod())[0]
    assert wl.replicas == 2 and wl.pod_name_env == "POD_NAME"
    # Mimir deduplicates the pair on the labels Prometheus sets.
    mimir = yaml.safe_load(files["mimir/mimir.yaml"])
    assert mimir["distributor"]["ha_tracker"] == {"enable_ha_tracker": True, "kvstore": {"store": "memberlist"}}
    assert mimir["limits"]["accept_ha_samples"] is True


def test_collector_two_tiers():
    s = prod()
    files = render_all(s)
    gateway = yaml.safe_load(files["collector/config.yaml"])
    sampling = yaml.safe_load(files["collector/sampling.yaml"])
    lb = gateway["exporters"]["loadbalancing"]
    assert lb["routing_key"] == "traceID"
    assert lb["resolver"] == {"dns": {"hostname": "collector-sampling-peers", "port": "4317", "interval": "5s"}}
    assert gateway["service"]["pipelines"]["traces"]["exporters"] == ["loadbalancing"]
    assert "tail_sampling" not in gateway["processors"]
    # Logs and metrics go straight on from the load-balancing tier.
    assert gateway["service"]["pipelines"]["logs"]["exporters"] == ["otlphttp/loki"]
    assert gateway["service"]["pipelines"]["metrics"]["exporters"] == ["prometheusremotewrite"]
    assert sampling["service"]["pipelines"] == {"traces": {
        "receivers": ["otlp"], "processors": ["memory_limiter", "tail_sampling", "batch"], "exporters": ["otlp/tempo"]}}
    gw, tier, events, agent = workloads_of("collector", s)
    assert (gw.name, tier.name, events.name, agent.name) == (
        "collector", "collector-sampling", "collector-events", "collector-logs")
    assert gw.replicas == tier.replicas == 2 and tier.headless == "ready"
    # The Kubernetes events watcher stays one: two would ship every event twice.
    assert events.replicas == 1 and not events.headless
    assert not any(p.ingest or p.publish for p in tier.ports)  # only the load balancer sends here
    assert {e.address for e in gw.talks_to} >= {"collector-sampling:4317"}
    assert links_for(s).peers == {"prometheus": "prometheus-peers", "alertmanager": "alertmanager-peers",
                                  "loki": "loki-peers", "mimir": "mimir-peers", "tempo": "tempo-peers",
                                  "pyroscope": "pyroscope-peers", "collector": "collector-peers"}


# -- the Kubernetes backend --------------------------------------------------------------------


def test_every_multi_replica_workload_gets_pdb_spread_and_quorum_keeping_rollouts():
    run, workloads = scenario("prod")
    multi = {w.name: w for w in workloads if w.replicas > 1 and not w.per_node}
    assert set(multi) == {"alertmanager", "prometheus", "collector", "collector-sampling", "loki", "mimir", "tempo",
                          *PYROSCOPE}
    pdbs = named(run, PDB)
    assert set(pdbs) == set(multi)
    controllers = {**named(run, STS), **named(run, DEPLOYMENT)}
    for name, w in multi.items():
        assert pdbs[name].inputs["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(name)}}
        spec = controllers[name].inputs["spec"]
        assert spec["replicas"] == w.replicas
        spread = spec["template"]["spec"]["topologySpreadConstraints"]
        assert [(c["topologyKey"], c["whenUnsatisfiable"], c["maxSkew"]) for c in spread] == [
            ("topology.kubernetes.io/zone", "ScheduleAnyway", 1), ("kubernetes.io/hostname", "DoNotSchedule", 1)]
        assert all(c["labelSelector"] == {"matchLabels": selector_labels(name)} for c in spread)
        if controllers[name].type == STS:
            # Immutable field: never changed, so turning HA on replaces no StatefulSet.
            assert spec["podManagementPolicy"] == "OrderedReady" and spec["serviceName"] == name
            assert spec["updateStrategy"] == {"type": "RollingUpdate"}
        else:
            assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    for name in ("alertmanager", "loki", "mimir"):  # gossip peers: time to sync before the next one
        assert named(run, STS)[name].inputs["spec"]["minReadySeconds"] == 30
    # Single-replica workloads: no spread, no PDB.
    for name, r in named(run, STS).items():
        if name not in multi:
            assert "topologySpreadConstraints" not in r.inputs["spec"]["template"]["spec"]


def test_topology_spread_follows_the_setting():
    run, _ = run_with_workloads("prod", {NS + "kubernetes": {"topologySpread": ["hostname"]}})
    spread = named(run, STS)["alertmanager"].inputs["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == ["kubernetes.io/hostname"]


def test_headless_services_and_downward_env():
    run, _ = scenario("prod")
    services = named(run, SERVICE)
    assert {n for n in services if n.endswith("-peers")} == {"alertmanager-peers", "prometheus-peers",
                                                             "collector-peers", "collector-sampling-peers",
                                                             "loki-peers", "mimir-peers", "tempo-peers",
                                                             *(f"{n}-peers" for n in PYROSCOPE)}
    am = services["alertmanager-peers"].inputs["spec"]
    assert am["clusterIP"] == "None" and am["publishNotReadyAddresses"] is True
    assert {(p["port"], p["protocol"]) for p in am["ports"]} == {(9093, "TCP"), (9094, "TCP"), (9094, "UDP")}
    assert services["collector-sampling-peers"].inputs["spec"]["publishNotReadyAddresses"] is False
    env = named(run, STS)["alertmanager"].inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in env
    env = named(run, STS)["prometheus"].inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in env


def test_gossip_port_open_between_peers_only_tcp_and_udp():
    run, _ = scenario("prod")
    # Nobody else reaches the gossip port.
    assert_gossip_only_between_peers(run, "alertmanager", 9094)
    # The load balancer reaches the samplers on OTLP, and only it does.
    sampler = named(run, NETPOL)["collector-sampling"].inputs["spec"]
    assert sampler["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": selector_labels("collector")}}], "ports": [{"protocol": "TCP", "port": 4317}]},
        {"from": [{"podSelector": {"matchLabels": selector_labels("prometheus")}}], "ports": [{"protocol": "TCP", "port": 8888}]},
    ]


def test_single_replica_prod_is_unchanged_by_the_feature():
    """`highAvailability: false` renders what prod rendered before issue 14."""
    run, workloads = run_with_workloads("prod", {NS + "highAvailability": False})
    assert not run.of_type(PDB)
    assert not [n for n in named(run, SERVICE) if n.endswith("-peers")]
    assert all(w.replicas == 1 for w in workloads)
    files = render_all(prod(high_availability=False))
    assert "collector/sampling.yaml" not in files
    assert "__replica__" not in files["prometheus/prometheus.yml"]
    assert "ha_tracker" not in files["mimir/mimir.yaml"]
