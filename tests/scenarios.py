"""The named scenarios every check runs over: committed stacks plus a few that exercise edges.

Each is (stack name, stack-file style config). `secure:` leaves become TEST-SECRET-<n> strings
when run (components/mockrun.engine_config), exactly as the engine would hand them over.
"""

from __future__ import annotations

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


def scenarios() -> dict[str, tuple[str, dict]]:
    return {
        "dev": ("dev", stack_file_config("dev")),
        "prod": ("prod", stack_file_config("prod")),
        "team-overlay": ("payments-prod", stack_file_config("payments-prod")),
        "minimal": ("dev", {**stack_file_config("dev"), **ONLY_PROMETHEUS_AND_ALERTMANAGER}),
        "receivers": ("dev", {**stack_file_config("dev"), **ALL_RECEIVER_KINDS}),
    }


def settings_for(name: str) -> Settings:
    stack, config = scenarios()[name]
    values, secret_keys = engine_config(config)
    raw = {k[len(NS):]: parse_raw(v) for k, v in values.items() if k.startswith(NS)}
    return load_settings(raw, stack=stack, secret_keys=secret_keys)
