"""The real Pulumi engine (CLI + Kubernetes provider built from Go modules at the pinned
versions by scripts/build-pulumi.sh) running the project's program through the Automation API
(scripts/engine.py explains why inline). Marked `engine`; part of `make test`.

1. `preview --diff` of the committed prod stack file (secrets decrypted by the engine with the
   example passphrase), against no cluster: the provider previews without one.
2. `up` and `destroy` of a Kubernetes stack in render-to-directory mode (prod's config plus
   `kubernetes.renderToDirectory`): the written manifests pass strict schema validation; a
   preview right after `up` shows no changes; a retention change previews no replacement of a
   StatefulSet, PVC or Service (ConfigMaps are content-named and may be replaced).
"""

from __future__ import annotations

import time

import kubernetes_validate
import pytest
import yaml
from pulumi import automation as auto

from scripts.engine import open_stack
from tests.enginekit import PROTECTED_KINDS, Events, work_dir

pytestmark = pytest.mark.engine
K8S_VERSION = "1.35"  # a current Kubernetes release bundled by kubernetes-validate
FIGURES: dict[str, float] = {}


def test_preview_diff_of_the_committed_prod_stack(engine):
    base, env = engine
    stack = open_stack("prod", work_dir(base, "prod", "prod"), env)
    events, out = Events(), []
    start = time.perf_counter()
    result = stack.preview(diff=True, on_event=events, on_output=out.append)
    FIGURES["prod preview s"] = time.perf_counter() - start
    summary = result.change_summary
    creates = summary.get(auto.OpType.CREATE, 0)
    assert creates >= 60 and set(summary) <= {auto.OpType.CREATE, auto.OpType.SAME}, summary
    text = "\n".join(out)
    assert "kubernetes:apps/v1:StatefulSet" in text and f"+ {creates} to create" in text
    # Secrets were decrypted by the engine and stay secret in the diff.
    assert "example-routingKey" not in text and "[secret]" in text
    statefulsets, _ = _declared_volumes()
    assert sum(1 for _, t, _ in events.ops if t == "kubernetes:apps/v1:StatefulSet") == statefulsets


def _declared_volumes() -> tuple[int, int]:
    """(StatefulSets, claims) the prod stack's workloads ask for: one StatefulSet per workload
    with a data volume, one claim per replica of it."""
    from tests.harness import run_with_workloads

    _, workloads = run_with_workloads("prod")
    stateful = [w for w in workloads if w.data is not None and not w.per_node]
    return len(stateful), sum(w.replicas for w in stateful)


@pytest.fixture(scope="module")
def rendered(engine):
    base, env = engine
    out_dir = base / "manifests"
    extra = {"observability:environment": "prod",
             "observability:kubernetes": {"namespace": "observability", "renderToDirectory": str(out_dir)}}
    wd = work_dir(base, "ci-render", "prod", extra)
    stack = open_stack("ci-render", wd, env)
    start = time.perf_counter()
    up = stack.up(on_output=lambda _: None)
    FIGURES["render-mode up s"] = time.perf_counter() - start
    yield base, env, wd, stack, out_dir, up
    stack.destroy(on_output=lambda _: None)


def test_up_in_render_mode_writes_schema_valid_manifests(rendered):
    _, _, _, _, out_dir, up = rendered
    assert up.summary.result == "succeeded"
    files = sorted(out_dir.rglob("*.yaml"))
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "StatefulSet", "PersistentVolumeClaim", "Service", "NetworkPolicy", "ConfigMap",
            "Secret", "DaemonSet", "Deployment"} <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    FIGURES["manifests written"] = len(docs)


def test_preview_right_after_up_shows_no_changes(rendered):
    _, _, _, stack, _, _ = rendered
    result = stack.preview(on_output=lambda _: None)
    assert set(result.change_summary) == {auto.OpType.SAME}, result.change_summary


def test_retention_change_replaces_no_statefulset_pvc_or_service(rendered):
    base, env, wd, stack, _, _ = rendered
    stack.set_config("observability:retention.metrics", auto.ConfigValue("90d"), path=True)
    stack.set_config("observability:retention.logs", auto.ConfigValue("60d"), path=True)
    # With object storage (the committed prod stack) the storage backends' claims hold a day of
    # WAL and cache: ingest, not retention, sizes them.
    stack.set_config("observability:ingest.logGbPerDay", auto.ConfigValue("80"), path=True)
    try:
        events = Events()
        result = stack.preview(on_event=events, on_output=lambda _: None)
        replaced = events.replaced()
        assert replaced, "the retention change should at least roll a ConfigMap"
        assert not [r for r in replaced if r[0] in PROTECTED_KINDS], replaced
        assert all(t == "kubernetes:core/v1:ConfigMap" for t, _ in replaced), replaced
        updated = {t for op, t, _ in events.ops if op == "update"}
        assert "kubernetes:core/v1:PersistentVolumeClaim" in updated  # grown in place
        FIGURES["retention change: replaced"] = len(replaced)
        assert result.change_summary.get(auto.OpType.DELETE, 0) == 0
    finally:
        stack.remove_config("observability:retention.metrics", path=True)
        stack.remove_config("observability:retention.logs", path=True)
        stack.remove_config("observability:ingest.logGbPerDay", path=True)


def test_destroy_removes_everything_but_retained_data(rendered, capsys):
    base, env, wd, stack, out_dir, _ = rendered
    # Prod protects its data; this CI stack destroys itself, so lift protection first.
    stack.set_config("observability:protectData", auto.ConfigValue("false"))
    stack.up(on_output=lambda _: None)
    result = stack.destroy(on_output=lambda _: None)
    assert result.summary.result == "succeeded"
    # retain_on_delete: the claims (and the namespace holding them) outlive the stack.
    left = [d for f in out_dir.rglob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d]
    assert sorted({d["kind"] for d in left}) == ["Namespace", "PersistentVolumeClaim"], [d["kind"] for d in left]
    # One per replica of every stateful workload (HA prod: 24 with Pyroscope's components).
    assert sum(d["kind"] == "PersistentVolumeClaim" for d in left) == _declared_volumes()[1]
    with capsys.disabled():
        print("\nengine: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in FIGURES.items()))
