"""Tempo (traces), single binary with local storage and the metrics generator.

Upstream reference: Tempo configuration reference
(https://grafana.com/docs/tempo/latest/configuration/) and the repo's docker-compose example
(`example/docker-compose/shared/tempo.yaml`: OTLP receivers, `storage.trace.backend: local`,
`compactor.compaction.block_retention`, `metrics_generator.storage.remote_write` with
`send_exemplars`, and `overrides.defaults.metrics_generator.processors`). The upgrade guide
notes that since 2.7 receivers bind to localhost unless given an address, hence `0.0.0.0`.

Image facts (2.10.8, `cmd/tempo/Dockerfile` at the tag): `gcr.io/distroless/static-debian12`
without busybox (2.9's `:debug` base is gone), user 10001:10001, `/var/tempo` created by a setup
stage, no default config file (so `-config.file` is always passed). Tempo 3 (ingesters and
compactor removed) is not pinned yet: docs/upstream-facts.md section 12 says why.

Span metrics and service graphs are remote-written to the stack's metrics sink, which
`components/wiring.py` resolves (Mimir when enabled, else Prometheus' remote-write receiver).
"""

from __future__ import annotations


from .base import ToolComponent
from .objectstorage import Bucket, bucket_for
from .platform import Platform
from .wiring import Links
from .workload import Endpoint, Port, SingleBinary, Workload, memberlist
from ..config.durations import go_duration
from ..config.model import Settings

TOOL = "tempo"
HTTP_PORT = 3200
GRPC_PORT = 9095
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
UID = 10001  # gid too
DATA_DIR = "/var/tempo"
CONFIG_PATH = "/etc/tempo/tempo.yaml"


# Distroless without busybox since 2.10: no client inside the image. Apps push OTLP
# to the OTLP ports (below), not to the HTTP port.
BINARY = SingleBinary(TOOL, uid=UID, data_dir=DATA_DIR, config_path=CONFIG_PATH, rendered="tempo/tempo.yaml",
                      http_port=HTTP_PORT, grpc_port=GRPC_PORT, ingest=False)


def serves(service: str) -> dict[str, Endpoint]:
    http = Endpoint(service, HTTP_PORT, scrape=True)
    return {
        "http": http,
        "query": http.at(""),
        # Where the collector exports traces (OTLP/gRPC, plaintext inside the stack), or apps
        # send directly when there is no collector.
        "otlp-grpc": Endpoint(service, OTLP_GRPC_PORT, scheme="grpc"),
        "otlp-http": Endpoint(service, OTLP_HTTP_PORT),
    }


def _trace_backend(bucket: Bucket) -> dict:
    """`storage.trace` backend block (Tempo 2.10.8 configuration: `s3`, `gcs`, `azure`, each with
    `prefix` "to nest all the objects within a shared bucket"); credentials only as `${VAR}`."""
    if bucket.kind == "s3":
        block = {"bucket": bucket.bucket, "endpoint": bucket.endpoint, "region": bucket.region,
                 "insecure": bucket.insecure, "forcepathstyle": bucket.path_style}
        if bucket.key_id:
            block.update(access_key=bucket.key_id, secret_key=bucket.secret)
    elif bucket.kind == "gcs":
        block = {"bucket_name": bucket.bucket}  # no key in config: Application Default Credentials
    else:
        block = {"storage_account_name": bucket.account_name, "container_name": bucket.bucket}
        if bucket.secret:
            block["storage_account_key"] = bucket.secret
        else:
            block["use_federated_token"] = True  # Azure Workload Identity
    if bucket.prefix:
        block["prefix"] = bucket.prefix
    return {"backend": bucket.kind, bucket.kind: block}


# Copies of each span the distributors write (one per ingester): upstream's own replicated
# configs all use 3 (configuration/_index.md "Ingester configuration block", the distributed
# docker-compose example, the jsonnet microservices ConfigMaps); the default is 1
# (modules/ingester/config.go). Writes and queries need a quorum of 2, so one replica may be down.
REPLICATION_FACTOR = 3


