"""One module per tool, the registry and wiring that assemble them, and the two target backends.
Imported as `observability_stack.components` (see observability_stack/__init__.py)."""
