"""The one catalogue of named scenarios the tests run over; every name means one config.

- `scenarios()`: stacks the program runs (goldens, audits, key check, end to end): committed
  stack files plus a few that exercise edges, each (stack name, stack-file style config);
  `secure:` leaves become TEST-SECRET-<n> strings when run (tooling/mockrun.engine_config),
  exactly as the engine would hand them over.
- `KUBERNETES`: Kubernetes-target stacks (committed file + overrides merged key by key) for the
  backend and manifest tests.
- `SETTINGS_CASES`: settings-only cases for the render/validation tests of Prometheus,
  Alertmanager, Grafana and the collector.
`settings_for(name)` loads any of them the way the program loads stack config.
"""

from __future__ import annotations

from observability_stack.components.registry import NAMES
from observability_stack.config import Settings, load_settings
from tooling.mockrun import engine_config, stack_file_config
from observability_stack.config.loader import NAMESPACE, parse_raw

NS = NAMESPACE + ":"
SECURE = {"secure": "v1:test"}

ALL_RECEIVER_KINDS = {
    NS + "alerting": {
        "receivers": [
            {"name": "pagerduty", "pagerduty": {"routingKey": SECURE}},
            {"name": "slack", "slack": {"apiUrl": SECURE, "channel": "#alerts"}},
            {"name": "email", "email": {"to": "team@example.com", "from": "am@example.com",
                                        "smarthost": "smtp.example.com:587", "authPassword": SECURE}},
            {"name": "webhook", "webhook": {"url": SECURE}},
            {"name": "everything", "slack": {"apiUrl": SECURE}, "pagerduty": {"routingKey": SECURE},
             "email": {"to": "oncall@example.com", "from": "am@example.com", "smarthost": "smtp.example.com:25",
                       "requireTls": False},
             "webhook": {"url": SECURE}},
        ],
        "routes": {"critical": "pagerduty", "warning": "slack", "default": "email"},
    },
    NS + "teams": [{"name": "search", "receiver": "everything"},
                   {"name": "ml", "receiver": {"webhook": {"url": SECURE}}}],
}

ONLY_PROMETHEUS_AND_ALERTMANAGER = {
    NS + "components": {t: {"enabled": False} for t in ("grafana", "loki", "tempo", "mimir", "pyroscope", "collector")},
}


# Object storage, one scenario per kind (issue 15): an S3-compatible server with a key pair, a
# bucket of Loki's own and Grafana SSO + external database; GCS with a service account key; Azure
# with workload identity (no key, ServiceAccount annotations).
OBJECT_STORAGE_S3 = {
    NS + "objectStorage": {
        "s3": {"endpoint": "minio.storage.svc:9000", "region": "eu-west-1", "bucket": "observability",
               "accessKeyId": "AKIAEXAMPLE", "secretAccessKey": SECURE, "insecure": True},
        "buckets": {"loki": "observability-logs"},
    },
    NS + "grafana": {
        "adminPassword": SECURE,
        "oidc": {"clientId": "grafana", "clientSecret": SECURE,
                 "authUrl": "https://sso.example.com/authorize", "tokenUrl": "https://sso.example.com/token",
                 "apiUrl": "https://sso.example.com/userinfo", "allowedGroups": ["platform", "sre"],
                 "roleAttributePath": "contains(groups[*], 'sre') && 'Admin' || 'Viewer'"},
        "database": SECURE,
    },
}
OBJECT_STORAGE_GCS = {NS + "objectStorage": {"gcs": {"bucket": "observability", "serviceAccountKey": SECURE}}}
OBJECT_STORAGE_AZURE = {NS + "objectStorage": {
    "azure": {"accountName": "obsdata", "container": "observability"},
    "serviceAccountAnnotations": {"azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000000"},
}}


# The replicated object-storage scenarios below, by the `objectStorage` kind each configures.
OBJECT_STORAGE_KINDS = {"object-storage-s3": "s3", "object-storage-gcs": "gcs", "object-storage-azure": "azure"}


