"""`objectStorage` and Grafana SSO/database (issue 15): cross-field rules and their messages,
what each tool is handed (bucket, prefix, credentials as references only), claim sizing, and the
key check's env rules (positive controls)."""

from __future__ import annotations

import shutil

import pytest
import yaml

from observability_stack.components import sizing
from observability_stack.components.objectstorage import ACCESS_KEY_ID_ENV, SECRET_ACCESS_KEY_ENV, bucket_for
from observability_stack.components.render import render_all, workloads_of
from observability_stack.config import ConfigError, Settings, load_settings
from observability_stack.config.storage_rules import object_storage_problems
from keycheck.check import check_dir
from tests.harness import run_with_workloads, stack_file_config
from tests.k8s_types import DAEMONSET, DEPLOYMENT, STS
from tests.scenarios import NS, OBJECT_STORAGE_AZURE, SECRET, SECURE

ROUTES = {"receivers": [{"name": "p", "pagerduty": {"routingKey": SECRET + "pd"}}],
          "routes": {"critical": "p", "warning": "p"}}
S3_KEYS = {"bucket": "observability", "accessKeyId": "AKIAEXAMPLE", "secretAccessKey": SECRET + "s3-secret"}
SECRET_KEYS = ["alerting", "objectStorage", "grafana"]
CONFIGS = {"loki": "loki/loki.yaml", "mimir": "mimir/mimir.yaml", "tempo": "tempo/tempo.yaml",
           "pyroscope": "pyroscope/config.yaml"}


# Once `highAvailability` (issue 14) is on the model, the prod preset turns it on: these cases
# pin it off unless they test it.
HA_OFF = {"highAvailability": False} if "high_availability" in Settings.model_fields else {}


def prod(**raw) -> Settings:
    return load_settings({"alerting": ROUTES, **HA_OFF, **raw}, stack="prod", secret_keys=SECRET_KEYS)


def problems(stack: str = "prod", secret_keys=SECRET_KEYS, **raw) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_settings({"alerting": ROUTES, **HA_OFF, **raw} if stack == "prod" else raw, stack=stack,
                      secret_keys=secret_keys)
    return err.value.problems


# --- cross-field rules and messages ------------------------------------------------------------

def test_exactly_one_kind():
    found = problems(objectStorage={"s3": S3_KEYS, "gcs": {"bucket": "b2b"}})
    assert found == ["observability:objectStorage: set exactly one of s3, gcs, azure (found: s3, gcs)"]
    assert problems(objectStorage={}) == ["observability:objectStorage: set exactly one of s3, gcs, azure (found: none)"]


def test_refused_on_docker_with_one_message():
    found = problems(stack="dev", secret_keys=["objectStorage"], objectStorage={"gcs": {"bucket": "observability"}})
    assert len(found) == 1 and found[0].startswith("observability:objectStorage: is for the kubernetes target")
    assert "set observability:target: kubernetes" in found[0]


@pytest.mark.parametrize("given, missing", [("accessKeyId", "secretAccessKey"), ("secretAccessKey", "accessKeyId")])
def test_s3_key_pair_is_both_or_neither(given, missing):
    s3 = {"bucket": "observability", given: S3_KEYS[given]}
    assert problems(objectStorage={"s3": s3}) == [
        f"observability:objectStorage.s3.{missing}: is required with {given} (set both, or neither to use "
        f"workload identity)"]


def test_credentials_only_as_secrets_and_never_echoed():
    found = problems(secret_keys=["alerting"], objectStorage={"s3": {**S3_KEYS, "secretAccessKey": "wJalrXUtnFEMI"}},
                     grafana={"database": "postgres://g:pw@db/grafana"})
    assert "observability:objectStorage.s3.secretAccessKey: is a credential given in plaintext; set it with " \
           "`pulumi config set --secret --path 'observability:objectStorage.s3.secretAccessKey' <value>`" in found
    assert any(p.startswith("observability:grafana.database: is a credential given in plaintext") for p in found)
    assert not any("wJalrXUtnFEMI" in p or "pw@db" in p for p in found)


