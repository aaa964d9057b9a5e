"""Grafana: provisioned, cross-linked datasources and read-only dashboards.

Upstream reference: Grafana provisioning (https://grafana.com/docs/grafana/latest/administration/
provisioning/), the datasource docs for Tempo (`tracesToLogsV2`, `tracesToMetrics`,
`tracesToProfiles`, `serviceMap`, `nodeGraph`), Loki (`derivedFields`) and
Prometheus (`exemplarTraceIdDestinations`), and the Docker image docs (`GF_<SECTION>_<KEY>`
environment, `__FILE` suffix for secrets; the image's Dockerfile: uid 472, gid 0, curl present,
`GF_PATHS_DATA=/var/lib/grafana`).

Every datasource has a fixed uid equal to its tool's name, so links between them (and dashboard
panels) survive re-provisioning, and only enabled tools get a datasource or a link. Provisioning
files are environment-interpolated by Grafana: a literal `$` is written `$$`.
"""

from __future__ import annotations

import json
from typing import Any, Optional


from . import dashboards
from .base import ToolComponent
from .platform import Platform
from .wiring import Links
from .workload import (
    ConfigFile, Endpoint, HealthCheck, Port, SecretFile, Workload, to_yaml, tool_workload,
)
from ..config.model import Settings

TOOL = "grafana"
HTTP_PORT = 3000
UID, GID = 472, 0
DATA_DIR = "/var/lib/grafana"
PROVISIONING_DIR = "/etc/grafana/provisioning"
# Outside the data volume: dashboards are config, replaced on every deploy.
DASHBOARDS_DIR = "/etc/grafana/dashboards"
ADMIN_PASSWORD_PATH = "/etc/grafana/secrets/admin_password"
# Issue 15: SSO client secret and external database URL, as files named by `GF_<...>__FILE`
# (Grafana reads any setting's value from the file a `__FILE` variable names: "Configure Grafana",
# section "Override configuration with environment variables").
OIDC_SECRET_PATH = "/etc/grafana/secrets/oidc_client_secret"
DATABASE_URL_PATH = "/etc/grafana/secrets/database_url"
DATABASE_PORTS = {"postgres": 5432, "mysql": 3306}
# Two replicas (with `grafana.database`): Grafana Alerting's Alertmanagers gossip silences and
# the notification log on 9094, TCP and UDP, so a notification of a Grafana-managed alert goes
# out once ("Configure high availability", Grafana Alerting docs: `[unified_alerting]`
# `ha_peers`, `ha_listen_address`, `ha_advertise_address`, the Kubernetes example with the pod IP).
ALERTING_HA_PORT = 9094
POD_IP_ENV = "POD_IP"

# Datasource uids are the tool names (fixed: links and dashboards refer to them); the query
# endpoints come from `components/wiring.py` (`Links.query`), one per enabled tool that has one.
# Trace-id label names on exemplars: OpenTelemetry SDKs write `trace_id`, Tempo's span metrics
# write `traceID`.
EXEMPLAR_LABELS = ("trace_id", "traceID")
# Matches `trace_id=abc`, `"trace_id": "abc"` (logfmt and the seed's JSON logs).
TRACE_ID_REGEX = r'trace_id"?\s*[:=]\s*"?(\w+)'
# "Logs for this span": every log line of the trace, however it reached Loki. Logs sent over
# OTLP keep `trace_id` as structured metadata (Loki 3 OTLP ingest), not in the line, so the
# built-in `filterByTraceID` line filter (`|= "<id>"`) never matches them; the log agent also
# ships the id as an attribute (structured metadata), and its lines carry no service name (Loki
# labels them `service_name="unknown_service"`), so the selector must not require the span's
# service either. A label filter on `trace_id` over every stream finds both (`$$`: a literal `$`
# after Grafana's env interpolation of provisioning files).
TRACE_LOGS_QUERY = '{service_name=~".+"} | trace_id="$${__trace.traceId}"'
# Where a profile link from a span lands (Pyroscope's CPU profile type).
PROFILE_TYPE = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"


def serves(service: str) -> dict[str, Endpoint]:
    return {"http": Endpoint(service, HTTP_PORT, scrape=True)}


def _exemplars() -> dict:
    return {"exemplarTraceIdDestinations": [{"name": label, "datasourceUid": "tempo"} for label in EXEMPLAR_LABELS]}


