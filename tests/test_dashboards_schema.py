"""Every provisioned dashboard of every scenario has the shape Grafana's schema defines.

Judge: Grafana's own typed models, the PyPI package `grafana-foundation-sdk` (Apache-2.0; generated
by Grafana's cog from the dashboard and panel/datasource schemas; pinned in requirements-test.txt;
it tracks Grafana's main line, the dashboard v1 schema our 12.3 pin reads). Each dashboard is
loaded into `models.dashboard.Dashboard` (panels and queries into their plugin models) and written
back: a key the schema does not know is dropped on the way, a value of the wrong kind changes, so
anything that does not survive the round trip unchanged is reported with its path.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.models import dashboard as schema

from observability_stack.components.render import render_all
from tests.scenarios import SETTINGS_CASES, scenarios, settings_for

plugins.register_default_plugins()


def _plain(value: Any) -> Any:
    if hasattr(value, "to_json"):
        return _plain(value.to_json())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def schema_problems(board: dict) -> list[str]:
    back = _plain(schema.Dashboard.from_json(json.loads(json.dumps(board))))
    problems: list[str] = []

    def walk(ours: Any, theirs: Any, path: str) -> None:
        if isinstance(ours, dict):
            if not isinstance(theirs, dict):
                problems.append(f"{path}: an object is not allowed here")
                return
            for key, value in ours.items():
                if key not in theirs:
                    problems.append(f"{path}.{key}: not in Grafana's dashboard schema")
                else:
                    walk(value, theirs[key], f"{path}.{key}")
        elif isinstance(ours, list):
            if not isinstance(theirs, list) or len(ours) != len(theirs):
                problems.append(f"{path}: a list is not allowed here")
                return
            for i, (a, b) in enumerate(zip(ours, theirs)):
                walk(a, b, f"{path}[{i}]")
        elif ours != theirs:
            problems.append(f"{path}: {ours!r} became {theirs!r}")

    walk(board, back, "")
    return problems


def _dashboards() -> list[tuple[str, str, dict]]:
    found = []
    for name in sorted(scenarios()) + list(SETTINGS_CASES):
        for path, text in render_all(settings_for(name)).items():
            if path.startswith("grafana/dashboards/"):
                found.append((name, path, json.loads(text)))
    return found


DASHBOARDS = _dashboards()


@pytest.mark.parametrize("scenario, path, board", DASHBOARDS, ids=[f"{s}:{p.rsplit('/', 1)[1]}" for s, p, _ in DASHBOARDS])
def test_dashboard_matches_grafanas_schema(scenario, path, board):
    assert board["panels"], path
    assert schema_problems(board) == []


def test_the_schema_check_catches_misspelled_keys():
    # Positive control on every level we render: dashboard, panel, query.
    _, _, board = DASHBOARDS[0]
    board = json.loads(json.dumps(board))
    board["refreshh"] = "5s"
    board["panels"][0]["gridPoss"] = board["panels"][0]["gridPos"]
    board["panels"][0]["targets"][0]["exprr"] = "up"
    found = schema_problems(board)
    assert ".refreshh: not in Grafana's dashboard schema" in found
    assert ".panels[0].gridPoss: not in Grafana's dashboard schema" in found
    assert ".panels[0].targets[0].exprr: not in Grafana's dashboard schema" in found
