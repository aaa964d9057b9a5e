"""Loopback stand-ins for Tempo's OTLP/gRPC trace receiver and Loki's OTLP/HTTP log endpoint.

The collector's `otlp/tempo` exporter (gRPC) and `otlphttp/loki` exporter (HTTP, protobuf,
gzip by default) deliver here unchanged; each sink keeps what it received, decoded with the
OpenTelemetry protobuf definitions (`opentelemetry-proto`, already a dependency of the OTLP
exporter the example service uses).
"""

from __future__ import annotations

import gzip
import threading
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def _attrs(kvs) -> dict:
    out = {}
    for kv in kvs:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind else None
    return out


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    status_code: int  # 0 unset, 1 ok, 2 error
    service: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class LogRecord:
    resource: dict
    attributes: dict
    body: str
    trace_id: str
    span_id: str
    severity: str


@dataclass
class _Store:
    items: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def extend(self, new) -> None:
        with self.lock:
            self.items.extend(new)

    def all(self) -> list:
        with self.lock:
            return list(self.items)


class TraceSink(trace_service_pb2_grpc.TraceServiceServicer):
    """OTLP/gRPC TraceService on 127.0.0.1:<port>."""

    def __init__(self) -> None:
        self.spans = _Store()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def Export(self, request, context):  # noqa: N802 (gRPC's naming)
        got = []
        for rs in request.resource_spans:
            service = str(_attrs(rs.resource.attributes).get("service.name", ""))
            for ss in rs.scope_spans:
                for s in ss.spans:
                    got.append(Span(s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.name,
                                    s.status.code, service, s.start_time_unix_nano, s.end_time_unix_nano))
        self.spans.extend(got)
        return trace_service_pb2.ExportTraceServiceResponse()

    def __enter__(self) -> "TraceSink":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop(grace=1)


class _LogHandler(BaseHTTPRequestHandler):
    server: "LogSink"

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        request = logs_service_pb2.ExportLogsServiceRequest()
        request.ParseFromString(raw)
        got = []
        for rl in request.resource_logs:
            resource = _attrs(rl.resource.attributes)
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    kind = r.body.WhichOneof("value")
                    got.append(LogRecord(resource, _attrs(r.attributes), str(getattr(r.body, kind)) if kind else "",
                                         r.trace_id.hex(), r.span_id.hex(), r.severity_text))
        self.server.records.extend(got)
        self.server.paths.add(self.path)
        body = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class LogSink(ThreadingHTTPServer):
    """OTLP/HTTP logs on http://127.0.0.1:<port><any path>."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _LogHandler)
        self.records = _Store()
        self.paths: set[str] = set()
        self._thread = threading.Thread(target=self.serve_forever, name="log-sink", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> "LogSink":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
