"""Alerting survives a lost node (issue 14), with the real binaries on loopback.

The prod preset's rendered configs (highAvailability: Alertmanager x3, Prometheus x2) run as
local processes; only what tests/e2e/localize.py lists is rewritten (paths, loopback addresses,
the clock). The headless Services become the local peers' addresses: `--cluster.peer` lists the
other two Alertmanagers, Prometheus' `dns_sd_configs` become their static addresses, and each
Prometheus gets `POD_NAME` (`prometheus-0`, `prometheus-1`) the way the downward API sets it.

Phases, in order, on one Alertmanager cluster (module fixture):
1. a batch of alerts posted to every peer (as Prometheus posts them): each reaches the receiver
   exactly once;
2. a silence created on one peer is gossiped to the others, and an alert it matches is
   suppressed on every peer and notifies nobody;
3. a batch posted, then the peer that would notify first (position 0) killed at once: the others
   notify in its place, each alert still exactly once;
4. two Prometheus replicas evaluate the same rules against the surviving peers: one notification
   per alert group; both replicas' remote write carries `cluster` and `__replica__` (what Mimir's
   HA tracker keys on) as recorded by a third Prometheus with the remote-write receiver on; one
   Prometheus killed, a new outage is still delivered.
The figures (alerts sent, delivered, duplicated, lost) are printed at the end.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from observability_stack.components import alertmanager, prometheus
from observability_stack.components.render import links_for, workloads_of
from observability_stack.config import Settings
from tests.e2e.local_stack import pinned_binary
from tests.e2e import localize
from tests.e2e.exporter import Exporter
from tests.e2e.http_sink import Deliveries, Delivery, HttpSink
from tests.scenarios import EXAMPLE_BUCKET
from tests.e2e.procs import Process, free_port, http_get_json, http_post_json

pytestmark = pytest.mark.slow

SCALE = 10  # group_wait 10s -> 1s, `for: 1m` -> 6s
PEER_TIMEOUT = "1500ms"  # --cluster.peer-timeout (15s upstream), scaled like the route timers
SCRAPE_INTERVAL = "1s"
BATCH = 12
WAIT = 40
FIGURES: dict[str, dict] = {}


def healthy(t: float) -> str:
    return "# TYPE e2e_up gauge\ne2e_up 1\n"


@dataclass
class Cluster:
    settings: Settings
    sink: HttpSink
    deliveries: Deliveries
    peers: dict[str, Process]  # web address -> process
    cluster_addrs: dict[str, str]  # web address -> gossip address
    root: Path
    killed: list[str] = field(default_factory=list)

    def alive(self) -> list[str]:
        return [a for a in self.peers if a not in self.killed]


def post(addresses, alerts: list[dict]) -> None:
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    body = [{"labels": a, "annotations": {"description": a["alertname"]}, "endsAt": ends} for a in alerts]
    for address in addresses:
        http_post_json(f"http://{address}/api/v2/alerts", body)


def notifications_of(deliveries: list[Delivery], alertname: str) -> int:
    """Webhook notifications carrying `alertname` firing."""
    return sum(1 for d in deliveries if isinstance(d.body, dict) and any(
        a["labels"].get("alertname") == alertname and a["status"] == "firing" for a in d.body.get("alerts", [])))


def wait_until(done, timeout: float, what: str, logs=()) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout}s\n" + "\n".join(p.output() for p in logs))
        time.sleep(0.2)


def count(cluster: Cluster, names: list[str], phase: str, settle: float) -> dict:
    wait_until(lambda: all(notifications_of(cluster.deliveries.all(), n) >= 1 for n in names), WAIT,
               f"{phase}: not every alert delivered", cluster.peers.values())
    # Longer than every peer's wait (position x peer timeout) plus a group interval: a duplicate
    # would have arrived by now.
    time.sleep(settle)
    got = [notifications_of(cluster.deliveries.all(), n) for n in names]
    figures = {"sent": len(names), "delivered": sum(1 for g in got if g >= 1),
               "duplicated": sum(g - 1 for g in got if g > 1), "lost": sum(1 for g in got if g == 0)}
    FIGURES[phase] = figures
    return figures


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, module_event_loop):
    binary = pinned_binary("alertmanager")
    tmp = tmp_path_factory.mktemp("ha")
    with contextlib.ExitStack() as stack:
        deliveries = Deliveries()
        sink = stack.enter_context(HttpSink(deliveries))
        settings = Settings(environment="prod", alerting={
            "receivers": [{"name": "pager", "webhook": {"url": sink.url("webhook", "pager")}}],
            "routes": {"critical": "pager", "warning": "pager"}}, object_storage=EXAMPLE_BUCKET)
        (am,) = workloads_of("alertmanager", settings)
        assert am.replicas == 3 and "--cluster.peer=alertmanager-peers:9094" in am.args
        web = [f"127.0.0.1:{free_port()}" for _ in range(am.replicas)]
        gossip = {w: f"127.0.0.1:{free_port()}" for w in web}
        peers: dict[str, Process] = {}
        for i, address in enumerate(web):
            root = tmp / f"alertmanager-{i}"
            files = {f.path: localize.alertmanager_yml(f.content, root, SCALE) for f in am.config_files}
            files.update({path: value.get_secret_value()
                          for path, value in alertmanager.secret_values(settings).items()})
            localize.write_files(files, root)
            localize.under(root, alertmanager.DATA_DIR).mkdir(parents=True, exist_ok=True)
            args = localize.cluster_args(am.args, root, address, gossip[address],
                                         [gossip[o] for o in web if o != address], PEER_TIMEOUT)
            peers[address] = stack.enter_context(Process(f"alertmanager-{i}", [binary, *args], tmp / f"am-{i}.log"))
        for address, proc in peers.items():
            proc.wait_ready(f"http://{address}/-/ready")
        wait_until(lambda: all(len(http_get_json(f"http://{a}/api/v2/status")["cluster"]["peers"]) == 3 for a in web),
                   30, "the three peers did not form a cluster", peers.values())
        yield Cluster(settings, sink, deliveries, peers, gossip, tmp)
    print(f"\nHA alerting figures: {json.dumps(FIGURES)}")


def test_every_alert_reaches_the_receiver_exactly_once(cluster: Cluster):
    names = [f"HaBatchA{i}" for i in range(BATCH)]
    post(cluster.alive(), [{"alertname": n, "severity": "critical"} for n in names])
    figures = count(cluster, names, "alertmanager x3", settle=6)
    assert figures == {"sent": BATCH, "delivered": BATCH, "duplicated": 0, "lost": 0}


def test_a_silence_on_one_peer_silences_on_all(cluster: Cluster):
    first, *others = cluster.alive()
    now = time.time()
    silence = {"matchers": [{"name": "alertname", "value": "HaSilenced", "isRegex": False, "isEqual": True}],
               "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
               "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
               "createdBy": "test_ha_e2e", "comment": "created on one peer only"}
    http_post_json(f"http://{first}/api/v2/silences", silence)

    def everywhere() -> bool:
        return all(any(s["status"]["state"] == "active" and s["comment"] == silence["comment"]
                       for s in http_get_json(f"http://{a}/api/v2/silences")) for a in others)

    wait_until(everywhere, 20, "the silence did not reach the other peers", cluster.peers.values())
    post(cluster.alive(), [{"alertname": "HaSilenced", "severity": "critical"},
                           {"alertname": "HaNotSilenced", "severity": "critical"}])
    wait_until(lambda: notifications_of(cluster.deliveries.all(), "HaNotSilenced") >= 1, WAIT,
               "the unsilenced control alert was not delivered", cluster.peers.values())
    time.sleep(4)
    for address in cluster.alive():
        states = {a["labels"]["alertname"]: a["status"]["state"]
                  for a in http_get_json(f"http://{address}/api/v2/alerts?silenced=true")}
        assert states.get("HaSilenced") == "suppressed", (address, states)
    assert notifications_of(cluster.deliveries.all(), "HaSilenced") == 0


def test_a_peer_killed_mid_flight_costs_nothing(cluster: Cluster):
    # The peer in position 0 notifies first; the others wait position x peer timeout and skip
    # what the notification log (gossiped) says was sent. Kill the first right after the post.
    status = {a: http_get_json(f"http://{a}/api/v2/status")["cluster"] for a in cluster.alive()}
    order = sorted(s["name"] for s in status.values())
    first = next(a for a, s in status.items() if s["name"] == order[0])
    names = [f"HaBatchB{i}" for i in range(BATCH)]
    post(cluster.alive(), [{"alertname": n, "severity": "critical"} for n in names])
    cluster.peers[first].proc.send_signal(signal.SIGKILL)
    cluster.killed.append(first)
    figures = count(cluster, names, "alertmanager x3, position-0 peer killed after the post", settle=8)
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures


def test_prometheus_pair_alerts_once_and_survives_a_lost_replica(cluster: Cluster, tmp_path):
    binary = pinned_binary("prometheus")
    settings = cluster.settings
    (prom,) = workloads_of("prometheus", settings)
    assert prom.replicas == 2 and prom.pod_name_env == "POD_NAME"
    links = links_for(settings)
    with contextlib.ExitStack() as stack:
        stub = stack.enter_context(Exporter(healthy))
        later = stack.enter_context(Exporter(healthy))  # goes down after a replica is lost
        closed = f"127.0.0.1:{free_port()}"
        receiver_addr = f"127.0.0.1:{free_port()}"
        receiver_root = tmp_path / "receiver"
        (receiver_root / "data").mkdir(parents=True)
        (receiver_root / "prometheus.yml").write_text("global: {}\n")
        receiver = stack.enter_context(Process("remote-write receiver", [
            binary, f"--config.file={receiver_root / 'prometheus.yml'}", f"--storage.tsdb.path={receiver_root / 'data'}",
            "--web.enable-remote-write-receiver", f"--web.listen-address={receiver_addr}"], tmp_path / "receiver.log"))
        receiver.wait_ready(f"http://{receiver_addr}/-/ready")

        addresses = [f"127.0.0.1:{free_port()}" for _ in range(prom.replicas)]
        targets = {t: stub.target for job, t in prometheus.stack_targets(links).items()}
        # Every replicated tool the config discovers by DNS (its headless Service) is the stub,
        # but the Alertmanagers, which are the real peers.
        rendered = yaml.safe_load(next(f.content for f in prom.config_files if f.path == prometheus.CONFIG_PATH))
        resolved = {f"{name}:{sd['port']}": [stub.target] for job in rendered["scrape_configs"]
                    for sd in job.get("dns_sd_configs", []) for name in sd["names"]}
        resolved[f"alertmanager-peers:{alertmanager.HTTP_PORT}"] = cluster.alive()
        push = links.remote_write.url
        procs = []
        for i, address in enumerate(addresses):
            root = tmp_path / f"prometheus-{i}"
            own = {t: address for job, t in prometheus.stack_targets(links).items() if job == "prometheus"}
            files = {}
            for f in prom.config_files:
                if f.path == prometheus.CONFIG_PATH:
                    files[f.path] = localize.prometheus_yml(
                        f.content, root, {**targets, **own}, {"e2e-down": closed, "e2e-later": later.target}, SCALE,
                        SCRAPE_INTERVAL, resolved=resolved, remote_write={push: f"http://{receiver_addr}/api/v1/write"})
                else:
                    files[f.path] = localize.rule_file(f.content, SCALE)
            localize.write_files(files, root)
            localize.under(root, prometheus.DATA_DIR).mkdir(parents=True, exist_ok=True)
            # The downward API's pod name, which `__replica__` expands from.
            procs.append(stack.enter_context(Process(
                f"prometheus-{i}", [binary, *localize.local_args(prom.args, root, address)],
                tmp_path / f"prometheus-{i}.log", env={prom.pod_name_env: f"prometheus-{i}"})))
        for proc, address in zip(procs, addresses):
            proc.wait_ready(f"http://{address}/-/ready")

        # One notification per group although both replicas send ServiceDown{job="e2e-down"}.
        wait_until(lambda: notifications_of(cluster.deliveries.all(), "ServiceDown") >= 1, WAIT,
                   "ServiceDown from the Prometheus pair was not delivered", [*procs, *cluster.peers.values()])
        time.sleep(6)
        groups = [d for d in cluster.deliveries.all() if isinstance(d.body, dict)
                  and d.body.get("groupLabels", {}).get("alertname") == "ServiceDown"]
        firing_once = [d for d in groups if [a["labels"]["job"] for a in d.body["alerts"]] == ["e2e-down"]]
        assert len(firing_once) == 1, [d.body for d in groups]
        assert all("__replica__" not in a["labels"] for d in groups for a in d.body["alerts"])
        # Both replicas alert every (surviving) Alertmanager and sent it (so the one notification
        # is deduplication, not a silent replica).
        for address in addresses:
            found = http_get_json(f"http://{address}/api/v1/query?query=prometheus_notifications_alertmanagers_discovered")
            assert float(found["data"]["result"][0]["value"][1]) == len(cluster.alive()), address
            sent = http_get_json(f"http://{address}/api/v1/query?query=" + urllib.parse.quote(
                "sum(prometheus_notifications_sent_total)"))["data"]["result"]
            assert sent and float(sent[0]["value"][1]) > 0, address

        # Remote write of both replicas carries Mimir's HA tracker labels.
        query = urllib.parse.quote('count by (cluster, __replica__) (up{job="e2e-down"})')

        def both_replicas() -> list:
            result = http_get_json(f"http://{receiver_addr}/api/v1/query?query={query}")["data"]["result"]
            return sorted((r["metric"].get("cluster"), r["metric"].get("__replica__")) for r in result)

        wait_until(lambda: len(both_replicas()) == 2, 30, "the receiver did not get both replicas' series",
                   [receiver, *procs])
        assert both_replicas() == [("prod", "prometheus-0"), ("prod", "prometheus-1")]

        # Lose a replica, then a new outage: the survivor alone still gets it delivered.
        procs[0].proc.send_signal(signal.SIGKILL)
        before = len(cluster.deliveries.all())
        later.__exit__(None, None, None)

        def later_delivered() -> bool:
            return any(a["labels"].get("job") == "e2e-later" and a["status"] == "firing"
                       for d in cluster.deliveries.all()[before:] if isinstance(d.body, dict)
                       for a in d.body.get("alerts", []))

        wait_until(later_delivered, WAIT, "the surviving Prometheus' alert was not delivered",
                   [procs[1], *cluster.peers.values()])
        FIGURES["prometheus x2"] = {"ServiceDown notifications for one group": len(firing_once),
                                    "remote-write replicas recorded": len(both_replicas()),
                                    "alert after losing prometheus-0": "delivered"}
