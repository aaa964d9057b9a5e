"""The policy pack (policy/): every validator on passing and failing resources, the pack's wiring
through pulumi_policy itself, and the whole program's resources for the committed stacks.

Props are written the way the engine hands them to a policy pack: camelCase names, secrets
unwrapped (`initContainers`, `persistentVolumeClaimRetentionPolicy`, Docker `labels` as
`[{label, value}]`, Docker `envs` as `["K=V"]`).
"""

from __future__ import annotations

import base64
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from policy import validators as v
from policy.validators import PolicyContext, check_all, resolve_context
from tests.harness import run_stack, stack_file_config

ROOT = Path(__file__).resolve().parent.parent
DEV = PolicyContext(environment="dev")
PROD = PolicyContext(environment="prod")


@dataclass
class Opts:
    protect: bool = False
    retain_on_delete: Optional[bool] = None


# --- realistic resource builders ----------------------------------------------------------------

def docker_container(**over: Any) -> dict:
    props = {
        "name": "observability-prometheus",
        "image": "prom/prometheus:v3.8.1",
        "command": ["--config.file=/etc/prometheus/prometheus.yml"],
        "envs": ["TZ=UTC"],
        "memory": 1024,
        "ports": [{"internal": 9090, "external": 9090, "ip": "127.0.0.1", "protocol": "tcp"}],
        "labels": [{"label": "observability.tool", "value": "prometheus"}],
        "networksAdvanced": [{"name": "observability", "aliases": ["prometheus"]}],
        "volumes": [{"volumeName": "observability-prometheus-data", "containerPath": "/prometheus"}],
        "restart": "unless-stopped",
        "user": "65534:65534",
        "readOnly": True,
    }
    props.update(over)
    return props


def docker_image(name: str = "prom/prometheus:v3.8.1") -> dict:
    return {"name": name, "keepLocally": True}


def docker_volume(**over: Any) -> dict:
    return {"name": "observability-prometheus-data", "labels": [], **over}


def k8s_container(name: str = "prometheus", **over: Any) -> dict:
    c = {
        "name": name,
        "image": "prom/prometheus:v3.8.1",
        "args": ["--config.file=/etc/prometheus/prometheus.yml"],
        "ports": [{"name": "http", "containerPort": 9090, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": "/prometheus"}],
    }
    c.update(over)
    return c


def pod_spec(containers=None, init=None, **over: Any) -> dict:
    spec = {
        "securityContext": {"runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534, "runAsNonRoot": True},
        "containers": containers if containers is not None else [k8s_container()],
        "serviceAccountName": "prometheus",
    }
    if init is not None:
        spec["initContainers"] = init
    spec.update(over)
    return spec


def statefulset(spec=None, labels=None, retention=None, claims=True) -> dict:
    labels = labels or {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/part-of": "observability"}
    body = {
        "serviceName": "prometheus",
        "replicas": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        "template": {"metadata": {"labels": labels}, "spec": spec or pod_spec()},
    }
    if claims:
        body["volumeClaimTemplates"] = [{
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}}},
        }]
    if retention is not None:
        body["persistentVolumeClaimRetentionPolicy"] = retention
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "prometheus", "namespace": "observability", "labels": labels},
        "spec": body,
    }


def deployment(spec=None) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "grafana", "namespace": "observability"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": "grafana"}},
                              "spec": spec or pod_spec([k8s_container("grafana", image="grafana/grafana:12.3.1")])}},
    }


def daemonset(spec=None) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "collector-agent", "namespace": "observability"},
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "collector-agent"}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": "collector-agent"}},
                              "spec": spec or pod_spec([k8s_container(
                                  "agent", image="otel/opentelemetry-collector-contrib:0.139.0")])}},
    }


def cronjob(image: str) -> dict:
    return {"metadata": {"name": "backup"}, "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {
        "template": {"spec": pod_spec([k8s_container("backup", image=image)], restartPolicy="OnFailure")}}}}}


def service(kind: str = "ClusterIP", **spec: Any) -> dict:
    return {"metadata": {"name": "grafana", "namespace": "observability"},
            "spec": {"type": kind, "selector": {"app.kubernetes.io/name": "grafana"},
                     "ports": [{"name": "http", "port": 3000, "targetPort": "http"}], **spec}}


def pvc(**meta: Any) -> dict:
    return {"metadata": {"name": "grafana-data", "namespace": "observability", **meta},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}


def configmap(data: Optional[dict] = None, binary: Optional[dict] = None) -> dict:
    props: dict = {"metadata": {"name": "alertmanager-config", "namespace": "observability"}}
    if data is not None:
        props["data"] = data
    if binary is not None:
        props["binaryData"] = binary
    return props


