"""A real deploy to a real Docker engine: the program run by the Pulumi engine built from Go
modules (scripts/build-pulumi.sh, inline through the Automation API as scripts/engine.py does),
with the Docker provider built from Go modules (scripts/build-docker-provider.sh) on PATH, on
dockerd (`.ci/run` installs docker.io and starts it), with the images of Prometheus,
Alertmanager and the collector built locally from Go modules (scripts/build-local-images.py;
no registry is reachable here). Grafana, Loki, Tempo, Mimir and Pyroscope are switched off:
they are AGPL and are not built here.

In order, on one stack (`ci-docker`, dev preset, protectData on, a team whose webhook is a sink
on this host):
1. `up` creates everything; each container with a healthcheck is healthy by its own check, the
   volume-ownership helpers exited 0;
2. only the published ports answer, only on 127.0.0.1;
3. Prometheus scrapes the other tools by their network aliases;
4. each data volume belongs to the uid its tool runs as (the chown helper);
5. every config and secret upload is at its path, with its mode, owner and content;
6. the team's alert fires and reaches the webhook sink on the host;
7. a retention change replaces the Prometheus container and nothing else; the TSDB samples
   written before it are still there afterwards;
8. a second `up` changes nothing;
9. `destroy` refuses while the data is protected; once unprotected, it removes everything but
   the retained volumes, whose data is intact (README, "Targets": protect + retain_on_delete).
Marked slow and engine; about 3 minutes once the tools are built.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import time
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from observability_stack.components import alertmanager, collector, prometheus
from observability_stack.components.render import workloads_of
from observability_stack.config import load_settings
from observability_stack.config.loader import stack_config_values
from scripts.engine import offline_env, open_stack
from tests.e2e.http_sink import Deliveries, HttpSink, _Handler
from tests.harness import ROOT
from tests.test_engine import Events

pytestmark = [pytest.mark.slow, pytest.mark.engine]

STACK = "ci-docker"
PREFIX = f"obs-{STACK}"
LABEL = f"observability.stack={STACK}"
# AGPL: never built or run here. node-exporter and cAdvisor (issue 13): no local image is built
# for them yet (scripts/build-local-images.py builds Prometheus, Alertmanager, the collector).
OFF = ("grafana", "loki", "tempo", "mimir", "pyroscope", "node_exporter", "cadvisor")
TEAM = "ci"
ALERT = "CiDeployCheck"
PUBLISHED = {9090, 9093, 4317, 4318}  # README "Targets": Prometheus, Alertmanager, OTLP gRPC/HTTP
FIGURES: dict[str, float] = {}


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def inspect(name: str) -> dict:
    return json.loads(docker("inspect", name))[0]


def stack_containers() -> list[str]:
    out = docker("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}")
    return sorted(out.split()) if out else []


def stack_volumes() -> list[str]:
    out = docker("volume", "ls", "--filter", f"name={PREFIX}-", "--format", "{{.Name}}")
    return sorted(out.split()) if out else []


def cleanup() -> None:
    """Leftovers of an earlier, interrupted run (names are fixed per stack)."""
    for name in stack_containers():
        docker("rm", "-f", "-v", name, check=False)  # -v: anonymous volumes too, never named ones
    docker("network", "rm", PREFIX, check=False)
    for volume in stack_volumes():
        docker("volume", "rm", "-f", volume, check=False)


def bridge_address() -> str:
    """The host's address on Docker's default bridge: containers reach the host there (the
    stack network's own gateway is only known once `up` created it)."""
    options = json.loads(docker("network", "inspect", "bridge"))[0]["Options"]
    name = options.get("com.docker.network.bridge.name", "docker0").encode()[:15]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name))  # SIOCGIFADDR
    return socket.inet_ntoa(packed[20:24])


class BridgeSink(HttpSink):
    """tests/e2e/http_sink.py's sink, listening on the bridge address instead of loopback."""

    def __init__(self, address: str) -> None:
        ThreadingHTTPServer.__init__(self, (address, 0), _Handler)
        self.deliveries = Deliveries()
        import threading

        self._thread = threading.Thread(target=self.serve_forever, name="bridge-sink", daemon=True)

    def url(self, service: str, receiver: str) -> str:
        return f"http://{self.server_address[0]}:{self.port}/{service}/{receiver}"


def get_json(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout: float, what: str, step: float = 2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ValueError, KeyError) as err:
            last = err
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


def _tool_ready(name: str) -> Path:
    path = Path(subprocess.run([str(ROOT / "scripts" / name), "--print-path"], capture_output=True, text=True,
                               check=True).stdout.strip())
    return path


