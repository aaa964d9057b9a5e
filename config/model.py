"""The typed settings model: every stack config key under `observability:` and its default.

Field names are snake_case in Python and camelCase in stack config (`keepErrors`, `apiUrl`).
Every model forbids unknown keys, so a typo is an error rather than a silently ignored setting.
The configuration reference in the README is generated from this module
(`make reference`); a test fails when it is stale.

Defaults here are the built-in layer; `config.presets` overrides them per environment and the
stack's own config overrides both (see `config.loader`).
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    BeforeValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .durations import parse_bytes, parse_cpu, parse_duration


def _check(parser):
    def validate(value: str) -> str:
        parser(value)  # raises ValueError with the user-facing message
        return value

    return AfterValidator(validate)


Duration = Annotated[str, _check(parse_duration)]
Size = Annotated[str, _check(parse_bytes)]
Cpu = Annotated[str, _check(parse_cpu)]
# Safe as a Prometheus label value, a Kubernetes object name and a file name.
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")]
ReceiverName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")]
HostPort = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}):\d{1,5}$")]
LabelName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,62}$")]
# A credential: only ever handled as a secret (pydantic masks it in repr and errors).
Credential = Annotated[SecretStr, Field(min_length=1, max_length=4096)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]

_NOT_LATEST = re.compile(r"^(?!latest$)[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _pinned(tag: Optional[str]) -> Optional[str]:
    if tag is not None and not _NOT_LATEST.match(tag):
        raise ValueError(f'"{tag}" is not a pinned image tag (use an exact version such as v3.8.1, never latest)')
    return tag


def _spread_keys(value):
    """`zone`, `hostname` or `both` as a shorthand for the list."""
    if value == "both":
        return ["zone", "hostname"]
    return [value] if isinstance(value, str) else value


def _unique(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError(f"{values} names a key twice (use zone, hostname, or both once)")
    return values


# Validation context of an already merged document (the loader): skip re-merging and leave the
# cross-field rules to the loader, which reports them together with everything else.
LAYERED = {"layered": True}


def _layered(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("layered"))


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


# --- retention and sampling -------------------------------------------------------------------


class Retention(Model):
    """How long each signal is kept. Prometheus duration syntax (`90m`, `12h`, `7d`, `2w`, `1y`)."""

    metrics: Duration = Field("15d", description="Prometheus local TSDB and Mimir blocks retention.")
    logs: Duration = Field("7d", description="Loki compactor `retention_period`.")
    traces: Duration = Field("7d", description="Tempo compactor `block_retention`.")
    profiles: Duration = Field("7d", description="Pyroscope `compactor_blocks_retention_period`.")


class Sampling(Model):
    """Tail sampling in the OpenTelemetry collector (and the SDK sampler apps are told to use)."""

    traces: float = Field(
        1.0, ge=0.0, le=1.0, allow_inf_nan=False,
        description="Ratio 0..1 of ordinary traces kept (the seed: 1.0 in dev, 0.05 in prod).",
    )
    keep_errors: bool = Field(True, description="Always keep traces that contain an error span.")
    slow_trace_threshold: Duration = Field(
        "1s", description="Always keep traces longer than this (the seed's HighLatency threshold)."
    )


# --- alerting ---------------------------------------------------------------------------------


class Slack(Model):
    api_url: Credential = Field(description="Incoming-webhook URL. Secret: `pulumi config set --secret`.")
    channel: Text = Field("#alerts", description="Channel, e.g. `#alerts`.")


class PagerDuty(Model):
    routing_key: Credential = Field(description="Events API v2 integration key. Secret.")
    url: Optional[Text] = Field(None, description="Events API URL override (default: PagerDuty's).")


class Email(Model):
    to: Text = Field(description="Recipient address(es).")
    from_: Text = Field(alias="from", description="Sender address.")
    smarthost: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]{1,253}:\d{1,5}$")] = Field(
        description="SMTP server `host:port`."
    )
    auth_username: Optional[Text] = Field(None, description="SMTP user (defaults to `from`).")
    auth_password: Optional[Credential] = Field(None, description="SMTP password. Secret.")
    require_tls: bool = Field(True, description="Require STARTTLS.")


class Webhook(Model):
    url: Credential = Field(description="Webhook URL (often carries a token). Secret.")


class Receiver(Model):
    """Where notifications go. One or more kinds; none at all is Alertmanager's null receiver."""

    name: ReceiverName = Field(description="Receiver name, referenced by routes and teams.")
    slack: Optional[Slack] = Field(None, description="Slack incoming webhook.")
    pagerduty: Optional[PagerDuty] = Field(None, description="PagerDuty Events API v2.")
    email: Optional[Email] = Field(None, description="Email via SMTP.")
    webhook: Optional[Webhook] = Field(None, description="Generic webhook.")

    def kinds(self) -> list[str]:
        return [k for k in ("slack", "pagerduty", "email", "webhook") if getattr(self, k)]


