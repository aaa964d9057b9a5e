"""The seed's FastAPI service, instrumented for this stack, with its mistakes fixed.

Run:  python app.py [--host 127.0.0.1] [--port 8000]

Telemetry is configured only from the environment the stack exports as `telemetryEnv`
(`pulumi stack output telemetryEnv`): OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL,
OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG (the OpenTelemetry SDK reads them itself), plus the
standard OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES. Nothing here names a host.

Options (environment):
- APP_METRICS=prometheus (default): the seed's prometheus-client metrics on /metrics
  (`http_requests_total`, `http_request_duration_seconds` with the seed's buckets,
  `http_requests_in_progress`), for a Prometheus scrape (a team's `scrapeTargets`).
- APP_METRICS=otel: OpenTelemetry metrics instead, HTTP semantic conventions
  (`http.server.request.duration`, seconds, `http.response.status_code`, `http.route`) sent by
  OTLP to the collector, which remote-writes them (`http_server_request_duration_seconds_*`).
  /metrics still answers (process metrics only) so the team scrape target's `up` watches the
  service and gives its series their team.
- APP_OTLP_LOGS=1: also send every log record by OTLP (body = the event, fields as attributes,
  trace context from the current span). Off by default: the stack's log agent already ships
  stdout; turn it on where no agent tails the container.

What the seed got wrong, fixed here:
- its structlog setup promised trace ids in every line but added call-site fields instead
  (`CallsiteParameterAdder`); `add_trace_context` below adds the current `trace_id`/`span_id`;
- it labelled metrics with the raw URL path (`request.url.path`), one series per order id;
  the route template (`/orders/{order_id}`) is used instead;
- it hard-coded exporter endpoints (`http://tempo:4317`, Jaeger) instead of reading the
  environment, and its sampler would sample a second time after the collector's tail sampling.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

# The FastAPI instrumentation emits the stable HTTP semantic conventions
# (`http.server.request.duration` in seconds) only when opted in; without it, the old
# `http.server.duration` in milliseconds. Must be set before the instrumentation is imported.
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
os.environ.setdefault("OTEL_SERVICE_NAME", "python-service")

import structlog  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI, Request, Response  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402
from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, Info, generate_latest,
)

METRICS_MODE = os.environ.get("APP_METRICS", "prometheus")
OTLP_LOGS = os.environ.get("APP_OTLP_LOGS", "0") == "1"
SERVICE = os.environ["OTEL_SERVICE_NAME"]
VERSION = "1.0.0"

if METRICS_MODE not in ("prometheus", "otel"):
    sys.exit(f"APP_METRICS: {METRICS_MODE!r} is not allowed (use prometheus or otel)")


# --- exporters, from the stack's telemetryEnv ----------------------------------------------------


def _otlp_exporters():
    """(span, metric, log) exporter classes for OTEL_EXPORTER_OTLP_PROTOCOL; the exporters read
    the endpoint from OTEL_EXPORTER_OTLP_ENDPOINT (an `http://` endpoint means plaintext)."""
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol != "grpc":
        sys.exit(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported by this example "
                 "(the stack's telemetryEnv says grpc)")
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter, OTLPMetricExporter, OTLPLogExporter


def setup_telemetry():
    """Tracer, meter and logger providers. Without OTEL_EXPORTER_OTLP_ENDPOINT nothing is
    exported (the app still runs and still logs trace ids)."""
    # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    resource = Resource.create({"service.version": VERSION})
    # The sampler comes from OTEL_TRACES_SAMPLER/OTEL_TRACES_SAMPLER_ARG (the stack says
    # parentbased_traceidratio 1.0 when its collector tail-samples: sample once, there).
    tracer_provider = TracerProvider(resource=resource)
    meter_provider = logger_provider = None
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        span_exporter, metric_exporter, log_exporter = _otlp_exporters()
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter()))
        if METRICS_MODE == "otel":
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            # Export interval: OTEL_METRIC_EXPORT_INTERVAL (SDK default 60 s).
            meter_provider = MeterProvider(resource=resource,
                                           metric_readers=[PeriodicExportingMetricReader(metric_exporter())])
        if OTLP_LOGS:
            from opentelemetry.sdk._logs import LoggerProvider
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

            logger_provider = LoggerProvider(resource=resource)
            logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter()))
    elif METRICS_MODE == "otel" or OTLP_LOGS:
        sys.exit("OTEL_EXPORTER_OTLP_ENDPOINT: is required with APP_METRICS=otel or APP_OTLP_LOGS=1 "
                 "(set it from the stack's telemetryEnv)")
    trace.set_tracer_provider(tracer_provider)
    return tracer_provider, meter_provider, logger_provider


# --- logs: structlog JSON on stdout, with the current trace -------------------------------------


def add_trace_context(logger, method_name, event_dict):
    """The seed's promise, kept: the current span's ids in every line (W3C hex, as Tempo and
    Grafana show them)."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


