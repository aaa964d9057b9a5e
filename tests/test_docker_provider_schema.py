"""The Docker provider built from Go modules (scripts/build-docker-provider.sh) serves what the
pinned pulumi-docker Python SDK and our Docker backend need.

Two independent sides:
- what the program uses: (1) every `pulumi_docker` class and keyword argument written in
  components/targets/docker.py, read from its AST (a class name maps to the token Pulumi's
  naming gives it, a snake_case argument to its camelCase property); (2) every input the backend
  actually sends, nested objects included, recorded from the real program under Pulumi mocks
  for a Docker stack with every component and with the log agent;
- what the provider serves: the schema the built binary returns over gRPC (GetSchema, as the
  engine asks a plugin).
Also: the provider reports the pulumi-docker version pinned in requirements.txt.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tooling.mockrun import run_program
from tests.harness import ROOT

pytestmark = pytest.mark.engine
BACKEND = ROOT / "components" / "targets" / "docker.py"


def _print_path(script: str) -> Path:
    return Path(subprocess.run([str(ROOT / "scripts" / script), "--print-path"], capture_output=True,
                               text=True, check=True).stdout.strip())


@functools.lru_cache(maxsize=None)
def served_schema() -> dict:
    """The schema the built binary serves: started as the engine starts a plugin (it prints its
    gRPC port), asked with ResourceProvider.GetSchema."""
    import grpc
    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    provider = _print_path("build-docker-provider.sh") / "pulumi-resource-docker"
    if not provider.is_file():
        message = f"{provider} not built: run scripts/build-docker-provider.sh (make tools)"
        if os.environ.get("OBS_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(message)
    process = subprocess.Popen([str(provider)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(process.stdout.readline().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            response = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
        return json.loads(response.schema)
    finally:
        process.terminate()
        process.wait(timeout=10)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def token(name: str) -> str:
    """Resource tokens lower the module member's first letter; the bridge's type tokens do not."""
    if name.endswith("Args"):
        name = name[:-4]
        return f"docker:index/{name}:{name}"
    return f"docker:index/{name[0].lower()}{name[1:]}:{name}"


def inputs_of(schema: dict, name: str) -> dict:
    """Input properties of a resource class, the provider, or an `...Args` type."""
    if name == "Provider":
        return schema["provider"]["inputProperties"]
    if name.endswith("Args"):
        return schema["types"][token(name)]["properties"]
    return schema["resources"][token(name)]["inputProperties"]


# --- the program's side -------------------------------------------------------------------------


def ast_usage() -> dict[str, set[str]]:
    """{class: keyword arguments} of every `docker.<Class>` in the backend, from its source.

    `docker.X(...)` calls give their keywords directly. Classes passed as values (the label
    helpers take the label class: `cls(label=k, value=v)`) get the keywords of the calls made on
    that parameter."""
    tree = ast.parse(BACKEND.read_text())
    alias = next(a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names if a.name == "pulumi_docker")
    usage: dict[str, set[str]] = {}
    param_calls: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == alias:
            usage.setdefault(node.attr, set())
        if isinstance(node, ast.Call):
            func = node.func
            kwargs = {k.arg for k in node.keywords if k.arg}
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == alias:
                usage.setdefault(func.attr, set()).update(kwargs)
            elif isinstance(func, ast.Name):
                param_calls.setdefault(func.id, set()).update(kwargs)
    # Classes handed to a function whose parameter of that name is called with keywords.
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        params = [a.arg for a in fn.args.args]
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            if isinstance(call.func, ast.Attribute) and call.func.attr == fn.name:
                for position, arg in enumerate(call.args, start=1):  # self is params[0]
                    if (isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name)
                            and arg.value.id == alias and position < len(params)):
                        usage[arg.attr] |= param_calls.get(params[position], set())
    # Type-only references (annotations) are not calls into the provider; `opts` is the
    # resource options every Pulumi resource takes, not a provider input.
    return {name: kwargs - {"opts"} for name, kwargs in usage.items() if name[0].isupper()}


def sent_inputs() -> dict[str, set[tuple[str, ...]]]:
    """{resource token: every input path sent} recorded under mocks for Docker stacks."""
    sent: dict[str, set[tuple[str, ...]]] = {}

    def walk(value, path, into):
        if isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d"):
            value = value.get("value")  # a secret envelope
        if isinstance(value, dict):
            for key, item in value.items():
                into.add(path + (key,))
                walk(item, path + (key,), into)
        elif isinstance(value, list):
            for item in value:
                walk(item, path + ("[]",), into)

    for config in ({"observability:environment": "dev"},
                   {"observability:environment": "dev", "observability:protectData": True,
                    "observability:components": {"grafana": {"enabled": False}}}):
        run = run_program("schemacheck", config)
        assert run.error is None, run.error
        for r in run.resources:
            if r.type.startswith("docker:") or r.type == "pulumi:providers:docker":
                into = sent.setdefault(r.type, set())
                walk(r.raw_inputs, (), into)
    return sent


# --- the checks ---------------------------------------------------------------------------------


def test_the_provider_reports_the_pinned_sdk_version():
    schema = served_schema()
    pinned = re.search(r"^pulumi-docker==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert schema["name"] == "docker"
    assert schema["version"] == pinned == importlib.metadata.version("pulumi-docker")


def test_every_class_and_argument_the_backend_writes_exists_in_the_schema():
    schema = served_schema()
    usage = ast_usage()
    # The backend's own vocabulary, so a broken AST reading cannot pass vacuously.
    assert {"Provider", "Network", "Volume", "RemoteImage", "Container", "ContainerUploadArgs",
            "ContainerHealthcheckArgs", "ContainerNetworksAdvancedArgs", "NetworkLabelArgs"} <= set(usage)
    assert {"networks_advanced", "uploads", "healthcheck", "destroy_grace_seconds"} <= usage["Container"]
    problems = []
    for name, kwargs in sorted(usage.items()):
        try:
            props = inputs_of(schema, name)
        except KeyError:
            problems.append(f"{name}: no {token(name)} in the schema")
            continue
        problems += [f"{name}({kw}=...): no input property {camel(kw)!r}" for kw in sorted(kwargs)
                     if camel(kw) not in props]
    assert not problems, "\n".join(problems)


def _property(schema: dict, spec: dict):
    """Follow an array's items and a $ref to the object type whose properties come next; None
    for a map (`additionalProperties`), whose keys are data, not property names."""
    while spec.get("type") == "array":
        spec = spec["items"]
    if "additionalProperties" in spec:
        return None
    ref = spec.get("$ref", "")
    return schema["types"][ref.removeprefix("#/types/")]["properties"] if ref.startswith("#/types/") else {}


def test_every_input_the_backend_sends_exists_in_the_schema():
    schema = served_schema()
    sent = sent_inputs()
    assert {"docker:index/container:Container", "docker:index/volume:Volume", "docker:index/network:Network",
            "docker:index/remoteImage:RemoteImage", "pulumi:providers:docker"} <= set(sent)
    problems = []
    for typ, paths in sorted(sent.items()):
        top = (schema["provider"] if typ == "pulumi:providers:docker" else schema["resources"][typ])["inputProperties"]
        for path in sorted(paths):
            props, spec = top, None
            for part in path:
                if props is None:  # inside a map
                    break
                if part == "[]":
                    continue
                if part not in props:
                    problems.append(f"{typ}: {'.'.join(p for p in path if p != '[]')}: {part!r} is not an input")
                    break
                spec = props[part]
                props = _property(schema, spec)
    assert not problems, "\n".join(sorted(set(problems)))

