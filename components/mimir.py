"""Mimir — STUB being written (constants are the contract other modules import)."""

from components.base import ToolComponent

TOOL = "mimir"
HTTP_PORT = 8080


class Mimir(ToolComponent):
    TYPE = "observability:mimir:Mimir"
