"""Moving an existing single-node prod to HA on object storage (issue 15, item 5), on the real
engine: the preview of that change deletes and replaces no claim and no StatefulSet; the only new
claims are those of the new replicas (ordinals >= 1).

Step 1 deploys the committed prod stack as a single-node prod: `highAvailability: false` and no
`objectStorage`, so every tool keeps its data on one claim. Step 2 follows docs/upgrading.md
("Moving a single-node prod to object storage"): pin each claim at its current size (Kubernetes
never shrinks a claim, and with object storage a claim holds only WAL and cache), then turn on
`highAvailability` with the committed `objectStorage`, and preview. Both steps run in
render-to-directory mode: the real engine and Kubernetes provider plan every operation from the
state of step 1, and nothing needs a cluster. Marked `engine`; part of `make test`.
"""

from __future__ import annotations

import re

import pytest
import yaml
from pulumi import automation as auto

from observability_stack.config.loader import load_settings, parse_raw
from scripts.engine import offline_env, open_stack
from tests.enginekit import Events, engine_ready, work_dir
from tooling.mockrun import engine_config

pytestmark = pytest.mark.engine
NS = "observability:"
from tests.k8s_types import PVC as CLAIM, STS as STATEFULSET
# Content-named (`<tool>-config-<hash>`, immutable): a changed config is a new object.
REPLACEABLE = {"kubernetes:core/v1:ConfigMap"}


def _claims(manifests) -> dict[tuple[str, int], str]:
    """{(tool, ordinal): requested size} in a render-to-directory output (claims are named
    `data-<tool>-<ordinal>`, the names a StatefulSet's pods look for)."""
    found = {}
    for f in manifests.rglob("*.yaml"):
        for d in yaml.safe_load_all(f.read_text()):
            if d and d["kind"] == "PersistentVolumeClaim":
                tool, ordinal = re.fullmatch(r"data-(.+)-(\d+)", d["metadata"]["name"]).groups()
                found[(tool, int(ordinal))] = d["spec"]["resources"]["requests"]["storage"]
    return found


def test_single_node_prod_moves_to_ha_without_losing_a_claim(tmp_path):
    engine_ready()
    env = offline_env(tmp_path / "state", tmp_path / "home", passphrase="example")
    manifests = tmp_path / "manifests"
    extra = {NS + "kubernetes": {"namespace": "observability", "renderToDirectory": str(manifests)}}
    wd = work_dir(tmp_path, "prod", "prod", extra)
    stack_file = wd / "Pulumi.prod.yaml"
    ha = yaml.safe_load(stack_file.read_text())
    single = yaml.safe_load(stack_file.read_text())
    single["config"].pop(NS + "objectStorage")
    single["config"][NS + "highAvailability"] = False

    # 1. The single-node prod, deployed.
    stack_file.write_text(yaml.safe_dump(single, sort_keys=False))
    stack = open_stack("prod", wd, env)
    stack.up(on_output=lambda _: None)
    before = _claims(manifests)
    assert before and {ordinal for _, ordinal in before} == {0}, before

    # 2. The documented move: pin the claims' sizes, turn HA on with object storage, preview.
    components = ha["config"].setdefault(NS + "components", {})
    for (tool, _), size in before.items():
        components.setdefault(tool, {}).setdefault("storage", {})["size"] = size
    ha["config"][NS + "highAvailability"] = True
    stack_file.write_text(yaml.safe_dump(ha, sort_keys=False))
    events = Events()
    result = stack.preview(on_event=events, on_output=lambda _: None)

    ops = events.ops
    values, secret_keys = engine_config({k: v for k, v in ha["config"].items()})
    settings = load_settings({k[len(NS):]: parse_raw(v) for k, v in values.items() if k.startswith(NS)},
                             stack="prod", secret_keys=secret_keys)
    deleted = [(t, u) for op, t, u in ops if op == "delete"]
    replaced = [(t, u) for op, t, u in ops if op in ("replace", "create-replacement", "delete-replaced")]
    assert not deleted, deleted
    assert not [r for r in replaced if r[0] not in REPLACEABLE], replaced
    touched_claims = [(op, u) for op, t, u in ops if t == CLAIM and op not in ("same", "create")]
    assert not touched_claims, touched_claims  # pinned sizes: the existing claims are unchanged
    created_all = [u.rsplit("::", 1)[-1] for op, t, u in ops if op == "create" and t in (CLAIM, STATEFULSET)]
    # Pyroscope replicates as upstream's microservices (docs/upstream-facts.md): its store-gateways
    # and compactors are new StatefulSets with claims of their own (3 each); its ingesters carry on
    # as the old `pyroscope` StatefulSet and claim.
    new_components = [n for n in created_all if re.search(r"-pyroscope-(compactor|store-gateway)-(statefulset|data(-\d+)?)$", n)]
    assert len(new_components) == 2 * (1 + settings.replicas("pyroscope")), new_components
    created = [n for n in created_all if n not in new_components]
    assert all(re.search(r"-data-[1-9]$", name) for name in created), created
    # One new claim per new replica of each tool with a volume: what the HA settings ask for
    # (read from the stack file as the program reads it), not what the program produced.
    # (Logical names: ordinal 0 keeps the pre-replica `...<tool>-data`, the others `...<tool>-data-<n>`.)
    expected = sorted((tool, i) for tool, _ in before for i in range(1, settings.replicas(tool)))
    assert sorted((m[1], int(m[2])) for m in (re.search(r"([a-z_]+)-data-(\d+)$", c) for c in created)) == expected
    assert result.change_summary.get(auto.OpType.DELETE, 0) == 0
    print(f"\nsingle-node prod -> HA: {dict(result.change_summary)}; new claims {created}")