class TeamReceiver(Receiver):
    name: Optional[ReceiverName] = Field(None, description="Defaults to `team-<team name>`.")


class Routes(Model):
    """Severity routing (the seed: critical -> PagerDuty, warning -> Slack, default -> email)."""

    critical: Optional[ReceiverName] = Field(None, description="Receiver for `severity=critical`. Required in prod.")
    warning: Optional[ReceiverName] = Field(None, description="Receiver for `severity=warning`. Required in prod.")
    default: Optional[ReceiverName] = Field(None, description="Everything else; defaults to the warning receiver.")


class Alerting(Model):
    receivers: list[Receiver] = Field(default_factory=list, max_length=200, description="Receivers.")
    routes: Routes = Field(default_factory=Routes, description="Severity routes (receiver names).")
    group_by: list[LabelName] = Field(
        default_factory=lambda: ["alertname", "cluster", "service"], max_length=20,
        description="Alertmanager `group_by` (the seed's).",
    )
    group_wait: Duration = Field("10s", description="Alertmanager `group_wait`.")
    group_interval: Duration = Field("10s", description="Alertmanager `group_interval`.")
    repeat_interval: Duration = Field("12h", description="Alertmanager `repeat_interval`.")


# --- teams ------------------------------------------------------------------------------------


# Annotation templates a team may use: Prometheus parses every annotation as a Go template when
# it loads the rule file, and one that does not parse (`{{`, `{{}}`, an unknown function) stops
# the whole rule group from loading. Only these well-formed actions are accepted.
_TEMPLATE_ACTION = re.compile(
    r"\{\{\s*(?:\$labels\.[A-Za-z_][A-Za-z0-9_]*|\$value(?:\s*\|\s*(?:humanize|humanizePercentage|humanizeDuration))?)\s*\}\}")


def _annotation(value: str) -> str:
    rest = _TEMPLATE_ACTION.sub("", value)
    if "{{" in rest or "}}" in rest:
        raise ValueError(
            "is not a template Prometheus can be trusted to load here (use {{ $labels.<name> }}, {{ $value }} "
            "or {{ $value | humanize }}, humanizePercentage, humanizeDuration; no other {{ }})")
    return value


class AlertRule(Model):
    alert: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")] = Field(
        description="Alert name."
    )
    expr: Annotated[str, StringConstraints(min_length=1, max_length=4096)] = Field(description="PromQL.")
    for_: Optional[Duration] = Field(None, alias="for", description="Pending period.")
    labels: dict[LabelName, Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=dict, max_length=30, description="Extra labels (`severity` routes it)."
    )
    annotations: dict[LabelName, Annotated[str, StringConstraints(max_length=4096), AfterValidator(_annotation)]] = Field(
        default_factory=dict, max_length=30,
        description="Annotations (summary, description, ...); templates: `{{ $labels.<name> }}`, `{{ $value }}`, "
                    "`{{ $value | humanize }}` (or humanizePercentage, humanizeDuration).",
    )


class ScrapeTarget(Model):
    job: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")] = Field(
        description="Scrape job name."
    )
    targets: list[HostPort] = Field(min_length=1, max_length=500, description="`host:port` list.")
    metrics_path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_./-]{0,255}$")] = Field(
        "/metrics", description="HTTP path of the metrics."
    )
    scrape_interval: Optional[Duration] = Field(None, description="Overrides the global interval.")


