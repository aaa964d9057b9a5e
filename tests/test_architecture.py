"""The shape issue 11 asks for, checked on the source: tool modules never import each other,
backends never name a tool, tool modules never test the target, and the registry is the list."""

from __future__ import annotations

import ast
from pathlib import Path

from observability_stack.components import registry
from observability_stack.config.model import Components

COMPONENTS = Path(registry.__file__).resolve().parent
TOOL_MODULES = {tool.name: Path(tool.module.__file__).resolve() for tool in registry.TOOLS}


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved inside `components`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # `from . import x` / `from .x import y` inside components/
                package = "components" if node.level == 1 else ""
                base = ".".join(p for p in (package, base) if p)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_no_tool_module_imports_another():
    tools = {f"components.{name}" for name in TOOL_MODULES}
    for name, path in TOOL_MODULES.items():
        others = (tools - {f"components.{name}"}) & _imported_modules(path)
        assert not others, f"components/{name}.py imports {sorted(others)}: take links from components/wiring.py"


def test_the_import_check_sees_a_sibling_import(tmp_path):
    # Positive control: both spellings of a sibling import are found.
    bad = tmp_path / "bad.py"
    bad.write_text("from components import loki\nfrom .mimir import serves\n")
    assert {"components.loki", "components.mimir"} <= _imported_modules(bad)


def test_backends_name_no_tool_and_tools_never_test_the_target():
    for backend in (COMPONENTS / "targets").glob("*.py"):
        text = backend.read_text()
        for name in TOOL_MODULES:
            assert f'"{name}"' not in text and f"components.{name}" not in text, f"{backend.name} names {name}"
    for name, path in TOOL_MODULES.items():
        assert "settings.target" not in path.read_text(), f"components/{name}.py tests the target: use the Platform"


def test_the_registry_lists_every_configurable_tool_once():
    names = [tool.name for tool in registry.TOOLS]
    assert len(names) == len(set(names))
    # The settings model has one `components.<tool>` block per tool, and only those.
    assert set(names) == set(Components.model_fields)
    for tool in registry.TOOLS:
        assert tool.module.TOOL == tool.name
        assert tool.component.TYPE == f"observability:{tool.name}:{tool.component.__name__}"
