"""Typed stack settings: the model, per-environment presets and the loader with its errors."""

from config.loader import ConfigError, load_settings, settings_from_stack_file
from config.model import Settings

__all__ = ["ConfigError", "Settings", "load_settings", "settings_from_stack_file"]
