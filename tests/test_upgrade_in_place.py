"""Existing stacks upgrade in place (issue 11): a stack deployed by the previous release is
previewed with this code on the real engine, and nothing is deleted or replaced but the
content-named ConfigMaps whose config changed on purpose; no new volume appears.

The previous release is `v0.1.0` (the last commit before the registry/wiring refactor), checked
out from git into a temporary directory and run in its own process (its modules are the
top-level `components`/`config`, which this code no longer is). Both run the committed prod stack
file in render-to-directory mode: the real engine and Kubernetes provider plan every operation,
and nothing needs a cluster. Marked `engine`; part of `make test`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from scripts.engine import offline_env, open_stack
from tests.harness import ROOT
from tests.enginekit import Events, engine_ready, work_dir
from tests.scenarios import settings_for

pytestmark = pytest.mark.engine
PREVIOUS_RELEASE = "1b0d718"  # tag v0.1.0
# Content-named (`<tool>-config-<hash>`, immutable): a new config is a new object and the pods
# roll; that is how a config change reaches the pods, not data loss.
REPLACEABLE = {"kubernetes:core/v1:ConfigMap"}
# Stack config keys added after the previous release that the committed prod stack sets.
NEW_KEYS = ("observability:objectStorage",)
VOLUME_KINDS = {"kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:apps/v1:StatefulSet"}


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory) -> Path:
    checkout = tmp_path_factory.mktemp("previous") / "repo"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(checkout), PREVIOUS_RELEASE],
                   check=True, capture_output=True, text=True, timeout=120)
    yield checkout
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)],
                   capture_output=True, text=True, timeout=120)


def test_a_stack_of_the_previous_release_upgrades_without_replacing_data(previous_release, tmp_path):
    engine_ready()
    env = offline_env(tmp_path / "state", tmp_path / "home", passphrase="example")
    extra = {"observability:kubernetes": {"namespace": "observability",
                                          "renderToDirectory": str(tmp_path / "manifests")}}
    wd = work_dir(tmp_path, "prod", "prod", extra)
    # The previous release does not know the keys added since; a user upgrading adds them (prod's
    # highAvailability needs objectStorage), so step 1 runs without them and step 2 with them.
    stack_file = wd / "Pulumi.prod.yaml"
    current = stack_file.read_text()
    older = yaml.safe_load(current)
    for key in NEW_KEYS:
        older["config"].pop(key, None)
    stack_file.write_text(yaml.safe_dump(older, sort_keys=False))

    # 1. `pulumi up` with the previous release's code, in its own process and checkout.
    old = subprocess.run(
        [sys.executable, str(previous_release / "scripts" / "engine.py"), "prod", "up", "--work-dir", str(wd)],
        cwd=previous_release, capture_output=True, text=True, timeout=900,
        env={**os.environ, **env, "PYTHONPATH": str(previous_release)},
    )
    assert old.returncode == 0, old.stdout[-3000:] + old.stderr[-3000:]
    claims_before = [d for f in (tmp_path / "manifests").rglob("*.yaml")
                     for d in yaml.safe_load_all(f.read_text()) if d and d["kind"] == "PersistentVolumeClaim"]
    assert len(claims_before) == 7

    # 2. Preview the same stack with this code (and the stack file of this release).
    stack_file.write_text(current)
    stack = open_stack("prod", wd, env)
    events = Events()
    result = stack.preview(on_event=events, on_output=lambda _: None)
    ops = events.ops
    deleted = [(t, u) for op, t, u in ops if op == "delete"]
    replaced = [(t, u) for op, t, u in ops if op in ("replace", "create-replacement", "delete-replaced")]
    created = [(t, u) for op, t, u in ops if op == "create"]
    assert not deleted, deleted
    assert not [r for r in replaced if r[0] not in REPLACEABLE], replaced
    # The prod preset now turns highAvailability on (issue 14): the only new volumes are the
    # claims of the new replicas (`<tool>-data-<ordinal>`, ordinal >= 1); no StatefulSet is
    # created or replaced (podManagementPolicy and serviceName stay as they were).
    new_replica_claims = [c for c in created if c[0] == "kubernetes:core/v1:PersistentVolumeClaim"
                          and re.search(r"-data-[1-9]$", c[1])]
    assert not [c for c in created if c[0] in VOLUME_KINDS and c not in new_replica_claims], created
    # One per new replica of each tool that had a claim: what the committed prod stack asks for
    # (read as the program reads it), e.g. alertmanager 1, 2; prometheus 1; loki 1, 2; mimir 1, 2.
    settings = settings_for("prod")
    tools = {re.fullmatch(r"data-(.+)-0", c["metadata"]["name"])[1] for c in claims_before}
    expected = sorted((tool, i) for tool in tools for i in range(1, settings.replicas(tool)))
    got = sorted((m[1], int(m[2])) for m in (re.search(r"([a-z_]+)-data-(\d+)$", u) for _, u in new_replica_claims))
    assert got == expected, new_replica_claims
    assert result.change_summary.get(auto.OpType.DELETE, 0) == 0
    print(f"\nupgrade from {PREVIOUS_RELEASE}: {dict(result.change_summary)}; replaced {sorted({t for t, _ in replaced})}")