def scenarios() -> dict[str, tuple[str, dict]]:
    prod = stack_file_config("prod")
    return {
        "dev": ("dev", stack_file_config("dev")),
        "prod": ("prod", prod),
        "team-overlay": ("payments-prod", stack_file_config("payments-prod")),
        "minimal": ("dev", {**stack_file_config("dev"), **ONLY_PROMETHEUS_AND_ALERTMANAGER}),
        "receivers": ("dev", {**stack_file_config("dev"), **ALL_RECEIVER_KINDS}),
        "object-storage-s3": ("prod", {**prod, **OBJECT_STORAGE_S3}),
        "object-storage-gcs": ("prod", {**prod, **OBJECT_STORAGE_GCS}),
        "object-storage-azure": ("prod", {**prod, **OBJECT_STORAGE_AZURE}),
        # The object-storage-* scenarios above run the prod preset (highAvailability on: Loki and
        # Mimir replicated); this one keeps one instance of each on the bucket.
        "object-storage-single-node": ("prod", {**prod, **OBJECT_STORAGE_GCS, NS + "highAvailability": False}),
    }


def settings_for(name: str) -> Settings:
    if name in SETTINGS_CASES:
        return _settings_case(name)
    stack, config = scenarios()[name]
    values, secret_keys = engine_config(config)
    raw = {k[len(NS):]: parse_raw(v) for k, v in values.items() if k.startswith(NS)}
    return load_settings(raw, stack=stack, secret_keys=secret_keys)


# --- Kubernetes-target stacks: (committed stack file, overrides) --------------------------------

_PROD_WITHOUT_BACKENDS = {NS + "components": {t: {"enabled": False} for t in ("loki", "tempo", "mimir", "pyroscope", "collector", "grafana")}}
_PUBLIC = {NS + "kubernetes": {
    "namespace": "obs-public", "storageClass": "fast-ssd", "serviceType": "NodePort", "allowPublicServices": True,
    "ingress": {"enabled": True, "host": "grafana.example.com", "className": "nginx", "tlsSecret": "grafana-tls"},
}}
# Everything a routine change touches: retention (so sizes), sampling and receivers.
CHANGED = {
    NS + "retention": {"metrics": "90d", "logs": "60d", "traces": "30d", "profiles": "30d"},
    NS + "sampling": {"traces": 0.25, "keepErrors": True, "slowTraceThreshold": "2s"},
    NS + "alerting": {
        "receivers": [
            {"name": "pagerduty", "pagerduty": {"routingKey": {"secure": "x"}}},
            {"name": "slack", "slack": {"apiUrl": {"secure": "x"}, "channel": "#ops"}},
            {"name": "hook", "webhook": {"url": {"secure": "x"}}},
        ],
        "routes": {"critical": "pagerduty", "warning": "slack", "default": "hook"},
    },
}
KUBERNETES: dict[str, tuple[str, dict]] = {
    "prod": ("prod", {}),
    "team-overlay": ("payments-prod", {}),
    "prod-minimal": ("prod", _PROD_WITHOUT_BACKENDS),
    "public": ("prod", _PUBLIC),
    "changed": ("prod", CHANGED),
    "unprotected": ("prod", {NS + "protectData": False}),
    # Object storage with a key pair, Grafana SSO and an external database (two Grafana replicas).
    "sso-database": ("prod", OBJECT_STORAGE_S3),
}


# --- settings-only cases ---------------------------------------------------------------------


# Stand-ins for decrypted `secure:` values; no rendered file may contain this prefix.
SECRET = "TEST-SECRET-"
ALL_TOOLS = NAMES


def _receivers() -> list[dict]:
    return [
        {"name": "pagerduty", "pagerduty": {"routingKey": SECRET + "routing-key"}},
        {"name": "slack", "slack": {"apiUrl": SECRET + "https://slack.invalid/hook", "channel": "#alerts"}},
        {"name": "email", "email": {"to": "team@example.com", "from": "am@example.com",
                                    "smarthost": "smtp.example.com:587", "authPassword": SECRET + "smtp"}},
    ]


