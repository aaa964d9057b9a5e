"""Grafana with an external database (issue 15): two replicas, alerting gossip between them, and
nothing of that without the database.

Upstream: Grafana docs "Set up Grafana for high availability" (a shared MySQL/Postgres holds
users, dashboards and sessions) and Grafana Alerting "Configure high availability" (`ha_peers`,
`ha_listen_address`, `ha_advertise_address`; gossip on 9094 over TCP and UDP; on Kubernetes the
pod IP from the downward API).
"""

from __future__ import annotations

import pytest

from observability_stack.components.render import workloads_of
from observability_stack.config import ConfigError, Settings
from tests.harness import assert_gossip_only_between_peers, scenario
from tests.scenarios import EXAMPLE_BUCKET

from tests.k8s_types import STS, SERVICE, PDB
ALERTING = {"receivers": [{"name": "pager", "webhook": {"url": "http://pager.invalid/"}}],
            "routes": {"critical": "pager", "warning": "pager"}}
DB = "postgres://grafana:pw@db.example.com:5432/grafana"


def prod(**overrides) -> Settings:
    overrides.setdefault("object_storage", EXAMPLE_BUCKET)
    return Settings(environment="prod", alerting=ALERTING, **overrides)


def named(run, typ):
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(typ)}


def test_two_replicas_only_with_a_database():
    assert prod().replicas("grafana") == 1
    assert prod(grafana={"database": DB}).replicas("grafana") == 2
    # Without highAvailability too: the database is what makes replicas share their state.
    assert prod(high_availability=False, grafana={"database": DB}).replicas("grafana") == 2
    # One container per tool on Docker, database or not.
    assert Settings(grafana={"database": DB}).replicas("grafana") == 1


def test_explicit_replicas_without_a_database_are_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        prod(components={"grafana": {"replicas": 2}})
    assert err.value.problems == [
        "observability:components.grafana.replicas: 2 is not allowed without observability:grafana.database "
        "(replicas on their own SQLite volumes would each hold different users and dashboards; set "
        "grafana.database to a postgres:// or mysql:// URL, or 1 replica)"]
    assert prod(components={"grafana": {"replicas": 3}}, grafana={"database": DB}).replicas("grafana") == 3


def test_replicas_gossip_alerting_state_through_the_headless_service():
    w = workloads_of("grafana", prod(grafana={"database": DB}))[0]
    assert w.replicas == 2 and w.headless == "all" and w.pod_ip_env == "POD_IP"
    assert w.env["GF_UNIFIED_ALERTING_HA_PEERS"] == "grafana-peers:9094"
    assert w.env["GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS"] == "$(POD_IP):9094"
    assert w.env["GF_UNIFIED_ALERTING_HA_ADVERTISE_ADDRESS"] == "$(POD_IP):9094"
    assert {(p.port, p.protocol) for p in w.ports} == {(3000, "TCP"), (9094, "TCP"), (9094, "UDP")}
    # The database URL is a secret file, never an env value.
    assert "GF_DATABASE_URL" not in w.env and w.env["GF_DATABASE_URL__FILE"]
    single = workloads_of("grafana", prod())[0]
    assert single.replicas == 1 and not single.headless
    assert not any(k.startswith("GF_UNIFIED_ALERTING_HA") for k in single.env)
    assert {p.port for p in single.ports} == {3000}


def test_manifests_pdb_peers_service_and_gossip_only_between_grafanas():
    run, _ = scenario("sso-database")
    sts = named(run, STS)["grafana"].inputs["spec"]
    assert sts["replicas"] == 2
    container = sts["template"]["spec"]["containers"][0]
    env = container["env"]
    # The downward-API variable comes before the values that reference it (kubelet expansion order).
    names = [e["name"] for e in env]
    assert names.index("POD_IP") < names.index("GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS")
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in env
    assert not any("postgres://" in str(e.get("value", "")) for e in env)
    pdb = named(run, PDB)["grafana"].inputs["spec"]
    assert pdb["maxUnavailable"] == 1
    peers = named(run, SERVICE)["grafana-peers"].inputs["spec"]
    assert peers["clusterIP"] == "None" and peers["publishNotReadyAddresses"] is True
    assert_gossip_only_between_peers(run, "grafana", 9094)
