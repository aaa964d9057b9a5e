"""Changing any pinned version (an upgrade, or `components.<tool>.version`) replaces no volume,
claim or StatefulSet immutable field (issue 12). The program runs under mocks once with the
pins and once with every tool's image tag changed; what a version change may touch (images,
pod templates) is allowed to differ, what would replace data must not."""

from __future__ import annotations

import pytest

from observability_stack.components.registry import NAMES
from tests.harness import run_stack

NS = "observability:"
# Fields pulumi-kubernetes replaces a StatefulSet or a claim for (provider/pkg/provider/diff.go).
STATEFULSET_IMMUTABLE = ("selector", "serviceName", "podManagementPolicy", "volumeClaimTemplates")
CLAIM_IMMUTABLE = ("accessModes", "storageClassName", "volumeMode", "volumeName")


def _bumped() -> dict:
    return {NS + "components": {tool: {"version": "9.99.9"} for tool in NAMES}}


def _by_name(run, typ: str) -> dict[str, dict]:
    return {r.name: r.inputs for r in run.of_type(typ)}


@pytest.fixture(scope="module")
def kubernetes_runs():
    before, after = run_stack("prod"), run_stack("prod", _bumped())
    assert before.error is None and after.error is None, (before.error, after.error)
    return before, after


def test_a_version_change_reaches_every_image(kubernetes_runs):
    _, after = kubernetes_runs
    images = {c["image"] for r in after.of_type("kubernetes:apps/v1:StatefulSet")
              for c in r.inputs["spec"]["template"]["spec"]["containers"]}
    assert images and all(i.endswith(":9.99.9") for i in images), images


def test_a_version_change_keeps_statefulsets_and_claims(kubernetes_runs):
    before, after = kubernetes_runs
    sts_before, sts_after = (_by_name(r, "kubernetes:apps/v1:StatefulSet") for r in kubernetes_runs)
    assert sts_before.keys() == sts_after.keys() and len(sts_before) == 9  # + Pyroscope's store-gateway, compactor
    for name, spec in sts_before.items():
        for field in STATEFULSET_IMMUTABLE:
            assert spec["spec"].get(field) == sts_after[name]["spec"].get(field), (name, field)
        assert spec["metadata"]["name"] == sts_after[name]["metadata"]["name"]
    claims_before, claims_after = (_by_name(r, "kubernetes:core/v1:PersistentVolumeClaim") for r in kubernetes_runs)
    assert claims_before == claims_after  # same names, sizes, classes: nothing to replace or grow


def test_a_version_change_keeps_docker_volumes():
    before, after = run_stack("dev"), run_stack("dev", _bumped())
    volumes_before, volumes_after = (_by_name(r, "docker:index/volume:Volume") for r in (before, after))
    assert volumes_before == volumes_after and volumes_before
    network = "docker:index/network:Network"
    assert _by_name(before, network) == _by_name(after, network)
