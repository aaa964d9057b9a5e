"""The Docker backend under Pulumi mocks: what it creates, how it is wired, what never changes.

Stack runs go through the real program (`tests.harness`); the backend-only cases feed synthetic
workloads to `DockerBackend` inside a mocked run. The mocks echo inputs as outputs; a
RemoteImage reports `imageId = "sha256:<its name>"` (components/mockrun.py), so a container's
image can be traced back to the pinned reference it runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import yaml
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import wait_for_rpcs

from tooling import mockrun
from observability_stack.components.registry import NAMES
from observability_stack.components.render import chown_image, workloads_of as tool_workloads
from observability_stack.components.base import StackFlags
from observability_stack.components.targets.docker import DockerBackend
from observability_stack.components.workload import (
    ConfigFile, DataVolume, HealthCheck, HostLogs, Port, Resources, SecretFile, Workload,
)
from observability_stack.config import load_settings
from observability_stack.config.model import Components, job_name
from observability_stack.config.loader import NAMESPACE, parse_raw
from tests.harness import SECRET_PREFIX, plaintext_strings, run_program, stack_file_config

NS = NAMESPACE + ":"
CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
IMAGE = "docker:index/remoteImage:RemoteImage"
PROVIDER = "pulumi:providers:docker"
VERSIONS = json.loads((Path(__file__).resolve().parent.parent / "components" / "versions.json").read_text())
SECURE = {"secure": "v1:test"}


# -- helpers ------------------------------------------------------------------------------------


# Every tool the Docker target runs (kube-state-metrics is Kubernetes-only: enabling it is refused).
ALL = [m for m in NAMES if "docker" in getattr(Components.model_fields[m].default_factory(), "TARGETS", ("docker",))]


def components(enabled: list[str]) -> dict:
    return {NS + "components": {m: {"enabled": m in enabled} for m in NAMES}}


def run(config: dict, stack: str = "dev") -> mockrun.Run:
    result = run_program(stack, {**stack_file_config("dev"), **config})
    assert result.error is None, result.error
    return result


def settings_of(config: dict, stack: str = "dev"):
    values, secret_keys = mockrun.engine_config({**stack_file_config("dev"), **config})
    raw = {k[len(NS):]: parse_raw(v) for k, v in values.items() if k.startswith(NS)}
    return load_settings(raw, stack=stack, secret_keys=secret_keys)


def workloads_of(config: dict) -> dict[str, Workload]:
    """Every enabled tool's workloads by service name, as the program builds them."""
    settings = settings_of(config)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        found = {}
        for m in NAMES:
            if settings.enabled(m):
                extra = {"admin_password": pulumi.Output.secret("x")} if m == "grafana" else {}
                found.update((w.name, w) for w in tool_workloads(m, settings, **extra))
        return found
    finally:
        # Let the secret Outputs the modules created settle before the loop goes away.
        loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop), return_exceptions=True))
        asyncio.set_event_loop(None)
        loop.close()


def tool_containers(r: mockrun.Run) -> list[mockrun.Registered]:
    return [c for c in r.of_type(CONTAINER) if not c.name.endswith("-data-init")]


def label(resource: mockrun.Registered, key: str) -> str:
    return {entry["label"]: entry["value"] for entry in resource.inputs["labels"]}[key]


def by_name(r: mockrun.Run, typ: str) -> dict[str, dict]:
    return {x.name: x.raw_inputs for x in r.of_type(typ)}


MINIMAL = components(["prometheus", "alertmanager"])


@pytest.fixture(scope="module")
def minimal() -> mockrun.Run:
    return run(MINIMAL)


@pytest.fixture(scope="module")
def dev() -> mockrun.Run:
    """The dev stack with every tool whose module has landed."""
    return run(components(ALL))


# -- resource inventory -------------------------------------------------------------------------