class Team(Model):
    name: Slug = Field(description="Team name; alerts labelled `team=<name>` route to its receiver.")
    receiver: Union[ReceiverName, TeamReceiver] = Field(
        description="A receiver name from `alerting.receivers`, or a receiver object."
    )
    alert_rules: list[AlertRule] = Field(default_factory=list, max_length=500, description="Extra rules.")
    scrape_targets: list[ScrapeTarget] = Field(default_factory=list, max_length=200, description="Extra jobs.")


# --- components -------------------------------------------------------------------------------


class ResourceAmounts(Model):
    cpu: Optional[Cpu] = Field(None, description="CPU (Kubernetes quantity); unset: derived or the tool's base.")
    memory: Optional[Size] = Field(None, description="Memory (Kubernetes quantity); unset: derived or the tool's base.")


class Resources(Model):
    """Every value is optional. A value set by the stack or by the environment preset wins; a value
    no layer sets is derived from `ingest` where a rule exists (Prometheus and collector memory),
    else the tool's base size. The rules and the base sizes are in `components/sizing.py`."""

    requests: ResourceAmounts = Field(default_factory=ResourceAmounts, description="Requests.")
    limits: ResourceAmounts = Field(default_factory=ResourceAmounts, description="Limits.")


class Storage(Model):
    size: Optional[Size] = Field(None, description="Volume size; derived from retention x ingest when unset.")


class Component(Model):
    enabled: bool = Field(True, description="Deploy this tool.")
    version: Annotated[Optional[str], AfterValidator(_pinned)] = Field(
        None, description="Image tag override (default: the pinned version table)."
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="Requests and limits; unset values are derived from `ingest` or the tool's base size.",
    )
    storage: Storage = Field(default_factory=Storage, description="Data volume (stateful tools).")
    replicas: Optional[int] = Field(
        None, ge=1, le=9,
        description="Instances of this tool (Kubernetes). Default: 1, or with `highAvailability` the "
                    "tool's HA count (alertmanager 3, prometheus 2, collector 2 per tier, loki 3, "
                    "mimir 3, tempo 3, pyroscope 3 per component); grafana 2 with `grafana.database`.",
    )


# Replicas each tool gets with `highAvailability` on (kube-prometheus: Prometheus x2, Alertmanager
# x3; Grafana's Loki/Mimir/Tempo/Pyroscope charts: replication factor 3, so 3 replicas). The
# storage backends replicate only on object storage (`objectStorage`, required with HA): on one
# node's volume more replicas would be independent, diverging copies. Grafana runs 2 replicas
# only with an external database (`grafana.database`), whatever `highAvailability` says.
# Each storage tool joins this table when its replicated shape lands (issue 15).
HA_REPLICAS = {"alertmanager": 3, "prometheus": 2, "collector": 2, "loki": 3, "mimir": 3, "tempo": 3, "pyroscope": 3}
# Replicated tools that write each stream/series to a quorum of 3 (replication factor 3, quorum
# 2: components/sizing.py REPLICATION_FACTOR): 2 replicas would stop at the first one lost.
QUORUM_REPLICAS = {"loki": 3, "mimir": 3, "tempo": 3, "pyroscope": 3}
# The tools in HA_REPLICAS that keep their data in object storage when replicated.
REPLICATED_ON_OBJECT_STORAGE = ("loki", "mimir", "tempo", "pyroscope")
# Grafana with an external database: its sessions, users and dashboards live there (Grafana docs,
# "Set up Grafana for high availability"), so two replicas serve the same state.
GRAFANA_REPLICAS_WITH_DATABASE = 2
# Topology keys of `kubernetes.topologySpread` (well-known node labels).
TOPOLOGY_KEYS = {"zone": "topology.kubernetes.io/zone", "hostname": "kubernetes.io/hostname"}


