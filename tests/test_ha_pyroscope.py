"""Replicated Pyroscope (issue 15): upstream's microservices mode, the only HA shape Pyroscope
1.21.1 documents (its monolithic mode is "meant to be used when you only need one pyroscope
instance"; docs/upstream-facts.md section 18), checked in the rendered config and in the
manifests the Kubernetes backend declares under mocks.

Expectations are upstream's facts at the tag, written here by hand: the component targets of the
Helm chart's values-micro-services.yaml, the replication factor of 3 from the ingester docs and
the chart's store-gateway flag, memberlist on its default port, every component advertising the
HTTP port in its ring. The key check (tests/test_check_keys.py) runs on every scenario; the
object-storage scenarios are prod stacks, so it covers s3, gcs and azure in this shape.
"""

from __future__ import annotations

import pytest
import yaml

from observability_stack.components.render import links_for, render_all, workloads_of
from observability_stack.components.targets.kubernetes import selector_labels
from observability_stack.config import ConfigError, load_settings
from tests.harness import run_with_workloads
from tests.scenarios import KUBERNETES, OBJECT_STORAGE_KINDS, settings_for

# Upstream facts (Pyroscope 1.21.1; docs/upstream-facts.md section 18):
# operations/pyroscope/helm/pyroscope/values-micro-services.yaml `pyroscope.components`, less the
# optional tenant-settings and ad-hoc-profiles APIs.
CHART_COMPONENTS = {"querier", "query-frontend", "query-scheduler", "distributor", "ingester", "compactor",
                    "store-gateway"}
CHART_STATEFULSETS = {"ingester", "compactor", "store-gateway"}  # `kind: StatefulSet` in the chart
RF = 3  # components/ingester.md "replicated to three ingesters"; chart store-gateway RF "3"
HTTP_PORT = 4040  # server.http_listen_port default (pyroscope.go overrides): every ring's ListenPort
MEMBERLIST_PORT = 7946  # the chart's memberlist Service port, dskit's default bind_port

from tests.k8s_types import STS, DEPLOYMENT, SERVICE, PDB, NETPOL


def config(settings) -> dict:
    return yaml.safe_load(render_all(settings)["pyroscope/config.yaml"])


def target_of(workload) -> str:
    [target] = [a.split("=", 1)[1] for a in workload.args if a.startswith("-target=")]
    return target


def named(run, typ):
    return {r.inputs["metadata"]["name"]: r for r in run.of_type(typ)}


@pytest.fixture(scope="module")
def prod_run():
    return run_with_workloads(*KUBERNETES["prod"])


@pytest.mark.parametrize("scenario", sorted(OBJECT_STORAGE_KINDS))
def test_every_storage_kind_runs_the_microservices_with_rf3(scenario):
    settings = settings_for(scenario)
    assert settings.high_availability and settings.replicas("pyroscope") == RF
    doc = config(settings)
    assert doc["storage"]["backend"] == OBJECT_STORAGE_KINDS[scenario] and "filesystem" not in doc["storage"]
    assert doc["ingester"]["lifecycler"]["ring"]["replication_factor"] == RF
    assert doc["store_gateway"]["sharding_ring"]["replication_factor"] == RF
    workloads = workloads_of("pyroscope", settings)
    assert {target_of(w) for w in workloads} == CHART_COMPONENTS
    assert all(w.replicas == RF for w in workloads)
    # One config file for every component (about-configurations.md).
    assert len({w.config_files for w in workloads}) == 1
    # Every component reaches the bucket with the same credentials.
    assert len({(tuple(sorted(w.secret_env)), w.egress_ports) for w in workloads}) == 1


def test_memberlist_seeds_are_the_headless_services_of_every_component(prod_run):
    run, workloads = prod_run
    doc = config(settings_for("prod"))
    assert doc["memberlist"]["bind_port"] == MEMBERLIST_PORT
    assert "pyroscope" in doc["memberlist"]["cluster_label"]  # its own gossip cluster
    services = named(run, SERVICE)
    seeded = set()
    for seed in doc["memberlist"]["join_members"]:
        assert seed.startswith("dns+")
        host, port = seed.removeprefix("dns+").rsplit(":", 1)
        assert int(port) == MEMBERLIST_PORT
        spec = services[host].inputs["spec"]
        assert spec["clusterIP"] == "None" and spec["publishNotReadyAddresses"] is True
        assert MEMBERLIST_PORT in {p["port"] for p in spec["ports"]}
        seeded.add(spec["selector"]["app.kubernetes.io/name"])
    pyroscope = {w.name for w in workloads if w.name.startswith("pyroscope")}
    assert seeded == {selector_labels(n)["app.kubernetes.io/name"] for n in pyroscope}


def _allowed(spec: dict, direction: str, peer: str, port: int) -> bool:
    side = "from" if direction == "ingress" else "to"
    me = {"podSelector": {"matchLabels": selector_labels(peer)}}
    return any(me in rule.get(side, []) and {"protocol": "TCP", "port": port} in rule["ports"]
               for rule in spec.get(direction, []))