def _tempo_links(links: Links) -> dict:
    data: dict[str, Any] = {"nodeGraph": {"enabled": True}}
    metrics = links.metrics_source
    if "loki" in links.query:
        data["tracesToLogsV2"] = {
            "datasourceUid": "loki",
            "spanStartTimeShift": "-5m",
            "spanEndTimeShift": "5m",
            "customQuery": True,
            "query": TRACE_LOGS_QUERY,
        }
        # No `lokiSearch`: Grafana 11 removed the Tempo datasource's Loki search tab
        # (grafana/grafana #84346); `make check-keys` reports it as unknown.
    if metrics:
        data["tracesToMetrics"] = {
            "datasourceUid": metrics,
            "spanStartTimeShift": "-5m",
            "spanEndTimeShift": "5m",
            "tags": [{"key": "service.name", "value": "service"}],
            # `$$__tags`: a literal `$__tags` after Grafana's env interpolation.
            "queries": [
                {"name": "Request rate", "query": "sum(rate(traces_spanmetrics_calls_total{$$__tags}[5m]))"},
                {"name": "Error rate",
                 "query": 'sum(rate(traces_spanmetrics_calls_total{$$__tags,status_code="STATUS_CODE_ERROR"}[5m]))'},
            ],
        }
        data["serviceMap"] = {"datasourceUid": metrics}
    if "pyroscope" in links.query:
        data["tracesToProfiles"] = {
            "datasourceUid": "pyroscope",
            "profileTypeId": PROFILE_TYPE,
            "tags": [{"key": "service.name", "value": "service_name"}],
        }
    return data


def datasources(links: Links) -> list[dict]:
    default = links.metrics_source
    query = links.query
    found: list[dict] = []

    def add(uid: str, name: str, kind: str, url: str, json_data: Optional[dict] = None) -> None:
        found.append({
            "name": name,
            "uid": uid,
            "type": kind,
            "access": "proxy",
            "url": url,
            "isDefault": uid == default,
            "editable": False,
            "jsonData": json_data or {},
        })

    tempo = "tempo" in query
    if "prometheus" in query:
        add("prometheus", "Prometheus", "prometheus", query["prometheus"].url,
            {"httpMethod": "POST", "prometheusType": "Prometheus", **(_exemplars() if tempo else {})})
    if "mimir" in query:
        add("mimir", "Mimir", "prometheus", query["mimir"].url,
            {"httpMethod": "POST", "prometheusType": "Mimir", **(_exemplars() if tempo else {})})
    if "loki" in query:
        derived = []
        if tempo:
            derived = [
                # In the log line (JSON or logfmt).
                {"name": "TraceID", "matcherType": "regex", "matcherRegex": TRACE_ID_REGEX,
                 "url": "$${__value.raw}", "datasourceUid": "tempo", "urlDisplayLabel": "View trace"},
                # As structured metadata (OTLP ingest, and the log agent's trace_id attribute).
                {"name": "trace_id", "matcherType": "label", "matcherRegex": "trace_id",
                 "url": "$${__value.raw}", "datasourceUid": "tempo", "urlDisplayLabel": "View trace"},
            ]
        add("loki", "Loki", "loki", query["loki"].url, {"maxLines": 1000, "derivedFields": derived} if derived else {})
    if tempo:
        add("tempo", "Tempo", "tempo", query["tempo"].url, _tempo_links(links))
    if "pyroscope" in query:
        add("pyroscope", "Pyroscope", "grafana-pyroscope-datasource", query["pyroscope"].url)
    if "alertmanager" in query:
        add("alertmanager", "Alertmanager", "alertmanager", query["alertmanager"].url,
            {"implementation": "prometheus", "handleGrafanaManagedAlerts": False})
    return found


def datasources_file(links: Links) -> dict:
    # prune: datasources of tools disabled since the last deploy are removed instead of lingering.
    return {"apiVersion": 1, "prune": True, "datasources": datasources(links)}


def dashboard_provider() -> dict:
    return {"apiVersion": 1, "providers": [{
        "name": "observability-stack",
        "orgId": 1,
        "folder": "Observability stack",
        "type": "file",
        # Read-only: dashboards are code (components/dashboards.py); UI edits would drift.
        "disableDeletion": True,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 60,
        "options": {"path": DASHBOARDS_DIR},
    }]}


