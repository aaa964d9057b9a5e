"""promtool unit tests of the application and recording rules, for both metric naming conventions
(prometheus-client and OpenTelemetry semconv as remote-written by the collector) and for services
with and without a team. The cases are in tests/rules/application_test.yml, with the expected
values worked out by hand there; this module renders the `team` scenario's rules next to it and
lets the pinned promtool judge."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from observability_stack.components.render import render_tool
from tests.scenarios import settings_for
from tests.tools import run

CASES = Path(__file__).parent / "rules"


@pytest.mark.tools
@pytest.mark.parametrize("case", sorted(p.name for p in CASES.glob("*_test.yml")))
def test_rules_unit(case, tmp_path, promtool):
    for rel, text in render_tool("prometheus", settings_for("teams")).items():
        if rel.startswith("prometheus/rules/"):
            (tmp_path / rel.rsplit("/", 1)[1]).write_text(text)
    shutil.copy(CASES / case, tmp_path / case)
    result = run([promtool, "test", "rules", str(tmp_path / case)])
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_application_alert_keeps_team():
    """Static guard for new rules: each aggregation in an application alert keeps `team`."""
    import re

    from observability_stack.components import rules

    for rule in rules.application_group(["prometheus"])["rules"]:
        for by in re.findall(r"(?:sum|max|min|avg|count|group) by \(([^)]*)\)", rule["expr"]):
            assert "team" in [label.strip() for label in by.split(",")], (rule["alert"], by)