ALERTMANAGER_YML = """\
global:
  resolve_timeout: 5m
route:
  receiver: email
  group_by: [alertname, cluster, service]
receivers:
  - name: pagerduty
    pagerduty_configs:
      - routing_key_file: /etc/alertmanager/secrets/pagerduty-routing-key
        send_resolved: true
  - name: slack
    slack_configs:
      - api_url_file: /etc/alertmanager/secrets/slack-api-url
        channel: '#alerts'
  - name: email
    email_configs:
      - to: team@example.com
        from: alertmanager@example.com
        smarthost: smtp.example.com:587
        auth_username: alertmanager@example.com
        auth_password_file: /etc/alertmanager/secrets/email-password
  - name: webhook
    webhook_configs:
      - url_file: /etc/alertmanager/secrets/webhook-url
"""

PROMETHEUS_YML = """\
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: kubernetes-pods
    kubernetes_sd_configs:
      - role: pod
    authorization:
      type: Bearer
      credentials_file: /var/run/secrets/kubernetes.io/serviceaccount/token
remote_write:
  - url: http://mimir:9009/api/v1/push
"""

GRAFANA_DATASOURCES = """\
apiVersion: 1
datasources:
  - name: Loki
    type: loki
    uid: loki
    url: http://loki:3100
    basicAuthUser: grafana
    secureJsonData:
      basicAuthPassword: $__file{/etc/grafana/secrets/loki-password}
      httpHeaderValue1: "Bearer ${LOKI_TOKEN}"
"""

GRAFANA_INI_SAFE = """\
[server]
http_port = 3000
[security]
admin_password = $__file{/etc/grafana/secrets/admin-password}
[auth.anonymous]
enabled = false
"""

GRAFANA_INI_ANON = """\
[server]
http_port = 3000

[auth.anonymous]
org_role = Viewer
enabled = true

[users]
allow_sign_up = false
"""

FAKE_SLACK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
FAKE_PD_KEY = "0123456789abcdef0123456789abcdef"
FAKE_AWS = "AKIAIOSFODNN7EXAMPLE"
FAKE_PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----\n"

T = v  # short alias for the type constants below

# --- passing fixtures: no rule may report anything ----------------------------------------------