def test_minimal_stack_resource_types_and_counts(minimal):
    docker_types = {t: n for t, n in minimal.types().items() if t.startswith(("docker:", "pulumi:providers:"))}
    # Prometheus and Alertmanager are both stateful and non-root: a volume and a chown each;
    # the chown runs the Prometheus image, so there are only two images.
    assert docker_types == {CONTAINER: 4, IMAGE: 2, NETWORK: 1, VOLUME: 2, PROVIDER: 1}


def test_counts_follow_the_workloads(dev):
    workloads = list(workloads_of(components(ALL)).values())
    stateful = [w for w in workloads if w.data]
    chowned = [w for w in stateful if not w.root_reason and (w.uid, w.gid) != (0, 0)]
    assert len(tool_containers(dev)) == len(workloads)
    assert len(dev.of_type(VOLUME)) == len(stateful)
    assert len(dev.of_type(CONTAINER)) == len(workloads) + len(chowned)
    assert len(dev.of_type(NETWORK)) == 1 and len(dev.of_type(PROVIDER)) == 1
    refs = {w.image for w in workloads}
    assert {i.inputs["name"] for i in dev.of_type(IMAGE)} >= refs
    assert len(dev.of_type(IMAGE)) <= len(refs) + 1  # + the chown image when Prometheus is off


def test_full_dev_stack():
    from tests.harness import run_stack

    r = run_stack("dev")
    assert r.error is None, r.error
    services = {label(c, "observability.tool") for c in tool_containers(r)}
    assert {job_name(n) for n in ALL} <= services | {s.split("-")[0] for s in services}
    assert len(r.of_type(NETWORK)) == 1 and len(r.of_type(PROVIDER)) == 1
    assert all(not v.protect for v in r.of_type(VOLUME))


def test_parents_and_providers(dev):
    stack = dev.named("observability")
    provider = dev.named("observability-docker")
    assert provider.parent == stack.urn
    assert dev.named("observability-network").parent == stack.urn
    components_by_urn = {r.urn: r for r in dev.resources if r.type.startswith("observability:")}
    for r in dev.resources:
        if r.type.startswith("docker:"):
            assert r.provider.startswith(provider.urn + "::"), r.name
            assert r.parent in components_by_urn, r.name
        if r.type in (CONTAINER, VOLUME) or (r.type == IMAGE and r.name != "observability-chown-image"):
            owner = components_by_urn[r.parent]
            assert owner.type != "observability:stack:ObservabilityStack", r.name
            assert r.name.startswith(owner.name + "-"), r.name


def test_disabled_tool_creates_nothing(minimal):
    for tool in ("grafana", "loki", "tempo", "mimir", "pyroscope", "collector"):
        assert not [r.name for r in minimal.resources if tool in r.name or tool in json.dumps(r.inputs)]
    assert {label(c, "observability.tool") for c in minimal.of_type(CONTAINER)} == {"prometheus", "alertmanager"}


def test_enabling_a_tool_adds_only_its_own_resources():
    without = run(components([]))
    with_pyroscope = run(components(["pyroscope"]))
    added = {r.name for r in with_pyroscope.resources} - {r.name for r in without.resources}
    assert added == {
        "observability-pyroscope", "observability-pyroscope-image", "observability-pyroscope-data",
        "observability-pyroscope-data-init", "observability-pyroscope-container", "observability-chown-image",
    }


# -- wiring -------------------------------------------------------------------------------------