@pytest.fixture(scope="module")
def deploy(tmp_path_factory):
    missing = []
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        missing.append("a Docker engine (docker info failed; .ci/run starts dockerd)")
    engine_bin, provider_bin = _tool_ready("build-pulumi.sh"), _tool_ready("build-docker-provider.sh")
    if not (engine_bin / "pulumi").is_file():
        missing.append("pulumi (scripts/build-pulumi.sh)")
    if not (provider_bin / "pulumi-resource-docker").is_file():
        missing.append("pulumi-resource-docker (scripts/build-docker-provider.sh)")
    if missing:
        message = "missing: " + "; ".join(missing)
        if os.environ.get("OBS_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(message)
    images = subprocess.run([sys.executable, str(ROOT / "scripts" / "build-local-images.py")],
                            capture_output=True, text=True, timeout=3600)
    assert images.returncode == 0, images.stderr
    cleanup()

    base = tmp_path_factory.mktemp("docker-deploy")
    env = offline_env(base / "state", base / "home", passphrase="ci-docker")
    # The engine's bin dir stays first (open_stack finds the CLI there); the provider follows.
    engine_dir, rest = env["PATH"].split(os.pathsep, 1)
    env["PATH"] = os.pathsep.join([engine_dir, str(provider_bin), rest])
    wd = base / "wd"
    wd.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", wd / "Pulumi.yaml")
    config = {
        "pulumi:disable-default-providers": ["*"],
        "observability:environment": "dev",
        "observability:protectData": True,
        "observability:components": {tool: {"enabled": False} for tool in OFF},
        "observability:teams": [{
            "name": TEAM,
            "alertRules": [{"alert": ALERT, "expr": "vector(1)",
                            "labels": {"severity": "warning"},
                            "annotations": {"summary": "always firing: proves the alert path of a real deploy"}}],
        }],
    }
    (wd / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))

    with BridgeSink(bridge_address()) as sink:
        stack = open_stack(STACK, wd, env)
        webhook = sink.url("webhook", f"team-{TEAM}")
        stack.set_config("observability:teams[0].receiver.webhook.url", auto.ConfigValue(webhook, secret=True),
                         path=True)
        start = time.perf_counter()
        up = stack.up(on_output=lambda _: None)
        FIGURES["up s"] = time.perf_counter() - start
        up_done = time.perf_counter()
        try:
            yield {"stack": stack, "up": up, "sink": sink, "webhook": webhook, "wd": wd, "env": env,
                   "engine": engine_bin, "up_done": up_done}
        finally:
            cleanup()  # whatever the tests left: containers, network and the retained volumes


def workloads(deploy) -> dict:
    """The workloads the program deployed, from the same stack file (for paths and contents)."""
    doc = yaml.safe_load((deploy["wd"] / f"Pulumi.{STACK}.yaml").read_text())
    raw, _ = stack_config_values(doc["config"], "placeholder")
    raw["teams"] = json.loads(json.dumps(raw["teams"]))
    raw["teams"][0]["receiver"] = {"webhook": {"url": deploy["webhook"]}}
    s = load_settings(raw, stack=STACK)
    return {w.name: w for tool in ("prometheus", "alertmanager", "collector") for w in workloads_of(tool, s)}


# 1 ------------------------------------------------------------------------------------------------
def test_up_creates_the_stack_and_every_healthcheck_passes(deploy):
    assert deploy["up"].summary.result == "succeeded"
    names = stack_containers()
    expected = {f"{PREFIX}-{n}" for n in ("prometheus", "alertmanager", "collector")}
    expected |= {f"{PREFIX}-{n}-data-init" for n in ("prometheus", "alertmanager")}
    assert set(names) == expected, names
    healthchecked = []
    for name in names:
        state = inspect(name)["State"]
        if name.endswith("-data-init"):
            assert state["Status"] == "exited" and state["ExitCode"] == 0, (name, state)
            continue
        assert state["Running"], (name, state)
        if "Health" in state:
            assert state["Health"]["Status"] == "healthy", (name, state["Health"])
            healthchecked.append(name.removeprefix(PREFIX + "-"))
    # The images that ship a client (busybox wget) have a healthcheck; the scratch collector not.
    assert sorted(healthchecked) == ["alertmanager", "prometheus"]
    for name in ("prometheus", "alertmanager"):
        assert inspect(f"{PREFIX}-{name}")["Config"]["Healthcheck"]["Test"][:2] == ["CMD", "wget"]