_SEVERITY = {"debug": 5, "info": 9, "warning": 13, "error": 17, "critical": 21}  # OTel SeverityNumber


def otlp_forwarder(logger_provider):
    """A structlog processor sending each event by OTLP as well (the record is bound to the
    current span through the context, so it carries trace_id/span_id as OTLP fields)."""
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.context import get_current

    otel_logger = logger_provider.get_logger(SERVICE)
    skip = {"event", "level", "timestamp", "trace_id", "span_id"}

    def forward(logger, method_name, event_dict):
        level = event_dict.get("level", method_name)
        otel_logger.emit(
            context=get_current(),
            severity_text=level.upper(),
            severity_number=SeverityNumber(_SEVERITY.get(level, 9)),
            body=str(event_dict.get("event", "")),
            attributes={k: v if isinstance(v, (str, int, float, bool)) else str(v)
                        for k, v in event_dict.items() if k not in skip},
        )
        return event_dict

    return forward


def setup_logging(logger_provider=None) -> None:
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        structlog.processors.format_exc_info,
    ]
    if logger_provider is not None:
        processors.append(otlp_forwarder(logger_provider))
    processors.append(structlog.processors.JSONRenderer())
    structlog.configure(
        processors=processors,
        # One line per event on stdout, flushed: what the log agent tails.
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=SERVICE)


log = structlog.get_logger()
tracer = trace.get_tracer(__name__)


# --- metrics: the seed's, with the route template as `endpoint` ----------------------------------

app_info = Info("app", "Application information")
http_requests_total = Counter("http_requests_total", "Total HTTP requests", ["method", "endpoint", "status"])
http_request_duration_seconds = Histogram(
    "http_request_duration_seconds", "HTTP request latency in seconds", ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),  # the seed's
)
http_requests_in_progress = Gauge("http_requests_in_progress", "Number of HTTP requests in progress",
                                  ["method", "endpoint"])


def create_app() -> FastAPI:
    tracer_provider, meter_provider, logger_provider = setup_telemetry()
    setup_logging(logger_provider)
    app_info.info({"version": VERSION, "metrics": METRICS_MODE})
    app = FastAPI(title="python-service")

    if METRICS_MODE == "prometheus":
        @app.middleware("http")
        async def track_request_metrics(request: Request, call_next):
            """The seed's decorator as a middleware, so no endpoint can forget it."""
            if request.url.path == "/metrics":
                return await call_next(request)
            method = request.method
            start = time.perf_counter()
            status = 500
            endpoint = _route_of(app, request)
            http_requests_in_progress.labels(method, endpoint).inc()
            try:
                response = await call_next(request)
                status = response.status_code
                return response
            finally:
                http_requests_total.labels(method, endpoint, str(status)).inc()
                http_request_duration_seconds.labels(method, endpoint).observe(time.perf_counter() - start)
                http_requests_in_progress.labels(method, endpoint).dec()

    @app.middleware("http")
    async def trace_id_header(request: Request, call_next):
        """Tell the caller which trace its request made (used by the load script and tests)."""
        response = await call_next(request)
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            response.headers["x-trace-id"] = format(ctx.trace_id, "032x")
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/")
    async def root():
        log.info("hello")
        return {"message": "Hello World", "service": SERVICE}

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str, fail: bool = False, delay: float = 0.0):
        """Succeeds; `?fail=true` answers 500; `?delay=1.5` takes that long (capped at 30 s)."""
        with tracer.start_as_current_span("process_order") as span:
            span.set_attribute("order.id", order_id)
            if delay > 0:
                with tracer.start_as_current_span("slow_dependency"):
                    log.info("slow_dependency_called", order_id=order_id, delay_seconds=delay)
                    await asyncio.sleep(min(delay, 30.0))
            if fail:
                error = RuntimeError(f"order {order_id}: payment backend unavailable")
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                log.error("order_failed", order_id=order_id, error=str(error))
                return JSONResponse({"error": "internal error", "order_id": order_id}, status_code=500)
            log.info("order_processed", order_id=order_id)
            return {"order_id": order_id, "status": "ok"}

    # The instrumentation's middleware wraps the app's own, so the server span is current inside
    # them and in the endpoints (trace ids in logs and in the x-trace-id header).
    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider, meter_provider=meter_provider,
                                       excluded_urls="/metrics")
    return app


def _route_of(app: FastAPI, request: Request) -> str:
    """The matching route's template (`/orders/{order_id}`), not the path: bounded cardinality."""
    from starlette.routing import Match

    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return getattr(route, "path", request.url.path)
    return "<unmatched>"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # Uvicorn's own access log is off: the structlog lines are the service's log.
    uvicorn.run(create_app(), host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
