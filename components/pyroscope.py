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
from .platform import Platform
from .wiring import Links
from .workload import ConfigFile, Endpoint, HealthCheck, Port, Workload, to_yaml, tool_workload
from ..config.durations import go_duration
from ..config.model import Settings

TOOL = "pyroscope"
HTTP_PORT = 4040
UID = GID = 10001
DATA_DIR = "/data"
CONFIG_PATH = "/etc/pyroscope/config.yaml"
IMAGE_VOLUMES = ("/data-compactor", "/data-metastore")


def serves(service: str) -> dict[str, Endpoint]:
    http = Endpoint(service, HTTP_PORT, scrape=True)
    return {"http": http, "query": http.at("")}


def config(settings: Settings) -> dict:
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


def render(settings: Settings, links: Links, platform: Platform) -> dict[str, str]:
    return {"pyroscope/config.yaml": to_yaml(config(settings))}


def workloads(settings: Settings, links: Links, platform: Platform) -> tuple[Workload, ...]:
    files = render(settings, links, platform)
    return (tool_workload(
        settings, TOOL, service=links.service(TOOL), data_dir=DATA_DIR,
        uid=UID,
        gid=GID,
        args=(f"-config.file={CONFIG_PATH}",),
        ports=(Port("http", HTTP_PORT, publish=True, ingest=True),),
        # Distroless image: no shell, no HTTP client, so no in-container Docker healthcheck.
        health=HealthCheck.http("/ready", HTTP_PORT, client=None),
        config_files=(ConfigFile(CONFIG_PATH, files["pyroscope/config.yaml"]),),
        # The image declares `VOLUME /data-compactor /data-metastore` (cmd/pyroscope/Dockerfile at
        # v1.16.0); covering them keeps Docker from creating an anonymous volume for each. Unused:
        # the compactor works under /data (above), the metastore is v2 storage only.
        scratch=("/tmp",) + IMAGE_VOLUMES,
    ),)


class Pyroscope(ToolComponent):
    TYPE = "observability:pyroscope:Pyroscope"
