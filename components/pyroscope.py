"""Pyroscope (continuous profiling), single binary with filesystem storage.

Upstream reference: Pyroscope configuration reference
(https://grafana.com/docs/pyroscope/latest/configure-server/reference-configuration-parameters/)
and the image's Dockerfile (`cmd/pyroscope/Dockerfile`: distroless, uid 10001, `/data`,
config at `/etc/pyroscope/config.yaml`).

Retention: Pyroscope has no single "retention" setting. Time-based retention is the compactor's
`limits.compactor_blocks_retention_period` (0 = keep forever, upstream's default), which we set
to `retention.profiles`; the ingesters' disk-based guard (`pyroscopedb.min_free_disk_gb`,
`min_disk_available_percentage`) stays on as upstream recommends, so a full disk drops the
oldest blocks instead of stopping ingestion.
"""

from __future__ import annotations


from .base import ToolComponent
from .objectstorage import Bucket, bucket_for, workload_fields
from .platform import Platform
from .wiring import Links
from .workload import (
    MEMBERLIST_PORT, ConfigFile, Endpoint, HealthCheck, Port, SingleBinary, Workload, flags, peers_service, to_yaml,
    tool_workload,
)
from ..config.durations import go_duration
from ..config.model import Settings

TOOL = "pyroscope"
HTTP_PORT = 4040
UID = 10001  # gid too
DATA_DIR = "/data"
CONFIG_PATH = "/etc/pyroscope/config.yaml"
IMAGE_VOLUMES = ("/data-compactor", "/data-metastore")


# Distroless image: no shell, no HTTP client, so no in-container Docker healthcheck. The image
# declares `VOLUME /data-compactor /data-metastore` (cmd/pyroscope/Dockerfile at v1.16.0 and v1.21.1); covering
# them keeps Docker from creating an anonymous volume for each. Unused: the compactor works under
# /data (see config), the metastore is v2 storage only.
BINARY = SingleBinary(TOOL, uid=UID, data_dir=DATA_DIR, config_path=CONFIG_PATH, rendered="pyroscope/config.yaml",
                      http_port=HTTP_PORT, scratch=("/tmp",) + IMAGE_VOLUMES)


def serves(service: str) -> dict[str, Endpoint]:
    http = Endpoint(service, HTTP_PORT, scrape=True)
    return {"http": http, "query": http.at("")}


def _storage(bucket: Bucket) -> dict:
    """`storage` for the bucket (Pyroscope 1.21.1 reference: `storage.s3|gcs|azure`, `storage.prefix`;
    `storage_prefix` is deprecated there); credentials only as `${VAR}` references."""
    doc: dict = {"backend": bucket.kind}
    if bucket.prefix:
        doc["prefix"] = bucket.prefix
    if bucket.kind == "s3":
        # "use one of: [path-style virtual-hosted-style auto]"
        doc["s3"] = bucket.objstore_s3("path-style")
    elif bucket.kind == "gcs":
        doc["gcs"] = {"bucket_name": bucket.bucket}  # empty service_account: Google's default credentials
    else:
        doc["azure"] = {"account_name": bucket.account_name, "container_name": bucket.bucket,
                        **({"account_key": bucket.secret} if bucket.secret else {})}
    return doc


def config(settings: Settings, links: Links) -> dict:
    doc = _filesystem_config(settings)
    bucket = bucket_for(settings, TOOL)
    if bucket is not None:
        # Blocks go to the bucket; the claim keeps the ingesters' head blocks (`pyroscopedb`,
        # uploaded when cut) and the compactor's scratch space.
        doc["storage"] = _storage(bucket)
    if TOOL in links.peers:
        doc.update(_replicated(links.service(TOOL), f"{settings.kubernetes.namespace}.{links.service(TOOL)}"))
    return doc


def _filesystem_config(settings: Settings) -> dict:
    return {
        "server": {"http_listen_port": HTTP_PORT},
        "storage": {"backend": "filesystem", "filesystem": {"dir": f"{DATA_DIR}/shared"}},
        # Default `./data-compactor`: relative to `/`, on the read-only root (compaction failed).
        "compactor": {"data_dir": f"{DATA_DIR}/compactor"},
        "pyroscopedb": {"data_path": DATA_DIR, "min_free_disk_gb": 1, "min_disk_available_percentage": 0.05},
        "limits": {"compactor_blocks_retention_period": go_duration(settings.retention.profiles)},
        "self_profiling": {"disable_push": True},
        "analytics": {"reporting_enabled": False},
    }