@pytest.mark.parametrize("kind, block, key", [
    ("s3", {**S3_KEYS, "secretAccessKey": SECRET + 'has"quote'}, "s3.secretAccessKey"),
    ("s3", {**S3_KEYS, "secretAccessKey": SECRET + "back\\slash"}, "s3.secretAccessKey"),
    ("azure", {"accountName": "obsdata", "container": "observability", "accountKey": SECRET + "new\nline"},
     "azure.accountKey"),
])
def test_credential_that_would_break_the_expanded_config_is_refused_without_echo(kind, block, key):
    found = problems(objectStorage={kind: block})
    assert found == [f"observability:objectStorage.{key}: contains a character the tools cannot read from their "
                     f"expanded config (a quote, a backslash or a control character)"]


def test_insecure_needs_an_endpoint_and_buckets_need_the_tool():
    found = problems(objectStorage={"s3": {**S3_KEYS, "insecure": True}, "buckets": {"tempo": "traces"}},
                     components={"tempo": {"enabled": False}})
    assert found == [
        "observability:objectStorage.s3.insecure: true needs an endpoint (plain HTTP is for an S3-compatible "
        "server you name, never AWS)",
        'observability:objectStorage.buckets.tempo: "traces" is set but tempo is disabled (remove it)',
    ]


@pytest.mark.parametrize("raw, key", [
    ({"objectStorage": {"s3": {**S3_KEYS, "bucket": "Has_Upper"}}}, "objectStorage.s3.bucket"),
    ({"objectStorage": {"s3": {**S3_KEYS, "endpoint": "https://s3.example.com"}}}, "objectStorage.s3.endpoint"),
    ({"objectStorage": {"gcs": {"bucket": "b"}}}, "objectStorage.gcs.bucket"),
    ({"objectStorage": {"azure": {"accountName": "Not-Valid", "container": "observability"}}},
     "objectStorage.azure.accountName"),
    ({"objectStorage": {"gcs": {"bucket": "observability"}, "serviceAccountAnnotations": {"bad key!": "x"}}},
     "objectStorage.serviceAccountAnnotations.bad key!"),
    ({"grafana": {"oidc": {"clientId": "g", "clientSecret": SECRET + "c", "authUrl": "javascript:alert(1)",
                           "tokenUrl": "https://sso/t", "apiUrl": "https://sso/u"}}}, "grafana.oidc.authUrl"),
])
def test_bad_values_name_their_key(raw, key):
    found = problems(**raw)
    assert any(p.startswith(f"observability:{key}:") for p in found), found


def test_high_availability_requires_object_storage_naming_both_ways_out():
    """The rule reads `highAvailability` (issue 14); until that key is on the model the settings
    object carries it by copy, as the merged model will."""
    if "high_availability" in Settings.model_fields:
        with pytest.raises(ConfigError) as err:
            load_settings({"alerting": ROUTES, "highAvailability": True}, stack="prod", secret_keys=SECRET_KEYS)
        found = [p for p in err.value.problems if p.startswith("observability:objectStorage")]
    else:
        found = object_storage_problems(prod().model_copy(update={"high_availability": True}))
    assert found == [
        "observability:objectStorage: is required with observability:highAvailability on, because loki, mimir, "
        "tempo, pyroscope keep their data on one node's disk; configure it (s3, gcs or azure), or set "
        "observability:highAvailability: false to accept a single-node prod"]
    with_store = prod(objectStorage={"gcs": {"bucket": "observability"}}).model_copy(update={"high_availability": True})
    assert object_storage_problems(with_store) == []
    components = {t: {"enabled": False} for t in ("loki", "mimir", "tempo", "pyroscope")}
    none_stateful = prod(components=components).model_copy(update={"high_availability": True})
    assert object_storage_problems(none_stateful) == []


# --- what each tool gets ------------------------------------------------------------------------

