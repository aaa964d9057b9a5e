"""Stack config -> one validated `Settings`, or a list of one-line problems.

Merge order: built-in defaults (`config.model`) < environment preset (`config.presets`) < stack
config. Objects merge key by key (setting only `retention.logs` keeps the preset's other
retentions); lists (receivers, teams, group_by) replace as a whole.

Every problem is reported as `observability:<key path>: <bad value> <what is allowed>`, all of
them at once, and no credential value is ever echoed. This module has no Pulumi imports: the
program (`__main__.py`), `make render` and the tests all feed it plain dicts.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from typing import Any, Iterable, Optional

from pydantic import BaseModel, SecretStr, ValidationError

from .durations import parse_bytes, parse_cpu, parse_duration
from .model import HA_REPLICAS, LAYERED, QUORUM_REPLICAS, REPLICATED_ON_OBJECT_STORAGE, Components, HostAgent, Settings, TeamReceiver, job_name
from .presets import PRESETS
from .storage_rules import object_storage_problems

NAMESPACE = "observability"
# Jobs the stack scrapes itself, which team scrape jobs may not take: one per tool (the tools are
# the `components.<tool>` blocks of the model; tests/test_architecture.py keeps those equal to
# components/registry.py) plus Prometheus' pod discovery job.
# components/prometheus.py's cluster jobs (kubelet, cAdvisor, probes, API server) too;
# tests/test_cluster_monitoring.py checks every rendered job name is in here.
RESERVED_JOBS = frozenset(job_name(tool) for tool in Components.model_fields) | {
    "kubernetes-pods", "kubelet", "kubelet-cadvisor", "kubelet-probes", "apiserver"}
# pydantic names the branches of `Team.receiver` (a name or an object) in error locations.
_UNION_TAGS = (("str",), ("constrained-str",), ("TeamReceiver",))
_CREDENTIAL_KEYS = frozenset(["apiUrl", "routingKey", "authPassword", "adminPassword",
                              # issue 15: object storage, Grafana SSO and database
                              "secretAccessKey", "serviceAccountKey", "accountKey", "clientSecret", "database"])


class ConfigError(Exception):
    """Invalid stack config: `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def show(value: Any, limit: int = 60) -> str:
    """A bad value as the user wrote it, quoted and cut short (oversized input stays readable)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key_path(loc: Iterable[Any]) -> str:
    path = NAMESPACE + ":"
    first = True
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("" if first else ".") + str(part)
        first = False
    return path


def parse_raw(value: Any) -> Any:
    """Pulumi hands config values over as strings; objects and scalars arrive JSON-encoded."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def _defaults() -> dict:
    return Settings.built_in_defaults().model_dump(by_alias=True, exclude={"stack"}, mode="python")


def aliased(model: Any, data: Any) -> Any:
    """`data` with every snake_case field name of `model` (and its nested models) written as the
    stack-config key (camelCase), so Python callers may use either spelling."""
    if isinstance(data, list):
        return [aliased(model, item) for item in data]
    if not isinstance(data, dict) or model is None:
        return data
    fields = {}
    for name, field in model.model_fields.items():
        fields[name] = fields[field.alias or name] = (field.alias or name, _model_in(field.annotation))
    out = {}
    for key, value in data.items():
        alias, inner = fields.get(key, (key, None))
        out[alias] = aliased(inner, value)
    return out


def layered(data: dict) -> dict:
    """defaults < preset < `data` (a `Settings(...)` call's keywords), as `load_settings` merges
    stack config; `stack` defaults to the environment."""
    data = aliased(Settings, dict(data))
    stack = data.pop("stack", None)
    environment = data.get("environment", stack or "dev")
    if environment not in PRESETS:
        raise ConfigError([f"observability:environment: {show(environment)} is not a preset "
                           f"(use one of: {', '.join(PRESETS)})"])
    merged = deep_merge(deep_merge(_defaults(), PRESETS[environment]), data)
    merged.update(environment=environment, stack=stack or environment)
    return merged


def _is_credential(loc: tuple) -> bool:
    names = [p for p in loc if isinstance(p, str)]
    return bool(names) and (
        names[-1] in _CREDENTIAL_KEYS or (names[-1] == "url" and len(names) > 1 and names[-2] == "webhook")
    )


def _allowed_keys(loc: tuple) -> Optional[list[str]]:
    """The keys the model allows at `loc` (for unknown-key messages)."""
    model: Any = Settings
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        if part in ("TeamReceiver",):
            model = TeamReceiver
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return None
        model = _model_in(field.annotation)
    if model is None:
        return None
    return [f.alias or n for n, f in model.model_fields.items() if not f.exclude]


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _format_pydantic(err: ValidationError, raw: dict) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        # A team receiver is a name or an object: report only the branch the user chose.
        if "receiver" in loc and loc[loc.index("receiver") + 1:][:1] in _UNION_TAGS:
            i = loc.index("receiver")
            if (loc[i + 1] != "TeamReceiver") == isinstance(_lookup(raw, loc[:i + 1]), dict):
                continue
            loc = loc[: i + 1] + loc[i + 2:]
        is_map_key = "[key]" in loc  # pydantic marks an invalid mapping key this way
        loc = tuple(p for p in loc if p != "[key]")
        path = key_path(loc)
        kind, msg = e["type"], e["msg"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            line = f"{path}: unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        elif kind == "missing":
            line = f"{path}: is required"
        else:
            value = "<secret>" if _is_credential(loc) else show(e.get("input"))
            reason = msg.removeprefix("Value error, ")
            reason = reason[0].lower() + reason[1:] if reason else reason
            if kind in ("model_type", "dict_type"):
                reason = "it must be an object (key: value pairs)"
            if kind == "value_error":
                line = f"{path}: {reason}"
            elif kind == "string_pattern_mismatch" and is_map_key:
                line = f"{path}: {value} is not a Prometheus label name (letters, digits and '_')"
            elif kind == "string_pattern_mismatch":
                line = f"{path}: {value} is not allowed ({_pattern_hint(loc)})"
            else:
                line = f"{path}: {value} is not allowed: {reason}"
        if line not in seen:
            seen.add(line)
            problems.append(line)
    return problems


def _pattern_hint(loc: tuple) -> str:
    last = [p for p in loc if isinstance(p, str)]
    name = last[-1] if last else ""
    hints = {
        "name": "lowercase letters, digits and '-', at most 40, e.g. payments"
        if "teams" in loc and loc[-1] == "name" and "receiver" not in loc
        else "letters, digits, '-' and '_', at most 63",
        "targets": "host:port, e.g. app:8000",
        "job": "letters, digits, '.', '-', '_'",
        "metricsPath": "an HTTP path such as /metrics",
        "smarthost": "host:port, e.g. smtp.example.com:587",
        "bindAddress": "an IP address such as 127.0.0.1",
        "host": "a host name" if "docker" not in loc else "a URL such as unix:///var/run/docker.sock",
        "alert": "a Prometheus alert name: letters, digits and '_'",
        "registryMirror": "a registry host and path, e.g. mirror.example.com/hub",
    }
    if name in ("namespace", "storageClass", "className", "tlsSecret"):
        return "a Kubernetes name: lowercase letters, digits and '-', at most 40"
    if isinstance(loc[-1], str) and loc[-2:-1] in (("labels",), ("annotations",), ("groupBy",)):
        return "a Prometheus label name: letters, digits and '_'"
    return hints.get(name, "see the configuration reference in the README")


def _lookup(data: Any, loc: Iterable[Any]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def cross_field_problems(s: Settings) -> list[str]:
    problems: list[str] = []
    names: dict[str, int] = {}
    for i, receiver in enumerate(s.alerting.receivers):
        if receiver.name in names:
            problems.append(f"{key_path(('alerting', 'receivers', i, 'name'))}: {show(receiver.name)} "
                            f"is defined twice (receiver names must be unique)")
        names[receiver.name] = i
    defined = sorted(names)
    team_names: set[str] = set()
    for i, team in enumerate(s.teams):
        if team.name in team_names:
            problems.append(f"{key_path(('teams', i, 'name'))}: {show(team.name)} is defined twice "
                            f"(team names must be unique)")
        team_names.add(team.name)
        if isinstance(team.receiver, str):
            if team.receiver not in names:
                problems.append(f"{key_path(('teams', i, 'receiver'))}: {show(team.receiver)} is not a "
                                f"defined receiver (defined: {', '.join(defined) or 'none'})")
        else:
            rname = s.team_receiver_name(team)
            if rname in names:
                problems.append(f"{key_path(('teams', i, 'receiver', 'name'))}: {show(rname)} clashes with "
                                f"a receiver in alerting.receivers (name it differently)")
            names.setdefault(rname, -1)
        for j, rule in enumerate(team.alert_rules):
            if rule.labels.get("team", team.name) != team.name:
                problems.append(f"{key_path(('teams', i, 'alertRules', j, 'labels', 'team'))}: "
                                f"{show(rule.labels['team'])} is not allowed (team rules are labelled "
                                f"team={team.name}; leave it out)")
    jobs: set[str] = set()
    for i, team in enumerate(s.teams):
        for j, target in enumerate(team.scrape_targets):
            if target.job in RESERVED_JOBS or target.job in jobs:
                problems.append(f"{key_path(('teams', i, 'scrapeTargets', j, 'job'))}: {show(target.job)} "
                                f"is already a scrape job (job names must be unique across the stack)")
            jobs.add(target.job)

    for tool, field in Components.model_fields.items():
        component = getattr(s.components, tool)
        if isinstance(component, HostAgent) and component.enabled and s.target not in component.TARGETS:
            alias = field.alias or tool
            problems.append(f"{key_path(('components', alias, 'enabled'))}: true is not possible on target "
                            f"{s.target} ({job_name(tool)} runs on {' and '.join(component.TARGETS)} only); "
                            f"remove the key or set it to false")

    routes = s.alerting.routes
    for severity in ("critical", "warning", "default"):
        name = getattr(routes, severity)
        if name is not None and name not in names:
            problems.append(f"{key_path(('alerting', 'routes', severity))}: {show(name)} is not a defined "
                            f"receiver (defined: {', '.join(defined) or 'none'})")
    if s.environment == "prod":
        for severity in ("critical", "warning"):
            name = getattr(routes, severity)
            if name is None:
                problems.append(f"{key_path(('alerting', 'routes', severity))}: is required in prod "
                                f"(name a receiver; the seed sends critical to PagerDuty, warning to Slack)")
            elif name in names and names[name] >= 0 and not s.alerting.receivers[names[name]].kinds():
                problems.append(f"{key_path(('alerting', 'routes', severity))}: {show(name)} has no "
                                f"slack, pagerduty, email or webhook settings; prod alerts must reach someone")
        if s.grafana.anonymous_access:
            problems.append(f"{key_path(('grafana', 'anonymousAccess'))}: true is not allowed in prod "
                            f"(anonymous Grafana access is for dev only)")
    if s.default_route is None and s.environment != "prod":
        problems.append(f"{key_path(('alerting', 'routes', 'default'))}: is required (name a receiver)")

    try:
        loopback = ipaddress.ip_address(s.docker.bind_address).is_loopback
    except ValueError:
        problems.append(f"{key_path(('docker', 'bindAddress'))}: {show(s.docker.bind_address)} is not an IP address")
        loopback = True
    if not loopback and not s.docker.allow_public_ports:
        problems.append(f"{key_path(('docker', 'bindAddress'))}: {show(s.docker.bind_address)} is not a loopback "
                        f"address; set observability:docker.allowPublicPorts true to publish ports beyond this host")
    if s.kubernetes.service_type != "ClusterIP" and not s.kubernetes.allow_public_services:
        problems.append(f"{key_path(('kubernetes', 'serviceType'))}: {show(s.kubernetes.service_type)} exposes "
                        f"the stack outside the cluster; set observability:kubernetes.allowPublicServices true to opt in")
    if s.kubernetes.ingress.enabled and not s.kubernetes.ingress.host:
        problems.append(f"{key_path(('kubernetes', 'ingress', 'host'))}: is required when the ingress is enabled")
    logs = parse_duration(s.retention.logs)
    if s.enabled("loki") and (logs < 86400 or logs % 86400):
        problems.append(f"{key_path(('retention', 'logs'))}: {show(s.retention.logs)} is not whole days; Loki "
                        f"applies retention per 24h index period (use e.g. 1d, 7d, 30d)")
    if s.enabled("collector") and not any(s.enabled(t) for t in ("tempo", "loki", "mimir", "prometheus")):
        problems.append(f"{key_path(('components', 'collector', 'enabled'))}: true needs tempo, loki, mimir or "
                        f"prometheus enabled (the collector would have nowhere to send telemetry)")
    for tool in type(s.components).model_fields:
        given = getattr(s.components, tool).resources
        for kind, parse in (("cpu", parse_cpu), ("memory", parse_bytes)):
            request, limit = getattr(given.requests, kind), getattr(given.limits, kind)
            if request and limit and parse(request) > parse(limit):
                problems.append(f"{key_path(('components', tool, 'resources', 'requests', kind))}: {show(request)} "
                                f"is more than limits.{kind} {show(limit)} (a request may not exceed its limit)")
    problems.extend(_replica_problems(s))
    for tool in ("alertmanager",):
        if s.enabled(tool) and not s.enabled("prometheus"):
            problems.append(f"{key_path(('components', tool, 'enabled'))}: true needs prometheus enabled "
                            f"(nothing else sends it alerts)")
    problems.extend(object_storage_problems(s))
    return problems


def _replica_problems(s: Settings) -> list[str]:
    problems: list[str] = []
    if s.target == "docker" and s.high_availability:
        problems.append(f"{key_path(('highAvailability',))}: true is not allowed on the docker target (one "
                        f"host cannot be highly available; use the kubernetes target or set it false)")
    for tool in Components.model_fields:
        count = getattr(s.components, tool).replicas
        if count is None or count == 1:
            continue
        where = key_path(("components", tool, "replicas"))
        if tool == "grafana":
            if s.grafana.database is None:
                problems.append(f"{where}: {count} is not allowed without observability:grafana.database (replicas "
                                f"on their own SQLite volumes would each hold different users and dashboards; "
                                f"set grafana.database to a postgres:// or mysql:// URL, or 1 replica)")
        elif tool not in HA_REPLICAS:
            problems.append(f"{where}: {count} is not allowed ({tool} keeps its data on one node's volume and "
                            f"runs 1 replica; replicated tools: {', '.join(HA_REPLICAS)}, grafana)")
        elif tool in REPLICATED_ON_OBJECT_STORAGE and s.object_storage is None:
            problems.append(f"{where}: {count} is not allowed without observability:objectStorage ({tool} "
                            f"replicates only with its data in object storage; on one node's volume the "
                            f"replicas would be diverging copies)")
        elif count < QUORUM_REPLICAS.get(tool, 0):
            problems.append(f"{where}: {count} is not allowed ({tool} writes everything to 3 replicas and "
                            f"needs 2 of them, so {count} replicas stop at the first one lost; use 1 or at "
                            f"least {QUORUM_REPLICAS[tool]})")
        if s.target == "docker" and (tool in HA_REPLICAS or tool == "grafana"):
            problems.append(f"{where}: {count} is not allowed on the docker target (one container per tool; "
                            f"use the kubernetes target)")
    return problems


def credential_paths(value: Any, loc: tuple = ()) -> Iterable[tuple]:
    """Locations of every credential (SecretStr) in a validated model."""
    if isinstance(value, SecretStr):
        yield loc
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            yield from credential_paths(getattr(value, name), loc + (field.alias or name,))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from credential_paths(item, loc + (i,))


def load_settings(
    raw: dict[str, Any], *, stack: str, secret_keys: Optional[Iterable[str]] = None
) -> Settings:
    """Validate stack config (keys without the `observability:` prefix) into `Settings`.

    `secret_keys` lists the config keys Pulumi holds encrypted (`pulumi config set --secret`);
    when given, a credential under any other key is refused as plaintext.
    """
    raw = aliased(Settings, {key: parse_raw(value) for key, value in raw.items()})
    problems: list[str] = []
    environment = raw.get("environment", stack)
    if environment not in PRESETS:
        where = "observability:environment" + ("" if "environment" in raw else f" (defaults to the stack name {show(stack)})")
        problems.append(f"{where}: {show(environment)} is not a preset (use one of: {', '.join(PRESETS)})")
        raise ConfigError(problems)
    merged = deep_merge(deep_merge(_defaults(), PRESETS[environment]), raw)
    merged["environment"] = environment
    try:
        settings = Settings.model_validate({**merged, "stack": stack}, context=LAYERED)
    except ValidationError as err:
        raise ConfigError(_format_pydantic(err, merged)) from None
    problems.extend(cross_field_problems(settings))
    if secret_keys is not None:
        secret = {k.split(":", 1)[-1] for k in secret_keys}
        for loc in credential_paths(settings):
            if loc[0] not in secret and _lookup(raw, loc) is not None:
                path = key_path(loc)
                problems.append(f"{path}: is a credential given in plaintext; set it with "
                                f"`pulumi config set --secret --path '{path}' <value>`")
    if problems:
        raise ConfigError(problems)
    return settings


def known_keys() -> list[str]:
    return [f.alias or n for n, f in Settings.model_fields.items() if not f.exclude]


def settings_from_stack_file(path: str, stack: str, placeholder: str = "secret-placeholder") -> Settings:
    """Read a `Pulumi.<stack>.yaml` as the program would, secure values replaced by placeholders.

    Used by `make render` and the tests; `secure:` leaves become `<placeholder>-<n>` strings that
    count as secrets.
    """
    import yaml

    with open(path, encoding="utf-8") as handle:
        doc = yaml.safe_load(handle) or {}
    raw, secret_keys = stack_config_values(doc.get("config") or {}, placeholder)
    return load_settings(raw, stack=stack, secret_keys=secret_keys)


def placeholder_secrets(config: dict, prefix: str) -> tuple[dict, list[str]]:
    """A stack file's `config:` as a program would receive it decrypted: every `secure:` leaf
    becomes a distinct `<prefix><n>` string; also returns the keys that held one (secret keys)."""
    counter = iter(range(1, 1 << 30))
    secret_keys: list[str] = []

    def replace(value: Any, key: str) -> Any:
        if isinstance(value, dict) and set(value) == {"secure"}:
            if key not in secret_keys:
                secret_keys.append(key)
            return f"{prefix}{next(counter)}"
        if isinstance(value, dict):
            return {k: replace(v, key) for k, v in value.items()}
        if isinstance(value, list):
            return [replace(v, key) for v in value]
        return value

    return {key: replace(value, key) for key, value in config.items()}, secret_keys


def stack_config_values(config: dict, placeholder: str = "secret-placeholder") -> tuple[dict, list[str]]:
    """`config:` of a stack file -> ({key: value} under our namespace, secret keys)."""
    values, secret_keys = placeholder_secrets(config, f"{placeholder}-")
    prefix = NAMESPACE + ":"
    raw = {key[len(prefix):]: value for key, value in values.items() if key.startswith(prefix)}
    return raw, [key[len(prefix):] for key in secret_keys if key.startswith(prefix)]
