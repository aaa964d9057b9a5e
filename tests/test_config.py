"""The settings model: presets, merge order, cross-field rules and error messages."""

import pytest
from pydantic import SecretStr

from observability_stack.config import ConfigError, Settings, load_settings, settings_from_stack_file
from observability_stack.config.durations import go_duration, parse_bytes, parse_duration
from observability_stack.config.loader import deep_merge, stack_config_values
from observability_stack.config.presets import PRESETS
from tests.harness import ROOT

PROD_ALERTING = {
    "receivers": [
        {"name": "pd", "pagerduty": {"routingKey": "PD-KEY-123"}},
        {"name": "chat", "slack": {"apiUrl": "https://example.invalid/hook", "channel": "#alerts"}},
    ],
    "routes": {"critical": "pd", "warning": "chat"},
}


# Prod runs highAvailability, which needs object storage for the storage backends.
BUCKET = {"s3": {"region": "eu-west-1", "bucket": "example-observability"}}


def prod(**raw):
    return load_settings({"alerting": PROD_ALERTING, "objectStorage": BUCKET, **raw}, stack="prod")


def errors(raw, stack="dev", secret_keys=None):
    with pytest.raises(ConfigError) as info:
        load_settings(raw, stack=stack, secret_keys=secret_keys)
    return info.value.problems


# --- presets ----------------------------------------------------------------------------------


def test_dev_preset_needs_no_config():
    s = load_settings({}, stack="dev")
    assert (s.environment, s.target) == ("dev", "docker")
    assert s.sampling.traces == 1.0
    assert s.retention.metrics == "7d"
    assert [r.name for r in s.alerting.receivers] == ["null"]
    assert s.alerting.receivers[0].kinds() == []  # harmless: a null receiver
    assert s.default_route == "null"
    assert s.protect_data is False


def test_prod_preset_uses_the_seeds_figures():
    s = prod()
    assert (s.environment, s.target) == ("prod", "kubernetes")
    assert s.retention.metrics == "30d"  # the seed's --storage.tsdb.retention.time=30d
    assert s.sampling.traces == 0.05  # the seed's TraceIdRatioBased(0.05)
    assert s.sampling.keep_errors is True
    assert s.protect_data is True
    assert s.default_route == "chat"  # unset default falls back to the warning receiver


def test_every_preset_is_valid_over_the_defaults():
    for name in PRESETS:
        raw = {"alerting": PROD_ALERTING, "objectStorage": BUCKET} if name == "prod" else {}
        assert load_settings(raw, stack=name).environment == name


def test_environment_defaults_to_stack_name_and_team_stack_sets_it():
    assert load_settings({}, stack="dev").environment == "dev"
    team = load_settings({"environment": "prod", "alerting": PROD_ALERTING, "objectStorage": BUCKET},
                         stack="payments-prod")
    assert team.environment == "prod" and team.stack == "payments-prod"


def test_unknown_stack_name_without_environment_lists_presets():
    assert errors({}, stack="staging") == [
        'observability:environment (defaults to the stack name "staging"): "staging" is not a preset '
        "(use one of: dev, prod)"
    ]


# --- merge order ------------------------------------------------------------------------------


def test_objects_merge_key_by_key():
    s = load_settings({"retention": {"logs": "30d"}}, stack="dev")
    assert s.retention.logs == "30d"
    assert (s.retention.metrics, s.retention.traces, s.retention.profiles) == ("7d", "2d", "3d")


def test_stack_config_beats_preset_beats_defaults():
    from observability_stack.config.model import Settings

    # Built-in layer: resources are unset (derived or the tool's base, components/sizing.py).
    assert Settings.built_in_defaults().components.prometheus.resources.limits.memory is None
    dev = load_settings({"environment": "dev"}, stack="x").components.loki.resources
    assert (dev.limits.memory, dev.limits.cpu) == ("384Mi", None)  # dev preset over the default
    p = prod()
    assert p.components.prometheus.resources.limits.cpu == "2"  # preset
    assert p.components.prometheus.resources.limits.memory is None  # left to the ingest rule
    s = prod(components={"prometheus": {"resources": {"limits": {"memory": "8Gi"}}}})
    r = s.components.prometheus.resources
    assert (r.limits.memory, r.limits.cpu, r.requests.cpu) == ("8Gi", "2", "500m")  # stack, preset, preset
    assert s.components.grafana.resources.limits.memory is None  # untouched tool keeps the default


def test_lists_replace_as_a_whole():
    s = load_settings({"alerting": {"receivers": [{"name": "a"}], "routes": {"critical": "a", "warning": "a", "default": "a"}}}, stack="dev")
    assert [r.name for r in s.alerting.receivers] == ["a"]


