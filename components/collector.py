"""Collector — STUB being written (constants are the contract other modules import)."""

from components.base import ToolComponent

TOOL = "collector"
# The collector has no UI; its main port is OTLP gRPC.


class Collector(ToolComponent):
    TYPE = "observability:collector:Collector"
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
HEALTH_PORT = 13133
METRICS_PORT = 8888