PASSING: dict[str, tuple[str, dict, Opts, PolicyContext]] = {
    "docker container, pinned, limited, loopback": (T.DOCKER_CONTAINER, docker_container(), Opts(), PROD),
    "docker container by image id": (
        T.DOCKER_CONTAINER, docker_container(image="sha256:" + "ab" * 32), Opts(), DEV),
    "docker container, image id not resolved (mocks)": (
        T.DOCKER_CONTAINER, {k: v_ for k, v_ in docker_container().items() if k != "image"}, Opts(), DEV),
    "docker container, image id unknown in preview": (
        T.DOCKER_CONTAINER, docker_container(image=next(iter(v.UNKNOWN_VALUES))), Opts(), DEV),
    "docker container, IPv6 loopback": (
        T.DOCKER_CONTAINER, docker_container(ports=[{"internal": 3000, "external": 3000, "ip": "::1"}]), Opts(), DEV),
    "docker container, unpublished ports": (T.DOCKER_CONTAINER, docker_container(ports=[]), Opts(), DEV),
    "docker container, public port with opt-in": (
        T.DOCKER_CONTAINER, docker_container(ports=[{"internal": 3000, "external": 3000, "ip": "0.0.0.0"}]),
        Opts(), PolicyContext("dev", allow_public_ports=True)),
    "docker container, anonymous Grafana in dev": (
        T.DOCKER_CONTAINER, docker_container(image="grafana/grafana:12.3.1", envs=["GF_AUTH_ANONYMOUS_ENABLED=true"]),
        Opts(), DEV),
    "docker container, anonymous Grafana off in prod": (
        T.DOCKER_CONTAINER, docker_container(image="grafana/grafana:12.3.1", envs=["GF_AUTH_ANONYMOUS_ENABLED=false"]),
        Opts(), PROD),
    "remote image with tag": (T.DOCKER_IMAGE, docker_image(), Opts(), DEV),
    "remote image with registry port and tag": (
        T.DOCKER_IMAGE, docker_image("mirror.example.com:5000/hub/grafana/loki:3.6.3"), Opts(), DEV),
    "remote image by digest": (T.DOCKER_IMAGE, docker_image("grafana/tempo@sha256:" + "0f" * 32), Opts(), DEV),
    "remote image tag and digest": (
        T.DOCKER_IMAGE, docker_image("otel/opentelemetry-collector-contrib:0.139.0@sha256:" + "1a" * 32), Opts(), DEV),
    "docker volume unprotected in dev": (T.DOCKER_VOLUME, docker_volume(), Opts(), DEV),
    "docker volume protected in prod": (T.DOCKER_VOLUME, docker_volume(), Opts(protect=True), PROD),
    "docker volume retained in prod": (T.DOCKER_VOLUME, docker_volume(), Opts(retain_on_delete=True), PROD),
    "statefulset, retained claims, prod": (
        T.K8S_STATEFULSET, statefulset(retention={"whenDeleted": "Retain", "whenScaled": "Retain"}), Opts(), PROD),
    "statefulset, default retention, prod": (T.K8S_STATEFULSET, statefulset(), Opts(), PROD),
    "statefulset, deleted claims in dev": (
        T.K8S_STATEFULSET, statefulset(retention={"whenDeleted": "Delete", "whenScaled": "Delete"}), Opts(), DEV),
    "statefulset with limited init container": (
        T.K8S_STATEFULSET, statefulset(spec=pod_spec(init=[k8s_container(
            "chown", image="busybox:1.37.0", resources={"limits": {"memory": "64Mi", "cpu": "100m"}})])), Opts(), PROD),
    "deployment with Grafana env off": (
        "kubernetes:apps/v1:Deployment",
        deployment(pod_spec([k8s_container("grafana", image="grafana/grafana:12.3.1", env=[
            {"name": "GF_AUTH_ANONYMOUS_ENABLED", "value": "false"},
            {"name": "GF_SECURITY_ADMIN_PASSWORD__FILE", "value": "/etc/grafana/secrets/admin-password"}])])),
        Opts(), PROD),
    "daemonset, no host ports": ("kubernetes:apps/v1:DaemonSet", daemonset(), Opts(), PROD),
    "cronjob pinned": ("kubernetes:batch/v1:CronJob", cronjob("busybox:1.37.0"), Opts(), PROD),
    "service ClusterIP": (T.K8S_SERVICE, service(), Opts(), PROD),
    "headless service": (T.K8S_SERVICE, service(clusterIP="None"), Opts(), PROD),
    "service LoadBalancer with opt-in": (
        T.K8S_SERVICE, service("LoadBalancer"), Opts(), PolicyContext("prod", allow_public_services=True)),
    "pvc protected in prod": (T.K8S_PVC, pvc(), Opts(protect=True), PROD),
    "pvc unprotected in dev": (T.K8S_PVC, pvc(), Opts(), DEV),
    "configmap alertmanager with *_file refs": (T.K8S_CONFIGMAP, configmap({"alertmanager.yml": ALERTMANAGER_YML}),
                                                Opts(), PROD),
    "configmap prometheus with bearer file": (T.K8S_CONFIGMAP, configmap({"prometheus.yml": PROMETHEUS_YML}),
                                              Opts(), PROD),
    "configmap grafana datasources with $__file and ${}": (
        T.K8S_CONFIGMAP, configmap({"datasources.yaml": GRAFANA_DATASOURCES}), Opts(), PROD),
    "configmap grafana.ini anonymous off": (T.K8S_CONFIGMAP, configmap({"grafana.ini": GRAFANA_INI_SAFE}),
                                            Opts(), PROD),
    "configmap grafana.ini anonymous on in dev": (T.K8S_CONFIGMAP, configmap({"grafana.ini": GRAFANA_INI_ANON}),
                                                  Opts(), DEV),
    "configmap binary data without credentials": (
        T.K8S_CONFIGMAP, configmap(binary={"logo.txt": base64.b64encode(b"observability").decode()}), Opts(), PROD),
    "configmap object storage keys as env references (issue 15)": (
        T.K8S_CONFIGMAP,
        configmap({"loki.yaml": 'common:\n  storage:\n    s3:\n      access_key_id: "${OBJSTORE_ACCESS_KEY_ID}"\n'
                                '      secret_access_key: "${OBJSTORE_SECRET_ACCESS_KEY}"\n'
                                '    azure:\n      account_key: "${OBJSTORE_ACCOUNT_KEY}"\n'}),
        Opts(), PROD),
    "unrelated resource": ("random:index/randomPassword:RandomPassword", {"length": 24, "special": False},
                           Opts(), PROD),
}

# --- failing fixtures: (rule, type, props, opts, ctx, expected violations, message fragment) ----

