"""Map the rendered collector configs (gateway and log agent) onto local processes.

Applied to a COPY of the rendered config (components/collector.py is never changed):
- every `0.0.0.0:<port>` listener (OTLP gRPC/HTTP receivers, health_check) -> `127.0.0.1:<local>`;
- the internal-telemetry Prometheus reader -> host 127.0.0.1, a local port (Prometheus' `collector`
  scrape job is mapped there);
- exporters -> the local sinks, keyed by exporter name (`otlp/tempo` -> the trace sink,
  `otlphttp/loki` -> the log sink, `prometheusremotewrite` -> the local Prometheus' remote-write
  receiver, `otlp/gateway` -> the local gateway); an exporter missing from the map is an error;
- the log agent's `filelog.include` globs re-rooted under the temp dir (Docker's log directory).
Pipelines, processors (tail sampling, memory limiter, batch), operators and exporter kinds stay
as rendered.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Mapping


def _listen(endpoint: str, ports: Mapping[int, int]) -> str:
    host, _, port = endpoint.rpartition(":")
    if host != "0.0.0.0":
        raise ValueError(f"unexpected listener {endpoint}")
    return f"127.0.0.1:{ports[int(port)]}"


def collector_config(doc: dict, ports: Mapping[int, int], exporters: Mapping[str, str],
                     root: Path | None = None) -> dict:
    """`ports`: {rendered port: local port}; `exporters`: {exporter name: local endpoint}."""
    out = copy.deepcopy(doc)
    for ext in out.get("extensions", {}).values():
        if "endpoint" in ext:
            ext["endpoint"] = _listen(ext["endpoint"], ports)
    for receiver in out.get("receivers", {}).values():
        for proto in (receiver.get("protocols") or {}).values():
            proto["endpoint"] = _listen(proto["endpoint"], ports)
        if "include" in receiver:
            if root is None:
                raise ValueError("filelog include needs a root")
            receiver["include"] = [str(root / p.lstrip("/")) for p in receiver["include"]]
            receiver["exclude"] = [str(root / p.lstrip("/")) for p in receiver.get("exclude", [])]
    for name, exporter in out.get("exporters", {}).items():
        if name not in exporters:
            raise KeyError(f"no local endpoint for exporter {name}")
        exporter["endpoint"] = exporters[name]
    for reader in out["service"]["telemetry"].get("metrics", {}).get("readers", []):
        prom = reader["pull"]["exporter"]["prometheus"]
        prom["host"], prom["port"] = "127.0.0.1", ports[prom["port"]]
    return out
