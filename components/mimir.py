"""Mimir (long-term metrics), monolithic (`target: all`), one tenant, filesystem blocks storage.

Upstream reference: Mimir configuration reference
(https://grafana.com/docs/mimir/latest/configure/configuration-parameters/), the repo's
single-process examples (`docs/configurations/*.yaml`, `development/mimir-monolithic-mode/
config/mimir.yaml`: `multitenancy_enabled: false`, ring `replication_factor: 1`, per-ring
`kvstore`) and "About versioning" (Prometheus API under `/prometheus`, push at `/api/v1/push`).

What a single node does not need is switched off or made local: every ring uses the in-memory
KV store (no memberlist gossip), replication is 1, usage reporting is off. Mimir's defaults
use *relative* paths (`./tsdb/`, `./metrics-activity.log`, ...) resolved against `/` in the
distroless image, which a non-root user cannot write, so every path is set under `/data`.

The image has no USER line (it would run as root) and no shell or HTTP client: we run it as
10001:10001 (the backends own `/data` for that uid) and Docker gets no in-container check.
"""

from __future__ import annotations


from .base import ToolComponent
from .objectstorage import Bucket, bucket_for
from .workload import Endpoint, SingleBinary
from ..config.durations import go_duration
from ..config.model import Settings

TOOL = "mimir"
HTTP_PORT = 8080
GRPC_PORT = 9095
UID = 10001  # gid too
DATA_DIR = "/data"
CONFIG_PATH = "/etc/mimir/mimir.yaml"
# Prometheus-compatible query API prefix (Grafana's datasource URL).
PROMETHEUS_PREFIX = "/prometheus"
# Exemplars (trace ids on samples) are dropped unless a per-tenant budget is set; the default is 0.
MAX_EXEMPLARS = 100_000


# The image would run as root (no USER line): run as 10001 with /data owned by it. Distroless: no
# shell or HTTP client in the image.
BINARY = SingleBinary(TOOL, uid=UID, data_dir=DATA_DIR, config_path=CONFIG_PATH, rendered="mimir/mimir.yaml",
                      http_port=HTTP_PORT, grpc_port=GRPC_PORT)


def serves(service: str) -> dict[str, Endpoint]:
    http = Endpoint(service, HTTP_PORT, scrape=True)
    return {
        "http": http,
        # Prometheus remote-write endpoint (Prometheus, Tempo's metrics generator, the collector).
        "push": http.at("/api/v1/push"),
        "query": http.at(PROMETHEUS_PREFIX),
    }


def _ring(**extra) -> dict:
    # Single process: the in-memory KV store is shared by all rings in the process.
    return {"instance_addr": "127.0.0.1", "kvstore": {"store": "inmemory"}, **extra}


def _blocks_bucket(bucket: Bucket) -> dict:
    """`blocks_storage` backend block (Mimir 3.0.2 reference: `s3_storage_backend`,
    `gcs_storage_backend`, `azure_storage_backend`); credentials only as `${VAR}` references."""
    if bucket.kind == "s3":
        s3 = {"endpoint": bucket.endpoint, "region": bucket.region, "bucket_name": bucket.bucket,
              "insecure": bucket.insecure}
        if bucket.path_style:
            s3["bucket_lookup_type"] = "path"  # "Supported values are: auto, path, virtual-hosted"
        if bucket.key_id:
            s3.update(access_key_id=bucket.key_id, secret_access_key=bucket.secret)
        return {"backend": "s3", "s3": s3}
    if bucket.kind == "gcs":
        # No `service_account`: "If empty, fallback to Google default logic" (ADC).
        return {"backend": "gcs", "gcs": {"bucket_name": bucket.bucket}}
    azure = {"account_name": bucket.account_name, "container_name": bucket.bucket}
    if bucket.secret:
        azure["account_key"] = bucket.secret
    return {"backend": "azure", "azure": azure}


def config(settings: Settings) -> dict:
    doc = _filesystem_config(settings)
    bucket = bucket_for(settings, TOOL)
    if bucket is None:
        return doc
    # Object storage: blocks go to the bucket; the claim keeps the ingesters' TSDB head and WAL
    # (`tsdb.dir`), the store-gateway's index-header cache (`bucket_store.sync_dir`) and the
    # compactor's scratch space. The ruler store stays local (the stack provisions no Mimir rules).
    blocks = doc["blocks_storage"]
    blocks.pop("filesystem")
    blocks.update(_blocks_bucket(bucket))
    if bucket.prefix:
        # "may only contain digits and English alphabet letters" (the tool name qualifies).
        blocks["storage_prefix"] = bucket.prefix
    return doc


def _filesystem_config(settings: Settings) -> dict:
    return {
        "target": "all",
        # One tenant ("anonymous"): no X-Scope-OrgID header needed by Prometheus or Grafana.
        "multitenancy_enabled": False,
        "server": {"http_listen_port": HTTP_PORT, "grpc_listen_port": GRPC_PORT, "log_level": "info"},
        # Default is the relative ./metrics-activity.log: unwritable for a non-root user at `/`.
        "activity_tracker": {"filepath": f"{DATA_DIR}/metrics-activity.log"},
        "blocks_storage": {
            "backend": "filesystem",
            "filesystem": {"dir": f"{DATA_DIR}/blocks"},
            "tsdb": {"dir": f"{DATA_DIR}/tsdb"},
            "bucket_store": {"sync_dir": f"{DATA_DIR}/tsdb-sync"},
        },
        "compactor": {"data_dir": f"{DATA_DIR}/compactor", "sharding_ring": _ring()},
        "distributor": {"ring": _ring()},
        "ingester": {"ring": _ring(replication_factor=1)},
        "store_gateway": {"sharding_ring": _ring(replication_factor=1)},
        # The ruler is part of `all`; Prometheus evaluates the stack's rules, but the ruler still
        # needs writable local paths.
        "ruler": {"rule_path": f"{DATA_DIR}/ruler", "ring": _ring()},
        "ruler_storage": {"backend": "filesystem", "filesystem": {"dir": f"{DATA_DIR}/rules"}},
        "limits": {
            # Mimir keeps blocks forever by default (0); this is the long-term metrics retention.
            "compactor_blocks_retention_period": go_duration(settings.retention.metrics),
            "max_global_exemplars_per_user": MAX_EXEMPLARS,
        },
        "usage_stats": {"enabled": False},
    }


# The registry's contract (components/registry.py): config files and workloads from `config`.
render, workloads = BINARY.functions(lambda settings, links: config(settings))


class Mimir(ToolComponent):
    TYPE = "observability:mimir:Mimir"
