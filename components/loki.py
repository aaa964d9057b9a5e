"""Loki (logs), single binary ("monolithic", `-target=all`) with filesystem storage, one tenant.

Upstream reference: Loki configuration reference
(https://grafana.com/docs/loki/latest/configure/), the single-binary example shipped in the repo
(`cmd/loki/loki-local-config.yaml`: `common` block, in-memory ring, TSDB schema v13 with a 24h
index period) and the retention guide (https://grafana.com/docs/loki/latest/operations/storage/
retention/): retention is applied by the compactor only when `retention_enabled` is set, which
in Loki 3.x also requires `delete_request_store`. Without it logs are kept forever.

The image (3.6) is distroless `nonroot` without busybox, so it has no shell and no HTTP client:
Docker gets no in-container healthcheck (Kubernetes probes `/ready` with httpGet). uid 10001 is
the historical Loki user; we set it explicitly and the backends own `/loki` accordingly, since
3.6 changed the base image (issue #19904: "mkdir /loki/rules: permission denied").
"""

from __future__ import annotations


from .base import ToolComponent
from .workload import Endpoint, SingleBinary
from ..config.durations import go_duration
from ..config.model import Settings

TOOL = "loki"
HTTP_PORT = 3100
GRPC_PORT = 9095
UID = 10001  # gid too
DATA_DIR = "/loki"
CONFIG_PATH = "/etc/loki/loki.yaml"
# The ruler lists this directory on every sync. The image creates `/loki/rules`, but a fresh
# Kubernetes claim mounted at /loki hides it ("unable to list rules"); a scratch directory
# exists on both targets. The stack provisions no Loki rules, so nothing needs persisting.
RULES_DIR = "/etc/loki/rules"
# OTLP logs ingest; the collector's otlphttp exporter appends `/v1/logs`.
OTLP_PATH = "/otlp"
# The first day the v13/TSDB schema applies. NEVER change it after the first deploy: Loki reads
# existing index tables by this date, so moving it hides (or misreads) every log stored before.
# A future schema change is a *new* entry with a later `from`, appended below this one.
SCHEMA_FROM = "2025-01-01"


# Distroless since 3.6 (busybox removed): no client inside the image.
BINARY = SingleBinary(TOOL, uid=UID, data_dir=DATA_DIR, config_path=CONFIG_PATH, rendered="loki/loki.yaml",
                      http_port=HTTP_PORT, grpc_port=GRPC_PORT, scratch=("/tmp", RULES_DIR))


def serves(service: str) -> dict[str, Endpoint]:
    http = Endpoint(service, HTTP_PORT, scrape=True)
    # `otlp`: where the collector pushes logs (OTLP/HTTP; the exporter appends `/v1/logs`).
    return {"http": http, "query": http.at(""), "otlp": http.at(OTLP_PATH)}


def config(settings: Settings) -> dict:
    return {
        # One tenant ("fake"); Loki's default is multi-tenant and would reject requests without
        # an X-Scope-OrgID header.
        "auth_enabled": False,
        "server": {"http_listen_port": HTTP_PORT, "grpc_listen_port": GRPC_PORT, "log_level": "info"},
        "common": {
            "instance_addr": "127.0.0.1",
            # Every path Loki writes (WAL, TSDB index/cache, compactor, ruler scratch) defaults
            # to a directory under this prefix: the data volume. The root filesystem stays
            # read-only.
            "path_prefix": DATA_DIR,
            "storage": {"filesystem": {
                "chunks_directory": f"{DATA_DIR}/chunks",
                "rules_directory": RULES_DIR,
            }},
            # A single instance: no replication, and a ring that needs no memberlist/consul.
            "replication_factor": 1,
            "ring": {"kvstore": {"store": "inmemory"}},
        },
        "schema_config": {"configs": [{
            "from": SCHEMA_FROM,
            "store": "tsdb",
            "object_store": "filesystem",
            "schema": "v13",
            # Retention works per index table, so the period must be 24h.
            "index": {"prefix": "index_", "period": "24h"},
        }]},
        "compactor": {
            "working_directory": f"{DATA_DIR}/compactor",
            "retention_enabled": True,
            # Required with retention_enabled in Loki 3.x: where delete requests are stored.
            "delete_request_store": "filesystem",
        },
        "limits_config": {
            "retention_period": go_duration(settings.retention.logs),
            # OTLP ingest stores resource/log attributes (trace_id, span_id, level, ...) as
            # structured metadata; needs schema v13 + TSDB (above).
            "allow_structured_metadata": True,
        },
        "analytics": {"reporting_enabled": False},
    }


# The registry's contract (components/registry.py): config files and workloads from `config`.
render, workloads = BINARY.functions(lambda settings, links: config(settings))


class Loki(ToolComponent):
    TYPE = "observability:loki:Loki"
