"""Alertmanager: routes Prometheus' alerts to teams and severity receivers.

Upstream reference: Alertmanager configuration reference
(https://prometheus.io/docs/alerting/latest/configuration/) and the image's Dockerfile (busybox,
`USER nobody` = 65534, `/alertmanager`, config at `/etc/alertmanager/alertmanager.yml`).
Validated with `amtool check-config` and `amtool config routes test` built at the pinned version
(tests/test_alertmanager.py).

Routing follows the seed: critical -> `alerting.routes.critical`, warning -> `routes.warning`,
everything else -> the default receiver; team routes come first, so an alert labelled
`team=<name>` reaches that team's receiver whatever its severity. Critical alerts inhibit warnings
with the same alertname and instance. `matchers` syntax throughout (`match` is deprecated).

With more than one replica (`highAvailability`: 3) the instances form a gossip cluster
(Alertmanager README, "High Availability"): each one is told the headless Service
`alertmanager-peers` (`--cluster.peer`; Alertmanager resolves the name to every pod's address and
re-resolves it while running), they gossip silences and the notification log on port 9094 over TCP
and UDP, and Prometheus sends every alert to every instance. The notification log is what makes
that deliver once: the instances wait `position x --cluster.peer-timeout` before notifying and
skip what a peer has already sent.

Credentials never appear in the rendered file: every receiver reads them from a `*_file`
(slack `api_url_file`, pagerduty `routing_key_file`, email `auth_password_file`, webhook
`url_file`), which the target mounts from a secret at `/etc/alertmanager/secrets/`.
"""

from __future__ import annotations

import posixpath
from typing import Optional
from urllib.parse import urlsplit

from pydantic import SecretStr

from .base import ToolComponent
from .platform import Platform
from .secrets import secret_output
from .wiring import Links
from .workload import (
    ConfigFile, Endpoint, HealthCheck, Port, SecretFile, Workload, flags, to_yaml, tool_workload,
)
from ..config.model import Receiver, Settings

TOOL = "alertmanager"
HTTP_PORT = 9093
CLUSTER_PORT = 9094  # gossip: memberlist over TCP and UDP
UID = GID = 65534
DATA_DIR = "/alertmanager"
CONFIG_DIR = "/etc/alertmanager"
CONFIG_PATH = f"{CONFIG_DIR}/alertmanager.yml"
SECRETS_DIR = f"{CONFIG_DIR}/secrets"

# The seed's Slack message.
SLACK_TITLE = "{{ .GroupLabels.alertname }}"
SLACK_TEXT = "{{ range .Alerts }}{{ .Annotations.description }}{{ end }}"


PAGERDUTY_SEVERITY = (
    '{{ if eq .CommonLabels.severity "critical" }}critical'
    '{{ else if eq .CommonLabels.severity "warning" }}warning{{ else }}info{{ end }}'
)


def serves(service: str) -> dict[str, Endpoint]:
    return {"http": Endpoint(service, HTTP_PORT, scrape=True), "query": Endpoint(service, HTTP_PORT)}


def cluster_endpoint(service: str) -> Endpoint:
    """The gossip port of the peers (one endpoint for TCP and UDP: the flow names the port)."""
    return Endpoint(service, CLUSTER_PORT)


def secret_path(receiver: str, kind: str, field: str, secrets_dir: str = SECRETS_DIR) -> str:
    return posixpath.join(secrets_dir, f"{receiver}-{kind}-{field}")


def secret_values(settings: Settings, secrets_dir: str = SECRETS_DIR) -> dict[str, SecretStr]:
    """{absolute file path: credential} for every credential the receivers read from files."""
    found: dict[str, SecretStr] = {}
    for name, receiver in settings.receiver_map().items():
        if receiver.slack:
            found[secret_path(name, "slack", "api_url", secrets_dir)] = receiver.slack.api_url
        if receiver.pagerduty:
            found[secret_path(name, "pagerduty", "routing_key", secrets_dir)] = receiver.pagerduty.routing_key
        if receiver.email and receiver.email.auth_password:
            found[secret_path(name, "email", "auth_password", secrets_dir)] = receiver.email.auth_password
        if receiver.webhook:
            found[secret_path(name, "webhook", "url", secrets_dir)] = receiver.webhook.url
    return found


def receiver_config(name: str, receiver: Receiver, secrets_dir: str = SECRETS_DIR) -> dict:
    """One receiver; with no kinds configured it is Alertmanager's null receiver (name only)."""
    entry: dict = {"name": name}
    if receiver.slack:
        entry["slack_configs"] = [{
            "api_url_file": secret_path(name, "slack", "api_url", secrets_dir),
            "channel": receiver.slack.channel,
            "title": SLACK_TITLE,
            "text": SLACK_TEXT,
            "send_resolved": True,
        }]
    if receiver.pagerduty:
        # Events API v2: `routing_key` (the seed's `service_key` is the deprecated v1 API).
        pagerduty: dict = {
            "routing_key_file": secret_path(name, "pagerduty", "routing_key", secrets_dir),
            # Events v2 severity is critical|error|warning|info; Alertmanager's default is
            # "error" for everything, so map our severity label onto it.
            "severity": PAGERDUTY_SEVERITY,
        }
        if receiver.pagerduty.url:
            pagerduty["url"] = receiver.pagerduty.url
        entry["pagerduty_configs"] = [pagerduty]
    if receiver.email:
        email = receiver.email
        mail: dict = {"to": email.to, "from": email.from_, "smarthost": email.smarthost}
        if email.auth_password:
            mail["auth_username"] = email.auth_username or email.from_
            mail["auth_password_file"] = secret_path(name, "email", "auth_password", secrets_dir)
        elif email.auth_username:
            mail["auth_username"] = email.auth_username
        mail["require_tls"] = email.require_tls
        entry["email_configs"] = [mail]
    if receiver.webhook:
        entry["webhook_configs"] = [{"url_file": secret_path(name, "webhook", "url", secrets_dir)}]
    return entry


