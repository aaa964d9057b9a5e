"""Load sources and sinks for the pipeline benchmark (benchmarks/pipeline.py), all on loopback.

- `SyntheticExporter`: N scrape targets behind one threaded HTTP server (`/metrics/<i>`), each
  serving the same `SERIES_PER_TARGET` series (Prometheus adds `job`/`instance`, so the series
  are distinct per target). Most of the payload is pre-rendered gauges in `VARIANTS` variants
  with different values, served in turn so values change every scrape at no cost; the series the
  stack's recording rules read (`http_requests_total`, `http_request_duration_seconds_*`) are
  counters rendered per scrape from the clock, so `rate()` sees real increases. Plain
  `/metrics` is a one-gauge stub for the stack's own scrape jobs (those tools are not running).
- `WriteSink`: accepts Prometheus remote write (and any other POST) and counts requests and
  bytes without decoding; Prometheus' own `prometheus_remote_storage_*` metrics count samples.
- `FastSink`: an asyncio endpoint answering `200 ok` as Slack does, for Alertmanager's throughput.
- `OtlpLoad`: OTLP/HTTP protobuf traces at a paced rate. A request is built once with the
  OpenTelemetry protobuf classes (`SPANS_PER_TRACE` spans per trace, `ERROR_SHARE` of traces
  with an error span, `SLOW_SHARE` slower than the 1 s threshold); every request then gets fresh
  trace ids by replacing an 8-byte random prefix, so every trace is new to tail sampling.
- `GrpcSink`: an OTLP/gRPC endpoint (the gateway's `otlp/tempo` exporter) that answers every
  Export with an empty response; the collector's own `otelcol_exporter_sent_spans` counts spans.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import random
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERIES_PER_TARGET = 15_000
VARIANTS = 4
ROUTES = 10
METHODS = ("GET", "POST")
STATUSES = ("200", "404", "500", "503")
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")


def _counter_lines(t: float) -> bytes:
    """The series the recording rules read, as counters growing with time `t` (seconds)."""
    lines = []
    for r in range(ROUTES):
        route = f"/api/v1/resource{r}"
        for m in METHODS:
            for i, s in enumerate(STATUSES):
                rate = 50.0 / (1 + 10 * i)
                lines.append(f'http_requests_total{{endpoint="{route}",method="{m}",status="{s}"}} {rate * t:.1f}')
        total = 80.0 * t
        for i, le in enumerate(BUCKETS):
            share = min(1.0, (i + 1) / (len(BUCKETS) - 2))
            lines.append(f'http_request_duration_seconds_bucket{{endpoint="{route}",le="{le}"}} {total * share:.1f}')
        lines.append(f'http_request_duration_seconds_sum{{endpoint="{route}"}} {total * 0.2:.1f}')
        lines.append(f'http_request_duration_seconds_count{{endpoint="{route}"}} {total:.1f}')
    return ("\n".join(lines) + "\n").encode()


COUNTER_SERIES = len(_counter_lines(0).splitlines())


def _gauge_variants(count: int) -> list[bytes]:
    """`VARIANTS` renderings of `count` gauges (same series, different values)."""
    rng = random.Random(17)
    names = [f"bench_gauge_{m:02d}" for m in range(50)]
    keys = [(names[i % 50], f"shard-{i // 50:04d}", f"zone-{i % 3}") for i in range(count)]
    bases = [rng.uniform(0, 1000) for _ in keys]
    variants = []
    for v in range(VARIANTS):
        lines = [f'{n}{{shard="{s}",zone="{z}"}} {b * (1 + 0.01 * v) + rng.random():.2f}'
                 for (n, s, z), b in zip(keys, bases)]
        variants.append(("\n".join(lines) + "\n").encode())
    return variants


class _ExporterHandler(BaseHTTPRequestHandler):
    server: "SyntheticExporter"

    def do_GET(self) -> None:  # noqa: N802
        srv = self.server
        if not self.path.startswith("/metrics/"):
            # `/metrics`: the stub standing in for the stack's own tools (one healthy gauge).
            body = b"# TYPE stub_up gauge\nstub_up 1\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        with srv.lock:
            srv.scrapes += 1
            variant = srv.variants[srv.scrapes % VARIANTS]
        body = variant + _counter_lines(time.monotonic() - srv.started)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802  (stands in for Alertmanager: accept and forget)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class SyntheticExporter(ThreadingHTTPServer):
    """Serves `/metrics/<i>` (any i) on 127.0.0.1; `targets` scrape jobs point at it."""

    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address) -> None:
        # A scrape Prometheus gave up on (scrape timeout) resets the connection: count it quietly.
        self.errors += 1

    def __init__(self, series_per_target: int = SERIES_PER_TARGET) -> None:
        super().__init__(("127.0.0.1", 0), _ExporterHandler)
        self.errors = 0
        self.variants = _gauge_variants(series_per_target - COUNTER_SERIES)
        self.lock = threading.Lock()
        self.scrapes = 0
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self.serve_forever, name="exporter", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> "SyntheticExporter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


class _SinkHandler(BaseHTTPRequestHandler):
    server: "WriteSink"
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        with self.server.lock:
            self.server.requests += 1
            self.server.bytes += n
        self.send_response(self.server.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args) -> None:
        pass


class WriteSink(ThreadingHTTPServer):
    """Accepts every POST with `status` and `body` (204: Prometheus remote write; 200: OTLP/HTTP)."""

    daemon_threads = True
    request_queue_size = 1024  # socketserver's default backlog is 5

    def handle_error(self, request, client_address) -> None:
        pass  # a sender closing its keep-alive connection with a reset is not an error here

    def __init__(self, status: int = 204, body: bytes = b"") -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.status, self.body = status, body
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self._thread = threading.Thread(target=self.serve_forever, name="write-sink", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> "WriteSink":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


# --- OTLP ---------------------------------------------------------------------------------------

SPANS_PER_TRACE = 10
SPANS_PER_REQUEST = 1000
ERROR_SHARE = 0.01
SLOW_SHARE = 0.01
PREFIX_LEN = 8


def otlp_request(prefix: bytes) -> bytes:
    """One ExportTraceServiceRequest of `SPANS_PER_REQUEST` spans; every trace id starts with
    `prefix` (8 bytes) followed by the trace's index, so replacing the prefix renews all ids."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="checkout")))
    rs.resource.attributes.append(KeyValue(key="k8s.pod.name", value=AnyValue(string_value="checkout-7d9f-abcde")))
    scope = rs.scope_spans.add()
    scope.scope.name = "bench"
    now = time.time_ns()
    traces = SPANS_PER_REQUEST // SPANS_PER_TRACE
    for t in range(traces):
        trace_id = prefix + t.to_bytes(16 - PREFIX_LEN, "big")
        error = t < traces * ERROR_SHARE
        slow = traces * ERROR_SHARE <= t < traces * (ERROR_SHARE + SLOW_SHARE)
        duration = 2_000_000_000 if slow else 40_000_000
        for s in range(SPANS_PER_TRACE):
            span = scope.spans.add()
            span.trace_id = trace_id
            span.span_id = (t * SPANS_PER_TRACE + s + 1).to_bytes(8, "big")
            if s:
                span.parent_span_id = (t * SPANS_PER_TRACE + 1).to_bytes(8, "big")
            span.name = "GET /api/v1/checkout" if s == 0 else f"SELECT orders {s}"
            span.kind = Span.SPAN_KIND_SERVER if s == 0 else Span.SPAN_KIND_CLIENT
            span.start_time_unix_nano = now
            span.end_time_unix_nano = now + (duration if s == 0 else duration // 2)
            span.attributes.append(KeyValue(key="http.route", value=AnyValue(string_value="/api/v1/checkout")))
            span.attributes.append(KeyValue(key="http.response.status_code", value=AnyValue(int_value=500 if error else 200)))
            span.attributes.append(KeyValue(key="db.system", value=AnyValue(string_value="postgresql")))
            if error and s == SPANS_PER_TRACE - 1:
                span.status.code = Status.STATUS_CODE_ERROR
    return request.SerializeToString()


class OtlpLoad:
    """Send OTLP/HTTP traces to `host:port` at `spans_per_second` from `threads` threads;
    counts spans sent and the responses by status (429/503: refused by the collector)."""

    def __init__(self, host: str, port: int, threads: int = 2) -> None:
        self.host, self.port, self.threads = host, port, threads
        self.prefix = os.urandom(PREFIX_LEN)
        self.template = otlp_request(self.prefix)
        self.lock = threading.Lock()
        self.sent_spans = 0
        self.accepted_spans = 0
        self.statuses: dict[int, int] = {}

    def run(self, spans_per_second: float, seconds: float) -> float:
        """Blocks for `seconds`; returns the rate actually offered (spans/s)."""
        per_thread = spans_per_second / self.threads / SPANS_PER_REQUEST  # requests/s per thread
        stop = time.monotonic() + seconds
        before = self.sent_spans
        started = time.monotonic()

        def worker() -> None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            next_at = time.monotonic()
            while True:
                now = time.monotonic()
                if now >= stop:
                    break
                if now < next_at:
                    time.sleep(min(next_at - now, stop - now))
                    continue
                next_at += 1 / per_thread
                body = self.template.replace(self.prefix, os.urandom(PREFIX_LEN))
                try:
                    conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                    status = 0
                with self.lock:
                    self.sent_spans += SPANS_PER_REQUEST
                    if status == 200:
                        self.accepted_spans += SPANS_PER_REQUEST
                    self.statuses[status] = self.statuses.get(status, 0) + 1
            conn.close()

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(self.threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return (self.sent_spans - before) / (time.monotonic() - started)


class GrpcSink:
    """OTLP/gRPC trace (and any other) Export endpoint answering with an empty response."""

    def __init__(self) -> None:
        import grpc

        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0

        def export(request: bytes, context) -> bytes:
            with self.lock:
                self.requests += 1
                self.bytes += len(request)
            return b""  # an empty Export*ServiceResponse

        class Handler(grpc.GenericRpcHandler):
            def service(self, details):
                return grpc.unary_unary_rpc_method_handler(export)  # raw bytes in and out

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[Handler()])
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "GrpcSink":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop(grace=1)


class FastSink:
    """A minimal asyncio HTTP/1.1 endpoint answering every POST `200 ok` (what a Slack incoming
    webhook answers), counting requests. One event loop and no thread per connection, so a
    thousand notifications arriving at once measure Alertmanager, not the sink."""

    def __init__(self) -> None:
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fast-sink", daemon=True)
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:].strip())
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=4096))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "FastSink":
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
