"""Hostile stack config: every case stops the real program (under mocks) before any resource is
registered, with a message naming the offending key, and never with a traceback."""

import pytest

from tests.harness import run_program

NS = "observability:"
OK_PROD_ALERTING = {
    "receivers": [{"name": "pd", "pagerduty": {"routingKey": {"secure": "x"}}},
                  {"name": "chat", "slack": {"apiUrl": {"secure": "x"}}}],
    "routes": {"critical": "pd", "warning": "chat"},
}
RECEIVER_SLACK = {"name": "s", "slack": {"apiUrl": {"secure": "x"}}}


def team(**fields):
    return {NS + "teams": [{"name": "payments", "receiver": "null", **fields}]}


# (case id, stack, config, key the message must name)
CORPUS = [
    # wrong types
    ("retention-not-object", "dev", {NS + "retention": "7d"}, "retention"),
    ("sampling-not-number", "dev", {NS + "sampling": {"traces": "lots"}}, "sampling.traces"),
    ("keep-errors-not-bool", "dev", {NS + "sampling": {"keepErrors": "maybe"}}, "sampling.keepErrors"),
    ("teams-not-list", "dev", {NS + "teams": {"name": "a"}}, "teams"),
    ("receivers-not-list", "dev", {NS + "alerting": {"receivers": "slack"}}, "alerting.receivers"),
    ("protect-not-bool", "dev", {NS + "protectData": "perhaps"}, "protectData"),
    ("components-enabled-not-bool", "dev", {NS + "components": {"loki": {"enabled": "yes please"}}}, "components.loki.enabled"),
    ("ingest-negative", "dev", {NS + "ingest": {"logGbPerDay": -1}}, "ingest.logGbPerDay"),
    ("scrape-targets-not-list", "dev", team(scrapeTargets={"job": "x"}), "teams[0].scrapeTargets"),
    ("alert-rules-not-list", "dev", team(alertRules="HighErrorRate"), "teams[0].alertRules"),
    # unknown keys
    ("unknown-top-level", "dev", {NS + "retentoin": {"logs": "1d"}}, "retentoin"),
    ("unknown-retention-key", "dev", {NS + "retention": {"log": "1d"}}, "retention.log"),
    ("unknown-sampling-key", "dev", {NS + "sampling": {"ratio": 0.1}}, "sampling.ratio"),
    ("unknown-component", "dev", {NS + "components": {"jaeger": {"enabled": True}}}, "components.jaeger"),
    ("unknown-receiver-kind", "dev", {NS + "alerting": {"receivers": [{"name": "x", "teams": {}}]}}, "alerting.receivers[0].teams"),
    ("unknown-team-key", "dev", team(owner="bob"), "teams[0].owner"),
    ("unknown-slack-key", "dev", {NS + "alerting": {"receivers": [{"name": "s", "slack": {"apiUrl": {"secure": "x"}, "chanel": "#a"}}]}}, "alerting.receivers[0].slack.chanel"),
    # bad durations
    ("duration-unit", "dev", {NS + "retention": {"logs": "30x"}}, "retention.logs"),
    ("duration-zero", "dev", {NS + "retention": {"traces": "0d"}}, "retention.traces"),
    ("duration-negative", "dev", {NS + "retention": {"metrics": "-1d"}}, "retention.metrics"),
    ("duration-go-style", "dev", {NS + "retention": {"profiles": "1.5h"}}, "retention.profiles"),
    ("duration-order", "dev", {NS + "retention": {"logs": "1h1d"}}, "retention.logs"),
    ("duration-empty", "dev", {NS + "retention": {"logs": ""}}, "retention.logs"),
    ("duration-number", "dev", {NS + "retention": {"logs": 7}}, "retention.logs"),
    ("slow-threshold", "dev", {NS + "sampling": {"slowTraceThreshold": "soon"}}, "sampling.slowTraceThreshold"),
    ("group-wait", "dev", {NS + "alerting": {"groupWait": "10"}}, "alerting.groupWait"),
    ("rule-for", "dev", team(alertRules=[{"alert": "A", "expr": "up == 0", "for": "5 minutes"}]), "teams[0].alertRules[0].for"),
    # bad ratios and amounts
    ("ratio-above-one", "dev", {NS + "sampling": {"traces": 1.5}}, "sampling.traces"),
    ("ratio-negative", "dev", {NS + "sampling": {"traces": -0.01}}, "sampling.traces"),
    ("ratio-nan", "dev", {NS + "sampling": {"traces": "NaN"}}, "sampling.traces"),
    ("memory-garbage", "dev", {NS + "components": {"loki": {"resources": {"limits": {"memory": "lots"}}}}}, "components.loki.resources.limits.memory"),
    ("cpu-garbage", "dev", {NS + "components": {"tempo": {"resources": {"requests": {"cpu": "fast"}}}}}, "components.tempo.resources.requests.cpu"),
    ("storage-millibytes", "dev", {NS + "components": {"mimir": {"storage": {"size": "500m"}}}}, "components.mimir.storage.size"),
    ("image-latest", "dev", {NS + "components": {"grafana": {"version": "latest"}}}, "components.grafana.version"),
    ("image-tag-injection", "dev", {NS + "components": {"grafana": {"version": "12.3.1; rm -rf /"}}}, "components.grafana.version"),
    # receivers and routes
    ("route-undefined", "dev", {NS + "alerting": {"routes": {"critical": "pager"}}}, "alerting.routes.critical"),
    ("team-receiver-undefined", "dev", {NS + "teams": [{"name": "a", "receiver": "ghost"}]}, "teams[0].receiver"),
    ("receiver-duplicate", "dev", {NS + "alerting": {"receivers": [{"name": "null"}, {"name": "null"}]}}, "alerting.receivers[1].name"),
    ("receiver-name-unsafe", "dev", {NS + "alerting": {"receivers": [{"name": "a b"}]}}, "alerting.receivers[0].name"),
    ("email-missing-to", "dev", {NS + "alerting": {"receivers": [{"name": "m", "email": {"from": "a@b", "smarthost": "s:25"}}]}}, "alerting.receivers[0].email.to"),
    ("email-bad-smarthost", "dev", {NS + "alerting": {"receivers": [{"name": "m", "email": {"to": "a@b", "from": "a@b", "smarthost": "smtp"}}]}}, "alerting.receivers[0].email.smarthost"),
    ("slack-missing-url", "dev", {NS + "alerting": {"receivers": [{"name": "s", "slack": {"channel": "#a"}}]}}, "alerting.receivers[0].slack.apiUrl"),
    ("prod-missing-routes", "prod", {NS + "alerting": {"receivers": [RECEIVER_SLACK]}}, "alerting.routes.critical"),
    ("prod-null-receiver", "prod", {NS + "alerting": {"receivers": [{"name": "void"}], "routes": {"critical": "void", "warning": "void"}}}, "alerting.routes.critical"),
    ("prod-anonymous-grafana", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "grafana": {"anonymousAccess": True}}, "grafana.anonymousAccess"),
    # plaintext where a secret is expected
    ("plaintext-slack-url", "dev", {NS + "alerting": {"receivers": [{"name": "s", "slack": {"apiUrl": "https://hooks.example.invalid/T0"}}], "routes": {"critical": "s", "warning": "s", "default": "s"}}}, "alerting.receivers[0].slack.apiUrl"),
    ("plaintext-grafana-password", "dev", {NS + "grafana": {"adminPassword": "hunter2"}}, "grafana.adminPassword"),
    ("plaintext-team-webhook", "dev", {NS + "teams": [{"name": "a", "receiver": {"webhook": {"url": "https://x.invalid"}}}]}, "teams[0].receiver.webhook.url"),
    # team names: duplicate and unsafe
    ("team-duplicate", "dev", {NS + "teams": [{"name": "a", "receiver": "null"}, {"name": "a", "receiver": "null"}]}, "teams[1].name"),
    ("team-newline", "dev", {NS + "teams": [{"name": "pay\nments", "receiver": "null"}]}, "teams[0].name"),
    ("team-quote", "dev", {NS + "teams": [{"name": 'pay"ments', "receiver": "null"}]}, "teams[0].name"),
    ("team-braces", "dev", {NS + "teams": [{"name": "{{ .Labels }}", "receiver": "null"}]}, "teams[0].name"),
    ("team-label-breaking", "dev", {NS + "teams": [{"name": 'a",severity="critical', "receiver": "null"}]}, "teams[0].name"),
    ("team-uppercase", "dev", {NS + "teams": [{"name": "Payments", "receiver": "null"}]}, "teams[0].name"),
    ("team-empty", "dev", {NS + "teams": [{"name": "", "receiver": "null"}]}, "teams[0].name"),
    ("team-rule-relabels-team", "dev", team(alertRules=[{"alert": "A", "expr": "up == 0", "labels": {"team": "other"}}]), "teams[0].alertRules[0].labels.team"),
    ("team-rule-bad-label-name", "dev", team(alertRules=[{"alert": "A", "expr": "up == 0", "labels": {"sev-erity": "x"}}]), "teams[0].alertRules[0].labels.sev-erity"),
    ("team-rule-bad-alert-name", "dev", team(alertRules=[{"alert": "High Error", "expr": "up"}]), "teams[0].alertRules[0].alert"),
    ("scrape-bad-target", "dev", team(scrapeTargets=[{"job": "api", "targets": ["http://api:8000"]}]), "teams[0].scrapeTargets[0].targets[0]"),
    ("scrape-reserved-job", "dev", team(scrapeTargets=[{"job": "prometheus", "targets": ["api:8000"]}]), "teams[0].scrapeTargets[0].job"),
    ("scrape-bad-path", "dev", team(scrapeTargets=[{"job": "api", "targets": ["api:8000"], "metricsPath": "metrics"}]), "teams[0].scrapeTargets[0].metricsPath"),
    # oversized values
    ("oversized-team-name", "dev", {NS + "teams": [{"name": "a" * 5000, "receiver": "null"}]}, "teams[0].name"),
    ("oversized-expr", "dev", team(alertRules=[{"alert": "A", "expr": "up" * 5000}]), "teams[0].alertRules[0].expr"),
    ("oversized-team-list", "dev", {NS + "teams": [{"name": f"t{i}", "receiver": "null"} for i in range(2001)]}, "teams"),
    ("oversized-channel", "dev", {NS + "alerting": {"receivers": [{"name": "s", "slack": {"apiUrl": {"secure": "x"}, "channel": "#" * 5000}}]}}, "alerting.receivers[0].slack.channel"),
    # environment, target, exposure
    ("environment-unknown", "dev", {NS + "environment": "staging"}, "environment"),
    ("stack-name-not-preset", "qa", {}, "environment"),
    ("target-unknown", "dev", {NS + "target": "nomad"}, "target"),
    ("bind-public-without-opt-in", "dev", {NS + "docker": {"bindAddress": "0.0.0.0"}}, "docker.bindAddress"),
    ("bind-not-ip", "dev", {NS + "docker": {"bindAddress": "localhost"}}, "docker.bindAddress"),
    ("service-public-without-opt-in", "dev", {NS + "kubernetes": {"serviceType": "LoadBalancer"}}, "kubernetes.serviceType"),
    ("ingress-without-host", "dev", {NS + "kubernetes": {"ingress": {"enabled": True}}}, "kubernetes.ingress.host"),
    ("namespace-unsafe", "dev", {NS + "kubernetes": {"namespace": "Observability!"}}, "kubernetes.namespace"),
    ("registry-mirror-unsafe", "dev", {NS + "registryMirror": "mirror.example.com/ hub"}, "registryMirror"),
    ("loki-retention-under-a-day", "dev", {NS + "retention": {"logs": "12h"}}, "retention.logs"),
    ("collector-with-nowhere-to-send", "dev", {NS + "components": {t: {"enabled": False} for t in ("tempo", "loki", "mimir", "prometheus", "alertmanager")}}, "components.collector.enabled"),
    # object storage and Grafana SSO/database (issue 15)
    ("object-storage-two-kinds", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "objectStorage": {"s3": {"bucket": "obs"}, "azure": {"accountName": "obsdata", "container": "obs"}}}, "objectStorage"),
    ("object-storage-on-docker", "dev", {NS + "objectStorage": {"gcs": {"bucket": "observability"}}}, "objectStorage"),
    ("object-storage-plaintext-s3-secret", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "objectStorage": {"s3": {"bucket": "obs", "accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "hunter2"}}}, "objectStorage.s3.secretAccessKey"),
    ("object-storage-plaintext-azure-key", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "objectStorage": {"azure": {"accountName": "obsdata", "container": "obs", "accountKey": "hunter2"}}}, "objectStorage.azure.accountKey"),
    ("object-storage-plaintext-gcs-key", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "objectStorage": {"gcs": {"bucket": "obs", "serviceAccountKey": "hunter2"}}}, "objectStorage.gcs.serviceAccountKey"),
    ("object-storage-half-key-pair", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "objectStorage": {"s3": {"bucket": "obs", "accessKeyId": "AKIAEXAMPLE"}}}, "objectStorage.s3.secretAccessKey"),
    ("object-storage-bucket-injection", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "objectStorage": {"s3": {"bucket": "obs\n  insecure: true"}}}, "objectStorage.s3.bucket"),
    ("object-storage-endpoint-with-scheme", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "objectStorage": {"s3": {"bucket": "obs", "endpoint": "http://minio:9000"}}}, "objectStorage.s3.endpoint"),
    ("object-storage-unknown-kind-key", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "objectStorage": {"s3": {"bucket": "obs", "secretKey": {"secure": "x"}}}}, "objectStorage.s3.secretKey"),
    ("object-storage-annotation-unsafe", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "objectStorage": {"gcs": {"bucket": "obs"}, "serviceAccountAnnotations": {"a b": "c"}}}, "objectStorage.serviceAccountAnnotations.a b"),
    ("grafana-oidc-plaintext-secret", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "grafana": {"oidc": {"clientId": "g", "clientSecret": "hunter2", "authUrl": "https://sso/a", "tokenUrl": "https://sso/t", "apiUrl": "https://sso/u"}}}, "grafana.oidc.clientSecret"),
    ("grafana-oidc-url-not-http", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "grafana": {"oidc": {"clientId": "g", "clientSecret": {"secure": "x"}, "authUrl": "file:///etc/passwd", "tokenUrl": "https://sso/t", "apiUrl": "https://sso/u"}}}, "grafana.oidc.authUrl"),
    ("grafana-database-plaintext", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "grafana": {"database": "postgres://grafana:hunter2@db/grafana"}}, "grafana.database"),
    ("alertmanager-without-prometheus", "dev", {NS + "components": {"prometheus": {"enabled": False}}}, "components.alertmanager.enabled"),
    # high availability (issue 14)
    ("ha-not-bool", "dev", {NS + "highAvailability": "sometimes"}, "highAvailability"),
    ("ha-on-docker", "dev", {NS + "highAvailability": True}, "highAvailability"),
    ("ha-prod-on-docker", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "target": "docker"}, "highAvailability"),
    ("replicas-zero", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "components": {"alertmanager": {"replicas": 0}}}, "components.alertmanager.replicas"),
    ("replicas-huge", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "components": {"prometheus": {"replicas": 10**9}}}, "components.prometheus.replicas"),
    ("replicas-not-int", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "components": {"collector": {"replicas": "two"}}}, "components.collector.replicas"),
    ("replicas-fraction", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "components": {"collector": {"replicas": 2.5}}}, "components.collector.replicas"),
    ("replicas-of-grafana-without-database", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "components": {"grafana": {"replicas": 2}}}, "components.grafana.replicas"),
    ("replicas-below-quorum", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "components": {"loki": {"replicas": 2}}}, "components.loki.replicas"),
    ("replicas-without-object-storage", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "highAvailability": False, NS + "objectStorage": None, NS + "components": {"mimir": {"replicas": 3}}}, "components.mimir.replicas"),
    ("replicas-on-docker", "dev", {NS + "components": {"alertmanager": {"replicas": 3}}}, "components.alertmanager.replicas"),
    ("topology-spread-unknown", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "kubernetes": {"topologySpread": ["rack"]}}, "kubernetes.topologySpread[0]"),
    ("topology-spread-empty", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "kubernetes": {"topologySpread": []}}, "kubernetes.topologySpread"),
    ("topology-spread-twice", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "kubernetes": {"topologySpread": ["zone", "zone"]}}, "kubernetes.topologySpread"),
    ("topology-spread-word", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "kubernetes": {"topologySpread": "everywhere"}}, "kubernetes.topologySpread[0]"),
    ("topology-spread-number", "prod", {NS + "alerting": OK_PROD_ALERTING, NS + "kubernetes": {"topologySpread": 3}}, "kubernetes.topologySpread"),
]


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 50
    assert len({case[0] for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case, stack, config, key", CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_config_is_refused_cleanly(case, stack, config, key):
    run = run_program(stack, config)
    assert run.error is not None, f"{case}: the program accepted it"
    assert run.resources == [], f"{case}: resources were registered before the error"
    assert "Traceback" not in run.error
    lines = run.error.splitlines()[1:]
    assert lines, run.error
    assert any(line.startswith(f"{NS}{key}:") or line.startswith(f"{NS}{key} (") for line in lines), (
        f"{case}: no line names {NS}{key}:\n{run.error}"
    )
    for line in lines:
        assert line.startswith(NS), f"{case}: every line names a key: {line!r}"
        assert len(line) < 400, f"{case}: message too long"
        assert "TEST-SECRET" not in line and "hunter2" not in line and "hooks.example.invalid" not in line


def test_corpus_summary(capsys):
    refused = sum(1 for c in CORPUS if run_program(c[1], c[2]).error)
    with capsys.disabled():
        print(f"\nhostile input: {refused}/{len(CORPUS)} invalid stack configs refused before any resource")
    assert refused == len(CORPUS)