def test_deep_merge_does_not_mutate_inputs():
    base, over = {"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}
    assert deep_merge(base, over) == {"a": {"b": 3, "c": 2}}
    assert base == {"a": {"b": 1, "c": 2}}


def test_values_arrive_as_pulumi_strings():
    s = load_settings({"protectData": "true", "sampling": '{"traces": 0.5}', "target": "kubernetes"}, stack="dev")
    assert s.protect_data is True and s.sampling.traces == 0.5 and s.target == "kubernetes"


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"retention": {"logs": "30x"}}, 'observability:retention.logs: "30x" is not a duration (use e.g. 12h, 7d, 2w)'),
        ({"retention": {"logs": "0d"}}, 'observability:retention.logs: "0d" must be positive (use e.g. 12h, 7d, 2w)'),
        ({"sampling": {"traces": 1.5}}, "observability:sampling.traces: 1.5 is not allowed: input should be less than or equal to 1"),
        ({"sampling": {"traces": -0.1}}, "observability:sampling.traces: -0.1 is not allowed: input should be greater than or equal to 0"),
        ({"target": "nomad"}, "observability:target: \"nomad\" is not allowed: input should be 'docker' or 'kubernetes'"),
        ({"retentoin": {}}, "observability:retentoin: unknown key (allowed: environment, target, retention, sampling, alerting, teams, components, ingest, grafana, docker, kubernetes, registryMirror, protectData, objectStorage, highAvailability)"),
        ({"retention": {"log": "1d"}}, "observability:retention.log: unknown key (allowed: metrics, logs, traces, profiles)"),
        ({"components": {"loki": {"version": "latest"}}}, 'observability:components.loki.version: "latest" is not a pinned image tag (use an exact version such as v3.8.1, never latest)'),
        ({"docker": {"bindAddress": "0.0.0.0"}}, 'observability:docker.bindAddress: "0.0.0.0" is not a loopback address; set observability:docker.allowPublicPorts true to publish ports beyond this host'),
    ],
)
def test_one_clear_line_per_problem(raw, expected):
    assert errors(raw) == [expected]


def test_all_problems_reported_at_once():
    problems = errors({"retention": {"logs": "x", "traces": "y"}, "sampling": {"traces": 2}})
    assert [p.split(":")[1] for p in problems] == ["retention.logs", "retention.traces", "sampling.traces"]


def test_prod_requires_critical_and_warning_routes():
    problems = errors({"objectStorage": BUCKET}, stack="prod")
    assert problems == [
        "observability:alerting.routes.critical: is required in prod (name a receiver; the seed sends critical to PagerDuty, warning to Slack)",
        "observability:alerting.routes.warning: is required in prod (name a receiver; the seed sends critical to PagerDuty, warning to Slack)",
    ]


def test_prod_routes_must_reach_someone():
    raw = {"alerting": {"receivers": [{"name": "void"}], "routes": {"critical": "void", "warning": "void"}},
           "objectStorage": BUCKET}
    assert all("has no slack, pagerduty, email or webhook" in p for p in errors(raw, stack="prod"))


def test_routes_and_teams_name_defined_receivers():
    problems = errors({"alerting": {"routes": {"critical": "pager"}}, "teams": [{"name": "a", "receiver": "ghost"}]})
    assert problems == [
        'observability:teams[0].receiver: "ghost" is not a defined receiver (defined: null)',
        'observability:alerting.routes.critical: "pager" is not a defined receiver (defined: null)',
    ]


def test_team_names_unique_and_label_safe():
    problems = errors({"teams": [{"name": "a", "receiver": "null"}, {"name": "a", "receiver": "null"}]})
    assert problems == ['observability:teams[1].name: "a" is defined twice (team names must be unique)']
    for bad in ["Payments", "a b", 'a"b', "a}b", "a\nb", "-a", "x" * 41, ""]:
        (problem,) = errors({"teams": [{"name": bad, "receiver": "null"}]})
        assert problem.startswith("observability:teams[0].name: ") and "is not allowed" in problem


def test_credentials_are_never_echoed():
    problems = errors({"alerting": {"receivers": [{"name": "s", "slack": {"apiUrl": "", "chanel": "x"}}]}})
    joined = "\n".join(problems)
    assert "observability:alerting.receivers[0].slack.apiUrl: <secret>" in joined
    assert "observability:alerting.receivers[0].slack.chanel: unknown key (allowed: apiUrl, channel)" in joined


def test_plaintext_credentials_are_refused_when_secret_keys_are_known():
    raw = {"alerting": {"receivers": [{"name": "w", "webhook": {"url": "https://x.invalid/t"}}],
                        "routes": {"critical": "w", "warning": "w", "default": "w"}}}
    (problem,) = errors(raw, secret_keys=[])
    assert problem.startswith("observability:alerting.receivers[0].webhook.url: is a credential given in plaintext")
    assert load_settings(raw, stack="dev", secret_keys=["observability:alerting"]).alerting.receivers[0].webhook


def test_credentials_are_secret_values():
    s = prod()
    key = s.alerting.receivers[0].pagerduty.routing_key
    assert isinstance(key, SecretStr) and key.get_secret_value() == "PD-KEY-123"
    assert "PD-KEY-123" not in repr(s) and "PD-KEY-123" not in str(s.model_dump())


def test_team_receiver_object_becomes_a_named_receiver():
    s = load_settings({"teams": [{"name": "pay", "receiver": {"webhook": {"url": "u"}}}]}, stack="dev")
    assert "team-pay" in s.receiver_map()
    assert s.team_receiver_name(s.teams[0]) == "team-pay"