def routes(settings: Settings) -> list[dict]:
    child: list[dict] = [
        {"matchers": [f'team="{team.name}"'], "receiver": settings.team_receiver_name(team)}
        for team in settings.teams
    ]
    severity = settings.alerting.routes
    for level in ("critical", "warning"):
        receiver: Optional[str] = getattr(severity, level)
        if receiver:
            child.append({"matchers": [f'severity="{level}"'], "receiver": receiver})
    return child


def config(settings: Settings, secrets_dir: str = SECRETS_DIR) -> dict:
    """alertmanager.yml; `secrets_dir` is only changed by tests validating with real files."""
    alerting = settings.alerting
    route: dict = {
        "receiver": settings.default_route,
        "group_by": list(alerting.group_by),
        "group_wait": alerting.group_wait,
        "group_interval": alerting.group_interval,
        "repeat_interval": alerting.repeat_interval,
    }
    child = routes(settings)
    if child:
        route["routes"] = child
    return {
        "global": {"resolve_timeout": "5m"},
        "route": route,
        "inhibit_rules": [{
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["alertname", "instance"],
        }],
        "receivers": [
            receiver_config(name, receiver, secrets_dir)
            for name, receiver in settings.receiver_map().items()
        ],
    }


def render(settings: Settings, links: Links, platform: Platform) -> dict[str, str]:
    return {"alertmanager/alertmanager.yml": to_yaml(config(settings))}


POD_IP_ENV = "POD_IP"


def args(peers: Optional[str] = None) -> tuple[str, ...]:
    """`peers`: the headless Service resolving every replica, or None for a single instance."""
    if peers is None:
        # Empty: a single instance, no gossip cluster (and no port 9094 to secure).
        cluster: dict = {"cluster.listen-address": ""}
    else:
        cluster = {
            "cluster.listen-address": f"0.0.0.0:{CLUSTER_PORT}",
            # Its own pod IP (Kubernetes expands `$(VAR)` in args): without it Alertmanager picks
            # a private address itself and refuses to start where pod IPs are not RFC 1918.
            "cluster.advertise-address": f"$({POD_IP_ENV}):{CLUSTER_PORT}",
            "cluster.peer": f"{peers}:{CLUSTER_PORT}",
        }
    return tuple(flags({"config.file": CONFIG_PATH, "storage.path": DATA_DIR, **cluster}))


def notification_ports(settings: Settings) -> tuple[int, ...]:
    """TCP ports Alertmanager sends notifications to, read from the receivers' URLs and SMTP
    hosts (only the port: never logged or exported). Receivers live outside the stack."""
    def url_port(url: str) -> int:
        parts = urlsplit(url)
        try:
            return parts.port or (80 if parts.scheme == "http" else 443)
        except ValueError:
            return 443

    ports: set[int] = set()
    for receiver in settings.receiver_map().values():
        if receiver.slack:
            ports.add(url_port(receiver.slack.api_url.get_secret_value()))
        if receiver.pagerduty:
            ports.add(url_port(receiver.pagerduty.url) if receiver.pagerduty.url else 443)
        if receiver.email:
            ports.add(int(receiver.email.smarthost.rsplit(":", 1)[1]))
        if receiver.webhook:
            ports.add(url_port(receiver.webhook.url.get_secret_value()))
    return tuple(sorted(ports))


def workloads(settings: Settings, links: Links, platform: Platform) -> tuple[Workload, ...]:
    files = render(settings, links, platform)
    service = links.service(TOOL)
    peers = links.peers.get(TOOL)
    ports: tuple[Port, ...] = (Port("http", HTTP_PORT, publish=True),)
    cluster: dict = {}
    if peers:
        ports += (Port("mesh-tcp", CLUSTER_PORT), Port("mesh-udp", CLUSTER_PORT, protocol="UDP"))
        cluster = dict(
            headless="all",
            # The gossip flow between the peers, derived like every other flow.
            talks_to=(cluster_endpoint(service),),
            pod_ip_env=POD_IP_ENV,
            # A restarted peer pulls silences and the notification log from the others before
            # the rollout takes down the next one.
            min_ready_seconds=30,
        )
    return (tool_workload(
        settings, TOOL, service=service, data_dir=DATA_DIR,
        uid=UID,
        gid=GID,
        args=args(peers),
        ports=ports,
        health=HealthCheck.http("/-/ready", HTTP_PORT, client="wget"),
        config_files=(ConfigFile(CONFIG_PATH, files["alertmanager/alertmanager.yml"]),),
        secret_files=tuple(
            SecretFile(path, secret_output(value)) for path, value in secret_values(settings).items()
        ),
        egress_ports=notification_ports(settings),
        **cluster,
    ),)


class Alertmanager(ToolComponent):
    TYPE = "observability:alertmanager:Alertmanager"
