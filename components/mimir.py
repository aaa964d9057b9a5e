"""Mimir (long-term metrics), monolithic (`target: all`), one tenant, filesystem blocks storage.

Upstream reference: Mimir configuration reference
(https://grafana.com/docs/mimir/latest/configure/configuration-parameters/), the repo's
single-process examples (`docs/configurations/*.yaml`, `development/mimir-monolithic-mode/
config/mimir.yaml`: `multitenancy_enabled: false`, ring `replication_factor: 1`, per-ring
`kvstore`) and "About versioning" (Prometheus API under `/prometheus`, push at `/api/v1/push`).

What a single node does not need is switched off or made local: every ring uses the in-memory
KV store (no memberlist gossip), replication is 1, usage reporting is off. With replicas
(`highAvailability`, object storage required) it is upstream's scaled monolithic mode instead:
3 instances, memberlist rings, replication factor 3 (`_replicate`). Mimir's defaults
use *relative* paths (`./tsdb/`, `./metrics-activity.log`, ...) resolved against `/` in the
distroless image, which a non-root user cannot write, so every path is set under `/data`.

With a Prometheus pair (`highAvailability`), both replicas remote-write the same series; the
distributor's HA tracker (Mimir "Configure high-availability deduplication") keeps the elected
replica's samples per `cluster` label and drops the other's (keyed on the default labels `cluster`
and `__replica__`, which Prometheus sets as external labels). Its KV store is memberlist: stable
for the HA tracker since Mimir 2.17 (consul and etcd deprecated), the default in 3.0; with one
Mimir process the memberlist KV has no peers to join.

The image has no USER line (it would run as root) and no shell or HTTP client: we run it as
10001:10001 (the backends own `/data` for that uid) and Docker gets no in-container check.
"""

from __future__ import annotations


from .base import ToolComponent
from .objectstorage import Bucket, bucket_for
from .wiring import Links
from .sizing import REPLICATION_FACTOR
from .workload import Endpoint, SingleBinary, advertise_addr, memberlist
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
        # "Supported values are: auto, path, virtual-hosted"
        return {"backend": "s3", "s3": bucket.objstore_s3("path")}
    if bucket.kind == "gcs":
        # No `service_account`: "If empty, fallback to Google default logic" (ADC).
        return {"backend": "gcs", "gcs": {"bucket_name": bucket.bucket}}
    azure = {"account_name": bucket.account_name, "container_name": bucket.bucket}
    if bucket.secret:
        azure["account_key"] = bucket.secret
    return {"backend": "azure", "azure": azure}


def config(settings: Settings, links: Links) -> dict:
    doc = _filesystem_config(settings)
    if "prometheus" in links.peers:
        doc["distributor"]["ha_tracker"] = {"enable_ha_tracker": True, "kvstore": {"store": "memberlist"}}
        # For the one tenant (`-distributor.ha-tracker.enable-for-all-users` is the flag's way).
        doc["limits"]["accept_ha_samples"] = True
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
    peers = links.peers.get(TOOL)
    if peers:
        _replicate(doc, peers, cluster_label=f"{settings.kubernetes.namespace}.{links.service(TOOL)}")
    return doc


# The rings of the components `-target=all` runs at 3.0.2 (pkg/mimir/modules.go: All =
# QueryFrontend, QueryScheduler, Querier, Ingester, Distributor, StoreGateway, Ruler, Compactor;
# no Alertmanager, no overrides-exporter), by their YAML paths.
RINGS = (("compactor", "sharding_ring"), ("distributor", "ring"), ("ingester", "ring"),
         ("store_gateway", "sharding_ring"), ("ruler", "ring"))


def _replicate(doc: dict, peers: str, cluster_label: str) -> None:
    """Horizontally scaled monolithic mode (Mimir 3.0.2 docs, references/architecture/
    deployment-modes "Scale monolithic mode": several `-target=all` binaries, "high availability
    and increased scale without the configuration complexity of microservices mode"), classic
    architecture (ingest storage stays off, its default). Evidence per key in
    docs/upstream-facts.md "Mimir: scaled monolithic mode"."""
    addr = advertise_addr()
    for component, ring in RINGS:
        # memberlist is the 3.0.2 default store of every ring ("Configure hash rings"); the
        # address is the pod's own, which the others dial (never the single node's 127.0.0.1).
        doc[component][ring] = {**doc[component][ring], "instance_addr": addr, "kvstore": {"store": "memberlist"}}
    # Each series on 3 ingesters and each block on 3 store-gateways (both the 3.0.2 defaults,
    # `-ingester.ring.replication-factor`, `-store-gateway.sharding-ring.replication-factor`):
    # reads and writes need a quorum of 2, so one replica may be down. Zone awareness stays off
    # (default false): replicas spread by topology constraints, not by zone-pinned StatefulSets.
    doc["ingester"]["ring"]["replication_factor"] = REPLICATION_FACTOR
    doc["store_gateway"]["sharding_ring"]["replication_factor"] = REPLICATION_FACTOR
    # `memberlist.advertise_addr` (else the first private address memberlist finds) and the
    # query-frontend's `frontend.address` (where a querier returns results; auto-detected from
    # private interfaces otherwise) are the pod's IP too.
    doc["memberlist"] = {**memberlist(peers, cluster_label), "advertise_addr": addr}
    doc["frontend"] = {"address": addr}
    # The compactors share the work (docs "Compactor sharding": jobs are sharded over the
    # compactor ring, "tenants and jobs are resharded across the available compactor instances");
    # Mimir needs no single active compactor. Each replica's query-frontend and querier worker use
    # their own query-scheduler at 127.0.0.1 (pkg/mimir/modules.go initQueryFrontend,
    # initQuerier: "Because Mimir is running in monolithic mode ... automatic ... configuration").


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
render, workloads = BINARY.functions(config)


class Mimir(ToolComponent):
    TYPE = "observability:mimir:Mimir"
