"""OpenTelemetry Collector (contrib): the OTLP gateway and the per-node container-log agent.

Upstream reference: collector configuration (https://opentelemetry.io/docs/collector/
configuration/), internal telemetry (https://opentelemetry.io/docs/collector/internal-telemetry/:
`service.telemetry.metrics.readers[].pull.exporter.prometheus`), and the contrib READMEs of
`tailsamplingprocessor` (policies `status_code`, `latency.threshold_ms`,
`probabilistic.sampling_percentage`), `filelogreceiver` + the stanza `container` parser, and
`healthcheckextension`. Exporter names are the 0.141 ones: `otlp`, `otlphttp`,
`prometheusremotewrite` (the `otlp_grpc`/`otlp_http` renames came in 0.144).

Workloads:
- `collector` (gateway): apps send OTLP here. Traces are tail-sampled (errors and slow traces
  always kept when configured, `sampling.traces` of the rest) and go to Tempo; logs go to Loki's
  OTLP endpoint; metrics are remote-written to Mimir, else Prometheus.
- With more than one replica (`highAvailability`), tail sampling moves to a second tier, because
  it needs every span of a trace in one instance (upstream: "Scaling the Collector", the
  `tailsamplingprocessor` README): the gateway becomes a stateless load-balancing tier whose
  traces pipeline is the contrib `loadbalancing` exporter (`routing_key: traceID`, consistent
  hashing over the sampling tier's pods, resolved through the headless Service
  `collector-sampling-peers` by its `dns` resolver, every 5 s), and `collector-sampling` (as many
  replicas) applies the sampling policies and exports to Tempo. Logs and metrics need no routing:
  the load-balancing tier sends them straight to Loki and the metrics sink, as the single gateway
  does. Both tiers are Deployments behind Services; apps and the log agent still address
  `collector`.
- `collector-logs` (agent, one per node): the seed's promtail job. It tails container logs
  (Docker json-file logs or Kubernetes pod logs), parses JSON bodies keeping `trace_id`,
  `span_id` and `level` as attributes (the seed's pipeline), and forwards to the gateway.
  It runs as root, like the upstream opentelemetry-collector Helm chart's `logsCollection`
  preset, because the host's log files are root-only; it keeps only DAC_READ_SEARCH and a
  read-only root filesystem.
- `collector-events` (Kubernetes, with `kubernetes.clusterMonitoring` and Loki): the cluster's
  Events as logs (issue 13). The contrib `k8sobjects` receiver watches `events.k8s.io` Events;
  a transform lifts namespace, involved object, reason and type into the attributes Loki turns
  into labels (components/kube_events.py has the contract and the reasons); it forwards to the
  gateway like the log agent, so Loki keeps one writer path. Exactly one replica, even with
  `highAvailability`: every replica would watch and ship every event (the receiver's README:
  "must be deployed as one replica, otherwise it'll be producing duplicated data"; its optional
  leader election needs the `k8sleaderelector` extension and Lease write access). A restarted
  pod lists first and watches from there, so it ships no stored event twice; events of the
  seconds it is down are lost, as with any single watcher. Its ClusterRole: list and watch on
  events, nothing else.

Only pipelines, exporters and the agent for enabled backends are rendered.
"""

from __future__ import annotations


from . import kube_events, sizing
from .base import ToolComponent
from .platform import ContainerLogs, Platform
from .wiring import Links
from .workload import (
    ConfigFile, Endpoint, HealthCheck, HostLogs, Port, Workload, peers_service, to_yaml, tool_workload,
)
from ..config.durations import parse_duration
from ..config.model import Settings

TOOL = "collector"
AGENT = f"{TOOL}-logs"
EVENTS = f"{TOOL}-events"
# The collector has no UI; its main port is OTLP gRPC.
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
HEALTH_PORT = 13133
METRICS_PORT = 8888
UID = GID = 10001
# The image's default command reads this path.
CONFIG_PATH = "/etc/otelcol-contrib/config.yaml"
# How long the gateway waits for a trace's spans before deciding (tail_sampling decision_wait).
# How many undecided traces it may hold (`num_traces`) and its memory follow from the expected
# span rate x this wait: components/sizing.py.
DECISION_WAIT = sizing.DECISION_WAIT