class HostAgent(Component):
    """A metrics exporter that watches the host or the cluster, not the stack. `enabled` unset
    means "on where the target supports it" (`TARGETS`); `true` on another target is refused."""

    # Targets the exporter can run on (the config loader refuses `enabled: true` elsewhere).
    TARGETS: ClassVar[tuple[str, ...]] = ("docker", "kubernetes")
    enabled: Optional[bool] = Field(
        None, description="Deploy it; unset: on where the target supports it (see the README)."
    )


class NodeExporter(HostAgent):
    """node_exporter: host CPU, memory, filesystems, network (a DaemonSet on Kubernetes)."""


class KubeStateMetrics(HostAgent):
    """kube-state-metrics: the state of Kubernetes objects (Kubernetes only)."""

    TARGETS: ClassVar[tuple[str, ...]] = ("kubernetes",)


class Cadvisor(HostAgent):
    """cAdvisor: per-container metrics on Docker (the kubelet serves them on Kubernetes)."""

    TARGETS: ClassVar[tuple[str, ...]] = ("docker",)


def job_name(tool: str) -> str:
    """A tool's scrape job and service name: its settings field with '-' for '_'
    (`node_exporter` -> `node-exporter`, a DNS label)."""
    return tool.replace("_", "-")


class Components(Model):
    """Per tool: enabled, image version, resources, storage."""

    prometheus: Component = Field(default_factory=Component)
    alertmanager: Component = Field(default_factory=Component)
    grafana: Component = Field(default_factory=Component)
    loki: Component = Field(default_factory=Component)
    tempo: Component = Field(default_factory=Component)
    mimir: Component = Field(default_factory=Component)
    pyroscope: Component = Field(default_factory=Component)
    collector: Component = Field(default_factory=Component)
    # Base requests/limits in components/sizing.py (BASE), from kube-prometheus' (node-exporter
    # 102m/180Mi, 250m/180Mi; kube-state-metrics 10m/190Mi, 100m/250Mi), trimmed where ours do less.
    node_exporter: NodeExporter = Field(default_factory=NodeExporter)
    kube_state_metrics: KubeStateMetrics = Field(default_factory=KubeStateMetrics)
    cadvisor: Cadvisor = Field(default_factory=Cadvisor)


class Ingest(Model):
    """Expected ingest: sizes volumes (retention x rate x bytes/unit) and, where a rule exists,
    memory (`components/sizing.py`)."""

    metrics_samples_per_second: float = Field(2000, gt=0, le=1e9, description="Samples/s scraped (active series = this x the 15s scrape interval).")
    log_gb_per_day: float = Field(1.0, gt=0, le=1e6, description="Uncompressed log volume per day.")
    spans_per_second: float = Field(100, gt=0, le=1e9, description="Spans/s kept after sampling (the collector receives this / `sampling.traces`).")
    profile_mb_per_day: float = Field(200, gt=0, le=1e9, description="Profile data per day.")


# --- targets and access -----------------------------------------------------------------------


# --- object storage and Grafana SSO (issue 15) ---------------------------------------------------

# S3 / GCS bucket and Azure container names share this shape (lowercase, digits, '.', '-').
BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
# `host` or `host:port`, no scheme: what Loki, Mimir, Tempo and Pyroscope all take as `endpoint`.
ObjectEndpoint = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:\d{1,5})?$")]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s\"'\\]{1,2000}$")]
AnnotationKey = Annotated[str, StringConstraints(
    pattern=r"^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")]


class S3(Model):
    """Amazon S3 or any S3-compatible server (MinIO, SeaweedFS, Ceph RGW, ...)."""

    endpoint: Optional[ObjectEndpoint] = Field(
        None, description="`host[:port]`, no scheme. Default: AWS's regional endpoint `s3.<region>.amazonaws.com`. "
                          "Set for an S3-compatible server (then requests use path-style addressing).")
    region: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,40}$")] = Field(
        "us-east-1", description="Bucket region.")
    bucket: BucketName = Field(description="Bucket name (each tool gets its own prefix in it; see `buckets`).")
    access_key_id: Optional[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/=._-]{1,128}$")]] = Field(
        None, description="Access key id; leave out with `secretAccessKey` to use workload identity.")
    secret_access_key: Optional[Credential] = Field(None, description="Secret access key. Secret.")
    insecure: bool = Field(False, description="Plain HTTP to `endpoint` (an in-cluster test server only).")