def test_network_policies_admit_gossip_and_the_read_and_write_paths(prod_run):
    run, workloads = prod_run
    by_target = {target_of(w): w.name for w in workloads if w.name.startswith("pyroscope")}
    policies = {n: r.inputs["spec"] for n, r in named(run, NETPOL).items()}
    for a in by_target.values():
        for b in by_target.values():
            assert _allowed(policies[a], "egress", b, MEMBERLIST_PORT), (a, b)
            assert _allowed(policies[b], "ingress", a, MEMBERLIST_PORT), (a, b)
    # Upstream's call graph (the ring addresses are the HTTP port): distributor -> ingesters;
    # query-frontend -> query-scheduler; querier -> scheduler, frontend, ingesters, store-gateways.
    calls = [("distributor", "ingester"), ("query-frontend", "query-scheduler"),
             ("querier", "query-scheduler"), ("querier", "query-frontend"), ("querier", "ingester"),
             ("querier", "store-gateway")]
    for src, dst in calls:
        assert _allowed(policies[by_target[src]], "egress", by_target[dst], HTTP_PORT), (src, dst)
        assert _allowed(policies[by_target[dst]], "ingress", by_target[src], HTTP_PORT), (src, dst)
    # Nothing else inside Pyroscope reaches an ingester's HTTP port.
    for src in set(by_target) - {"distributor", "querier"}:
        assert not _allowed(policies[by_target["ingester"]], "ingress", by_target[src], HTTP_PORT), src
    # Grafana queries the frontend; apps push to the distributor (the ingest port).
    assert _allowed(policies[by_target["query-frontend"]], "ingress", "grafana", HTTP_PORT)
    assert not _allowed(policies[by_target["ingester"]], "ingress", "grafana", HTTP_PORT)


def test_quorum_and_claims(prod_run):
    run, workloads = prod_run
    stateful, deployments, pdbs = named(run, STS), named(run, DEPLOYMENT), named(run, PDB)
    by_target = {target_of(w): w for w in workloads if w.name.startswith("pyroscope")}
    assert {t for t, w in by_target.items() if w.name in stateful} == CHART_STATEFULSETS
    assert {t for t, w in by_target.items() if w.name in deployments} == CHART_COMPONENTS - CHART_STATEFULSETS
    quorum = RF // 2 + 1  # "a quorum of ingesters ... a minimum of 2 with a replication factor of 3"
    for target, w in by_target.items():
        spec = (stateful.get(w.name) or deployments[w.name]).inputs["spec"]
        assert spec["replicas"] - pdbs[w.name].inputs["spec"]["maxUnavailable"] >= quorum, target
        if w.name in stateful:
            assert spec["updateStrategy"] == {"type": "RollingUpdate"}
        else:
            assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    # Claims only where there is a WAL/head or a cache: ingesters (head blocks), store-gateways
    # (index headers), compactors (blocks being compacted); all else is scratch.
    assert {t for t, w in by_target.items() if w.data is not None} == CHART_STATEFULSETS
    # The ingesters inherit the single binary's StatefulSet (and claim data-pyroscope-0).
    assert by_target["ingester"].name == "pyroscope"


def test_wiring_points_pushes_queries_and_scrapes_at_the_right_components():
    settings = settings_for("prod")
    links = links_for(settings)
    names = {target_of(w): w.name for w in workloads_of("pyroscope", settings)}
    assert links.query["pyroscope"].service == names["query-frontend"]
    assert links.served["pyroscope"]["http"].service == names["distributor"]
    distributor = next(w for w in workloads_of("pyroscope", settings) if w.name == names["distributor"])
    assert distributor.port("http").ingest
    prometheus = yaml.safe_load(render_all(settings)["prometheus/prometheus.yml"])
    [job] = [j for j in prometheus["scrape_configs"] if j["job_name"] == "pyroscope"]
    assert set(job["dns_sd_configs"][0]["names"]) == {f"{n}-peers" for n in names.values()}


def test_one_replica_is_the_single_binary():
    raw = {"alerting": {"receivers": [{"name": "p", "webhook": {"url": "http://pager.invalid/"}}],
                        "routes": {"critical": "p", "warning": "p"}},
           "objectStorage": {"gcs": {"bucket": "observability"}}, "components": {"pyroscope": {"replicas": 1}}}
    settings = load_settings(raw, stack="prod", secret_keys=["alerting"])
    [single] = workloads_of("pyroscope", settings)
    assert not any(a.startswith("-target=") for a in single.args)  # `all`, the default
    doc = config(settings)
    assert "memberlist" not in doc and "ingester" not in doc
    # Two replicas could not keep a quorum of 2 after losing one: refused, one line naming the key.
    with pytest.raises(ConfigError) as err:
        load_settings({**raw, "components": {"pyroscope": {"replicas": 2}}}, stack="prod", secret_keys=["alerting"])
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith("observability:components.pyroscope.replicas: 2 is not allowed")
