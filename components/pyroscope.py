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
from .objectstorage import Bucket, bucket_for
from .workload import Endpoint, SingleBinary
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
        s3 = {"endpoint": bucket.endpoint, "region": bucket.region, "bucket_name": bucket.bucket,
              "insecure": bucket.insecure}
        if bucket.path_style:
            s3["bucket_lookup_type"] = "path-style"  # "use one of: [path-style virtual-hosted-style auto]"
        if bucket.key_id:
            s3.update(access_key_id=bucket.key_id, secret_access_key=bucket.secret)
        doc["s3"] = s3
    elif bucket.kind == "gcs":
        doc["gcs"] = {"bucket_name": bucket.bucket}  # empty service_account: Google's default credentials
    else:
        doc["azure"] = {"account_name": bucket.account_name, "container_name": bucket.bucket,
                        **({"account_key": bucket.secret} if bucket.secret else {})}
    return doc


def config(settings: Settings) -> dict:
    doc = _filesystem_config(settings)
    bucket = bucket_for(settings, TOOL)
    if bucket is not None:
        # Blocks go to the bucket; the claim keeps the ingesters' head blocks (`pyroscopedb`,
        # uploaded when cut) and the compactor's scratch space.
        doc["storage"] = _storage(bucket)
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


# The registry's contract (components/registry.py): config files and workloads from `config`.
render, workloads = BINARY.functions(lambda settings, links: config(settings))


class Pyroscope(ToolComponent):
    TYPE = "observability:pyroscope:Pyroscope"
