"""Tempo — STUB being written (constants are the contract other modules import)."""

from components.base import ToolComponent

TOOL = "tempo"
HTTP_PORT = 3200


class Tempo(ToolComponent):
    TYPE = "observability:tempo:Tempo"
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