# --- replicated: upstream's microservices mode (issue 15) ---------------------------------------
#
# Pyroscope 1.21.1 documents no replicated single binary: "Monolithic mode ... is meant to be used
# when you _only need one pyroscope instance_ as multiple instances will not share information with
# each other" (docs reference-pyroscope-architecture/deployment-modes, where the paragraph on a
# horizontally scaled monolith is commented out; deploy-kubernetes/helm.md says the same). Its HA
# shape is microservices mode: one process per component, `-target=<component>`, all sharing one
# config file ("You should use a single configuration file ... pass it ... to all components",
# configure-server/about-configurations.md). The components are those of the Helm chart's
# values-micro-services.yaml and of `all` (pkg/pyroscope/pyroscope.go deps) minus the optional
# tenant-settings and ad-hoc-profiles APIs (Grafana's datasource queries the query-frontend); see
# docs/upstream-facts.md section 18.
#
# Every ring is on memberlist (pyroscope.go `ApplyDynamicConfig`), the query-scheduler is found
# through its ring (`query-scheduler.service-discovery-mode` defaults to `ring` there), and every
# component advertises the HTTP port in its ring (pkg/pyroscope/modules.go: `ListenPort =
# Server.HTTPListenPort`): so the only addresses in the config are the memberlist seeds, and all
# traffic between components is on HTTP_PORT, plus memberlist.
DISTRIBUTOR = "distributor"
INGESTER = "ingester"
# Component -> (keeps a claim, the components it calls on HTTP_PORT).
# The ingester comes first: the first workload is the tool's own (components/base.py), whose
# Pulumi resources keep the single binary's logical names.
COMPONENTS: dict[str, tuple[bool, tuple[str, ...]]] = {
    # Head blocks until cut and uploaded (pyroscopedb.data_path).
    INGESTER: (True, ()),
    DISTRIBUTOR: (False, (INGESTER,)),  # pushes, replicated to RF ingesters
    "query-frontend": (False, ("query-scheduler",)),  # enqueues (frontend_scheduler_worker.go)
    "query-scheduler": (False, ()),
    # Dequeues from the scheduler, reads ingesters and store-gateways, returns results to the
    # frontend that enqueued (pkg/querier/worker/scheduler_processor.go `QueryResult`).
    "querier": (False, ("query-scheduler", "query-frontend", INGESTER, "store-gateway")),
    # Block index headers synced from the bucket (`./data/pyroscope-sync/`, on /data): "not
    # required to be persisted ... but it's highly recommended in order to improve the
    # store-gateway startup time" (reference, blocks_storage.bucket_store.sync_dir).
    "store-gateway": (True, ()),
    # Blocks downloaded for compaction (compactor.data_dir, under /data): more than an emptyDir's
    # limit (components/targets/kubernetes.py SCRATCH_SIZE_LIMIT), so a claim too. Compactors shard
    # the tenants' blocks over their ring: no single-compactor rule.
    "compactor": (True, ()),
}
# "By default, each profile series is replicated to three ingesters ... a quorum ... is a minimum
# of 2 with a replication factor of 3" (components/ingester.md), though the flag's default is 1
# (`-distributor.replication-factor`, pyroscope.go overrides). The store-gateways replicate their
# blocks shards 3 times too, as upstream's chart sets (`store-gateway.sharding-ring.replication-
# factor: "3"`, values-micro-services.yaml; "needs be set both on the store-gateway and querier":
# one shared config does that). 3 replicas or more: the loader refuses 2 (QUORUM_REPLICAS).
REPLICATION_FACTOR = 3


def component_name(service: str, component: str) -> str:
    """The ingesters keep the tool's own name: the single binary's StatefulSet and its claim
    (`data-pyroscope-0`, protected in prod) carry on as the first ingester's, so turning HA on
    replaces no StatefulSet and ingester 0 uploads what the single binary had not flushed yet.
    Pushes move to the distributor's Service (the stack's `pyroscope` output says where)."""
    return service if component == INGESTER else f"{service}-{component}"