def scalable(peers: str, cluster_label: str) -> dict:
    """Replicas as upstream's "scalable monolithic mode" (Tempo 2.10.8 docs, plan/deployment-modes:
    every process runs all components with `-target=scalable-single-binary`; example
    `example/docker-compose/scalable-single-binary`). Object storage is guaranteed here (config/
    loader.py refuses replicas without it) and is where the blocks meet: each ingester flushes
    its own blocks, the compactors merge them.
    - Rings on memberlist through the headless Service: the ingester and metrics-generator rings
      default to memberlist (modules/ingester/config.go, pkg/ring/config.go), and
      scalable-single-binary defaults the compactor ring to it (cmd/tempo/app/modules.go
      `initCompactor`); it is written out so the file says how the compactors share the work
      (sharded by the ring, no single-compactor rule in Tempo 2).
    - `ingester.lifecycler.ring.replication_factor`: REPLICATION_FACTOR (config/loader.py refuses
      2 replicas, which could not keep a quorum of 2 after losing one: QUORUM_REPLICAS).
    - Query path: outside `all` the querier needs `querier.frontend_worker.frontend_address`
      (modules.go `initQuerier` fails without it); it is resolved by DNS every
      `dns_lookup_duration` and every address found gets a worker (worker.go; deployment-modes:
      "Each of the queriers perform a DNS lookup for the frontend_address"), so the headless
      Service connects every querier to every query-frontend over gRPC.
    - Metrics generator: the distributors shard spans over the generator ring, and each generator
      adds `__metrics_gen_instance: <hostname>` to its series (modules/generator/registry/
      registry.go), so the replicas' remote-written series do not collide."""
    def ring_kv() -> dict:
        return {"kvstore": {"store": "memberlist"}}  # a fresh dict each: no YAML anchors

    return {
        "target": "scalable-single-binary",
        # The label keeps another tool's or stack's gossip out (components/workload.py memberlist).
        "memberlist": memberlist(peers, cluster_label),
        "ingester": {"lifecycler": {"ring": {**ring_kv(), "replication_factor": REPLICATION_FACTOR}}},
        "compactor": {"ring": ring_kv()},
        "querier": {"frontend_worker": {"frontend_address": f"{peers}:{GRPC_PORT}"}},
    }


def config(settings: Settings, links: Links) -> dict:
    doc: dict = {
        # Streaming search/metrics over HTTP; Grafana's Tempo datasource uses it when available.
        "stream_over_http_enabled": True,
        "server": {"http_listen_port": HTTP_PORT, "grpc_listen_port": GRPC_PORT, "log_level": "info"},
        "distributor": {"receivers": {"otlp": {"protocols": {
            # Explicit 0.0.0.0: since 2.7 the default bind is localhost (unreachable from other
            # containers/pods).
            "grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"},
            "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"},
        }}}},
        "compactor": {"compaction": {"block_retention": go_duration(settings.retention.traces)}},
        "storage": {"trace": {
            "backend": "local",
            "wal": {"path": f"{DATA_DIR}/wal"},
            "local": {"path": f"{DATA_DIR}/blocks"},
        }},
        "usage_report": {"reporting_enabled": False},
    }
    bucket = bucket_for(settings, TOOL)
    if bucket is not None:
        # Blocks go to the bucket; the claim keeps the WAL (and the generator's WAL below).
        trace = doc["storage"]["trace"]
        del trace["local"], trace["backend"]
        trace.update(_trace_backend(bucket))
    peers = links.peers.get(TOOL)
    if peers:
        for key, value in scalable(peers, f"{settings.kubernetes.namespace}.{links.service(TOOL)}").items():
            # Second-level merge: `compactor` keeps its `compaction` beside the new `ring`.
            doc[key] = {**doc[key], **value} if isinstance(value, dict) and key in doc else value
    # Span metrics and service graphs go to the stack's metrics sink (wiring decides which).
    write_url = links.metrics_sink.url if links.metrics_sink else None
    if write_url:
        doc["metrics_generator"] = {
            "registry": {"external_labels": {"source": TOOL}},
            "storage": {
                "path": f"{DATA_DIR}/generator/wal",
                # Exemplars carry the trace id, so a spike on a RED graph links to its traces.
                "remote_write": [{"url": write_url, "send_exemplars": True}],
            },
        }
        # The processors are off unless listed (per tenant; `defaults` covers our one tenant).
        doc["overrides"] = {"defaults": {"metrics_generator": {"processors": ["service-graphs", "span-metrics"]}}}
    return doc


def render(settings: Settings, links: Links, platform: Platform) -> dict[str, str]:
    return BINARY.render(config(settings, links))

def workloads(settings: Settings, links: Links, platform: Platform) -> tuple[Workload, ...]:
    # Applications send OTLP to the collector (tail sampling happens there); Tempo's OTLP ports
    # are published only when there is no collector and apps must reach Tempo directly.
    direct = links.gateway_otlp is None
    return BINARY.workloads(
        settings, links, config(settings, links),
        extra_ports=(Port("otlp-grpc", OTLP_GRPC_PORT, publish=direct, ingest=True),
                     Port("otlp-http", OTLP_HTTP_PORT, publish=direct, ingest=True)),
        talks_to=(links.metrics_sink,) if links.metrics_sink else (),
    )

class Tempo(ToolComponent):
    TYPE = "observability:tempo:Tempo"
