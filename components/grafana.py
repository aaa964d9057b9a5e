"""Grafana — STUB being written (constants are the contract other modules import)."""

from components.base import ToolComponent

TOOL = "grafana"
HTTP_PORT = 3000


class Grafana(ToolComponent):
    TYPE = "observability:grafana:Grafana"
