"""Run the real program (`__main__.py`) under Pulumi mocks and record everything it declares.

Used by `make render` (Kubernetes manifests without a cluster), the tests and the benchmarks.

`run_stack("prod")` loads `Pulumi.prod.yaml` the way the engine would hand it over (objects as
JSON strings, `secure:` leaves decrypted to test strings and their keys marked secret), runs
the program, and returns every registered resource with its raw inputs and options, the stack
outputs, and what was logged. The raw inputs keep Pulumi's secret markers, so audits can tell a
secret input from a plaintext one.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import wait_for_rpcs

from observability_stack.config.loader import placeholder_secrets

ROOT = Path(__file__).resolve().parent.parent
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"
# Test strings that stand in for decrypted `secure:` values; audits search for this prefix.
SECRET_PREFIX = "TEST-SECRET-"


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    raw_inputs: dict  # with Pulumi's secret markers
    inputs: dict  # secrets unwrapped
    parent: str
    provider: str
    protect: Optional[bool]
    retain_on_delete: Optional[bool]
    ignore_changes: list[str]
    replace_on_changes: list[str]
    delete_before_replace: bool
    custom: bool


@dataclass
class Run:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    error: Optional[str] = None
    logs: list[str] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"{name}: {len(matches)} resources"
        return matches[0]

    def types(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.resources:
            counts[r.type] = counts.get(r.type, 0) + 1
        return dict(sorted(counts.items()))


def unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return unwrap(value.get("value"))
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def plaintext_strings(value: Any) -> Iterator[str]:
    """Every string in raw inputs that is NOT inside a Pulumi secret."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return
        for k, v in value.items():
            yield str(k)
            yield from plaintext_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from plaintext_strings(v)
    elif isinstance(value, str):
        yield value


class _Mocks(pulumi.runtime.Mocks):
    """Echo inputs as outputs, plus the few computed outputs the program reads."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = SECRET_PREFIX + "generated-password"
        if args.typ == "docker:index/remoteImage:RemoteImage":
            # The provider reports the pulled image's id; containers run that id. Deriving it
            # from the reference lets tests trace a container back to its pinned image.
            outputs["imageId"] = f"sha256:{args.inputs.get('name')}"
        if args.typ.startswith("kubernetes:") and "metadata" in outputs:
            meta = dict(outputs.get("metadata") or {})
            meta.setdefault("name", args.name)
            outputs["metadata"] = meta
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class _Monitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks, run: Run):
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
            self.run.resources.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    raw_inputs=raw,
                    inputs=unwrap(raw),
                    parent=request.parent,
                    provider=request.provider,
                    protect=request.protect if request.HasField("protect") else None,
                    retain_on_delete=request.retainOnDelete if request.HasField("retainOnDelete") else None,
                    ignore_changes=list(request.ignoreChanges),
                    replace_on_changes=list(request.replaceOnChanges),
                    delete_before_replace=request.deleteBeforeReplace,
                    custom=request.custom,
                )
            )
        return response


class _LogCapture(logging.Handler):
    """What the program logs at info level and above (what `pulumi up` shows without -v).

    The SDK's own debug lines echo serialized resource properties, where secrets are still
    wrapped in Pulumi's secret envelope; they are not part of the program's log output.
    """

    def __init__(self, run: Run):
        super().__init__(logging.INFO)
        self.run = run

    def emit(self, record: logging.LogRecord) -> None:
        self.run.logs.append(record.getMessage())


def stack_file_config(stack: str) -> dict:
    """The `config:` block of a committed stack file."""
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    return doc.get("config") or {}


def engine_config(config: dict) -> tuple[dict[str, str], list[str]]:
    """Stack-file config as the engine hands it to a program: strings, secure leaves decrypted.

    Every `secure:` leaf becomes a distinct `TEST-SECRET-<n>` string and its key is marked secret.
    """
    plain, secret_keys = placeholder_secrets(config, SECRET_PREFIX)
    values = {key: value if isinstance(value, str) else json.dumps(value) for key, value in plain.items()}
    return values, secret_keys


def run_program(stack: str, config: dict, *, secret_keys: Optional[list[str]] = None,
                preview: bool = False) -> Run:
    """Run `__main__.py` for `stack` with `config` ({"observability:key": value}) under mocks."""
    values, found_secret = engine_config(config)
    run = Run()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = _LogCapture(run)
    logger = logging.getLogger("pulumi-mock-run")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        pulumi_settings.ROOT.set(None)
        # A program that raised mid-run leaves pending output tasks bound to its closed loop in
        # Pulumi's settings, and set_mocks does not reset them.
        pulumi_settings.SETTINGS.outputs = set()
        monitor = _Monitor(_Mocks(), run)
        pulumi_mocks.set_mocks(_Mocks(), project="observability", stack=stack, preview=preview,
                               monitor=monitor, logger=logger)
        pulumi.runtime.set_all_config(values, found_secret if secret_keys is None else secret_keys)
        try:
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        except pulumi.RunError as err:
            run.error = str(err)
        loop.run_until_complete(wait_for_rpcs())
        root = pulumi_settings.get_root_resource()
        for name, value in (getattr(root, "outputs", None) or {}).items():
            out = pulumi.Output.from_input(value)
            run.outputs[name] = loop.run_until_complete(out.future())
            if loop.run_until_complete(out.is_secret()):
                run.secret_outputs.add(name)
    finally:
        logger.removeHandler(handler)
        asyncio.set_event_loop(None)
        loop.close()
    return run


def run_stack(stack: str, overrides: Optional[dict] = None, *, preview: bool = False) -> Run:
    """Run a committed stack file, optionally with `{"observability:key": value}` overrides
    (objects are merged key by key into the file's value, like editing the stack file)."""
    config = copy.deepcopy(stack_file_config(stack))
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return run_program(stack, config, preview=preview)
