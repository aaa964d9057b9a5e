"""Golden files of every rendered config per scenario. Refresh with `pytest --update-golden`."""

from pathlib import Path

import pytest

from observability_stack.components.render import render_all
from tests.scenarios import scenarios, settings_for

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("scenario", sorted(scenarios()))
def test_rendered_configs_match_golden(scenario, request):
    files = render_all(settings_for(scenario))
    root = GOLDEN / scenario
    if request.config.getoption("--update-golden"):
        if root.exists():
            for old in sorted(root.rglob("*"), reverse=True):
                old.unlink() if old.is_file() else old.rmdir()
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    expected = {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}
    assert sorted(expected) == sorted(files), f"{scenario}: rendered file set changed (pytest --update-golden)"
    for rel, text in files.items():
        assert text == expected[rel], f"{scenario}/{rel} differs from its golden (pytest --update-golden)"
