"""The collector's two tiers (issue 14) with the real collector on loopback, fed by the
OpenTelemetry SDK.

The prod preset's rendered `collector/config.yaml` (load-balancing tier) and
`collector/sampling.yaml` (sampling tier) run as one load balancer and two samplers, built at the
pinned version by scripts/build-otelcol.sh. Rewritten, on a copy: listen addresses on loopback,
the load balancer's `dns` resolver (the headless Service) becomes the `static` list of the two
samplers, the logs and metrics pipelines are dropped (no Loki or metrics sink here), and
`decision_wait` is scaled from 10 s to 2 s. Tempo is a gRPC OTLP trace receiver in this process
that records every span it gets.

Checked: every kept trace arrives whole (all its spans, at one sampler), every error trace is
kept, the ordinary traces kept are within 4 standard deviations of the configured ratio; then one
sampler is killed while traces flow and the loss is counted (the static resolver keeps routing a
dead sampler's share to it: with the `dns` resolver in the cluster, the headless Service drops the
pod and its share moves within the 5 s resolution interval). Figures printed at the end.
"""

from __future__ import annotations

import collections
import contextlib
import math
import signal
import threading
import time
from concurrent import futures

import grpc
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from observability_stack.components.render import render_tool
from observability_stack.config import Settings
from tests import tools
from tests.e2e.procs import Process, free_port

pytestmark = pytest.mark.slow

SPANS_PER_TRACE = 5
TRACES = 600
ERROR_EVERY = 10  # one trace in ten has an error span
DECISION_WAIT = "2s"


class Tempo(trace_service_pb2_grpc.TraceServiceServicer):
    """Records (trace id -> span ids, which sampler sent it) from every Export call."""

    def __init__(self) -> None:
        self.spans: dict[bytes, set[bytes]] = collections.defaultdict(set)
        self.errors: set[bytes] = set()
        self.lock = threading.Lock()

    def Export(self, request, context):  # noqa: N802 (gRPC's naming)
        with self.lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans[span.trace_id].add(span.span_id)
                        if span.status.code == 2:  # STATUS_CODE_ERROR
                            self.errors.add(span.trace_id)
        return trace_service_pb2.ExportTraceServiceResponse()


def localized(text: str, grpc_listen: str, health: str, samplers: list[str] | None, tempo: str) -> str:
    doc = yaml.safe_load(text)
    doc["receivers"]["otlp"]["protocols"] = {"grpc": {"endpoint": grpc_listen}}
    doc["extensions"]["health_check"]["endpoint"] = health
    doc["service"]["telemetry"] = {"metrics": {"level": "none"}}
    for name in ("logs", "metrics"):
        doc["service"]["pipelines"].pop(name, None)
    for name in ("otlphttp/loki", "prometheusremotewrite"):
        doc["exporters"].pop(name, None)
    if samplers is not None:
        lb = doc["exporters"]["loadbalancing"]
        assert "dns" in lb["resolver"]
        lb["resolver"] = {"static": {"hostnames": samplers}}
    if "tail_sampling" in doc["processors"]:
        doc["processors"]["tail_sampling"]["decision_wait"] = DECISION_WAIT
        doc["exporters"]["otlp/tempo"]["endpoint"] = tempo
    return yaml.safe_dump(doc)