def test_every_container_joins_the_network_with_its_alias_and_uploads(dev):
    workloads = workloads_of(components(ALL))
    network = dev.named("observability-network").inputs
    assert network["name"] == "obs-dev" and network["driver"] == "bridge"
    for c in tool_containers(dev):
        service = label(c, "observability.tool")
        w = workloads[service]
        assert c.inputs["name"] == f"obs-dev-{service}"
        assert c.inputs["networksAdvanced"] == [{"name": "obs-dev", "aliases": [service]}]
        uploaded = sorted(u["file"] for u in c.inputs.get("uploads", []))
        assert uploaded == sorted(f.path for f in w.config_files + w.secret_files)
        assert c.delete_before_replace, "fixed container names and host ports need delete-before-replace"
        assert c.inputs["restart"] == "unless-stopped"
        assert c.inputs["capabilities"]["drops"] == ["ALL"]
        assert c.inputs["securityOpts"] == ["no-new-privileges:true"]
        assert set(c.inputs["logOpts"]) == {"max-size", "max-file"}
        # Every container logs where the log agent reads (Docker's json-file driver), except
        # the agent itself: it must never ship its own lines (audit finding, issue 11).
        expected = "local" if w.reads_container_logs else "json-file"
        assert c.inputs["logDriver"] == expected, service
        assert c.inputs["memory"] == w.resources.memory_limit_bytes // (1024 * 1024)
        assert float(c.inputs["cpus"]) == w.resources.cpu_limit_cores
        assert c.inputs["user"] == ("0:0" if w.root_reason else f"{w.uid}:{w.gid}")
        if w.health.docker_test:
            assert c.inputs["healthcheck"]["tests"] == list(w.health.docker_test) and c.inputs["wait"] is True
        else:
            assert "healthcheck" not in c.inputs and "wait" not in c.inputs
        if w.data:
            assert {"volumeName": f"obs-dev-{service}-data", "containerPath": w.data.path} in c.inputs["volumes"]


def test_images_are_pinned_from_the_version_table(dev):
    pinned = {f"{v['repository']}:{v['tag']}" for v in VERSIONS["images"].values()}
    for img in dev.of_type(IMAGE):
        ref = img.inputs["name"]
        repo, _, tag = ref.rpartition(":")
        assert "/" not in tag and tag and tag != "latest", ref
        assert ref in pinned, ref
        assert img.inputs["keepLocally"] is True
    components_by_urn = {r.urn: r for r in dev.resources}
    for c in tool_containers(dev):
        module = components_by_urn[c.parent].type.split(":")[1]
        entry = VERSIONS["images"][module]
        assert c.inputs["image"] == f"sha256:{entry['repository']}:{entry['tag']}", c.name


def test_only_user_facing_ports_on_the_bind_address(dev):
    published = {}
    for c in tool_containers(dev):
        for p in c.inputs.get("ports", []):
            assert p["ip"] == "127.0.0.1" and p["internal"] == p["external"]
            published[(label(c, "observability.tool"), int(p["internal"]))] = True
    # Prometheus' web UI is user-facing; nothing else of the minimal pair is reachable from the host
    # unless its module says publish=True.
    urls = dev.outputs["urls"]
    for tool, ports in urls.items():
        for url in ports.values():
            assert url.startswith("http://127.0.0.1:")
    assert len(published) == sum(len(p) for p in urls.values())


def test_public_bind_address_needs_the_opt_in():
    public = {NS + "docker": {"bindAddress": "0.0.0.0", "allowPublicPorts": True}}
    r = run({**MINIMAL, **public})
    ports = [p for c in tool_containers(r) for p in c.inputs.get("ports", [])]
    assert ports and all(p["ip"] == "0.0.0.0" for p in ports)
    assert all(u.startswith("http://0.0.0.0:") for t in r.outputs["urls"].values() for u in t.values())
    refused = run_program("dev", {**stack_file_config("dev"), **MINIMAL, NS + "docker": {"bindAddress": "0.0.0.0"}})
    assert refused.error and "bindAddress" in refused.error and not refused.of_type(CONTAINER)


# -- data safety --------------------------------------------------------------------------------


def test_volumes_protected_and_retained_only_with_protect_data(dev):
    for v in dev.of_type(VOLUME):
        assert not v.protect and not v.retain_on_delete
    protected = run({**components(ALL), NS + "protectData": True})
    assert protected.of_type(VOLUME)
    for v in protected.of_type(VOLUME):
        assert v.protect and v.retain_on_delete, v.name
    for r in protected.resources:
        if r.type != VOLUME:
            assert not r.protect, r.name


