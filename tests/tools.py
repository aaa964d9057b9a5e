"""Locate promtool and amtool for the real-tool tests (marker `tools`).

The judges are the binaries built at the pinned versions by `scripts/build-prom-tools.sh`
(cached under ~/.cache/observability-stack/prom-tools/). Debian's promtool 2.42 / amtool 0.25 on
PATH are only a fallback: they are older than the images and reject newer keys.

A missing binary fails the test (a validity check that silently skips proves nothing); set
OBS_ALLOW_MISSING_TOOLS=1 to skip instead, e.g. on a machine that cannot build them.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Sequence

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = ROOT / "scripts" / "build-prom-tools.sh"


@functools.lru_cache(maxsize=None)
def _pinned_dirs() -> tuple[Path, ...]:
    if not BUILD_SCRIPT.exists():
        return ()
    try:
        out = subprocess.run(
            ["bash", str(BUILD_SCRIPT), "--print-path"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return ()
    return tuple(Path(p) for p in out.split(":") if p)


def find(name: str) -> Optional[str]:
    """The pinned build of `name`, else one on PATH, else None."""
    for directory in _pinned_dirs():
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def otelcol() -> str:
    """The validation-only collector built by scripts/build-otelcol.sh at the pinned version."""
    override = os.environ.get("OBS_OTELCOL")
    path = override or subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-otelcol.sh"), "--print-path"],
        capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    message = ("otelcol-obs not found: run scripts/build-otelcol.sh (builds the pinned collector) "
               "or set OBS_ALLOW_MISSING_TOOLS=1 to skip the real-tool checks")
    if os.environ.get("OBS_ALLOW_MISSING_TOOLS") == "1":
        pytest.skip(message)
    pytest.fail(message)


def require(name: str) -> str:
    path = find(name)
    if path:
        return path
    message = (f"{name} not found: run scripts/build-prom-tools.sh (builds the pinned version) "
               f"or set OBS_ALLOW_MISSING_TOOLS=1 to skip the real-tool checks")
    if os.environ.get("OBS_ALLOW_MISSING_TOOLS") == "1":
        pytest.skip(message)
    pytest.fail(message)


def run(argv: Sequence[str], cwd: Optional[Path] = None, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run a tool; the test fails with its full output when it exits non-zero."""
    result = subprocess.run(
        list(argv), cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


# The in-cluster credentials the kubelet and API-server jobs read (components/cluster.py).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def with_service_account(files: dict[str, str], root: Path) -> dict[str, str]:
    """`files` with prometheus.yml's service-account paths moved under `root/serviceaccount`,
    where a placeholder token and CA exist: `promtool check config` checks that credential files
    exist, and only a pod has the real ones."""
    account = root / "serviceaccount"
    account.mkdir(parents=True, exist_ok=True)
    (account / "token").write_text("placeholder-token\n")
    (account / "ca.crt").write_text("placeholder-ca\n")
    return {rel: text.replace(SERVICE_ACCOUNT_DIR, str(account)) if rel.endswith("prometheus.yml") else text
            for rel, text in files.items()}