# 2 ------------------------------------------------------------------------------------------------
def test_only_published_ports_answer_and_only_on_loopback(deploy):
    bindings = {}
    for name in stack_containers():
        for port, binds in (inspect(name)["HostConfig"]["PortBindings"] or {}).items():
            for bind in binds:
                bindings[int(port.split("/")[0])] = bind["HostIp"]
    assert set(bindings) == PUBLISHED and set(bindings.values()) == {"127.0.0.1"}, bindings
    for port in PUBLISHED:
        assert answers("127.0.0.1", port), port
    other = bridge_address()
    for port in PUBLISHED:
        assert not answers(other, port), f"{other}:{port} answers: published beyond loopback"
    for port in (collector.METRICS_PORT, collector.HEALTH_PORT):  # inside the network only
        assert not answers("127.0.0.1", port), port


# 3 ------------------------------------------------------------------------------------------------
def test_prometheus_scrapes_the_others_by_network_alias(deploy):
    # The others by their alias on the stack's network; Prometheus itself over localhost.
    want = {"alertmanager": "alertmanager:9093", "collector": f"collector:{collector.METRICS_PORT}",
            "prometheus": "localhost:9090"}
    seen: dict = {}

    def all_up():
        targets = get_json("http://127.0.0.1:9090/api/v1/targets")["data"]["activeTargets"]
        seen.clear()
        seen.update({t["labels"]["job"]: (t["scrapeUrl"].split("/")[2], t["health"]) for t in targets})
        return all(seen.get(job) == (host, "up") for job, host in want.items())

    wait_for(all_up, 90, f"alertmanager and collector scraped by alias and up (seen: {seen})")
    for name, alias in (("prometheus", "prometheus"), ("alertmanager", "alertmanager"), ("collector", "collector")):
        nets = inspect(f"{PREFIX}-{name}")["NetworkSettings"]["Networks"]
        assert alias in nets[PREFIX]["Aliases"], nets


# 4 ------------------------------------------------------------------------------------------------
def test_data_volumes_belong_to_the_tool_uid(deploy):
    for name, path in (("prometheus", prometheus.DATA_DIR), ("alertmanager", alertmanager.DATA_DIR)):
        container = f"{PREFIX}-{name}"
        mount = next(m for m in inspect(container)["Mounts"] if m["Destination"] == path)
        assert mount["Type"] == "volume" and mount["Name"] == f"{PREFIX}-{name}-data", mount
        runs_as = docker("exec", container, "id", "-u") + ":" + docker("exec", container, "id", "-g")
        assert runs_as != "0:0"
        owner = docker("exec", container, "stat", "-c", "%u:%g", path)
        assert owner == runs_as, (name, owner, runs_as)
        # and the tool's user can write there (Alertmanager itself writes its files only on its
        # maintenance interval or at shutdown)
        probe = f"{path}/.write-probe"
        docker("exec", container, "touch", probe)
        docker("exec", container, "rm", probe)
    assert docker("exec", f"{PREFIX}-prometheus", "ls", prometheus.DATA_DIR).split().count("wal") == 1


# 5 ------------------------------------------------------------------------------------------------
def copied(container: str, path: str) -> tuple[tarfile.TarInfo, str]:
    """A file out of a container with its mode and owner, through `docker cp` (a tar stream), so
    images without a shell (the scratch collector) are read the same way."""
    raw = subprocess.run(["docker", "cp", f"{container}:{path}", "-"], capture_output=True, timeout=60)
    assert raw.returncode == 0, raw.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(raw.stdout)) as tar:
        member = tar.getmembers()[0]
        return member, tar.extractfile(member).read().decode()


def test_uploads_are_at_their_paths_with_their_modes(deploy):
    checked = 0
    for name, w in workloads(deploy).items():
        container = f"{PREFIX}-{name}"
        uid, gid = (int(x) for x in inspect(container)["Config"]["User"].split(":"))
        assert (uid, gid) == (w.uid, w.gid) and uid != 0
        for f in w.config_files:
            member, text = copied(container, f.path)
            assert (oct(member.mode & 0o7777), member.uid, member.gid) == (oct(0o444), 0, 0), f.path
            assert text == f.content, f.path
            checked += 1
        for f in w.secret_files:
            member, text = copied(container, f.path)
            # root-owned, readable inside the container (docker.py: Docker cannot chown an upload to
            # a numeric uid:gid user), and the content is the secret's
            assert (oct(member.mode & 0o7777), member.uid, member.gid) == (oct(0o444), 0, 0), f.path
            assert text == deploy["webhook"], f.path
            checked += 1
    assert checked >= 8  # 5 Prometheus files, alertmanager.yml + the webhook URL, the collector config


# 6 ------------------------------------------------------------------------------------------------
def test_an_alert_fires_and_reaches_the_webhook_on_the_host(deploy):
    sink = deploy["sink"]

    def delivered(items):
        return any(d.receiver == f"team-{TEAM}" and any(a["labels"].get("alertname") == ALERT
                                                         for a in d.body.get("alerts", []))
                   for d in items)

    assert sink.deliveries.wait_for(delivered, timeout=150), [d.body for d in sink.deliveries.all()]
    FIGURES["alert at the sink within s of up"] = time.perf_counter() - deploy["up_done"]
    alert = next(a for d in sink.deliveries.all() for a in d.body["alerts"] if a["labels"]["alertname"] == ALERT)
    assert alert["labels"]["team"] == TEAM and alert["status"] == "firing"