def test_data_init_chowns_the_volume_then_exits(minimal):
    for init in [c for c in minimal.of_type(CONTAINER) if c.name.endswith("-data-init")]:
        tool = minimal.named(init.name.removesuffix("-data-init") + "-container")
        volume = next(v for v in tool.inputs["volumes"] if "volumeName" in v)
        assert init.inputs["volumes"] == [volume]
        assert init.inputs["command"] == ["-R", tool.inputs["user"], volume["containerPath"]]
        assert init.inputs["entrypoints"] == ["chown"] and init.inputs["user"] == "0:0"
        assert init.inputs["capabilities"]["drops"] == ["ALL"]
        assert "CAP_CHOWN" in init.inputs["capabilities"]["adds"]
        assert init.inputs["mustRun"] is False and init.inputs["attach"] is True and init.inputs["rm"] is False
        assert init.inputs["networkMode"] == "none"
        assert init.inputs["image"] == "sha256:" + "{repository}:{tag}".format(**VERSIONS["images"]["prometheus"])


def test_no_secret_in_plaintext_inputs_or_outputs():
    receivers = {NS + "alerting": {
        "receivers": [
            {"name": "pagerduty", "pagerduty": {"routingKey": SECURE}},
            {"name": "slack", "slack": {"apiUrl": SECURE, "channel": "#alerts"}},
            {"name": "webhook", "webhook": {"url": SECURE}},
        ],
        "routes": {"critical": "pagerduty", "warning": "slack", "default": "webhook"},
    }, NS + "grafana": {"adminPassword": SECURE}}
    r = run({**components(ALL), **receivers})
    for res in r.resources:
        leaked = [s for s in plaintext_strings(res.raw_inputs) if SECRET_PREFIX in s]
        assert not leaked, f"{res.name}: {leaked}"
    for name, value in r.outputs.items():
        if name not in r.secret_outputs:
            assert SECRET_PREFIX not in json.dumps(value), name
    # The secrets did reach a container, as secret uploads.
    am = r.named("observability-alertmanager-container")
    secret_uploads = [u for u in am.inputs.get("uploads", []) if SECRET_PREFIX in str(u.get("content"))]
    assert len(secret_uploads) == 3
    # root-owned 0444: Docker cannot chown an upload to a numeric uid:gid user (see docker.py)
    assert all(u["permissions"] == "0444" and "owner" not in u for u in secret_uploads)


# -- stability: config changes replace containers, never the network or a volume ------------------


def test_config_changes_never_touch_network_or_volumes():
    enabled = components(ALL)
    changes = {
        **enabled,
        NS + "retention": {"metrics": "3d", "logs": "1d", "traces": "1d", "profiles": "1d"},
        NS + "sampling": {"traces": 0.25},
        NS + "alerting": {
            "receivers": [{"name": "hook", "webhook": {"url": SECURE}}],
            "routes": {"critical": "hook", "warning": "hook", "default": "hook"},
        },
    }
    base, changed = run(enabled), run(changes)
    for typ in (NETWORK, VOLUME, PROVIDER, IMAGE):
        assert by_name(base, typ) == by_name(changed, typ), typ
    before, after = by_name(base, CONTAINER), by_name(changed, CONTAINER)
    assert before.keys() == after.keys()
    for name in before:
        if name.endswith("-data-init"):
            assert before[name] == after[name], f"{name} would re-run on a config change"

    # Exactly the containers whose workload changed differ (secret content compared by path).
    def comparable(w: Workload) -> Workload:
        return dataclasses.replace(w, secret_files=tuple(f.path for f in w.secret_files))

    old_w, new_w = workloads_of(enabled), workloads_of(changes)
    changed_services = {n for n in old_w if comparable(old_w[n]) != comparable(new_w[n])}
    container_of = {label(c, "observability.tool"): c.name for c in tool_containers(base)}
    assert {n for n in before if before[n] != after[n]} == {container_of[s] for s in changed_services}
    # Receivers always change Alertmanager; retention always changes at least one store.
    assert "alertmanager" in changed_services and len(changed_services) >= 2


# -- the backend on synthetic workloads -----------------------------------------------------------


