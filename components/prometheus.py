"""Prometheus — STUB being written (constants are the contract other modules import)."""

from components.base import ToolComponent

TOOL = "prometheus"
HTTP_PORT = 9090


class Prometheus(ToolComponent):
    TYPE = "observability:prometheus:Prometheus"
