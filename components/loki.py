"""Loki — STUB being written (constants are the contract other modules import)."""

from components.base import ToolComponent

TOOL = "loki"
HTTP_PORT = 3100


class Loki(ToolComponent):
    TYPE = "observability:loki:Loki"
