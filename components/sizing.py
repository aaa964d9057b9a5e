"""Sizes derived from the expected ingest: data volumes and, where a rule exists, memory.

Pure functions used by both targets; every sizing rule of the stack is in this module.

Volumes: retention x expected ingest x bytes per unit, plus headroom. An explicit
`components.<tool>.storage.size` always wins.
Bytes per unit are upstream's own rules of thumb:
- Prometheus/Mimir TSDB: 1-2 bytes per sample after compression
  (https://prometheus.io/docs/prometheus/latest/storage/#operational-aspects); we take 2.
- Loki: chunks compress logs roughly 5-10x (Loki storage docs); we take 5 to stay safe.
- Tempo: about 0.5 KiB per stored span in compressed Parquet blocks (Tempo sizing guidance
  ranges 0.2-1 KiB depending on attributes).
- Pyroscope: stored roughly as ingested (`ingest.profileMbPerDay`).
Headroom (30%) covers WALs, compaction scratch space and estimation error.

With `objectStorage` (issue 15) Loki, Mimir, Tempo and Pyroscope keep their data in the bucket
and the claim holds only what waits to be uploaded plus caches, so it is sized from a window of
ingest instead of retention: one day (`LOCAL_WINDOW`). That covers each tool's longest local hold
at the pinned versions: Mimir ingesters keep shipped blocks for `-blocks-storage.tsdb.retention-
period` (default 13h) on top of the 2h head; Loki's WAL holds chunks up to `max_chunk_age` (2h)
and its TSDB shipper caches recent index; Tempo keeps flushed blocks `complete_block_timeout`
(15m); Pyroscope cuts head blocks of `max_block_duration`. The bucket itself has no size.
"""

from __future__ import annotations

import math
from typing import Optional

from ..config.durations import format_gibibytes, parse_bytes, parse_cpu, parse_duration
from ..config.model import Settings
from .workload import Resources

# Two timings the memory rules depend on, owned here because the rules follow from them:
# Prometheus' scrape interval (active series = samples/s x interval) and how long the collector
# holds a trace before the tail-sampling decision (held spans = span rate x wait).
SCRAPE_INTERVAL = "15s"
DECISION_WAIT = "10s"


HEADROOM = 1.3
BYTES_PER_SAMPLE = 2
LOG_COMPRESSION = 5
BYTES_PER_SPAN = 512
# Small fixed state: Grafana's SQLite database and plugins, Alertmanager's silences and nflog.
FIXED = {"grafana": 1 * 2**30, "alertmanager": 1 * 2**30}


# With Mimir as the long-term store, Prometheus only needs enough local history for rule
# evaluation, recent queries and to ride out a Mimir outage (remote-write replays from the WAL).
LOCAL_RETENTION_WITH_MIMIR = "2d"


def local_metrics_retention(settings: Settings) -> str:
    """Prometheus' local TSDB retention: `retention.metrics`, or at most 2d when Mimir keeps the
    long-term copy (Mimir's blocks retention is then `retention.metrics`)."""
    metrics = settings.retention.metrics
    if settings.enabled("mimir") and parse_duration(metrics) > parse_duration(LOCAL_RETENTION_WITH_MIMIR):
        return LOCAL_RETENTION_WITH_MIMIR
    return metrics


# Ingest the claim holds when the data lives in object storage (see the module docstring).
LOCAL_WINDOW = "1d"
IN_OBJECT_STORAGE = ("loki", "mimir", "tempo", "pyroscope")


def in_object_storage(settings: Settings, tool: str) -> bool:
    return settings.object_storage is not None and tool in IN_OBJECT_STORAGE


# Replicated Loki and Mimir (issue 15, components/loki.py and mimir.py): every stream / series
# is written to REPLICATION_FACTOR ingesters chosen over the replicas' ring (Loki HA monolithic
# and Mimir's rings: replication factor 3), so one replica's ingester holds RF / replicas of the
# whole ingest, in memory and in its WAL: with 3 replicas each holds all of it, as one node did.
# Tempo (ingester RF 3, components/tempo.py) and Pyroscope (ingester RF 3, components/pyroscope.py)
# the same; Pyroscope's store-gateways and compactors get claims of that size too, and hold less
# (index headers, the blocks being compacted).
REPLICATION_FACTOR = 3
REPLICATED_INGEST = ("loki", "mimir", "tempo", "pyroscope")


