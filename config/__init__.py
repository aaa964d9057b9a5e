"""Typed stack settings: the model, per-environment presets and the loader with its errors."""

from .loader import ConfigError, load_settings, settings_from_stack_file
from .model import Settings

__all__ = ["ConfigError", "Settings", "load_settings", "settings_from_stack_file"]