class Gcs(Model):
    """Google Cloud Storage."""

    bucket: BucketName = Field(description="Bucket name.")
    service_account_key: Optional[Credential] = Field(
        None, description="Service account key (the JSON file's content). Secret. Leave out for workload identity.")


class Azure(Model):
    """Azure Blob Storage."""

    account_name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{3,24}$")] = Field(
        description="Storage account name.")
    container: BucketName = Field(description="Blob container (each tool gets its own prefix in it; see `buckets`).")
    account_key: Optional[Credential] = Field(
        None, description="Storage account key. Secret. Leave out for workload identity.")


class Buckets(Model):
    """A bucket (Azure: container) per tool instead of one bucket with a prefix per tool."""

    loki: Optional[BucketName] = Field(None, description="Loki's bucket.")
    mimir: Optional[BucketName] = Field(None, description="Mimir's bucket.")
    tempo: Optional[BucketName] = Field(None, description="Tempo's bucket.")
    pyroscope: Optional[BucketName] = Field(None, description="Pyroscope's bucket.")


class ObjectStorage(Model):
    """Where Loki, Mimir, Tempo and Pyroscope keep their data (Kubernetes target): exactly one of
    `s3`, `gcs`, `azure`. Their claims then hold only WAL and cache."""

    s3: Optional[S3] = Field(None, description="S3 or an S3-compatible server.")
    gcs: Optional[Gcs] = Field(None, description="Google Cloud Storage.")
    azure: Optional[Azure] = Field(None, description="Azure Blob Storage.")
    buckets: Buckets = Field(default_factory=Buckets, description="Per-tool buckets (default: one bucket, a prefix per tool).")
    service_account_annotations: dict[AnnotationKey, Annotated[str, StringConstraints(max_length=1024)]] = Field(
        default_factory=dict, max_length=20,
        description="Annotations on the ServiceAccounts of Loki, Mimir, Tempo and Pyroscope, for workload identity "
                    "(e.g. `eks.amazonaws.com/role-arn`, `iam.gke.io/gcp-service-account`).")

    def kinds(self) -> list[str]:
        return [k for k in ("s3", "gcs", "azure") if getattr(self, k) is not None]

    @property
    def kind(self) -> str:
        return self.kinds()[0]


class Oidc(Model):
    """Single sign-on through an OpenID Connect / OAuth2 provider (Grafana's generic OAuth)."""

    client_id: Text = Field(description="OAuth2 client id.")
    client_secret: Credential = Field(description="OAuth2 client secret. Secret.")
    auth_url: HttpUrl = Field(description="Authorization endpoint.")
    token_url: HttpUrl = Field(description="Token endpoint.")
    api_url: HttpUrl = Field(description="Userinfo endpoint.")
    scopes: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/-]{1,100}$")]] = Field(
        default_factory=lambda: ["openid", "email", "profile"], max_length=30, description="Scopes requested.")
    allowed_groups: list[Annotated[str, StringConstraints(pattern=r"^[^\s,\"'\\]{1,200}$")]] = Field(
        default_factory=list, max_length=100,
        description="Only members of these groups (the `groups` claim) may log in; empty: anyone the provider admits.")
    role_attribute_path: Optional[Annotated[str, StringConstraints(min_length=1, max_length=2000)]] = Field(
        None, description="JMESPath to the Grafana role, e.g. `contains(groups[*], 'admins') && 'Admin' || 'Viewer'`.")


class Grafana(Model):
    admin_user: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")] = Field(
        "admin", description="Admin login."
    )
    admin_password: Optional[Credential] = Field(
        None, description="Admin password (secret). Generated (pulumi-random) and exported as a secret when unset."
    )
    anonymous_access: bool = Field(False, description="Allow anonymous Viewer access (refused in prod).")
    oidc: Optional[Oidc] = Field(None, description="Single sign-on (the admin login stays as break-glass).")
    database: Optional[Credential] = Field(
        None, description="`postgres://` or `mysql://` URL of an external database. Secret. With it Grafana runs "
                          "2 replicas; without it one replica on its SQLite volume.")