FAILING: dict[str, tuple[str, str, dict, Opts, PolicyContext, int, str]] = {
    "remote image :latest": ("images-pinned", T.DOCKER_IMAGE, docker_image("grafana/grafana:latest"),
                             Opts(), DEV, 1, "floating tag 'latest'"),
    "remote image untagged": ("images-pinned", T.DOCKER_IMAGE, docker_image("grafana/loki"), Opts(), DEV, 1, "no tag"),
    "remote image registry port, untagged": (
        "images-pinned", T.DOCKER_IMAGE, docker_image("mirror.example.com:5000/grafana/loki"), Opts(), DEV, 1, "no tag"),
    "remote image bad digest": ("images-pinned", T.DOCKER_IMAGE, docker_image("grafana/loki@sha256:abc"),
                                Opts(), DEV, 1, "malformed digest"),
    "container untagged": ("images-pinned", T.DOCKER_CONTAINER, docker_container(image="prom/prometheus"),
                           Opts(), DEV, 1, "no tag"),
    "container no image": ("images-pinned", T.DOCKER_CONTAINER, docker_container(image=""),
                           Opts(), DEV, 1, "has no image"),
    "statefulset :latest and untagged init": (
        "images-pinned", T.K8S_STATEFULSET,
        statefulset(spec=pod_spec([k8s_container(image="prom/prometheus:latest")],
                                  init=[k8s_container("chown", image="busybox")])),
        Opts(), DEV, 2, "init container 'chown'"),
    "cronjob floating tag": ("images-pinned", "kubernetes:batch/v1:CronJob", cronjob("busybox:stable"),
                             Opts(), DEV, 1, "floating tag 'stable'"),
    "container no memory": ("memory-limits", T.DOCKER_CONTAINER, {k: v_ for k, v_ in docker_container().items()
                                                                  if k != "memory"}, Opts(), DEV, 1, "no memory limit"),
    "container memory 0": ("memory-limits", T.DOCKER_CONTAINER, docker_container(memory=0), Opts(), DEV, 1,
                           "no memory limit"),
    "k8s container without limits": (
        "memory-limits", "kubernetes:apps/v1:Deployment",
        deployment(pod_spec([k8s_container("grafana", image="grafana/grafana:12.3.1",
                                           resources={"requests": {"memory": "128Mi"}})])),
        Opts(), DEV, 1, "container 'grafana'"),
    "k8s init container without limits, zero limit": (
        "memory-limits", T.K8S_STATEFULSET,
        statefulset(spec=pod_spec([k8s_container(resources={"limits": {"memory": "0"}})],
                                  init=[k8s_container("chown", image="busybox:1.37.0", resources={})])),
        Opts(), DEV, 2, "init container 'chown'"),
    "daemonset without resources": (
        "memory-limits", "kubernetes:apps/v1:DaemonSet",
        daemonset(pod_spec([{"name": "agent", "image": "otel/opentelemetry-collector-contrib:0.139.0"}])),
        Opts(), DEV, 1, "resources.limits.memory"),
    "docker volume unprotected in prod": ("prod-data-protected", T.DOCKER_VOLUME, docker_volume(), Opts(), PROD, 1,
                                          "must be protected"),
    "docker volume labelled prod in a dev context": (
        "prod-data-protected", T.DOCKER_VOLUME,
        docker_volume(labels=[{"label": "observability.environment", "value": "prod"}]), Opts(), DEV, 1,
        "must be protected"),
    "pvc unprotected in prod": ("prod-data-protected", T.K8S_PVC, pvc(), Opts(protect=False), PROD, 1,
                                "PersistentVolumeClaim grafana-data"),
    "statefulset deletes claims in prod": (
        "prod-data-protected", T.K8S_STATEFULSET,
        statefulset(retention={"whenDeleted": "Delete", "whenScaled": "Delete"}), Opts(), PROD, 2, "whenDeleted"),
    "container port without ip": (
        "no-public-exposure", T.DOCKER_CONTAINER, docker_container(ports=[{"internal": 3000, "external": 3000}]),
        Opts(), DEV, 1, "0.0.0.0 (no ip set)"),
    "container port on 0.0.0.0 and a LAN address": (
        "no-public-exposure", T.DOCKER_CONTAINER,
        docker_container(ports=[{"internal": 3000, "external": 3000, "ip": "0.0.0.0"},
                                {"internal": 9090, "external": 9090, "ip": "192.168.1.10"}]),
        Opts(), DEV, 2, "allowPublicPorts"),
    "container host network": ("no-public-exposure", T.DOCKER_CONTAINER,
                               docker_container(ports=[], networkMode="host"), Opts(), DEV, 1, "host networking"),
    "service LoadBalancer": ("no-public-exposure", T.K8S_SERVICE, service("LoadBalancer"), Opts(), PROD, 1,
                             "allowPublicServices"),
    "service NodePort": ("no-public-exposure", T.K8S_SERVICE, service("NodePort"), Opts(), DEV, 1, "NodePort"),
    "service externalIPs": ("no-public-exposure", T.K8S_SERVICE, service(externalIPs=["203.0.113.7"]),
                            Opts(), DEV, 1, "externalIPs"),
    "LoadBalancer with only the docker opt-in": (
        "no-public-exposure", T.K8S_SERVICE, service("LoadBalancer"), Opts(),
        PolicyContext("prod", allow_public_ports=True), 1, "LoadBalancer"),
    "daemonset hostPort and hostNetwork": (
        "no-public-exposure", "kubernetes:apps/v1:DaemonSet",
        daemonset(pod_spec([k8s_container("agent", image="otel/opentelemetry-collector-contrib:0.139.0",
                                          ports=[{"containerPort": 4317, "hostPort": 4317}])], hostNetwork=True)),
        Opts(), DEV, 2, "hostPort 4317"),
    "configmap slack webhook": ("no-configmap-credentials", T.K8S_CONFIGMAP,
                                configmap({"alertmanager.yml": f"receivers:\n- name: s\n  slack_configs:\n"
                                                               f"  - api_url: {FAKE_SLACK}\n"}),
                                Opts(), DEV, 2, "Slack webhook URL"),
    "configmap global slack_api_url": ("no-configmap-credentials", T.K8S_CONFIGMAP,
                                       configmap({"alertmanager.yml": "global:\n  slack_api_url: https://chat.example.com/hook/abc\n"}),
                                       Opts(), DEV, 1, "`slack_api_url`"),
    "configmap pagerduty routing key": ("no-configmap-credentials", T.K8S_CONFIGMAP,
                                        configmap({"alertmanager.yml": f"pagerduty_configs:\n- routing_key: {FAKE_PD_KEY}\n"}),
                                        Opts(), DEV, 2, "PagerDuty integration key"),
    "configmap smtp password": ("no-configmap-credentials", T.K8S_CONFIGMAP,
                                configmap({"alertmanager.yml": "email_configs:\n- auth_password: hunter2hunter2\n"}),
                                Opts(), DEV, 1, "`auth_password`"),
    "configmap grafana admin password in ini": ("no-configmap-credentials", T.K8S_CONFIGMAP,
                                                configmap({"grafana.ini": "[security]\nadmin_password = s3cr3t!\n"}),
                                                Opts(), DEV, 1, "`admin_password`"),
    "configmap camelCase datasource password (JSON)": (
        "no-configmap-credentials", T.K8S_CONFIGMAP,
        configmap({"ds.json": '{"secureJsonData": {"basicAuthPassword": "plaintext-pass"}}'}),
        Opts(), DEV, 1, "`basicAuthPassword`"),
    "configmap bearer token": ("no-configmap-credentials", T.K8S_CONFIGMAP,
                               configmap({"headers": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abcdefghij"}),
                               Opts(), DEV, 1, "bearer token"),
    "configmap AWS keys": ("no-configmap-credentials", T.K8S_CONFIGMAP,
                           configmap({"loki.yaml": f"storage:\n  s3:\n    access_key_id: {FAKE_AWS}\n"
                                                   f"    secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"}),
                           Opts(), DEV, 2, "AWS access key id"),
    "configmap azure account key (Loki/Mimir/Pyroscope)": (
        "no-configmap-credentials", T.K8S_CONFIGMAP,
        configmap({"mimir.yaml": "blocks_storage:\n  azure:\n    account_name: obsdata\n"
                                 "    account_key: c2VjcmV0LWtleS1ieXRlcw==\n"}),
        Opts(), DEV, 1, "`account_key`"),
    "configmap azure storage account key and S3 secret_key (Tempo)": (
        "no-configmap-credentials", T.K8S_CONFIGMAP,
        configmap({"tempo.yaml": "storage:\n  trace:\n    azure:\n      storage_account_key: c2VjcmV0\n"
                                 "    s3:\n      secret_key: wJalrXUtnFEMIEXAMPLE\n"}),
        Opts(), DEV, 2, "`storage_account_key`"),
    "configmap private key": ("no-configmap-credentials", T.K8S_CONFIGMAP, configmap({"tls.key": FAKE_PEM}),
                              Opts(), DEV, 1, "private key"),
    "configmap URL with credentials": ("no-configmap-credentials", T.K8S_CONFIGMAP,
                                       configmap({"prometheus.yml": "remote_write:\n- url: https://user:pa55@metrics.example.com/push\n"}),
                                       Opts(), DEV, 1, "credentials in a URL"),
    "configmap binaryData with webhook": (
        "no-configmap-credentials", T.K8S_CONFIGMAP,
        configmap(binary={"am.yml": base64.b64encode(f"url: {FAKE_SLACK}\n".encode()).decode()}),
        Opts(), DEV, 1, "Slack webhook URL"),
    "grafana container anonymous in prod": (
        "grafana-anonymous-off-in-prod", T.DOCKER_CONTAINER,
        docker_container(image="grafana/grafana:12.3.1", envs=["GF_AUTH_ANONYMOUS_ENABLED=true"]),
        Opts(), PROD, 1, "GF_AUTH_ANONYMOUS_ENABLED=true"),
    "grafana container anonymous, labelled prod": (
        "grafana-anonymous-off-in-prod", T.DOCKER_CONTAINER,
        docker_container(image="grafana/grafana:12.3.1", envs=["GF_AUTH_ANONYMOUS_ENABLED=1"],
                         labels=[{"label": "observability.environment", "value": "prod"}]),
        Opts(), DEV, 1, "GF_AUTH_ANONYMOUS_ENABLED=1"),
    "grafana deployment anonymous in prod": (
        "grafana-anonymous-off-in-prod", "kubernetes:apps/v1:Deployment",
        deployment(pod_spec([k8s_container("grafana", image="grafana/grafana:12.3.1",
                                           env=[{"name": "GF_AUTH_ANONYMOUS_ENABLED", "value": "True"}])])),
        Opts(), PROD, 1, "container 'grafana'"),
    "grafana.ini anonymous in prod": ("grafana-anonymous-off-in-prod", T.K8S_CONFIGMAP,
                                      configmap({"grafana.ini": GRAFANA_INI_ANON}), Opts(), PROD, 1,
                                      "[auth.anonymous]"),
}

RULE_NAMES = {rule.name for rule in v.RULES}


@pytest.mark.parametrize("name", sorted(PASSING))
def test_passing_resource_has_no_violation(name):
    typ, props, opts, ctx = PASSING[name]
    assert check_all(typ, props, opts, ctx) == []


@pytest.mark.parametrize("name", sorted(FAILING))
def test_failing_resource_is_caught_by_its_rule(name):
    rule, typ, props, opts, ctx, expected, fragment = FAILING[name]
    assert rule in RULE_NAMES
    found = check_all(typ, props, opts, ctx)
    mine = [msg for r, msg in found if r == rule]
    assert len(mine) == expected, found
    assert any(fragment in msg for msg in mine), mine
    # Each failing fixture breaks only the rule it is about.
    assert {r for r, _ in found} == {rule}, found


def test_every_rule_has_passing_and_failing_fixtures():
    assert {f[0] for f in FAILING.values()} == RULE_NAMES


def test_messages_never_echo_a_credential():
    for name, (rule, typ, props, opts, ctx, _, _) in FAILING.items():
        if rule == "no-configmap-credentials":
            for _, msg in check_all(typ, props, opts, ctx):
                for secret in (FAKE_SLACK, FAKE_PD_KEY, FAKE_AWS, "hunter2", "s3cr3t", "plaintext-pass", "pa55"):
                    assert secret not in msg, (name, msg)


def test_failing_fixture_summary(capsys):
    caught = sum(len(check_all(typ, props, opts, ctx)) for _, typ, props, opts, ctx, _, _ in FAILING.values())
    assert caught == sum(f[5] for f in FAILING.values())
    with capsys.disabled():
        print(f"\npolicy: {caught} violations caught in {len(FAILING)} failing fixtures "
              f"({len(PASSING)} passing fixtures clean, {len(RULE_NAMES)} rules)")


# --- individual helpers -------------------------------------------------------------------------

@pytest.mark.parametrize("ref,pinned", [
    ("prom/prometheus:v3.8.1", True), ("grafana/grafana:12.3.1", True), ("localhost:5000/x:1.0", True),
    ("x@sha256:" + "a" * 64, True), ("sha256:" + "b" * 64, True),
    ("prom/prometheus", False), ("prom/prometheus:latest", False), ("localhost:5000/x", False),
    ("x:", False), ("x:LATEST", False), (None, False), ("", False),
])
def test_image_pinning(ref, pinned):
    assert (v.image_problem(ref) is None) is pinned


@pytest.mark.parametrize("address,loopback", [
    ("127.0.0.1", True), ("127.0.0.53", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), (None, False), ("10.0.0.5", False), ("example.com", False),
])
def test_loopback(address, loopback):
    assert v.is_loopback(address) is loopback


def test_unknown_sentinels_match_pulumi_policy():
    from pulumi_policy import proxy

    names = [n for n in dir(proxy) if n.startswith("UNKNOWN_") and n.endswith("_VALUE")]
    assert {getattr(proxy, n) for n in names} == set(v.UNKNOWN_VALUES)


# --- how "prod" and the opt-ins are decided -----------------------------------------------------

def test_context_from_stack_config_and_name():
    assert resolve_context(stack="dev").environment == "dev"
    assert resolve_context(stack="prod").environment == "prod"
    # A stack the policy cannot place gets prod's stricter rules.
    assert resolve_context(stack="staging").environment == "prod"
    assert resolve_context(stack=None).environment == "prod"
    assert resolve_context({}, {"observability:environment": "prod"}, "payments-prod").environment == "prod"
    assert resolve_context({}, {"environment": "dev"}, "prod").environment == "dev"


def test_policy_config_environment_wins():
    assert resolve_context({"environment": "prod"}, {"environment": "dev"}, "dev").environment == "prod"
    assert resolve_context({"environment": "auto"}, {"environment": "dev"}, "prod").environment == "dev"


def test_opt_ins_from_stack_settings_json_or_dict():
    ctx = resolve_context({}, {"observability:docker": '{"allowPublicPorts": true, "bindAddress": "0.0.0.0"}',
                               "observability:kubernetes": {"allowPublicServices": True}}, "dev")
    assert ctx.allow_public_ports and ctx.allow_public_services
    ctx = resolve_context({}, {"observability:docker": '{"bindAddress": "0.0.0.0"}', "kubernetes": "not json"}, "dev")
    assert not ctx.allow_public_ports and not ctx.allow_public_services


def test_policy_config_opt_in_overrides_stack_both_ways():
    stack = {"docker": {"allowPublicPorts": True}, "kubernetes": {"allowPublicServices": False}}
    ctx = resolve_context({"allowPublicPorts": False, "allowPublicServices": True}, stack, "dev")
    assert ctx.allow_public_ports is False and ctx.allow_public_services is True


# --- the pack itself, through pulumi_policy -----------------------------------------------------

def _pack():
    return runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="policy_pack")


def _analyze(policy, typ, props, protect=False, config=None):
    from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
    from pulumi_policy.proxy import unknown_checking_proxy

    opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    args = ResourceValidationArgs(typ, unknown_checking_proxy(props), f"urn:pulumi:t::p::{typ}::r", "r",
                                  opts, None, config)
    messages: list[str] = []
    assert policy.validate(args, lambda msg, urn=None: messages.append(msg)) is None
    return messages


def test_pack_declares_every_rule_as_mandatory_with_valid_config_schema():
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    pack = _pack()
    policies = pack["POLICIES"]
    assert [p.name for p in policies] == [r.name for r in v.RULES]
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in policies)
    info = _PolicyAnalyzerServicer("observability-stack", "0.1.0", policies,
                                   EnforcementLevel.MANDATORY).GetAnalyzerInfo(None, None)
    assert len(info.policies) == len(v.RULES)
    text = (ROOT / "policy" / "PulumiPolicy.yaml").read_text()
    assert "runtime:" in text and "python" in text
    reqs = (ROOT / "policy" / "requirements.txt").read_text()
    assert "pulumi-policy==1.21.0" in reqs


