"""The observability stack as a library: `from observability_stack import ObservabilityStack, Settings`.

Installed (`pip install <repo or wheel>`), this package holds `observability_stack.components`
and `observability_stack.config`, and nothing else lands in site-packages: no generic top-level
`components` or `config`. In the repository those two packages keep their place at the top
(`components/`, `config/` beside `Pulumi.yaml`); this file makes them importable as
subpackages from a checkout by adding the repository root to the package's search path, the
same way namespace packages extend `__path__` (see `pkgutil.extend_path`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if not (_HERE / "components").is_dir():
    # A checkout: components/ and config/ are siblings of this directory.
    __path__.append(str(_HERE.parent))  # type: ignore[name-defined]  # noqa: F821

__all__ = ["ConfigError", "ObservabilityStack", "Settings", "load_settings"]


def __getattr__(name: str) -> Any:
    # Lazy: `observability_stack.config` alone (make render, the key check) needs no Pulumi.
    if name == "ObservabilityStack":
        from .components.stack import ObservabilityStack

        return ObservabilityStack
    if name in ("ConfigError", "Settings", "load_settings"):
        from . import config

        return getattr(config, name)
    raise AttributeError(name)