class Docker(Model):
    host: Optional[Annotated[str, StringConstraints(pattern=r"^(unix|tcp|ssh|npipe)://\S{1,250}$")]] = Field(
        None, description="Docker host (default: DOCKER_HOST or the local socket)."
    )
    bind_address: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F.:]{2,45}$")] = Field(
        "127.0.0.1", description="Address published ports bind to."
    )
    allow_public_ports: bool = Field(
        False, description="Opt-in required to bind to a non-loopback address."
    )


class Ingress(Model):
    enabled: bool = Field(False, description="Create an Ingress for Grafana.")
    host: Optional[Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")]] = Field(
        None, description="Host name (required when enabled)."
    )
    class_name: Optional[Slug] = Field(None, description="IngressClass name.")
    tls_secret: Optional[Slug] = Field(None, description="TLS Secret name in the namespace.")


class Kubernetes(Model):
    namespace: Slug = Field("observability", description="Namespace the stack lives in.")
    kubeconfig: Optional[Text] = Field(None, description="Path or content of a kubeconfig (default: ambient).")
    context: Optional[Text] = Field(None, description="kubeconfig context.")
    storage_class: Optional[Slug] = Field(None, description="StorageClass of data volumes (default: the cluster's).")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", description="Type of the user-facing Services."
    )
    allow_public_services: bool = Field(
        False, description="Opt-in required for a NodePort/LoadBalancer service type."
    )
    ingress: Ingress = Field(default_factory=Ingress, description="Optional Grafana Ingress.")
    render_to_directory: Optional[Text] = Field(
        None, description="Write manifests to this directory instead of applying them (secrets in plaintext there)."
    )
    topology_spread: Annotated[list[Literal["zone", "hostname"]], BeforeValidator(_spread_keys),
                               AfterValidator(_unique)] = Field(
        default_factory=lambda: ["zone", "hostname"], min_length=1, max_length=2,
        description="How replicas of a multi-replica tool spread: across `zone`s "
                    "(`topology.kubernetes.io/zone`, best effort), `hostname`s (`kubernetes.io/hostname`, "
                    "at most one more on any node), or both. A list, or one of `zone`, `hostname`, `both`.",
    )
    cluster_monitoring: bool = Field(
        True, description="Scrape the kubelets (with cAdvisor and probes) and the API server, with "
                          "the cluster-wide read access that needs (nodes, nodes/metrics, /metrics); "
                          "with the collector and Loki, also ship the cluster's Events to Loki "
                          "(`collector-events`: one replica, list/watch on events).",
    )