def render(settings: Settings, links: Links, platform: Platform) -> dict[str, str]:
    files = {
        "grafana/provisioning/datasources/datasources.yaml":
            to_yaml(datasources_file(links)),
    }
    boards = dashboards.dashboards(settings, links.metrics_source)
    # Dashboards the enabled exporters declare (Node, Kubernetes, Containers; components/wiring.py).
    boards.update(links.tool_dashboards)
    if boards:
        files["grafana/provisioning/dashboards/dashboards.yaml"] = to_yaml(dashboard_provider())
        for name, board in boards.items():
            files[f"grafana/dashboards/{name}"] = json.dumps(board, indent=2, sort_keys=False) + "\n"
    return files


def _container_path(rendered: str) -> str:
    rel = rendered.removeprefix("grafana/")
    if rel.startswith("provisioning/"):
        return f"{PROVISIONING_DIR}/{rel.removeprefix('provisioning/')}"
    return f"{DASHBOARDS_DIR}/{rel.removeprefix('dashboards/')}"


def env(settings: Settings) -> dict[str, str]:
    anonymous = settings.grafana.anonymous_access
    values = {
        "GF_SECURITY_ADMIN_USER": settings.grafana.admin_user,
        # Only the __FILE form: setting the plain variable as well is a fatal error, and the
        # plain form would put the password in the container's environment. Grafana applies it
        # when it creates its database (first start); later changes go through grafana-cli.
        "GF_SECURITY_ADMIN_PASSWORD__FILE": ADMIN_PASSWORD_PATH,
        "GF_AUTH_ANONYMOUS_ENABLED": str(anonymous).lower(),
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
        "GF_PATHS_PROVISIONING": PROVISIONING_DIR,
        "GF_PATHS_DATA": DATA_DIR,
        # Logs to stdout only: the image's default also writes /var/log/grafana, which is on
        # the read-only root filesystem.
        "GF_LOG_MODE": "console",
    }
    if anonymous:
        values["GF_AUTH_ANONYMOUS_ORG_ROLE"] = "Viewer"
    values.update(sso_env(settings))
    if settings.grafana.database is not None:
        # `[database] url`: "Use either URL or the other fields ... Example:
        # mysql://user:secret@host:port/database" (conf/defaults.ini); the type follows the scheme.
        values["GF_DATABASE_URL__FILE"] = DATABASE_URL_PATH
    return values


def sso_env(settings: Settings) -> dict[str, str]:
    """`[auth.generic_oauth]` (conf/defaults.ini; "Configure generic OAuth authentication") from
    `grafana.oidc`. The login form stays: the local admin is the break-glass login."""
    oidc = settings.grafana.oidc
    if oidc is None:
        return {}
    values = {
        "GF_AUTH_GENERIC_OAUTH_ENABLED": "true",
        "GF_AUTH_GENERIC_OAUTH_NAME": "SSO",
        # Users the provider admits get an account on first login (Viewer unless the role path says).
        "GF_AUTH_GENERIC_OAUTH_ALLOW_SIGN_UP": "true",
        "GF_AUTH_GENERIC_OAUTH_CLIENT_ID": oidc.client_id,
        "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET__FILE": OIDC_SECRET_PATH,
        "GF_AUTH_GENERIC_OAUTH_SCOPES": " ".join(oidc.scopes),
        "GF_AUTH_GENERIC_OAUTH_AUTH_URL": oidc.auth_url,
        "GF_AUTH_GENERIC_OAUTH_TOKEN_URL": oidc.token_url,
        "GF_AUTH_GENERIC_OAUTH_API_URL": oidc.api_url,
        "GF_AUTH_GENERIC_OAUTH_USE_PKCE": "true",
        "GF_AUTH_DISABLE_LOGIN_FORM": "false",
    }
    if oidc.allowed_groups:
        values["GF_AUTH_GENERIC_OAUTH_ALLOWED_GROUPS"] = ",".join(oidc.allowed_groups)
        # allowed_groups is matched against the groups found at this JMESPath (the OIDC `groups` claim).
        values["GF_AUTH_GENERIC_OAUTH_GROUPS_ATTRIBUTE_PATH"] = "groups"
    if oidc.role_attribute_path:
        values["GF_AUTH_GENERIC_OAUTH_ROLE_ATTRIBUTE_PATH"] = oidc.role_attribute_path
    ingress = settings.kubernetes.ingress
    if ingress.enabled and ingress.host:
        # The provider redirects back to root_url + /login/generic_oauth. Without an Ingress,
        # Grafana's default root_url (http://localhost:3000/) fits a port-forward and Docker's
        # loopback port.
        values["GF_SERVER_ROOT_URL"] = f"{'https' if ingress.tls_secret else 'http'}://{ingress.host}/"
    return values