def test_pack_reports_through_pulumi_policy_and_reads_policy_config():
    policies = {p.name: p for p in _pack()["POLICIES"]}
    # Proxied engine props, an unknown image id: no exception, nothing reported for the image.
    unknown = next(iter(v.UNKNOWN_VALUES))
    assert _analyze(policies["images-pinned"], v.DOCKER_CONTAINER, docker_container(image=unknown)) == []
    assert len(_analyze(policies["images-pinned"], v.DOCKER_IMAGE, docker_image("grafana/grafana:latest"))) == 1
    # The stack name is unknown outside an engine run, so the unplaced stack counts as prod...
    assert len(_analyze(policies["prod-data-protected"], v.K8S_PVC, pvc())) == 1
    assert _analyze(policies["prod-data-protected"], v.K8S_PVC, pvc(), protect=True) == []
    # ...unless the policy config says dev.
    assert _analyze(policies["prod-data-protected"], v.K8S_PVC, pvc(), config={"environment": "dev"}) == []
    assert _analyze(policies["no-public-exposure"], v.K8S_SERVICE, service("LoadBalancer"),
                    config={"allowPublicServices": True}) == []
    assert len(_analyze(policies["no-public-exposure"], v.K8S_SERVICE, service("LoadBalancer"))) == 1