class Settings(Model):
    """The whole stack. Stack config key `observability:<field>` for each field below."""

    environment: Literal["dev", "prod"] = Field(
        "dev", description="Preset: `dev` or `prod`. Defaults to the stack name when that is a preset."
    )
    target: Literal["docker", "kubernetes"] = Field(
        "docker", description="Where to deploy (preset: dev -> docker, prod -> kubernetes)."
    )
    retention: Retention = Field(default_factory=Retention, description="Retention per signal.")
    sampling: Sampling = Field(default_factory=Sampling, description="Trace sampling.")
    alerting: Alerting = Field(default_factory=Alerting, description="Receivers and severity routes.")
    teams: list[Team] = Field(default_factory=list, max_length=2000, description="Team overlays.")
    components: Components = Field(default_factory=Components, description="Per-tool settings.")
    ingest: Ingest = Field(default_factory=Ingest, description="Expected ingest (volume and memory sizing).")
    grafana: Grafana = Field(default_factory=Grafana, description="Grafana access.")
    docker: Docker = Field(default_factory=Docker, description="Docker target settings.")
    kubernetes: Kubernetes = Field(default_factory=Kubernetes, description="Kubernetes target settings.")
    registry_mirror: Optional[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.:/_-]{0,200}[A-Za-z0-9]$")]
    ] = Field(None, description="Prefix for every image, e.g. `mirror.example.com/hub`.")
    protect_data: bool = Field(
        False, description="Protect and retain data volumes (preset: prod true)."
    )
    object_storage: Optional[ObjectStorage] = Field(
        None, description="Object storage for Loki, Mimir, Tempo and Pyroscope (Kubernetes target).")
    high_availability: bool = Field(
        False, description="Run alerting and ingestion so that losing a node costs nothing: Alertmanager x3, "
                           "Prometheus x2, a two-tier collector (preset: prod true; Kubernetes only).",
    )
    stack: str = Field("dev", exclude=True, description="The Pulumi stack name (not a config key).")

    # -- built in Python: the same layers, rules and messages as stack config ---------------------

    @model_validator(mode="before")
    @classmethod
    def _apply_layers(cls, data, info: ValidationInfo):
        """`Settings(environment="prod", ...)` merges defaults < the environment's preset < the
        given values, exactly as stack config is merged (config/loader.py owns the rules)."""
        if _layered(info) or not isinstance(data, dict):
            return data
        from .loader import layered

        return layered(data)

    @model_validator(mode="after")
    def _cross_field_rules(self, info: ValidationInfo):
        # ConfigError is not a ValueError: pydantic lets it through unwrapped, one line per problem.
        if _layered(info):
            return self
        from .loader import ConfigError, cross_field_problems

        problems = cross_field_problems(self)
        if problems:
            raise ConfigError(problems)
        return self

    @classmethod
    def for_environment(cls, environment: str, *, stack: Optional[str] = None, **overrides) -> "Settings":
        """Settings for another Pulumi program: the `environment`'s preset, then `overrides`
        (snake_case or camelCase keys, nested dicts merge key by key as in stack config), then
        every cross-field rule. Bad values raise `config.ConfigError` with the same one-line
        messages `pulumi up` prints for stack config."""
        from .loader import load_settings

        return load_settings({**overrides, "environment": environment}, stack=stack or environment)

    @classmethod
    def built_in_defaults(cls) -> "Settings":
        """The bottom layer alone (no preset, no rules): what `config.reference` documents."""
        return cls.model_validate({}, context=LAYERED)

    # -- derived views used by render functions and components --------------------------------

    def enabled(self, tool: str) -> bool:
        component = getattr(self.components, tool)
        if component.enabled is None:  # a HostAgent left unset: on where the target supports it
            return self.target in component.TARGETS
        return component.enabled

    def replicas(self, tool: str) -> int:
        """Instances of `tool`: `components.<tool>.replicas`, else its HA count when
        `highAvailability` is on, else 1."""
        explicit = getattr(self.components, tool).replicas
        if explicit is not None:
            return explicit
        if self.target != "kubernetes":
            return 1  # one container per tool (explicit counts are refused there)
        if tool == "grafana":
            return GRAFANA_REPLICAS_WITH_DATABASE if self.grafana.database is not None else 1
        if tool in REPLICATED_ON_OBJECT_STORAGE and self.object_storage is None:
            return 1
        return HA_REPLICAS.get(tool, 1) if self.high_availability else 1

    def receiver_map(self) -> dict[str, Receiver]:
        """Every receiver by name: `alerting.receivers` plus inline team receivers."""
        found = {r.name: r for r in self.alerting.receivers}
        for team in self.teams:
            if isinstance(team.receiver, TeamReceiver):
                data = team.receiver.model_dump(by_alias=False, exclude_none=True)
                data["name"] = self.team_receiver_name(team)
                found[data["name"]] = Receiver.model_validate(
                    {**data, **{k: getattr(team.receiver, k) for k in ("slack", "pagerduty", "email", "webhook")}}
                )
        return found

    @staticmethod
    def team_receiver_name(team: Team) -> str:
        if isinstance(team.receiver, str):
            return team.receiver
        return team.receiver.name or f"team-{team.name}"

    @property
    def default_route(self) -> Optional[str]:
        routes = self.alerting.routes
        return routes.default or routes.warning or routes.critical