def replicated_share(settings: Settings, tool: str) -> float:
    """The share of the stack's ingest one replica of `tool` holds (1 for a single instance)."""
    n = settings.replicas(tool)
    if n <= 1 or tool not in REPLICATED_INGEST:
        return 1.0
    return min(REPLICATION_FACTOR, n) / n


def estimated_bytes(settings: Settings, tool: str) -> Optional[float]:
    """Expected bytes on the tool's data volume, or None for a stateless tool."""
    ingest, retention = settings.ingest, settings.retention
    if in_object_storage(settings, tool):
        # WAL and cache only: retention x ingest is the bucket's business.
        window = LOCAL_WINDOW
        retention = retention.model_copy(update={"metrics": window, "logs": window, "traces": window,
                                                 "profiles": window})
    if tool == "prometheus":
        return ingest.metrics_samples_per_second * parse_duration(local_metrics_retention(settings)) * BYTES_PER_SAMPLE
    # Per replica: a claim holds its replica's WAL and head (replicated_share).
    if tool == "mimir":
        return (ingest.metrics_samples_per_second * parse_duration(retention.metrics) * BYTES_PER_SAMPLE
                * replicated_share(settings, tool))
    if tool == "loki":
        days = parse_duration(retention.logs) / 86400
        return ingest.log_gb_per_day * 1e9 * days / LOG_COMPRESSION * replicated_share(settings, tool)
    if tool == "tempo":
        return (ingest.spans_per_second * parse_duration(retention.traces) * BYTES_PER_SPAN
                * replicated_share(settings, tool))
    if tool == "pyroscope":
        return (ingest.profile_mb_per_day * 1e6 * parse_duration(retention.profiles) / 86400
                * replicated_share(settings, tool))
    return FIXED.get(tool)


def volume_size(settings: Settings, tool: str) -> str:
    """The volume request for `tool` (e.g. `"12Gi"`): explicit size, else the estimate + headroom."""
    explicit = getattr(settings.components, tool).storage.size
    if explicit:
        return explicit
    if tool in FIXED:
        return format_gibibytes(FIXED[tool])
    estimate = estimated_bytes(settings, tool)
    if estimate is None:
        raise ValueError(f"{tool} keeps no data")
    return format_gibibytes(estimate * HEADROOM)


# --- memory and CPU ------------------------------------------------------------------------------
#
# The rule for `components.<tool>.resources` (config/model.py `Resources`): each of the four
# values (requests/limits x cpu/memory) set by the stack or by the environment preset wins; a
# value no layer sets is derived from `ingest` where a rule exists below (memory of Prometheus,
# the collector and Mimir), else it is the tool's
# BASE value. Kubernetes needs request <= limit: a value that was not set gives way to one that
# was (a derived request above an explicit limit becomes the limit; a derived limit below an
# explicit request becomes the request); two explicit values in the wrong order are a config
# error (config/loader.py).

MIB = 2**20

# Base sizes (cpu request, memory request, cpu limit, memory limit): what a tool gets when
# neither a layer nor a rule says otherwise. Small enough that the dev stack fits a 4 GiB laptop.
BASE: dict[str, tuple[str, str, str, str]] = {
    "prometheus": ("250m", "512Mi", "1", "1Gi"),
    "alertmanager": ("50m", "64Mi", "250m", "128Mi"),
    "grafana": ("100m", "128Mi", "500m", "384Mi"),
    "loki": ("100m", "256Mi", "1", "512Mi"),
    "tempo": ("100m", "256Mi", "1", "512Mi"),
    "mimir": ("250m", "384Mi", "1", "768Mi"),
    "pyroscope": ("100m", "128Mi", "500m", "384Mi"),
    "collector": ("100m", "128Mi", "500m", "256Mi"),
    # The per-node log agent: its load is the node's log volume, not the gateway's spans.
    "collector-logs": ("100m", "128Mi", "500m", "256Mi"),
    # The Kubernetes events watcher: one watch, no cache (the receiver keeps no objects); 75 MiB
    # RSS measured in tests/test_kube_events_e2e.py (0.141.0, idle test cluster).
    "collector-events": ("50m", "96Mi", "250m", "192Mi"),
    # Host and cluster exporters (issue 13): kube-prometheus' figures (node-exporter 102m/180Mi,
    # 250m/180Mi; kube-state-metrics 10m/190Mi, 100m/250Mi), trimmed where ours do less (no
    # kube-rbac-proxy sidecar; kube-state-metrics limited to the kinds the rules use).
    "node_exporter": ("50m", "32Mi", "250m", "128Mi"),
    "kube_state_metrics": ("10m", "64Mi", "100m", "256Mi"),
    "cadvisor": ("50m", "64Mi", "500m", "256Mi"),
}

