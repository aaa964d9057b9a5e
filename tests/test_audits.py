"""Secret and data-safety audits over every scenario, through the real program under mocks."""

import json

import pytest

from observability_stack.components.render import render_all
from tests.harness import SECRET_PREFIX, plaintext_strings, run_program
from tests.scenarios import NS, scenarios, settings_for

# Every scenario on its own target, plus the dev-like ones on Kubernetes and prod on Docker.
AUDITED = {name: (stack, config) for name, (stack, config) in scenarios().items()}
AUDITED.update({
    f"{name}-on-kubernetes": (stack, {**config, NS + "target": "kubernetes"})
    for name, (stack, config) in scenarios().items() if name in ("dev", "receivers", "minimal")
})
# One host cannot be highly available: prod on Docker must turn the preset's HA off.
AUDITED["prod-on-docker"] = ("prod", {**scenarios()["prod"][1], NS + "target": "docker",
                                      NS + "highAvailability": False, NS + "objectStorage": None})

_RUNS: dict = {}


def run_of(name):
    if name not in _RUNS:
        stack, config = AUDITED[name]
        _RUNS[name] = run_program(stack, config)
        assert _RUNS[name].error is None, _RUNS[name].error
    return _RUNS[name]


def secret_wrapped_count(value) -> int:
    """How many TEST-SECRET strings sit inside Pulumi secrets (the positive control)."""
    text = json.dumps(value)
    return text.count(SECRET_PREFIX) - sum(s.count(SECRET_PREFIX) for s in plaintext_strings(value))


@pytest.mark.parametrize("name", sorted(AUDITED))
def test_no_secret_reaches_a_plaintext_input_output_file_or_log(name):
    run = run_of(name)
    leaks = [(r.type, r.name) for r in run.resources
             if any(SECRET_PREFIX in s for s in plaintext_strings(r.raw_inputs))]
    assert leaks == [], f"secret in plaintext inputs of {leaks}"
    for key, value in run.outputs.items():
        if key not in run.secret_outputs:
            assert SECRET_PREFIX not in json.dumps(value, default=str), f"output {key} leaks a secret"
    assert "grafanaAdminPassword" in run.secret_outputs
    assert not any(SECRET_PREFIX in line for line in run.logs)
    stack, config = AUDITED[name]
    if name in scenarios():
        for rel, text in render_all(settings_for(name)).items():
            assert SECRET_PREFIX not in text, f"rendered {rel} contains a secret"


@pytest.mark.parametrize("name", ["prod", "team-overlay", "receivers", "receivers-on-kubernetes", "prod-on-docker"])
def test_audit_can_fail_secrets_are_present_but_wrapped(name):
    """Positive control: the receiver credentials really are in the declared inputs, as secrets."""
    run = run_of(name)
    wrapped = sum(secret_wrapped_count(r.raw_inputs) for r in run.resources)
    assert wrapped > 0


def _volumes(run):
    return [r for r in run.resources if r.type in (
        "docker:index/volume:Volume", "kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:apps/v1:StatefulSet")]


@pytest.mark.parametrize("name", ["prod", "team-overlay", "prod-on-docker"])
def test_prod_data_volumes_are_protected_and_retained(name):
    run = run_of(name)
    volumes = _volumes(run)
    assert volumes, "no data volumes declared"
    for r in volumes:
        assert r.protect, f"{r.type} {r.name} is not protected"
        assert r.retain_on_delete, f"{r.type} {r.name} is not retained on delete"
        if r.type == "kubernetes:apps/v1:StatefulSet":
            policy = r.inputs["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
            assert policy == {"whenDeleted": "Retain", "whenScaled": "Retain"}, r.name


# Inputs whose change makes the provider replace the object (pulumi-docker: any Volume/Network
# change; pulumi-kubernetes: StatefulSet selector/serviceName/volumeClaimTemplates/
# podManagementPolicy, PVC accessModes/storageClassName, any metadata.name/namespace).
def _replacement_keys(r):
    inputs = r.inputs
    if r.type in ("docker:index/volume:Volume", "docker:index/network:Network"):
        return inputs
    meta = {k: (inputs.get("metadata") or {}).get(k) for k in ("name", "namespace")}
    spec = inputs.get("spec") or {}
    if r.type == "kubernetes:apps/v1:StatefulSet":
        fields = {k: spec.get(k) for k in ("selector", "serviceName", "podManagementPolicy")}
        if "spec.volumeClaimTemplates" not in r.ignore_changes:
            fields["volumeClaimTemplates"] = spec.get("volumeClaimTemplates")
        return {**meta, **fields}
    if r.type == "kubernetes:core/v1:PersistentVolumeClaim":
        return {**meta, **{k: spec.get(k) for k in ("accessModes", "storageClassName")}}
    if r.type == "kubernetes:core/v1:Service":
        return {**meta, "clusterIP": spec.get("clusterIP"), "type": spec.get("type")}
    return None


CHANGES = {
    "retention": {NS + "retention": {"metrics": "90d", "logs": "60d", "traces": "30d", "profiles": "30d"}},
    "sampling": {NS + "sampling": {"traces": 0.5, "keepErrors": False, "slowTraceThreshold": "5s"}},
    "receivers": {NS + "alerting": {
        "receivers": [{"name": "pd2", "pagerduty": {"routingKey": {"secure": "v1:other"}}},
                      {"name": "hook", "webhook": {"url": {"secure": "v1:other"}}}],
        "routes": {"critical": "pd2", "warning": "hook", "default": "hook"}}},
}


@pytest.mark.parametrize("base", ["prod", "prod-on-docker"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_retention_sampling_or_receivers_replace_no_volume(base, change):
    stack, config = AUDITED[base]
    before = run_of(base)
    after = run_program(stack, {**config, **CHANGES[change]})
    assert after.error is None, after.error
    kept = {(r.type, r.name): _replacement_keys(r) for r in before.resources if _replacement_keys(r) is not None}
    now = {(r.type, r.name): _replacement_keys(r) for r in after.resources if _replacement_keys(r) is not None}
    assert kept, "nothing to compare"
    assert set(kept) == set(now), "a volume/network/StatefulSet/PVC/Service appeared or disappeared"
    for key in kept:
        assert kept[key] == now[key], f"{change} would replace {key}"
