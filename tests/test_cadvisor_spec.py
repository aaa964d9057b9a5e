"""cAdvisor's rendered Docker container against upstream's documented `docker run` line at the
pinned tag (issue 13: "cAdvisor: test the rendered container spec").

The reference is reference/upstream-run/cadvisor-<tag>.txt (google/cadvisor README.md at the
tag components/versions.json pins, flag lines verbatim). The container is what the Docker backend
registers for the dev stack under mocks. Every documented host volume is mounted at the same path,
read-only, except the ones listed in OMITTED; nothing beyond them is mounted; upstream's
`--privileged` and `--device=/dev/kmsg` are replaced by root with every capability dropped but
DAC_READ_SEARCH, no new privileges and a read-only root filesystem (components/cadvisor.py), and
what that turns off is shown unused by the stack's rules and dashboards.

cAdvisor is not run for real here: the pinned v0.52.1 is not served by the Go module proxy this
machine reaches (it serves github.com/google/cadvisor v0.60.0..v0.61.0 only) and its image
cannot be pulled, so a real run would judge another version than the one deployed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from observability_stack.components import cadvisor
from observability_stack.components.render import render_all, workloads_of
from tests.scenarios import settings_for
from tooling.mockrun import run_program, stack_file_config

ROOT = Path(__file__).resolve().parent.parent
TAG = json.loads((ROOT / "components" / "versions.json").read_text())["images"]["cadvisor"]["tag"]
REFERENCE = ROOT / "reference" / "upstream-run" / f"cadvisor-{TAG}.txt"
CONTAINER = "docker:index/container:Container"

# Documented host volumes the stack does not mount, and why (components/cadvisor.py docstring).
OMITTED = {
    # cAdvisor only maps filesystem UUIDs to device names from it, and an absent directory is an
    # empty map (fs/fs.go getFsUUIDToDeviceNameMap at the tag); a bind of a host path that does
    # not exist fails the container on hosts without udev (this test host has no /dev/disk).
    "/dev/disk",
}


def documented() -> tuple[list[tuple[str, str, str]], set[str]]:
    """(volumes as (host, container, mode), every other flag) of the reference's `docker run`."""
    assert REFERENCE.is_file(), (
        f"no upstream reference for cAdvisor {TAG}: read google/cadvisor README.md at {TAG} and write "
        f"its docker run flags to {REFERENCE.relative_to(ROOT)}")
    volumes, other = [], set()
    for line in REFERENCE.read_text().splitlines():
        flag = line.strip().rstrip("\\").strip()
        if flag.startswith("--volume="):
            host, container, mode = flag.split("=", 1)[1].split(":")
            volumes.append((host.rstrip("/") or "/", container.rstrip("/") or "/", mode))
        elif flag.startswith("--"):
            other.add(flag)
    return volumes, other


@pytest.fixture(scope="module")
def container() -> dict:
    run = run_program("dev", stack_file_config("dev"))
    assert run.error is None, run.error
    (found,) = [c for c in run.of_type(CONTAINER) if c.inputs.get("hostname") == cadvisor.TOOL]
    return found.inputs


def test_reference_is_upstreams_line():
    volumes, other = documented()
    # What the README documents at the tag (a changed reference must be read again, not patched).
    assert [h for h, _, _ in volumes] == ["/", "/var/run", "/sys", "/var/lib/docker", "/dev/disk"]
    assert {"--privileged", "--device=/dev/kmsg", "--publish=8080:8080"} <= other


def test_every_documented_volume_is_mounted_read_only_at_its_path(container):
    volumes, _ = documented()
    mounts = {(m["source"], m["target"]): m for m in container["mounts"]}
    for host, path, mode in volumes:
        if host in OMITTED:
            assert not any(source == host for source, _ in mounts), host
            continue
        mount = mounts.get((host, path))
        assert mount, f"upstream mounts {host} at {path}; the rendered container does not"
        # Read-only even where upstream says rw (docs/running.md once mounted /var/run rw).
        assert mount["type"] == "bind" and mount["readOnly"] is True, (mode, mount)
    # Nothing beyond the documented host paths.
    assert set(mounts) == {(h, p) for h, p, _ in volumes if h not in OMITTED}
    assert not container.get("volumes"), "no other host path or volume"


def test_privileges_are_narrower_than_upstreams(container):
    _, other = documented()
    assert "--privileged" in other and "--device=/dev/kmsg" in other
    assert not container.get("privileged")
    assert not container.get("devices")
    assert container["capabilities"] == {"drops": ["ALL"], "adds": ["CAP_DAC_READ_SEARCH"]}
    assert container["securityOpts"] == ["no-new-privileges:true"]
    assert container["readOnly"] is True
    assert container["user"] == "0:0"  # root, with the reason the workload records
    (w,) = workloads_of(cadvisor.TOOL, settings_for("defaults-dev"))
    assert w.root_reason
    # Upstream publishes 8080 on every interface; here Prometheus reaches it on the stack network.
    assert not container.get("ports")
    assert not container.get("pidMode") and not container.get("networkMode")


def test_what_the_narrower_spec_turns_off_is_unused(container):
    """Without /dev/kmsg cAdvisor disables OOM events (manager.go at the tag: "Could not configure
    a source for OOM detection"); without the host PID namespace and --privileged it cannot read
    process metrics (docs/running.md at the tag), so they are disabled rather than half-read."""
    rendered = render_all(settings_for("defaults-dev"))
    texts = [t for p, t in rendered.items() if p.startswith(("prometheus/rules/", "grafana/dashboards/"))]
    assert texts and not any("container_oom_events" in t for t in texts)
    disabled = next(a for a in container["command"] if a.startswith("--disable_metrics=")).split("=", 1)[1]
    assert "process" in disabled.split(",")

