"""Helpers the real-engine tests share (tests/test_engine.py, test_engine_apiserver.py,
test_upgrade_in_place.py): the engine built from Go modules, project dirs from committed stack
files, and the per-resource operations the engine plans."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from tests.harness import ROOT

PROTECTED_KINDS = ("kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:PersistentVolumeClaim",
                   "kubernetes:core/v1:Service")


def engine_ready() -> None:
    bin_dir = Path(subprocess.run([str(ROOT / "scripts" / "build-pulumi.sh"), "--print-path"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    missing = [t for t in ("pulumi", "pulumi-resource-kubernetes") if not (bin_dir / t).is_file()]
    if missing:
        message = f"{', '.join(missing)} not built: run scripts/build-pulumi.sh"
        if os.environ.get("OBS_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(message)


def work_dir(base: Path, stack: str, source: str, extra: dict | None = None) -> Path:
    """A project dir holding Pulumi.yaml and `Pulumi.<stack>.yaml` copied from a committed file."""
    wd = base / f"wd-{stack}"
    wd.mkdir(exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", wd / "Pulumi.yaml")
    doc = yaml.safe_load((ROOT / f"Pulumi.{source}.yaml").read_text())
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(doc["config"].get(key), dict):
            doc["config"][key] = {**doc["config"][key], **value}
        else:
            doc["config"][key] = value
    (wd / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return wd


class Events:
    """Per-resource operations the engine plans (ResourcePreEvent), from on_event."""

    def __init__(self):
        self.ops: list[tuple[str, str, str]] = []

    def __call__(self, event: auto.EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is not None and pre.metadata.type != "pulumi:pulumi:Stack":
            self.ops.append((str(pre.metadata.op.value), pre.metadata.type, pre.metadata.urn))

    def replaced(self) -> list[tuple[str, str]]:
        return [(t, urn.rsplit("::", 1)[-1]) for op, t, urn in self.ops
                if op in ("replace", "create-replacement", "delete-replaced")]