def run_backend(settings, make_workloads):
    """Deploy synthetic workloads with DockerBackend under mocks; return the run, each resource's
    dependencies and each workload's resolved (internal, external) URLs."""
    result = mockrun.Run()
    deps: dict[str, list[str]] = {}

    class Monitor(mockrun._Monitor):
        def RegisterResource(self, request):
            deps[request.name] = list(request.dependencies)
            return super().RegisterResource(request)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi_settings.SETTINGS.outputs = set()
        pulumi_settings.ROOT.set(None)
        mocks = mockrun._Mocks()
        pulumi_mocks.set_mocks(mocks, project="observability", stack=settings.stack, preview=False,
                               monitor=Monitor(mocks, result))
        stack = pulumi.ComponentResource("test:index:Stack", "observability")
        backend = DockerBackend("observability", settings.docker,
                                StackFlags(settings.stack, settings.protect_data), stack,
                                chown_image=chown_image(settings))
        deployed = {}
        for w in make_workloads():
            tool = pulumi.ComponentResource("test:index:Tool", f"observability-{w.name}",
                                            opts=pulumi.ResourceOptions(parent=stack))
            deployed[w.name] = backend.deploy(f"observability-{w.name}", w, tool)
        loop.run_until_complete(wait_for_rpcs())
        urls = {
            name: tuple(
                {k: loop.run_until_complete(v.future()) for k, v in urls.items()}
                for urls in (d.internal_urls, d.external_urls)
            )
            for name, d in deployed.items()
        }
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return result, deps, urls


RES = Resources("100m", "64Mi", "500m", "256Mi")


def synthetic():
    return (
        Workload(
            name="store", image="example/store:1.2.3", uid=10001, gid=10001,
            ports=(Port("http", 8080, publish=True), Port("grpc", 9095)),
            health=HealthCheck.http("/ready", 8080, client="wget"), resources=RES,
            args=("-config.file=/etc/store/config.yaml",), env={"B": "2", "A": "1"},
            config_files=(ConfigFile("/etc/store/config.yaml", "retention: 1d\n"),),
            secret_files=(SecretFile("/etc/store/secrets/token", pulumi.Output.secret(SECRET_PREFIX + "token")),),
            data=DataVolume("/data", "1Gi"), scratch=("/tmp",),
        ),
        Workload(
            name="plain", image="example/plain:4.5.6", uid=10001, gid=10001,
            ports=(Port("otlp-grpc", 4317, publish=True), Port("otlp-http", 4318, publish=True), Port("metrics", 8888)),
            health=HealthCheck.http("/", 13133, client=None), resources=RES, scratch=("/tmp",),
        ),
        Workload(
            name="agent", image="example/plain:4.5.6", uid=10001, gid=10001, ports=(Port("metrics", 8888),),
            health=HealthCheck.http("/", 13133), resources=RES,
            host_logs=HostLogs(("/var/lib/docker/containers",)), data=DataVolume("/var/lib/agent", "1Gi"),
            root_reason="reads root-owned host logs", capabilities=("DAC_READ_SEARCH",),
        ),
    )


@pytest.fixture(scope="module")
def backend_run():
    settings = settings_of(components([]))
    return run_backend(settings, synthetic)


