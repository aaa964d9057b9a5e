"""The stack without Pulumi: links, every tool's config files and workloads, from settings alone.

`make render`, the tests, the benchmarks and `ObservabilityStack` all assemble the stack here, so
they see the same links and files. Secrets are never in the rendered files: configs point at
secret files that the targets supply.
"""

from __future__ import annotations

from typing import Any, Optional

from . import platform as platforms
from .platform import Platform
from .registry import BY_NAME, TOOLS
from .wiring import Links, Names, resolve
from .workload import Workload, image
from ..config.model import Settings


def links_for(settings: Settings, names: Names = Names()) -> Links:
    return resolve(settings, {tool.name: tool.module for tool in TOOLS}, names)


def render_all(settings: Settings, platform: Optional[Platform] = None, names: Names = Names()) -> dict[str, str]:
    """{path relative to OUT: file text} for every enabled tool, as `make render` writes them."""
    platform = platform or platforms.for_settings(settings)
    links = links_for(settings, names)
    files: dict[str, str] = {}
    for tool in TOOLS:
        if settings.enabled(tool.name):
            files.update(tool.render(settings, links, platform))
    return dict(sorted(files.items()))


def render_tool(name: str, settings: Settings, platform: Optional[Platform] = None) -> dict[str, str]:
    """One tool's files (wired to the rest of the stack as `render_all` wires it)."""
    return BY_NAME[name].render(settings, links_for(settings), platform or platforms.for_settings(settings))


def workloads_of(name: str, settings: Settings, platform: Optional[Platform] = None,
                 links: Optional[Links] = None, **extra: Any) -> tuple[Workload, ...]:
    """One tool's workloads; `extra` carries what only the Pulumi program has (Grafana's
    admin password Output)."""
    return BY_NAME[name].workloads(settings, links or links_for(settings),
                                   platform or platforms.for_settings(settings), **extra)


def chown_image(settings: Settings) -> str:
    """The image the Docker backend's volume-ownership helper runs: one with busybox `chown`,
    preferring one the stack pulls anyway."""
    able = [tool for tool in TOOLS if tool.ships_chown]
    tool = next((t for t in able if settings.enabled(t.name)), able[0])
    return image(tool.name, getattr(settings.components, tool.name), settings.registry_mirror)