# Prometheus: memory follows the active series in the head block.
# Active series = samples/s x scrape interval (every series is scraped once per interval).
# Measured with `make bench-pipeline` at the pinned Prometheus (3.8.1), rendered prod config and
# rules, remote write on (2026-12-02, see README "Performance"): peak RSS 624 MiB at 302,797
# series and 2,719 MiB at 1,510,477 series, i.e. ~99 MiB + 1,819 bytes per series (a later run
# on a busier machine, more GC slack: 701 MiB at 302,798). Rounded up: the bench's series carry
# 5 short labels (job and instance included); real ones often more.
PROMETHEUS_BASE_BYTES = 96 * MIB
PROMETHEUS_BYTES_PER_SERIES = 2048
# Request = that working set; limit = working set x 2: room for head compaction (every 2h it
# writes a block from the head), WAL replay after a restart and queries, which the short bench
# does not exercise.
MEMORY_LIMIT_HEADROOM = 2.0
# Prometheus 3 sets GOMEMLIMIT to this share of the container's limit (`--auto-gomemlimit`, on
# by default, `--auto-gomemlimit.ratio` 0.9).
PROMETHEUS_GOMEMLIMIT_RATIO = 0.9

# Collector: tail sampling holds every span of an undecided trace for `decision_wait`, so memory
# follows incoming spans/s x decision wait. Measured with `make bench-pipeline` at the pinned
# collector (0.141.0), rendered prod gateway, OTLP/HTTP, 10 spans per trace, 3 attributes per span
# (2026-12-02): idle 35 MiB, peak 162 MiB with 100,000 spans held and 270 MiB with 200,000, i.e.
# ~1,200-1,350 bytes per held span. Rounded up (real spans often carry more attributes); with
# these figures memory_limiter refused at 4x the prod preset's rate, below the limit.
COLLECTOR_BASE_BYTES = 64 * MIB
COLLECTOR_BYTES_PER_HELD_SPAN = 2048
# The collector reads GOMEMLIMIT only from the environment; the upstream Helm chart
# (opentelemetry-helm-charts, `useGOMEMLIMIT`) sets it to 80% of the memory limit.
COLLECTOR_GOMEMLIMIT_RATIO = 0.8
# `ingest.spansPerSecond` counts spans kept after sampling; the collector receives about that
# divided by `sampling.traces` (errors and slow traces are kept on top, so this is an upper
# bound). A ratio below 1% would make the estimate explode; 1% caps it.
MIN_SAMPLING_FOR_ESTIMATE = 0.01
# Room on top of the expected number of traces in flight (a burst, the decision tick).
NUM_TRACES_HEADROOM = 2.0
# Never below upstream's default (tailsamplingprocessor README: `num_traces` default 50000).
NUM_TRACES_FLOOR = 50_000


# Mimir (monolithic: the sum of its components' needs), upstream's "Planning Grafana Mimir
# capacity" (docs/sources/mimir/manage/run-production-environment/planning-capacity.md, 2.17):
# distributor 1 core and 1 GB every 25,000 samples/s; ingester 1 core and 2.5 GB for every
# 300,000 series in memory (x the replication factor); "run Grafana Mimir with 50% extra capacity
# for memory". Query-path components scale with queries per second, which the stack has no
# estimate for; the base size is the floor that covers them. Per replica when replicated: its
# distributor receives 1/replicas of the pushes (the Service balances them), its ingester holds
# RF/replicas of the series (`replicated_share`).
MIMIR_SAMPLES_PER_DISTRIBUTOR_GB = 25_000
MIMIR_SERIES_PER_INGESTER = 300_000
MIMIR_INGESTER_BYTES = 2.5e9
MIMIR_EXTRA_CAPACITY = 1.5