# Prod runs highAvailability, which needs object storage for the storage backends (issue 15's
# rule): the committed prod stacks' example bucket, through workload identity (no key).
EXAMPLE_BUCKET = {"s3": {"region": "eu-west-1", "bucket": "example-observability"}}


def _settings_case(name: str) -> Settings:
    """A settings-only case, loaded as the program loads stack config (credentials given as
    SECRET-prefixed strings under keys marked secret)."""
    routes = {"critical": "pagerduty", "warning": "slack", "default": "email"}
    if name == "defaults-dev":
        return load_settings({}, stack="dev", secret_keys=[])
    if name == "prod-receivers":
        return load_settings({"alerting": {"receivers": _receivers(), "routes": routes},
                              "objectStorage": EXAMPLE_BUCKET},
                             stack="prod", secret_keys=["alerting"])
    if name == "teams":
        teams = [
            {"name": "payments",
             "receiver": {"slack": {"apiUrl": SECRET + "payments-hook", "channel": "#payments"}},
             "alertRules": [
                 {"alert": "PaymentsFailing", "expr": "sum(rate(payments_failed_total[5m])) > 1",
                  "for": "5m", "labels": {"severity": "critical"},
                  "annotations": {"summary": "Payments are failing"}},
                 {"alert": "PaymentsSlow", "expr": "payments_latency_seconds > 2",
                  "labels": {"severity": "warning", "team": "payments"}},
             ],
             "scrapeTargets": [{"job": "payments-api", "targets": ["payments-api.payments.svc:8000"],
                                "metricsPath": "/internal/metrics", "scrapeInterval": "5s"}]},
            {"name": "checkout", "receiver": "slack",
             "scrapeTargets": [{"job": "checkout-api", "targets": ["checkout:8000", "checkout-2:8000"]}]},
        ]
        return load_settings({"environment": "prod", "alerting": {"receivers": _receivers(), "routes": routes},
                              "teams": teams, "objectStorage": EXAMPLE_BUCKET},
                             stack="payments-prod", secret_keys=["alerting", "teams"])
    if name == "prometheus-only":
        components = {t: {"enabled": t in ("prometheus", "alertmanager")} for t in ALL_TOOLS}
        return load_settings({"components": components, "retention": {"metrics": "10d"}},
                             stack="dev", secret_keys=[])
    if name == "receiver-edges":
        receivers = _receivers() + [
            {"name": "pd-eu", "pagerduty": {"routingKey": SECRET + "eu-key", "url": "http://sink:8080/v2/enqueue"}},
            {"name": "mail-noauth", "email": {"to": "ops@example.com", "from": "am@example.com",
                                              "smarthost": "mail:25", "requireTls": False}},
            {"name": "mail-user", "email": {"to": "ops@example.com", "from": "am@example.com",
                                            "smarthost": "mail:587", "authUsername": "relay",
                                            "authPassword": SECRET + "relay"}},
            {"name": "hook", "webhook": {"url": SECRET + "http://sink:8080/hook?token=x"}},
            {"name": "everything", "slack": {"apiUrl": SECRET + "s"}, "pagerduty": {"routingKey": SECRET + "p"},
             "email": {"to": "a@example.com", "from": "b@example.com", "smarthost": "mail:25"},
             "webhook": {"url": SECRET + "w"}},
            {"name": "blackhole"},
        ]
        return load_settings({"alerting": {"receivers": receivers, "routes": {**routes, "default": "blackhole"}}},
                             stack="dev", secret_keys=["alerting"])
    raise KeyError(name)


# Cases for the Prometheus/Alertmanager render and validation tests.
SETTINGS_CASES = ("defaults-dev", "prod-receivers", "teams", "prometheus-only", "receiver-edges")