# 7 ------------------------------------------------------------------------------------------------
def test_retention_change_replaces_only_prometheus_and_keeps_its_data(deploy):
    stack = deploy["stack"]
    ids = {name: inspect(name)["Id"] for name in stack_containers()}
    # Samples already in the TSDB: a count at a fixed past instant must read the same afterwards.
    wait_for(lambda: get_json("http://127.0.0.1:9090/api/v1/query?query=count_over_time(up[10m])")
             ["data"]["result"], 60, "samples in the TSDB")
    at = time.time() - 1
    query = f"http://127.0.0.1:9090/api/v1/query?query=sum(count_over_time(up[10m]))&time={at}"
    before = get_json(query)["data"]["result"]
    assert before and float(before[0]["value"][1]) >= 3, before

    stack.set_config("observability:retention.metrics", auto.ConfigValue("14d"), path=True)
    events = Events()
    start = time.perf_counter()
    result = stack.up(on_event=events, on_output=lambda _: None)
    FIGURES["retention update s"] = time.perf_counter() - start
    assert result.summary.result == "succeeded"
    replaced = {name for _, name in events.replaced()}
    assert replaced == {"observability-prometheus-container"}, events.replaced()
    changed = {urn.rsplit("::", 1)[-1] for op, _, urn in events.ops if op not in ("same", "read")}
    assert changed == {"observability-prometheus-container"}, events.ops

    after_ids = {name: inspect(name)["Id"] for name in stack_containers()}
    assert after_ids.keys() == ids.keys()
    assert [n for n in ids if ids[n] != after_ids[n]] == [f"{PREFIX}-prometheus"]
    # The volumes were not touched (events above), and the samples below are read from the same one.
    flags = get_json("http://127.0.0.1:9090/api/v1/status/flags")["data"]
    assert flags["storage.tsdb.retention.time"] in ("14d", "2w")  # Prometheus prints it in weeks
    after = wait_for(lambda: get_json(query)["data"]["result"], 60, "TSDB readable after the replacement")
    assert after == before, (before, after)


# 8 ------------------------------------------------------------------------------------------------
def test_a_second_up_changes_nothing(deploy):
    stack = deploy["stack"]
    preview = stack.preview(on_output=lambda _: None)
    assert set(preview.change_summary) == {auto.OpType.SAME}, preview.change_summary
    result = stack.up(on_output=lambda _: None)
    assert set(result.summary.resource_changes) == {"same"}, result.summary.resource_changes


# 9 ------------------------------------------------------------------------------------------------
def test_destroy_refuses_protected_data_then_retains_the_volumes(deploy):
    stack, wd, env = deploy["stack"], deploy["wd"], deploy["env"]
    volumes = stack_volumes()
    assert volumes == sorted(f"{PREFIX}-{n}-data" for n in ("alertmanager", "prometheus"))
    start = time.perf_counter()
    with pytest.raises(auto.CommandError) as refused:
        stack.destroy(on_output=lambda _: None)
    FIGURES["refused destroy s"] = time.perf_counter() - start
    assert "protected" in str(refused.value)
    assert stack_volumes() == volumes
    FIGURES["containers left after the refused destroy"] = len(stack_containers())

    # The documented way out: unprotect, then destroy; the volumes are retained with their data.
    unprotect = subprocess.run([str(deploy["engine"] / "pulumi"), "state", "unprotect", "--all", "--yes",
                                "--stack", STACK], cwd=wd, env={**os.environ, **env}, capture_output=True,
                               text=True, timeout=120)
    assert unprotect.returncode == 0, unprotect.stderr
    start = time.perf_counter()
    stack.destroy(on_output=lambda _: None)
    FIGURES["destroy s"] = time.perf_counter() - start
    assert stack_containers() == []
    assert docker("network", "ls", "--filter", f"name=^{PREFIX}$", "--format", "{{.Name}}") == ""
    assert stack_volumes() == volumes
    listing = docker("run", "--rm", "--entrypoint", "ls", "-v", f"{PREFIX}-prometheus-data:/d",
                     _image("prometheus"), "/d")
    assert "wal" in listing.split(), listing
    print("\ndocker deploy: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in FIGURES.items()))


def _image(tool: str) -> str:
    from observability_stack.components.workload import pinned_versions

    entry = pinned_versions()["images"][tool]
    return f"{entry['repository']}:{entry['tag']}"