def collector_spans_per_second(settings: Settings) -> float:
    """Spans/s the gateway receives: kept spans / sampling ratio."""
    return settings.ingest.spans_per_second / max(settings.sampling.traces, MIN_SAMPLING_FOR_ESTIMATE)


def active_series(settings: Settings) -> float:
    return settings.ingest.metrics_samples_per_second * parse_duration(SCRAPE_INTERVAL)


def num_traces(settings: Settings) -> int:
    """tail_sampling `num_traces`: the traces in flight during `decision_wait`, doubled.

    The processor evicts the oldest undecided trace when more than `num_traces` are held
    (tailsamplingprocessor README, "Dropped Traces": `sampling_trace_dropped_too_early`). Counted
    as if every span started a trace (the most traces a span rate can make), so the bound never
    drops a trace early at the expected load; memory is bounded by the spans, not this number.
    """
    in_flight = collector_spans_per_second(settings) * parse_duration(DECISION_WAIT)
    return max(NUM_TRACES_FLOOR, math.ceil(in_flight * NUM_TRACES_HEADROOM / 1000) * 1000)


def _mebibytes(n: float) -> str:
    """A memory quantity rounded up to whole 64 MiB."""
    return f"{max(1, math.ceil(n / (64 * MIB))) * 64}Mi"


def derived_memory(settings: Settings, tool: str) -> Optional[tuple[float, float]]:
    """(request, limit) in bytes from the ingest rule of `tool`, or None when it has no rule."""
    if tool == "prometheus":
        working_set = PROMETHEUS_BASE_BYTES + active_series(settings) * PROMETHEUS_BYTES_PER_SERIES
    elif tool == "collector":
        held = collector_spans_per_second(settings) * parse_duration(DECISION_WAIT)
        working_set = COLLECTOR_BASE_BYTES + held * COLLECTOR_BYTES_PER_HELD_SPAN
    elif tool == "mimir":
        samples = settings.ingest.metrics_samples_per_second / settings.replicas(tool)
        series = active_series(settings) * replicated_share(settings, tool)
        need = (samples / MIMIR_SAMPLES_PER_DISTRIBUTOR_GB * 1e9
                + series / MIMIR_SERIES_PER_INGESTER * MIMIR_INGESTER_BYTES)
        request = max(need, parse_bytes(BASE["mimir"][1]))  # the base request is the floor
        return request, request * MIMIR_EXTRA_CAPACITY
    else:
        return None
    return working_set, working_set * MEMORY_LIMIT_HEADROOM


def resources(settings: Settings, tool: str) -> "Resources":
    """Requests and limits of `tool`'s workload, by the rule at the top of this section."""
    component = "collector" if tool in ("collector-logs", "collector-events") else tool
    given = getattr(settings.components, component).resources
    cpu_req, mem_req, cpu_lim, mem_lim = BASE[tool]
    derived = derived_memory(settings, tool)
    if derived:
        mem_req, mem_lim = _mebibytes(derived[0]), _mebibytes(derived[1])
    values = {
        "cpu": _ordered(given.requests.cpu, given.limits.cpu, cpu_req, cpu_lim, parse_cpu),
        "memory": _ordered(given.requests.memory, given.limits.memory, mem_req, mem_lim, parse_bytes),
    }
    return Resources(values["cpu"][0], values["memory"][0], values["cpu"][1], values["memory"][1])


def _ordered(request: Optional[str], limit: Optional[str], default_request: str, default_limit: str,
             parse) -> tuple[str, str]:
    """(request, limit): explicit values win; an unset one gives way so that request <= limit."""
    req, lim = request or default_request, limit or default_limit
    if parse(req) > parse(lim):
        if request is None:
            req = lim
        else:
            lim = req
    return req, lim


def go_memory_limit(limit_bytes: int, ratio: float) -> str:
    """A GOMEMLIMIT value: `ratio` of the container's memory limit, in MiB."""
    return f"{int(limit_bytes * ratio) // MIB}MiB"
