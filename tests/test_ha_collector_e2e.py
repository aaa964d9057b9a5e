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
dead sampler's share to it). `test_dns_resolver_moves_a_dead_samplers_traffic` runs the rendered
`dns` resolver itself against a loopback DNS server (the load balancer in its own mount namespace,
so only its /etc/resolv.conf changes; needs root, as CI has): the killed sampler's record is
dropped as Kubernetes drops a dead pod from the headless Service, the loss in the resolution
window is counted, and afterwards every trace reaches the survivor whole. Figures printed.
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
from tests.scenarios import EXAMPLE_BUCKET
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
        "routes": {"critical": "pager", "warning": "pager"}}, object_storage=EXAMPLE_BUCKET)
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


# --- the `dns` resolver as rendered: a sampler's death moves its traffic -----------------------


class Dns:
    """A loopback DNS server answering A queries for one name with a list the test changes (what
    the headless Service's DNS does when the endpoints controller drops a dead pod); AAAA and
    other names get an empty answer. Just enough of RFC 1035 for Go's resolver."""

    def __init__(self, address: str, name: str, ips: list[str]) -> None:
        import socket

        self.name, self.ips = name.rstrip(".").lower(), list(ips)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import socket
        import struct

        while self.running:
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            (qid, _flags, qd, _an, _ns, _ar) = struct.unpack("!6H", data[:12])
            pos, labels = 12, []
            while data[pos]:
                labels.append(data[pos + 1:pos + 1 + data[pos]].decode().lower())
                pos += data[pos] + 1
            question = data[12:pos + 5]
            qtype = struct.unpack("!H", data[pos + 1:pos + 3])[0]
            ips = self.ips if ".".join(labels) == self.name and qtype == 1 else []
            known = ".".join(labels) == self.name
            header = struct.pack("!6H", qid, 0x8180 if known else 0x8183, 1, len(ips), 0, 0)
            answers = b"".join(struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + bytes(int(o) for o in ip.split("."))
                               for ip in ips)
            self.sock.sendto(header + question + answers, peer)

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


def test_dns_resolver_moves_a_dead_samplers_traffic(tmp_path):
    """The load balancer's rendered `dns` resolver, unchanged but for the name, runs in its own
    mount namespace whose /etc/resolv.conf points at `Dns`; killing a sampler and dropping its
    record (as Kubernetes drops a dead pod from the headless Service) moves its share."""
    binary = tools.otelcol()
    settings = Settings(environment="prod", alerting={
        "receivers": [{"name": "pager", "webhook": {"url": "http://127.0.0.1:9/hook"}}],
        "routes": {"critical": "pager", "warning": "pager"}}, object_storage=EXAMPLE_BUCKET)
    files = render_tool("collector", settings)
    tempo = Tempo()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(tempo, server)
    tempo_addr = f"127.0.0.1:{free_port()}"
    server.add_insecure_port(tempo_addr)
    server.start()
    port = free_port()
    ips = ["127.0.0.2", "127.0.0.3"]
    name = "collector-sampling-peers.ha-e2e.test"
    dns = Dns("127.0.0.153", name, ips)
    lb_addr = f"127.0.0.1:{free_port()}"
    with contextlib.ExitStack() as stack:
        stack.callback(server.stop, 0)
        stack.callback(dns.close)
        procs = []
        for i, ip in enumerate(ips):
            health = f"127.0.0.1:{free_port()}"
            cfg = tmp_path / f"sampler-{i}.yaml"
            cfg.write_text(localized(files["collector/sampling.yaml"], f"{ip}:{port}", health, None, tempo_addr))
            procs.append((stack.enter_context(Process(f"sampler-{i}", [binary, f"--config={cfg}"],
                                                      tmp_path / f"sampler-{i}.log")), health))
        doc = yaml.safe_load(localized(files["collector/config.yaml"], lb_addr, f"127.0.0.1:{free_port()}", None,
                                       tempo_addr))
        resolver = doc["exporters"]["loadbalancing"]["resolver"]["dns"]
        assert resolver["hostname"] == "collector-sampling-peers" and resolver["port"] == "4317"
        resolver.update(hostname=name, port=str(port))
        health = doc["extensions"]["health_check"]["endpoint"]
        cfg = tmp_path / "lb.yaml"
        cfg.write_text(yaml.safe_dump(doc))
        resolv = tmp_path / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.153\noptions timeout:1 attempts:1\n")
        lb = stack.enter_context(Process("load-balancer", [
            "unshare", "--mount", "sh", "-c",
            f"mount --bind {resolv} /etc/resolv.conf && exec {binary} --config={cfg}"], tmp_path / "lb.log"))
        for proc, h in [*procs, (lb, health)]:
            proc.wait_ready(f"http://{h}/")
        time.sleep(1)

        victim = procs[1][0]

        def kill_midway(n: int) -> None:
            if n == TRACES // 3:
                victim.proc.send_signal(signal.SIGKILL)
                dns.ips = ips[:1]  # the endpoints controller drops the dead pod

        ids, errors = send_traces(lb_addr, 0, TRACES, on_each=kill_midway)
        time.sleep(20)  # decision_wait and the retries
        with tempo.lock:
            got = {int.from_bytes(t, "big"): len(s) for t, s in tempo.spans.items()}
        kept = {t for t in ids if t in got}
        partial = {t for t in kept if got[t] != SPANS_PER_TRACE}
        figures = {"sent": len(ids), "errors sent": len(errors), "error traces kept": len(kept & errors),
                   "error traces lost": len(errors - kept), "kept": len(kept), "partial": len(partial)}
        print(f"\ncollector two tiers, dns resolver, one sampler killed after {TRACES // 3} traces: {figures}")
        assert lb.proc.poll() is None, lb.output()
        # The in-flight loss: what the killed sampler held undecided (decision_wait) and what was
        # routed to it until the resolver dropped it. Bounded by its share: the survivor's half
        # of the error traces still arrives.
        assert len(errors - kept) <= len(errors) * 3 // 4, figures
        assert not partial, figures
        with tempo.lock:
            tempo.spans.clear()
        # After the move: everything goes to the survivor, whole.
        ids, errors = send_traces(lb_addr, TRACES, 200)
        time.sleep(6)
        with tempo.lock:
            got = {int.from_bytes(t, "big"): len(s) for t, s in tempo.spans.items()}
        after = {"sent": 200, "errors sent": len(errors), "errors kept": len(errors & set(got)),
                 "partial": sum(1 for t in ids if t in got and got[t] != SPANS_PER_TRACE)}
        print(f"collector two tiers, dns resolver, after the move: {after}")
        assert errors <= set(got) and after["partial"] == 0, after