def test_one_bucket_with_a_prefix_per_tool_or_a_bucket_of_its_own():
    s = prod(objectStorage={"s3": S3_KEYS, "buckets": {"loki": "observability-logs"}})
    layout = {t: (bucket_for(s, t).bucket, bucket_for(s, t).prefix) for t in CONFIGS}
    assert layout == {"loki": ("observability-logs", None), "mimir": ("observability", "mimir"),
                      "tempo": ("observability", "tempo"), "pyroscope": ("observability", "pyroscope")}
    docs = {t: yaml.safe_load(text) for t, text in ((t, render_all(s)[p]) for t, p in CONFIGS.items())}
    assert docs["loki"]["common"]["storage"]["s3"]["bucketnames"] == "observability-logs"
    assert "storage_config" not in docs["loki"]  # no prefix in a bucket of its own
    assert docs["mimir"]["blocks_storage"]["storage_prefix"] == "mimir"
    assert docs["tempo"]["storage"]["trace"]["s3"]["prefix"] == "tempo"
    assert docs["pyroscope"]["storage"]["prefix"] == "pyroscope"
    shared = prod(objectStorage={"s3": S3_KEYS})
    assert yaml.safe_load(render_all(shared)["loki/loki.yaml"])["storage_config"] == {"object_prefix": "loki"}


def test_credentials_are_references_in_configs_and_secret_env_in_workloads():
    s = prod(objectStorage={"s3": {**S3_KEYS, "endpoint": "minio:9000", "insecure": True}})
    files = render_all(s)
    for tool, path in CONFIGS.items():
        text = files[path]
        assert SECRET not in text and "AKIAEXAMPLE" not in text
        assert f'"${{{SECRET_ACCESS_KEY_ENV}}}"' in text and f'"${{{ACCESS_KEY_ID_ENV}}}"' in text
        (w,) = workloads_of(tool, s)
        assert "-config.expand-env=true" in w.args
        assert set(w.secret_env) == {ACCESS_KEY_ID_ENV, SECRET_ACCESS_KEY_ENV}
        assert not set(w.env) & set(w.secret_env)
        assert 9000 in w.egress_ports


def test_workload_identity_has_no_secret_and_annotates_the_service_account():
    s = prod(objectStorage={"s3": {"bucket": "observability"},
                            "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/obs"}})
    for tool, path in CONFIGS.items():
        (w,) = workloads_of(tool, s)
        assert w.secret_env == {} and w.secret_files == () and "-config.expand-env=true" not in w.args
        assert w.service_account_annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/obs"}
        assert "${" not in render_all(s)[path]
        assert w.egress_ports == (443,)



@pytest.mark.parametrize("overrides, labelled", [
    (OBJECT_STORAGE_AZURE, True),  # Azure without an account key: workload identity
    ({NS + "objectStorage": {"azure": {"accountName": "obsdata", "container": "observability",
                                       "accountKey": SECURE}}}, False),  # a key: no webhook needed
    ({}, False),  # the committed prod stack: S3 through IRSA, the ServiceAccount annotation only
])
def test_azure_workload_identity_labels_the_storage_pods_only(overrides, labelled):
    """Azure's webhook mutates only pods labelled `azure.workload.identity/use: "true"` ("This label
    is **required** in the pod template spec", azure-workload-identity's "Service Account Labels
    and Annotations"); without it the tools' `use_federated_token` finds no token file."""
    # The committed prod stack's example bucket is S3: an Azure store replaces the whole key.
    config = {**stack_file_config("prod"), **overrides}
    run, workloads = run_with_workloads("prod", config=config)
    storage = {w.name for w in workloads if w.name.split("-")[0] in CONFIGS}
    assert {"loki", "mimir", "tempo", "pyroscope"} <= storage
    templates = 0
    for r in run.resources:
        if r.type not in (STS, DEPLOYMENT, DAEMONSET):
            continue
        templates += 1
        pod_labels = r.inputs["spec"]["template"]["metadata"]["labels"]
        expected = labelled and pod_labels["app.kubernetes.io/name"] in storage
        assert (pod_labels.get("azure.workload.identity/use") == "true") == expected, (r.name, pod_labels)
        # Never in the selector: adding the label rolls the pods and replaces no StatefulSet.
        assert "azure.workload.identity/use" not in r.inputs["spec"]["selector"]["matchLabels"]
    assert templates == len(workloads) and len(storage) >= 10  # Pyroscope's seven components included