# --- every resource the program declares for the committed stacks --------------------------------

WHOLE_PROGRAM = {
    "dev": ("dev", None),
    "prod": ("prod", None),
    "payments-prod": ("payments-prod", None),
    # The other target for each preset: what a user gets by switching `target`.
    "prod-on-docker": ("prod", {"observability:target": "docker"}),
    "dev-on-kubernetes": ("dev", {"observability:target": "kubernetes"}),
}
# Resource types the rules look at; a run that declares none of them proves nothing.
WATCHED = {v.DOCKER_CONTAINER, v.DOCKER_IMAGE, v.DOCKER_VOLUME, v.K8S_SERVICE, v.K8S_CONFIGMAP, v.K8S_PVC,
           *v._POD_SPEC_PATHS}


@dataclass
class EngineOpts:
    """What a policy pack gets from the engine: `protect`, never `retain_on_delete`."""
    protect: bool


def _checked(run, ctx):
    return [(r, rule, msg) for r in run.resources
            for rule, msg in check_all(r.type, r.inputs, EngineOpts(bool(r.protect)), ctx)]


def _stack_run(stack, overrides):
    run = run_stack(stack, overrides)
    assert run.error is None, run.error
    config = {**stack_file_config(stack), **(overrides or {})}
    return run, resolve_context({}, config, stack)