def _replicated(service: str, cluster_label: str) -> dict:
    rf = REPLICATION_FACTOR  # 2 replicas are refused (config/loader.py, QUORUM_REPLICAS)
    return {
        # Seeds: every component's headless Service (not-ready pods too: a starting ingester
        # joins the ring before it is ready). dskit resolves `dns+` names and re-resolves them.
        "memberlist": {"join_members": [f"dns+{peers_service(component_name(service, c))}:{MEMBERLIST_PORT}"
                                        for c in COMPONENTS],
                       "bind_port": MEMBERLIST_PORT,
                       # Gossip with another label is dropped (components/workload.py memberlist);
                       # upstream's chart sets one too (`-memberlist.cluster-label=<ns>-<release>`).
                       "cluster_label": cluster_label},
        "ingester": {"lifecycler": {"ring": {"replication_factor": rf}}},
        "store_gateway": {"sharding_ring": {"replication_factor": rf}},
    }


def serves_replicated(service: str) -> dict[str, Endpoint]:
    """What the components serve (components/wiring.py asks this instead of `serves` when the tool
    runs replicas): pushes at the distributor, queries at the query-frontend, and the metrics of
    every component under the one `pyroscope` job (the ingesters' headless Service plus the other
    components as tiers)."""
    tiers = tuple(component_name(service, c) for c in COMPONENTS if c != INGESTER)
    return {"http": Endpoint(component_name(service, DISTRIBUTOR), HTTP_PORT),
            "metrics": Endpoint(service, HTTP_PORT, scrape=True, tiers=tiers),
            "query": Endpoint(component_name(service, "query-frontend"), HTTP_PORT)}


def _microservices(settings: Settings, links: Links, doc: dict) -> tuple[Workload, ...]:
    service = links.service(TOOL)
    text = to_yaml(doc)
    everyone = [component_name(service, c) for c in COMPONENTS]
    out = []
    for component, (claim, calls) in COMPONENTS.items():
        name = component_name(service, component)
        storage = workload_fields(bucket_for(settings, TOOL))  # the same file, so the same store for all
        extra_args = storage.pop("extra_args", ())
        secret_files = storage.pop("extra_secret_files", ())
        egress = storage.pop("egress_ports", ())
        # Published: the distributor's `http` (pushes: the stack's Pyroscope URL) and the
        # query-frontend's `query` (the API and UI); distinct names, so each keeps its URL.
        port = Port("query" if component == "query-frontend" else "http", HTTP_PORT,
                    publish=component in (DISTRIBUTOR, "query-frontend"), ingest=component == DISTRIBUTOR)
        out.append(tool_workload(
            settings, TOOL, service=name, data_dir=DATA_DIR if claim else None, uid=UID, gid=UID,
            args=tuple(flags({"config.file": CONFIG_PATH, "target": component}, prefix="-")) + tuple(extra_args),
            ports=(port, Port("memberlist", MEMBERLIST_PORT)),
            health=HealthCheck.http("/ready", HTTP_PORT),
            config_files=(ConfigFile(CONFIG_PATH, text),),
            # Without a claim, /data (the relative `./data` defaults) is scratch space, as the
            # chart's emptyDir `data` volume.
            scratch=BINARY.scratch + (() if claim else (DATA_DIR,)),
            talks_to=tuple(Endpoint(peer, MEMBERLIST_PORT, scheme="tcp") for peer in everyone)
            + tuple(Endpoint(component_name(service, c), HTTP_PORT) for c in calls),
            egress_ports=tuple(egress),
            headless="all",
            min_ready_seconds=30,
            **({"secret_files": secret_files} if secret_files else {}),
            **storage,
        ))
    return tuple(out)


def render(settings: Settings, links: Links, platform: Platform) -> dict[str, str]:
    return BINARY.render(config(settings, links))


def workloads(settings: Settings, links: Links, platform: Platform) -> tuple[Workload, ...]:
    doc = config(settings, links)
    if TOOL in links.peers:
        return _microservices(settings, links, doc)
    return BINARY.workloads(settings, links, doc)


class Pyroscope(ToolComponent):
    TYPE = "observability:pyroscope:Pyroscope"
