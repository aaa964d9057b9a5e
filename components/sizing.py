"""Data volume sizes: retention x expected ingest x bytes per unit, plus headroom.

A pure function used by both targets. An explicit `components.<tool>.storage.size` always wins.
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

from typing import Optional

from ..config.durations import format_gibibytes, parse_duration
from ..config.model import Settings

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
    if tool == "mimir":
        return ingest.metrics_samples_per_second * parse_duration(retention.metrics) * BYTES_PER_SAMPLE
    if tool == "loki":
        days = parse_duration(retention.logs) / 86400
        return ingest.log_gb_per_day * 1e9 * days / LOG_COMPRESSION
    if tool == "tempo":
        return ingest.spans_per_second * parse_duration(retention.traces) * BYTES_PER_SPAN
    if tool == "pyroscope":
        return ingest.profile_mb_per_day * 1e6 * parse_duration(retention.profiles) / 86400
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