def serves(service: str) -> dict[str, Endpoint]:
    return {
        "otlp-grpc": Endpoint(service, OTLP_GRPC_PORT, scheme="grpc"),
        "otlp-http": Endpoint(service, OTLP_HTTP_PORT),
        # The collector's own telemetry, not OTLP; also served by the sampling tier when there
        # is one.
        "metrics": Endpoint(service, METRICS_PORT, scrape=True, tiers=(f"{service}-sampling",)),
    }


# --- shared pieces -----------------------------------------------------------------------------


def _health_extension() -> dict:
    return {"health_check": {"endpoint": f"0.0.0.0:{HEALTH_PORT}"}}


def _memory_limiter() -> dict:
    # Refuse data before the container's memory limit is hit (percentages of the cgroup limit).
    return {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20}


def _telemetry(expose_metrics: bool) -> dict:
    if not expose_metrics:
        # The agent's own metrics are not scraped; keep them off the network.
        return {"metrics": {"level": "none"}}
    # Default is 127.0.0.1:8888, unreachable for Prometheus in another container/pod.
    return {"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {
        "host": "0.0.0.0", "port": METRICS_PORT,
    }}}}]}}


# --- the gateway -------------------------------------------------------------------------------


def sampling_policies(settings: Settings) -> list[dict]:
    """tail_sampling keeps a trace when ANY policy says so."""
    sampling = settings.sampling
    policies: list[dict] = []
    if sampling.keep_errors:
        policies.append({"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}})
    threshold_ms = int(parse_duration(sampling.slow_trace_threshold) * 1000)
    policies.append({"name": "slow", "type": "latency", "latency": {"threshold_ms": threshold_ms}})
    policies.append({"name": "ratio", "type": "probabilistic",
                     "probabilistic": {"sampling_percentage": round(100 * sampling.traces, 6)}})
    return policies


def _tail_sampling(settings: Settings) -> dict:
    return {"decision_wait": DECISION_WAIT, "num_traces": sizing.num_traces(settings),
            "policies": sampling_policies(settings)}


def _otlp_receiver(http: bool = True) -> dict:
    protocols: dict = {"grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"}}
    if http:
        protocols["http"] = {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"}
    return {"otlp": {"protocols": protocols}}


def load_balancing_exporter(peers: str) -> dict:
    """Spans by trace ID to the sampling tier's pods (contrib `loadbalancingexporter` README)."""
    return {
        "routing_key": "traceID",
        # The template of the per-pod OTLP exporters (plaintext inside the stack's network);
        # a short retry so a pod that went away hands its data back to the load balancer...
        "protocol": {"otlp": {"tls": {"insecure": True}, "timeout": "5s",
                              "retry_on_failure": {"enabled": True, "initial_interval": "1s",
                                                                   "max_interval": "5s", "max_elapsed_time": "10s"}}},
        # ... which queues and retries it on the ring the resolver has updated meanwhile
        # ("resilience options 1", off by default).
        "retry_on_failure": {"enabled": True, "max_elapsed_time": "60s"},
        # Its defaults are zero here (`otelcol validate`: "num_consumers must be positive"):
        # the exporterhelper's usual 10 consumers and 1000 batches.
        "sending_queue": {"enabled": True, "num_consumers": 10, "queue_size": 1000},
        "resolver": {"dns": {"hostname": peers, "port": str(OTLP_GRPC_PORT), "interval": "5s"}},
    }


def sampling_config(settings: Settings, links: Links) -> dict:
    """The sampling tier: OTLP/gRPC from the load-balancing tier, tail sampling, Tempo."""
    return {
        "extensions": _health_extension(),
        "receivers": _otlp_receiver(http=False),
        "processors": {"memory_limiter": _memory_limiter(), "tail_sampling": _tail_sampling(settings), "batch": {}},
        "exporters": {"otlp/tempo": {"endpoint": links.traces_otlp.address, "tls": {"insecure": True}}},
        "service": {
            "extensions": ["health_check"],
            "telemetry": _telemetry(expose_metrics=True),
            "pipelines": {"traces": {"receivers": ["otlp"],
                                     "processors": ["memory_limiter", "tail_sampling", "batch"],
                                     "exporters": ["otlp/tempo"]}},
        },
    }


def two_tiers(links: Links) -> bool:
    return TOOL in links.peers and links.traces_otlp is not None


def gateway_config(settings: Settings, links: Links) -> dict:
    exporters: dict = {}
    pipelines: dict = {}
    processors: dict = {"memory_limiter": _memory_limiter(), "batch": {}}
    receivers = _otlp_receiver()
    if two_tiers(links):
        exporters["loadbalancing"] = load_balancing_exporter(peers_service(sampling_name(links)))
        pipelines["traces"] = {"receivers": ["otlp"], "processors": ["memory_limiter"],
                               "exporters": ["loadbalancing"]}
    elif links.traces_otlp:
        processors["tail_sampling"] = _tail_sampling(settings)
        # Plaintext inside the stack's network (Tempo serves OTLP without TLS).
        exporters["otlp/tempo"] = {"endpoint": links.traces_otlp.address, "tls": {"insecure": True}}
        pipelines["traces"] = {"receivers": ["otlp"], "processors": ["memory_limiter", "tail_sampling", "batch"],
                               "exporters": ["otlp/tempo"]}
    if links.logs_otlp:
        exporters["otlphttp/loki"] = {"endpoint": links.logs_otlp.url}
        pipelines["logs"] = {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"],
                             "exporters": ["otlphttp/loki"]}
    if links.metrics_sink:
        exporters["prometheusremotewrite"] = {"endpoint": links.metrics_sink.url}
        pipelines["metrics"] = {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"],
                                "exporters": ["prometheusremotewrite"]}
    if not pipelines:
        raise ValueError(
            "components.collector.enabled needs at least one of tempo, loki, mimir or prometheus enabled "
            "(the collector would have nowhere to send telemetry)"
        )
    return {
        "extensions": _health_extension(),
        "receivers": receivers,
        "processors": processors,
        "exporters": exporters,
        "service": {
            "extensions": ["health_check"],
            "telemetry": _telemetry(expose_metrics=True),
            "pipelines": pipelines,
        },
    }


# --- the log agent -----------------------------------------------------------------------------


def _keep_from_json(field: str) -> dict:
    """Move one parsed JSON field up to a top-level attribute when the line had it."""
    return {
        "type": "move",
        "if": f'attributes.json?.{field} != nil',
        "from": f"attributes.json.{field}",
        "to": f"attributes.{field}",
    }


def log_operators(logs: ContainerLogs) -> list[dict]:
    """The seed's promtail pipeline as stanza operators, after the platform's format parser."""
    ops: list[dict] = [{"type": "container", **logs.parser}]
    if logs.container_id_from_path:
        # The file path carries the container id; keep it as a resource attribute.
        ops.append({"type": "regex_parser", "parse_from": 'attributes["log.file.path"]',
                    "regex": logs.container_id_from_path, "parse_to": "resource"})
        ops.append({"type": "move", "if": "resource.container_id != nil",
                    "from": "resource.container_id", "to": 'resource["container.id"]'})
    # JSON application logs (the seed's structlog lines): parse aside, keep only what the seed
    # kept (trace_id, span_id, level), leave the line itself untouched as the log body.
    ops.append({"type": "json_parser", "if": r'body matches "^\\s*\\{"', "parse_from": "body",
                "parse_to": "attributes.json", "on_error": "send_quiet"})
    ops.extend(_keep_from_json(f) for f in ("trace_id", "span_id", "level"))
    # The service name the line carries (the seed's structlog `service` field) becomes the
    # resource's service.name: Loki labels the stream `service_name` from it (instead of
    # `unknown_service`), which is what Grafana's log links and Explore select by.
    ops.append({"type": "move", "if": "attributes.json?.service != nil",
                "from": "attributes.json.service", "to": 'resource["service.name"]'})
    ops.append({"type": "remove", "if": "attributes.json != nil", "field": "attributes.json"})
    return ops


def agent_config(logs: ContainerLogs, agent: str, gateway: Endpoint) -> dict:
    # Not its own logs: each line it ships about shipping would be shipped again. Where the
    # platform has no path to exclude, the backend keeps the agent's logs out of `include`.
    exclude = list(logs.exclude(agent))
    filelog: dict = {
        "include": list(logs.include),
        # The container parser reads Kubernetes metadata (and we read the Docker container id)
        # from the file path.
        "include_file_path": True,
        # Without a checkpoint store (the root filesystem is read-only), a restart would re-ship
        # every file from the beginning; start at the end instead.
        "start_at": "end",
        "operators": log_operators(logs),
    }
    if exclude:
        filelog["exclude"] = exclude
    return {
        "extensions": _health_extension(),
        "receivers": {"filelog": filelog},
        "processors": {"memory_limiter": _memory_limiter(), "batch": {}},
        # To the gateway, which owns the Loki endpoint, batching and back-pressure.
        "exporters": {"otlp/gateway": {"endpoint": gateway.address, "tls": {"insecure": True}}},
        "service": {
            "extensions": ["health_check"],
            "telemetry": _telemetry(expose_metrics=False),
            "pipelines": {"logs": {"receivers": ["filelog"], "processors": ["memory_limiter", "batch"],
                                   "exporters": ["otlp/gateway"]}},
        },
    }


# --- the Kubernetes events collector -------------------------------------------------------------


def events_config(gateway: Endpoint) -> dict:
    return {
        "extensions": _health_extension(),
        "receivers": kube_events.receiver(),
        "processors": {
            "memory_limiter": _memory_limiter(),
            # Before `batch`: the statements set resource attributes from the one record each
            # ResourceLogs holds as the receiver emits them (components/kube_events.py).
            "transform/events": {"error_mode": "ignore", "log_statements": kube_events.transform_statements()},
            "batch": {},
        },
        "exporters": {"otlp/gateway": {"endpoint": gateway.address, "tls": {"insecure": True}}},
        "service": {
            "extensions": ["health_check"],
            "telemetry": _telemetry(expose_metrics=False),
            "pipelines": {"logs": {"receivers": ["k8sobjects"],
                                   "processors": ["memory_limiter", "transform/events", "batch"],
                                   "exporters": ["otlp/gateway"]}},
        },
    }


# --- contract ----------------------------------------------------------------------------------


def render(settings: Settings, links: Links, platform: Platform) -> dict[str, str]:
    files = {"collector/config.yaml": to_yaml(gateway_config(settings, links))}
    if two_tiers(links):
        files["collector/sampling.yaml"] = to_yaml(sampling_config(settings, links))
    # The log agent only when logs have somewhere to go.
    if links.logs_otlp:
        gateway = serves(links.service(TOOL))["otlp-grpc"]
        files["collector/agent.yaml"] = to_yaml(agent_config(platform.container_logs, agent_name(links), gateway))
        # The cluster's events, where the cluster is watched (`kubernetes.clusterMonitoring`).
        if platform.cluster_monitoring:
            files["collector/events.yaml"] = to_yaml(events_config(gateway))
    return files


def agent_name(links: Links) -> str:
    return links.service(AGENT)


def sampling_name(links: Links) -> str:
    return serves(links.service(TOOL))["metrics"].tiers[0]


def _go_memory_limit(resources) -> dict[str, str]:
    # Go does not read the cgroup limit; GOMEMLIMIT makes the GC work harder before the limit
    # instead of the kernel killing the process (upstream Helm chart: `useGOMEMLIMIT`, 80%).
    return {"GOMEMLIMIT": sizing.go_memory_limit(resources.memory_limit_bytes, sizing.COLLECTOR_GOMEMLIMIT_RATIO)}


def workloads(settings: Settings, links: Links, platform: Platform) -> tuple[Workload, ...]:
    files = render(settings, links, platform)
    health = HealthCheck.http("/", HEALTH_PORT, client=None)  # scratch image: no client at all
    tiers = two_tiers(links)
    sampler = Endpoint(sampling_name(links), OTLP_GRPC_PORT, scheme="grpc")
    traces = sampler if tiers else links.traces_otlp
    backends = [e for e in (traces, links.logs_otlp, links.metrics_sink) if e]
    gateway = tool_workload(
        settings, TOOL, service=links.service(TOOL),
        uid=UID,
        gid=GID,
        args=(f"--config={CONFIG_PATH}",),
        ports=(
            Port("otlp-grpc", OTLP_GRPC_PORT, publish=True, ingest=True),
            Port("otlp-http", OTLP_HTTP_PORT, publish=True, ingest=True),
            Port("health", HEALTH_PORT),
            Port("metrics", METRICS_PORT),
        ),
        health=health,
        config_files=(ConfigFile(CONFIG_PATH, files["collector/config.yaml"]),),
        talks_to=tuple(backends),
        env=_go_memory_limit(sizing.resources(settings, TOOL)),
    )
    helpers: list[Workload] = []
    if tiers:
        helpers.append(Workload(
            name=sampling_name(links),
            image=gateway.image,
            uid=UID,
            gid=GID,
            args=(f"--config={CONFIG_PATH}",),
            # Not `ingest`: only the load-balancing tier sends here.
            ports=(Port("otlp-grpc", OTLP_GRPC_PORT), Port("health", HEALTH_PORT), Port("metrics", METRICS_PORT)),
            health=health,
            resources=gateway.resources,
            env=dict(gateway.env),  # GOMEMLIMIT: the same limits as the first tier
            config_files=(ConfigFile(CONFIG_PATH, files["collector/sampling.yaml"]),),
            talks_to=(links.traces_otlp,),
            replicas=gateway.replicas,
            # The load balancer hashes over ready pods only: a pod leaving the Service's DNS
            # moves its share of traces to the others.
            headless="ready",
        ))
    if "collector/agent.yaml" not in files:
        return (gateway, *helpers)
    if "collector/events.yaml" in files:
        helpers.append(Workload(
            name=links.service(EVENTS),
            image=gateway.image,
            uid=UID,
            gid=GID,
            args=(f"--config={CONFIG_PATH}",),
            ports=(Port("health", HEALTH_PORT),),
            health=health,
            resources=sizing.resources(settings, EVENTS),
            env=_go_memory_limit(sizing.resources(settings, EVENTS)),
            config_files=(ConfigFile(CONFIG_PATH, files["collector/events.yaml"]),),
            talks_to=(serves(links.service(TOOL))["otlp-grpc"],),
            cluster_rules=kube_events.cluster_rules(),
            # One watcher, always (not the gateway's replicas), rollouts included: see
            # components/kube_events.py ("must be deployed as one replica").
            replicas=1,
            singleton=True,
        ))
    agent = Workload(
        name=agent_name(links),
        image=gateway.image,
        uid=0,
        gid=0,
        root_reason="reads the host's container log files, which are readable by root only "
                    "(as the upstream collector Helm chart's logsCollection preset does)",
        capabilities=("DAC_READ_SEARCH",),
        args=(f"--config={CONFIG_PATH}",),
        ports=(Port("health", HEALTH_PORT),),
        health=health,
        resources=sizing.resources(settings, AGENT),
        env=_go_memory_limit(sizing.resources(settings, AGENT)),
        config_files=(ConfigFile(CONFIG_PATH, files["collector/agent.yaml"]),),
        host_logs=HostLogs(platform.container_logs.host_paths),
        per_node=True,
        reads_container_logs=True,
        talks_to=(serves(links.service(TOOL))["otlp-grpc"],),
    )
    return (gateway, *helpers, agent)


class Collector(ToolComponent):
    TYPE = "observability:collector:Collector"