def test_backend_container_shape(backend_run):
    r, deps, _ = backend_run
    store = r.named("observability-store-container").inputs
    assert store["user"] == "10001:10001"
    assert store["envs"] == ["A=1", "B=2"]
    assert store["command"] == ["-config.file=/etc/store/config.yaml"] and "entrypoints" not in store
    assert store["ports"] == [{"internal": 8080, "external": 8080, "ip": "127.0.0.1", "protocol": "tcp"}]
    assert store["tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert store["healthcheck"]["tests"][:2] == ["CMD", "wget"] and store["wait"] is True
    assert store["waitTimeout"] >= 60
    # Uploads need a writable root (dockerd refuses to extract into a read-only rootfs).
    assert store["readOnly"] is False
    plain = r.named("observability-plain-container").inputs
    assert plain["readOnly"] is True and "uploads" not in plain
    assert "healthcheck" not in plain and "wait" not in plain
    assert [p["internal"] for p in plain["ports"]] == [4317, 4318]
    # The tool container starts only after its volume was chowned.
    init = r.named("observability-store-data-init")
    assert init.urn in deps["observability-store-container"]
    assert init.inputs["command"] == ["-R", "10001:10001", "/data"]


def test_backend_secret_upload_stays_secret(backend_run):
    r, _, _ = backend_run
    store = r.named("observability-store-container")
    assert not [s for s in plaintext_strings(store.raw_inputs) if SECRET_PREFIX in s]
    secret = next(u for u in store.inputs["uploads"] if u["file"] == "/etc/store/secrets/token")
    assert secret["content"] == SECRET_PREFIX + "token"
    assert (secret.get("owner"), secret.get("group"), secret["permissions"]) == (None, None, "0444")
    config = next(u for u in store.inputs["uploads"] if u["file"] == "/etc/store/config.yaml")
    assert config["content"] == "retention: 1d\n"


def test_backend_root_workload_keeps_caps_dropped(backend_run):
    r, _, _ = backend_run
    agent = r.named("observability-agent-container").inputs
    assert agent["user"] == "0:0"
    assert agent["capabilities"] == {"drops": ["ALL"], "adds": ["CAP_DAC_READ_SEARCH"]}
    assert {"hostPath": "/var/lib/docker/containers", "containerPath": "/var/lib/docker/containers",
            "readOnly": True} in agent["volumes"]
    # Root needs no chown of its volume.
    assert not [c for c in r.of_type(CONTAINER) if c.name == "observability-agent-data-init"]
    # Two workloads on one image share one RemoteImage.
    assert sorted(i.inputs["name"] for i in r.of_type(IMAGE)) == sorted(
        {"example/store:1.2.3", "example/plain:4.5.6", "{repository}:{tag}".format(**VERSIONS["images"]["prometheus"])})


def test_backend_urls(backend_run):
    _, _, urls = backend_run
    assert urls["store"] == ({"http": "http://store:8080", "grpc": "http://store:9095"},
                             {"http": "http://127.0.0.1:8080"})
    assert urls["plain"][1] == {"otlp-grpc": "http://127.0.0.1:4317", "otlp-http": "http://127.0.0.1:4318"}
    assert urls["agent"][1] == {}


def test_backend_names_are_prefixed_by_the_stack():
    settings = settings_of({NS + "environment": "dev", **components([])}, stack="staging")
    r, _, _ = run_backend(settings, lambda: synthetic()[:1])
    assert r.named("observability-network").inputs["name"] == "obs-staging"
    assert r.named("observability-store-data").inputs["name"] == "obs-staging-store-data"
    assert r.named("observability-store-container").inputs["name"] == "obs-staging-store"
    assert {"label": "observability.stack", "value": "staging"} in r.named("observability-store-data").inputs["labels"]


def test_the_log_agent_never_reads_its_own_log_file(dev):
    """Audit finding (issue 11): the Docker log agent shipped its own logs. Its container's log
    file (the `local` driver's path, from Docker's daemon layout) must not match any glob it reads,
    while an ordinary container's json-file log must."""
    import fnmatch

    agent = next(c for c in tool_containers(dev) if label(c, "observability.tool") == "collector-logs")
    config = yaml.safe_load(next(u["content"] for u in agent.inputs["uploads"] if u["file"].endswith("config.yaml")))
    include = config["receivers"]["filelog"]["include"]
    cid = "0123456789abcdef" * 4
    json_file = f"/var/lib/docker/containers/{cid}/{cid}-json.log"
    local_file = f"/var/lib/docker/containers/{cid}/local-logs/container.log"
    assert any(fnmatch.fnmatch(json_file, g) for g in include)
    assert agent.inputs["logDriver"] == "local"
    assert not any(fnmatch.fnmatch(local_file, g) for g in include)