def test_public_exposure_needs_opt_in():
    assert errors({"kubernetes": {"serviceType": "LoadBalancer"}})[0].startswith("observability:kubernetes.serviceType:")
    s = load_settings({"kubernetes": {"serviceType": "NodePort", "allowPublicServices": True}}, stack="dev")
    assert s.kubernetes.service_type == "NodePort"


def test_anonymous_grafana_refused_in_prod():
    (problem,) = errors({"alerting": PROD_ALERTING, "grafana": {"anonymousAccess": True}, "objectStorage": BUCKET},
                        stack="prod")
    assert problem.startswith("observability:grafana.anonymousAccess: true is not allowed in prod")


# --- durations and quantities -----------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [("90m", 5400), ("12h", 43200), ("7d", 604800), ("2w", 1209600),
                                           ("1y", 31536000), ("1d12h", 129600), ("500ms", 0.5)])
def test_prometheus_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_go_durations_for_tempo():
    assert [go_duration(d) for d in ("7d", "90m", "45s", "1y")] == ["168h", "90m", "45s", "8760h"]


def test_sizes():
    assert parse_bytes("512Mi") == 512 * 2**20 and parse_bytes("1G") == 10**9
    with pytest.raises(ValueError):
        parse_bytes("500m")


# --- committed stack files --------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod", "payments-prod"])
def test_committed_stack_files_are_valid(stack):
    s = settings_from_stack_file(str(ROOT / f"Pulumi.{stack}.yaml"), stack)
    assert s.stack == stack


def test_secure_leaves_become_placeholders_and_mark_their_key():
    raw, secret = stack_config_values({"observability:grafana": {"adminPassword": {"secure": "v1:abc"}},
                                       "observability:target": "docker", "other:key": 1})
    assert raw == {"grafana": {"adminPassword": "secret-placeholder-1"}, "target": "docker"}
    assert secret == ["grafana"]


# --- settings built in Python (another program using the stack as a library) -------------------


def test_settings_built_in_python_get_the_preset_and_the_rules():
    from observability_stack.config import ConfigError

    # Before issue 11, `Settings(environment="prod")` was accepted: no routes, unprotected volumes.
    with pytest.raises(ConfigError) as err:
        Settings(environment="prod")
    assert "observability:alerting.routes.critical: is required in prod" in str(err.value)
    with pytest.raises(ConfigError, match="alerting.routes.critical: is required in prod"):
        Settings.for_environment("prod")


def test_for_environment_merges_like_stack_config_in_either_spelling():
    receivers = [{"name": "pager", "pagerduty": {"routing_key": "k"}},
                 {"name": "chat", "slack": {"apiUrl": "https://hooks.example.com/x"}}]
    s = Settings.for_environment(
        "prod", stack="platform-prod",
        alerting={"receivers": receivers, "routes": {"critical": "pager", "warning": "chat"}},
        retention={"logs": "90d"}, protect_data=True,
        kubernetes={"namespace": "obs-platform"}, object_storage=BUCKET,
    )
    assert (s.environment, s.stack, s.target) == ("prod", "platform-prod", "kubernetes")
    # The preset's other retentions stay (objects merge key by key).
    assert (s.retention.logs, s.retention.metrics, s.retention.traces) == ("90d", "30d", "14d")
    assert s.protect_data is True and s.sampling.traces == 0.05
    assert s.alerting.receivers[0].pagerduty.routing_key.get_secret_value() == "k"
    assert Settings(**{"environment": "dev"}).target == "docker"


def test_for_environment_reports_bad_values_one_line_each():
    from observability_stack.config import ConfigError

    with pytest.raises(ConfigError) as err:
        Settings.for_environment("dev", retention={"logs": "30x"}, sampling={"traces": 2})
    lines = str(err.value).splitlines()
    assert any(line.startswith('observability:retention.logs: "30x" is not a duration') for line in lines)
    assert any(line.startswith("observability:sampling.traces:") for line in lines)
    with pytest.raises(ConfigError, match='observability:environment: "staging" is not a preset'):
        Settings.for_environment("staging")


@pytest.mark.parametrize("text", ["{{", "{{}}", "{{ $value | nope }}", "ok }}", "{{ .Foo "])
def test_team_annotations_refuse_templates_prometheus_would_not_load(text):
    # Found by the property test: promtool refused the rule file ("unclosed action", "missing
    # value for command") while the settings had accepted it.
    rule = {"alert": "X", "expr": "up", "annotations": {"summary": text}}
    with pytest.raises(ConfigError, match=r"teams\[0\]\.alertRules\[0\]\.annotations\.summary: is not a template"):
        load_settings({"teams": [{"name": "a", "receiver": "null", "alertRules": [rule]}]}, stack="dev", secret_keys=[])


def test_team_annotations_accept_the_usual_templates():
    rule = {"alert": "X", "expr": "up", "annotations": {
        "summary": "{{ $labels.job }} is down", "description": "{{ $value | humanizePercentage }} of {{$value}}"}}
    load_settings({"teams": [{"name": "a", "receiver": "null", "alertRules": [rule]}]}, stack="dev", secret_keys=[])