def _url_port(url: str, default_by_scheme: dict[str, int]) -> Optional[int]:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return parts.port or default_by_scheme.get(parts.scheme)
    except ValueError:
        return None


def egress_ports(settings: Settings) -> tuple[int, ...]:
    """Ports Grafana reaches outside the stack: the identity provider's token and userinfo
    endpoints (server-side calls) and the external database."""
    ports: set[int] = set()
    oidc = settings.grafana.oidc
    if oidc is not None:
        for url in (oidc.token_url, oidc.api_url):
            port = _url_port(url, {"https": 443, "http": 80})
            if port:
                ports.add(port)
    if settings.grafana.database is not None:
        # The URL's port, else both databases' defaults (also when the URL is a render placeholder).
        port = _url_port(settings.grafana.database.get_secret_value(), DATABASE_PORTS)
        ports.update([port] if port else DATABASE_PORTS.values())
    return tuple(sorted(ports))


def secret_files(settings: Settings, admin_password: Any) -> tuple[SecretFile, ...]:
    from .secrets import secret_output

    files = [SecretFile(ADMIN_PASSWORD_PATH, admin_password)]
    if settings.grafana.oidc is not None:
        files.append(SecretFile(OIDC_SECRET_PATH, secret_output(settings.grafana.oidc.client_secret)))
    if settings.grafana.database is not None:
        files.append(SecretFile(DATABASE_URL_PATH, secret_output(settings.grafana.database)))
    return tuple(files)


def workloads(settings: Settings, links: Links, platform: Platform,
              admin_password: Any = None) -> tuple[Workload, ...]:
    """`admin_password` is a pulumi Output[str] marked secret; it only ever becomes a file."""
    files = render(settings, links, platform)
    service = links.service(TOOL)
    ports: tuple[Port, ...] = (Port("http", HTTP_PORT, publish=True),)
    values = env(settings)
    cluster: dict = {}
    peers = links.peers.get(TOOL)
    if peers:
        # Replicas share users, dashboards and sessions through the database (Grafana docs, "Set
        # up Grafana for high availability"); their alerting Alertmanagers find each other
        # through the headless Service. `$(POD_IP)` is expanded by the kubelet from the
        # downward-API variable the backend declares first.
        ports += (Port("mesh-tcp", ALERTING_HA_PORT), Port("mesh-udp", ALERTING_HA_PORT, protocol="UDP"))
        values.update({
            "GF_UNIFIED_ALERTING_HA_PEERS": f"{peers}:{ALERTING_HA_PORT}",
            "GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS": f"$({POD_IP_ENV}):{ALERTING_HA_PORT}",
            "GF_UNIFIED_ALERTING_HA_ADVERTISE_ADDRESS": f"$({POD_IP_ENV}):{ALERTING_HA_PORT}",
        })
        cluster = dict(headless="all", pod_ip_env=POD_IP_ENV,
                       talks_to=(Endpoint(service, ALERTING_HA_PORT, scheme="tcp"),))
    return (tool_workload(
        settings, TOOL, service=service, data_dir=DATA_DIR,
        uid=UID,
        gid=GID,
        ports=ports,
        health=HealthCheck.http("/api/health", HTTP_PORT, client="curl"),
        env=values,
        config_files=tuple(ConfigFile(_container_path(path), text) for path, text in files.items()),
        secret_files=secret_files(settings, admin_password),
        egress_ports=egress_ports(settings),
        scratch=("/tmp",),
        talks_to=tuple(links.query.values()) + cluster.pop("talks_to", ()),
        web_ui=True,
        **cluster,
    ),)


class Grafana(ToolComponent):
    TYPE = "observability:grafana:Grafana"
