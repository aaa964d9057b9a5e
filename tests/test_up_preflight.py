"""`make up` fails cleanly: every missing prerequisite is one `error:` message saying what to do,
found before the engine runs, with no Python traceback and nothing created (scripts/up.sh,
scripts/preflight.py, scripts/engine.py).

The fast tests drive scripts/preflight.py on stack files in a temp dir; the slow ones run the real
scripts/up.sh (and a real Docker engine for the image check).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from observability_stack.components.workload import pinned_versions
from tests.harness import ROOT

PREFLIGHT = ROOT / "scripts" / "preflight.py"


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def preflight(monkeypatch, capsys):
    """scripts/preflight.py's main() in this process (its program run under mocks is the slow
    part; a subprocess per case would triple it), with a clean passphrase environment."""
    from scripts import preflight as module

    for key in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(key, raising=False)

    def run(wd: Path, stack: str, *args: str, env: dict | None = None) -> Outcome:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        code = module.main([stack, "--work-dir", str(wd), *args])
        out = capsys.readouterr()
        return Outcome(code, out.out, out.err)

    return run


def write_stack(wd: Path, stack: str, config: dict, **top) -> None:
    wd.mkdir(parents=True, exist_ok=True)
    (wd / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({**top, "config": config}))


def errors(result) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


# A Kubernetes stack needs no Docker; grafana's password is set, so no pulumi-random either.
K8S = {"observability:environment": "prod",
       "observability:alerting": {"receivers": [{"name": "ops", "webhook": {"url": {"secure": "x"}}}],
                                  "routes": {"critical": "ops", "warning": "ops"}},
       "observability:grafana": {"adminPassword": {"secure": "y"}},
       # Prod runs highAvailability, which needs object storage (workload identity: no secret).
       "observability:objectStorage": {"s3": {"region": "eu-west-1", "bucket": "example-observability"}}}


def test_a_prod_stack_without_passphrase_says_how_to_give_it(tmp_path, preflight):
    write_stack(tmp_path, "prod", K8S)
    result = preflight(tmp_path, "prod", "--engine", "build")
    found = errors(result)
    assert result.returncode == 1 and len(found) == 1, result.stderr
    assert "export PULUMI_CONFIG_PASSPHRASE" in found[0]
    assert not (tmp_path / ".pulumi-passphrase").exists()


def test_a_passphrase_in_the_environment_is_enough(tmp_path, preflight):
    write_stack(tmp_path, "prod", K8S)
    result = preflight(tmp_path, "prod", "--engine", "build", env={"PULUMI_CONFIG_PASSPHRASE": "example"})
    assert result.returncode == 0 and not errors(result), result.stderr


def test_no_cli_is_one_message(tmp_path, preflight):
    write_stack(tmp_path, "prod", K8S)
    result = preflight(tmp_path, "prod", "--engine", "none", env={"PULUMI_CONFIG_PASSPHRASE": "example"})
    found = errors(result)
    assert result.returncode == 1 and sum("no Pulumi CLI" in e for e in found) == 1, result.stderr
    # without Go, the Kubernetes provider cannot be built either: said once, with its way out
    assert all("no Pulumi CLI" in e or "pulumi-resource-kubernetes" in e for e in found), found


def test_invalid_config_is_reported_with_the_programs_messages(tmp_path, preflight):
    write_stack(tmp_path, "prod", {**K8S, "observability:retention": {"logs": "30x"}})
    result = preflight(tmp_path, "prod", "--engine", "build", env={"PULUMI_CONFIG_PASSPHRASE": "example"})
    assert result.returncode == 1 and errors(result)
    assert 'observability:retention.logs: "30x" is not a duration' in result.stderr


def test_a_dev_stack_never_blocks_on_a_passphrase(tmp_path, preflight):
    # No Docker engine at that address, so the check fails there, and the passphrase file is not
    # written until every check passes; the passphrase itself is not a problem.
    write_stack(tmp_path, "dev", {"observability:components": {"grafana": {"enabled": False}}})
    result = preflight(tmp_path, "dev", "--engine", "build", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    found = errors(result)
    assert result.returncode == 1 and len(found) == 1, result.stderr
    assert "no Docker engine answers" in found[0] and "start dockerd" in found[0]
    assert not (tmp_path / ".pulumi-passphrase").exists()


def test_a_dev_stack_with_a_salt_from_another_passphrase_says_so(tmp_path, preflight):
    write_stack(tmp_path, "dev", {}, encryptionsalt="v1:abc:v1:def:ghi")
    result = preflight(tmp_path, "dev", "--engine", "build", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert any("encryptionsalt" in e for e in errors(result)), result.stderr


def test_a_missing_plugin_names_the_ways_out(tmp_path, preflight):
    # grafana on, no password configured: the generated one needs pulumi-random, which is neither
    # installed, nor downloadable (offline), nor buildable here.
    write_stack(tmp_path, "prod", {**K8S, "observability:grafana": {}})
    home = tmp_path / "home"
    result = preflight(tmp_path, "prod", "--engine", "build",
                       env={"PULUMI_CONFIG_PASSPHRASE": "example", "PULUMI_HOME": str(home),
                            "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin"})
    found = errors(result)
    assert len(found) == 1 and "pulumi-resource-random" in found[0] and "adminPassword" in found[0], result.stderr


def _docker_ready() -> bool:
    return shutil.which("docker") is not None and subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@pytest.mark.slow
def test_up_stops_before_creating_anything_when_images_cannot_be_pulled(tmp_path, preflight):
    """The real scripts/up.sh on a dev stack with the AGPL tools on: their images are not on the
    host and no registry answers here, so it stops with one message naming them and the ways out."""
    if not _docker_ready():
        if os.environ.get("OBS_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip("no Docker engine")
        pytest.fail("no Docker engine answers (docker info): .ci/run starts dockerd")
    images = pinned_versions()["images"]
    missing = [ref for ref in (f"{images[t]['repository']}:{images[t]['tag']}" for t in ("grafana", "loki"))
               if subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode != 0]
    if len(missing) < 2:
        pytest.skip("the AGPL images are on this Docker host: nothing to refuse")
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    env.update(PULUMI_BACKEND_URL=f"file://{state}", PULUMI_CONFIG_PASSPHRASE="ci")
    result = subprocess.run([str(ROOT / "scripts" / "up.sh"), "dev"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 1, result.stderr
    found = errors(result)
    assert len(found) <= 2, found  # the images, and pulumi-random unless it is installed
    images = next(e for e in found if "cannot be pulled" in e)
    block = result.stderr[result.stderr.index(images):]
    for ref in missing:
        assert ref in block
    assert "registryMirror" in block and "enabled: false" in block
    assert not state.exists()  # nothing created, not even the state directory