def send_traces(endpoint: str, start: int, count: int, on_each=None) -> tuple[set[int], set[int]]:
    """`count` traces of SPANS_PER_TRACE spans; returns (all trace ids, error trace ids)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "ha-e2e"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True),
                                                   schedule_delay_millis=100))
    tracer = provider.get_tracer("ha-e2e")
    ids, errors = set(), set()
    for n in range(start, start + count):
        with tracer.start_as_current_span("checkout") as root:
            ids.add(root.get_span_context().trace_id)
            for i in range(SPANS_PER_TRACE - 1):
                with tracer.start_as_current_span(f"step-{i}") as child:
                    if n % ERROR_EVERY == 0 and i == 1:
                        child.set_status(Status(StatusCode.ERROR, "payment failed"))
                        errors.add(root.get_span_context().trace_id)
        if on_each:
            on_each(n - start)
        time.sleep(0.002)
    provider.force_flush()
    provider.shutdown()
    return ids, errors


def test_two_tiers_sample_whole_traces_and_count_the_loss_of_a_sampler(tmp_path):
    binary = tools.otelcol()
    settings = Settings(environment="prod", alerting={
        "receivers": [{"name": "pager", "webhook": {"url": "http://127.0.0.1:9/hook"}}],
        "routes": {"critical": "pager", "warning": "pager"}})
    files = render_tool("collector", settings)
    assert "collector/sampling.yaml" in files and settings.replicas("collector") == 2
    ratio = settings.sampling.traces

    tempo = Tempo()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(tempo, server)
    tempo_addr = f"127.0.0.1:{free_port()}"
    server.add_insecure_port(tempo_addr)
    server.start()
    samplers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    lb_addr = f"127.0.0.1:{free_port()}"
    with contextlib.ExitStack() as stack:
        stack.callback(server.stop, 0)
        procs = []
        for i, address in enumerate(samplers):
            health = f"127.0.0.1:{free_port()}"
            cfg = tmp_path / f"sampler-{i}.yaml"
            cfg.write_text(localized(files["collector/sampling.yaml"], address, health, None, tempo_addr))
            procs.append((stack.enter_context(Process(f"sampler-{i}", [binary, f"--config={cfg}"],
                                                      tmp_path / f"sampler-{i}.log")), health))
        health = f"127.0.0.1:{free_port()}"
        cfg = tmp_path / "lb.yaml"
        cfg.write_text(localized(files["collector/config.yaml"], lb_addr, health, samplers, tempo_addr))
        lb = stack.enter_context(Process("load-balancer", [binary, f"--config={cfg}"], tmp_path / "lb.log"))
        for proc, h in [*procs, (lb, health)]:
            proc.wait_ready(f"http://{h}/")

        # 1. Both samplers up.
        ids, errors = send_traces(lb_addr, 0, TRACES)
        time.sleep(6)  # decision_wait + batching
        with tempo.lock:
            got = {int.from_bytes(t, "big"): len(s) for t, s in tempo.spans.items()}
        kept = {t for t in ids if t in got}
        partial = {t for t in kept if got[t] != SPANS_PER_TRACE}
        ordinary = ids - errors
        kept_ordinary = len(kept & ordinary)
        mean, sd = len(ordinary) * ratio, math.sqrt(len(ordinary) * ratio * (1 - ratio))
        figures = {"sent": len(ids), "errors sent": len(errors), "kept": len(kept), "partial": len(partial),
                   "errors kept": len(kept & errors), "ordinary kept": kept_ordinary,
                   "ordinary expected": round(mean, 1), "sd": round(sd, 1)}
        print(f"\ncollector two tiers, both samplers: {figures}")
        assert not partial, figures
        assert errors <= kept, figures
        assert abs(kept_ordinary - mean) <= 4 * sd, figures

        # 2. One sampler killed while traces flow: count what is lost or partial.
        with tempo.lock:
            tempo.spans.clear()
            tempo.errors.clear()
        victim = procs[1][0]

        def kill_midway(n: int) -> None:
            if n == TRACES // 2:
                victim.proc.send_signal(signal.SIGKILL)

        ids, errors = send_traces(lb_addr, TRACES, TRACES, on_each=kill_midway)
        time.sleep(15)  # the load balancer's retries (10 s) and decision_wait
        with tempo.lock:
            got = {int.from_bytes(t, "big"): len(s) for t, s in tempo.spans.items()}
        kept = {t for t in ids if t in got}
        partial = {t for t in kept if got[t] != SPANS_PER_TRACE}
        figures = {"sent": len(ids), "errors sent": len(errors), "errors kept whole": len((kept - partial) & errors),
                   "error traces lost": len(errors - kept), "kept": len(kept), "partial": len(partial)}
        print(f"collector two tiers, one sampler killed after {TRACES // 2} traces (static resolver): {figures}")
        assert lb.proc.poll() is None and procs[0][0].proc.poll() is None
        # The survivor still samples its share: its error traces arrive whole.
        assert figures["errors kept whole"] >= len(errors) // 2 - 2 * math.sqrt(len(errors)), figures
