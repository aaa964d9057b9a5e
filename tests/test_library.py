"""The stack as a library: the wheel built from the repository installs into a clean virtualenv
without generic top-level modules, with its data files, and the example platform program
(examples/platform-program) runs from it under Pulumi mocks. Slow: builds a wheel and a venv."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.harness import ROOT

EXAMPLE = ROOT / "examples" / "platform-program"


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, argv))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # The project venv's setuptools builds it (no isolated build env to download).
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, ROOT])
    (built,) = out.glob("observability_stack-*.whl")
    return built


@pytest.fixture(scope="module")
def clean_python(tmp_path_factory, wheel) -> Path:
    env = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", wheel])
    return python


@pytest.mark.slow
def test_the_wheel_holds_one_package_and_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"observability_stack"}, top
    assert "observability_stack/components/versions.json" in names
    assert "observability_stack/components/targets/kubernetes.py" in names
    assert "observability_stack/config/model.py" in names
    assert not any(n.startswith(("tests/", "tooling/", "components/", "config/")) for n in names)


@pytest.mark.slow
def test_installed_package_imports_without_the_repository(clean_python, tmp_path):
    code = (
        "import importlib.util, json, observability_stack as o;"
        "from observability_stack.components.workload import pinned_versions;"
        "print(json.dumps({'file': o.__file__, 'generic': [m for m in ('components', 'config', 'tooling')"
        " if importlib.util.find_spec(m)], 'prometheus': pinned_versions()['images']['prometheus']['tag']}))"
    )
    out = json.loads(_run([clean_python, "-I", "-c", code], cwd=tmp_path).stdout)
    assert "site-packages" in out["file"] and out["generic"] == []
    assert out["prometheus"] == json.loads((ROOT / "components" / "versions.json").read_text())["images"]["prometheus"]["tag"]


@pytest.mark.slow
def test_the_example_platform_program_runs_from_the_wheel(clean_python, tmp_path):
    runner = ROOT / "tests" / "e2e" / "mock_program.py"
    config = {"platform:pagerdutyRoutingKey": "routing-key-from-config",
              "platform:storageRoleArn": "arn:aws:iam::111122223333:role/platform-observability"}
    result = _run([clean_python, "-I", runner, "platform", "prod", json.dumps(config),
                   json.dumps(["platform:pagerdutyRoutingKey"])], cwd=EXAMPLE)
    declared = json.loads(result.stdout.splitlines()[-1])
    resources, outputs = declared["resources"], declared["outputs"]
    providers = [r for r in resources if r["type"] == "pulumi:providers:kubernetes"]
    namespaces = [r for r in resources if r["type"] == "kubernetes:core/v1:Namespace"]
    # The platform's own provider and namespace only: the stack created neither.
    assert [p["name"] for p in providers] == ["platform"]
    assert [n["name"] for n in namespaces] == ["monitoring"]
    stack_objects = [r for r in resources if r["type"].startswith("kubernetes:") and r["name"] != "monitoring"]
    assert len(stack_objects) > 30
    assert all(r["provider"].startswith(providers[0]["urn"]) for r in stack_objects)
    assert outputs["namespace"]["value"] == "monitoring"
    endpoints = outputs["endpoints"]["value"]
    assert endpoints["grafana"] == "http://grafana.monitoring.svc.cluster.local:3000"
    assert endpoints["otlpGrpc"] == "http://collector.monitoring.svc.cluster.local:4317"
    assert endpoints["otlpHttp"] == "http://collector.monitoring.svc.cluster.local:4318"
    assert outputs["telemetryEnv"]["value"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoints["otlpGrpc"]
    assert outputs["grafanaAdminPassword"]["secret"] is True
    assert "routing-key-from-config" not in result.stdout.replace(json.dumps(config), "")
