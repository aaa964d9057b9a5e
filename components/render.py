"""Every enabled tool's configuration files, as `make render` writes them (no Pulumi needed).

`render_all(settings)` -> {path relative to OUT: file text}. Each tool module owns its own
`render(settings)`; this only collects the enabled ones. Secrets are never in these files:
configs point at secret files that the targets supply.
"""

from __future__ import annotations

import importlib

from config.model import Settings

# Tools whose configuration is rendered (the collector's log agent is part of `collector`).
RENDERED = ("prometheus", "alertmanager", "loki", "tempo", "mimir", "pyroscope", "grafana", "collector")


def render_all(settings: Settings) -> dict[str, str]:
    files: dict[str, str] = {}
    for tool in RENDERED:
        if settings.enabled(tool):
            files.update(importlib.import_module(f"components.{tool}").render(settings))
    return dict(sorted(files.items()))
