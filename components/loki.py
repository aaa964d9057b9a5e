"""Loki (logs), single binary ("monolithic", `-target=all`), one tenant: one instance with its data
on the claim or in object storage, or with replicas (`highAvailability`, object storage required)
upstream's "HA monolithic": 3 instances, replication factor 3, memberlist rings (`_replicate`).

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


from . import kube_events
from .base import ToolComponent
from .objectstorage import Bucket, bucket_for
from .sizing import REPLICATION_FACTOR
from .wiring import Links
from .workload import Endpoint, SingleBinary, advertise_addr, memberlist
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


def _object_store(bucket: Bucket) -> dict:
    """`common.storage` for the bucket (Loki 3.7.6 configuration reference: `s3_storage_config`,
    `gcs_storage_config`, `azure_storage_config`); credentials only as `${VAR}` references."""
    if bucket.kind == "s3":
        s3 = {"endpoint": bucket.endpoint, "region": bucket.region, "bucketnames": bucket.bucket,
              "insecure": bucket.insecure, "s3forcepathstyle": bucket.path_style}
        if bucket.key_id:
            s3.update(access_key_id=bucket.key_id, secret_access_key=bucket.secret)
        return {"s3": s3}
    if bucket.kind == "gcs":
        # No `service_account`: the GCS client falls back to Application Default Credentials
        # (GOOGLE_APPLICATION_CREDENTIALS names the key file, or the workload identity).
        return {"gcs": {"bucket_name": bucket.bucket}}
    azure = {"account_name": bucket.account_name, "container_name": bucket.bucket}
    if bucket.secret:
        azure["account_key"] = bucket.secret
    else:
        # Azure Workload Identity ("these are set automatically when using Azure Workload Identity").
        azure["use_federated_token"] = True
    return {"azure": azure}


def config(settings: Settings, links: Links) -> dict:
    doc = _filesystem_config(settings)
    bucket = bucket_for(settings, TOOL)
    if bucket is None:
        return doc
    # Object storage: chunks and the TSDB index go to the bucket (the index shipper uploads it
    # there); the claim under `path_prefix` keeps the WAL, the index cache and the compactor's
    # working directory. The ruler keeps its (empty) local rules directory: the stack provisions
    # no Loki rules, and a local ruler store reads nothing from the bucket.
    doc["common"]["storage"] = _object_store(bucket)
    doc["ruler"] = {"storage": {"type": "local", "local": {"directory": RULES_DIR}}}
    for period in doc["schema_config"]["configs"]:
        period["object_store"] = bucket.kind
    doc["compactor"]["delete_request_store"] = bucket.kind
    if bucket.prefix:
        # Experimental at 3.7.6 (factory.go wraps every object client with this prefix); a
        # bucket of its own (`objectStorage.buckets.loki`) needs no prefix.
        doc["storage_config"] = {"object_prefix": bucket.prefix}
    peers = links.peers.get(TOOL)
    if peers:
        _replicate(doc, peers, cluster_label=f"{settings.kubernetes.namespace}.{links.service(TOOL)}")
    return doc


def _replicate(doc: dict, peers: str, cluster_label: str) -> None:
    """HA monolithic (Loki 3.7.6 docs, get-started/deployment-modes.md "Monolithic mode": several
    `-target=all` instances on a shared object store, `replication_factor` 3, rings on memberlist;
    setup/install/helm/install-monolithic: "at least three replicas"). Evidence per key in
    docs/upstream-facts.md "Loki: HA monolithic"."""
    common = doc["common"]
    # pkg/loki/config_wrapper.go applyInstanceConfigs: `common.instance_addr` becomes every
    # ring's instance_addr, the query-frontend's address and memberlist's advertise_addr.
    common["instance_addr"] = advertise_addr()
    common["replication_factor"] = REPLICATION_FACTOR
    # applyDynamicRingConfigs: the common ring is used by every ring, the compactor's included.
    common["ring"] = {"kvstore": {"store": "memberlist"}}
    doc["memberlist"] = memberlist(peers, cluster_label)
    # Exactly one active compactor without further settings: every replica joins the compactor
    # ring with one token and only the owner of key 0 (replication factor 1) runs compaction and
    # retention (pkg/compactor/compactor.go: ringKeyOfLeader, ringReplicationFactor, loop()).
    # No compactor address either: with target=all each replica's delete-request and cache-gen
    # clients call their own process (pkg/loki/modules.go compactorAddress()), and its querier
    # worker pulls from its own query-frontend (pkg/querier/worker_service.go): nothing to point
    # at another replica beyond the ring.


def _filesystem_config(settings: Settings) -> dict:
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
            # Kubernetes events (components/kube_events.py): the event's involved-object kind,
            # reason and type become index labels, on top of Loki's default resource attributes
            # (`ignore_defaults` stays false: service.name, k8s.namespace.name, ... stay labels;
            # pkg/loghttp/push/otlp_config.go at 3.7.6 prepends them). Only the events collector
            # sets these attributes; a stack without it never creates these labels.
            "otlp_config": {"resource_attributes": {"attributes_config": [
                {"action": "index_label", "attributes": list(kube_events.INDEX_LABEL_ATTRIBUTES)},
            ]}},
        },
        "analytics": {"reporting_enabled": False},
    }


# The registry's contract (components/registry.py): config files and workloads from `config`.
render, workloads = BINARY.functions(config)


class Loki(ToolComponent):
    TYPE = "observability:loki:Loki"