def test_claims_hold_only_wal_and_cache():
    filesystem, bucket = prod(), prod(objectStorage={"gcs": {"bucket": "observability"}})
    for tool in CONFIGS:
        assert sizing.estimated_bytes(bucket, tool) < sizing.estimated_bytes(filesystem, tool) / 10, tool
    # Prometheus and Grafana keep their volumes as they are.
    assert sizing.volume_size(bucket, "prometheus") == sizing.volume_size(filesystem, "prometheus")
    assert sizing.volume_size(bucket, "grafana") == sizing.volume_size(filesystem, "grafana")


def test_grafana_sso_and_database_as_files_break_glass_admin_kept():
    s = prod(grafana={
        "oidc": {"clientId": "grafana", "clientSecret": SECRET + "client", "authUrl": "https://sso.example.com/a",
                 "tokenUrl": "https://sso.example.com:8443/t", "apiUrl": "https://sso.example.com/u",
                 "allowedGroups": ["sre"], "roleAttributePath": "contains(groups[*], 'sre') && 'Admin' || 'Viewer'"},
        "database": SECRET + "postgres://grafana:pw@db:6543/grafana"})
    (w,) = workloads_of("grafana", s, admin_password="unused-in-this-test")
    env = w.env
    assert env["GF_AUTH_GENERIC_OAUTH_ENABLED"] == "true"
    assert env["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET__FILE"] == "/etc/grafana/secrets/oidc_client_secret"
    assert env["GF_DATABASE_URL__FILE"] == "/etc/grafana/secrets/database_url"
    assert env["GF_AUTH_DISABLE_LOGIN_FORM"] == "false" and env["GF_SECURITY_ADMIN_PASSWORD__FILE"]
    assert env["GF_AUTH_GENERIC_OAUTH_ALLOWED_GROUPS"] == "sre"
    assert not any(SECRET in v for v in env.values())
    assert [f.path for f in w.secret_files] == ["/etc/grafana/secrets/admin_password",
                                                "/etc/grafana/secrets/oidc_client_secret",
                                                "/etc/grafana/secrets/database_url"]
    assert w.egress_ports == (443, 6543, 8443)


# --- key check: env references (positive controls) -------------------------------------------

@pytest.fixture(scope="module")
def s3_render(tmp_path_factory):
    from tests.test_check_keys import render_scenario  # the same render `make check-keys` reads

    return render_scenario("object-storage-s3", tmp_path_factory.mktemp("s3"))


def _manifest_of(root, kind, name):
    for path in sorted((root / "manifests").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return path, doc
    raise AssertionError(f"no {kind} {name}")


def test_check_keys_passes_the_object_storage_render(s3_render):
    assert check_dir(s3_render).problems == []


def test_check_keys_flags_a_reference_without_expand_env(s3_render, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(s3_render, root)
    path, doc = _manifest_of(root, "StatefulSet", "mimir")
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [a for a in container["args"] if a != "-config.expand-env=true"]
    path.write_text(yaml.safe_dump(doc))
    found = check_dir(root).problems
    assert any("(mimir/mimir): -config.expand-env: missing: the config references ${OBJSTORE_ACCESS_KEY_ID}" in p
               for p in found), found


def test_check_keys_flags_an_unset_reference_and_a_misspelled_storage_key(s3_render, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(s3_render, root)
    tempo = root / "tempo/tempo.yaml"
    tempo.write_text(tempo.read_text().replace("${OBJSTORE_SECRET_ACCESS_KEY}", "${OBJSTORE_SECRET_KEY}")
                     .replace("forcepathstyle:", "force_path_style:"))
    found = check_dir(root).problems
    assert any("env OBJSTORE_SECRET_KEY: the config references ${OBJSTORE_SECRET_KEY} but the workload does not set it"
               in p for p in found), found
    assert any(p.startswith("tempo/tempo.yaml: storage.trace.s3.force_path_style: unknown key in Tempo 2.10.8")
               for p in found), found