@pytest.mark.parametrize("name", sorted(WHOLE_PROGRAM))
def test_every_declared_resource_passes_the_pack(name, capsys):
    stack, overrides = WHOLE_PROGRAM[name]
    run, ctx = _stack_run(stack, overrides)
    watched = [r for r in run.resources if r.type in WATCHED]
    assert len(watched) >= 8, f"{name}: only {run.types()} declared"
    violations = [(r.type, r.name, rule, msg) for r, rule, msg in _checked(run, ctx)]
    assert violations == [], "\n".join(map(str, violations))
    with capsys.disabled():
        print(f"\npolicy: {name} ({ctx.environment}): {len(run.resources)} resources, "
              f"{len(watched)} of the watched types, 0 violations")


def _caught(run, ctx, rule):
    return [m for _, name, m in _checked(run, ctx) if name == rule]


def test_whole_program_opt_ins_and_prod_are_enforced(capsys):
    """The program's own settings turn into violations when the policy config withholds them."""
    # Dev with public Docker ports opted in: clean under the stack's settings, caught when the
    # policy config forbids public ports.
    overrides = {"observability:docker": {"bindAddress": "0.0.0.0", "allowPublicPorts": True}}
    run, ctx = _stack_run("dev", overrides)
    assert ctx.allow_public_ports
    assert _checked(run, ctx) == []
    strict = resolve_context({"allowPublicPorts": False}, {**stack_file_config("dev"), **overrides}, "dev")
    ports = _caught(run, strict, "no-public-exposure")
    published = sum(len(r.inputs.get("ports") or []) for r in run.of_type(v.DOCKER_CONTAINER))
    assert published and len(ports) == published, ports
    # Prod with LoadBalancer Services opted in: the same, on Kubernetes.
    overrides = {"observability:kubernetes": {"serviceType": "LoadBalancer", "allowPublicServices": True}}
    run, ctx = _stack_run("prod", overrides)
    assert ctx.allow_public_services
    assert _checked(run, ctx) == []
    strict = resolve_context({"allowPublicServices": False}, {**stack_file_config("prod"), **overrides}, "prod")
    services = _caught(run, strict, "no-public-exposure")
    assert services and all("LoadBalancer" in m for m in services), services
    # Dev (volumes not protected) judged as prod: every data volume is caught, on both targets.
    as_prod = resolve_context({"environment": "prod"}, stack_file_config("dev"), "dev")
    volumes = 0
    for target, kind in (("docker", v.DOCKER_VOLUME), ("kubernetes", v.K8S_PVC)):
        run, _ = _stack_run("dev", {"observability:target": target})
        data = run.of_type(kind)
        assert data and not any(r.protect for r in data)
        caught = _caught(run, as_prod, "prod-data-protected")
        assert len(caught) == len(data), caught
        volumes += len(caught)
    with capsys.disabled():
        print(f"\npolicy: whole program: {len(ports)} public ports, {len(services)} public services and "
              f"{volumes} unprotected volumes caught when the policy config withholds the opt-in or says prod")
