"""Alertmanager — STUB being written (constants are the contract other modules import)."""

from components.base import ToolComponent

TOOL = "alertmanager"
HTTP_PORT = 9093


class Alertmanager(ToolComponent):
    TYPE = "observability:alertmanager:Alertmanager"
