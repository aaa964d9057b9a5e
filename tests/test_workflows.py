"""The GitHub workflows users copy (.github/workflows/) pass actionlint, built from its Go module at
the pinned version (scripts/build-actionlint.sh). A missing binary fails the test, as for every
real-tool check (OBS_ALLOW_MISSING_TOOLS=1 skips instead)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.harness import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


@pytest.fixture(scope="module")
def actionlint() -> str:
    script = ROOT / "scripts" / "build-actionlint.sh"
    bin_dir = subprocess.run([str(script), "--print-path"], capture_output=True, text=True, check=True).stdout.strip()
    path = Path(bin_dir) / "actionlint"
    if not path.is_file():
        message = "actionlint not built: run scripts/build-actionlint.sh (make tools)"
        if os.environ.get("OBS_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return str(path)


def _lint(actionlint: str, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint, "-no-color", *map(str, files)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


@pytest.mark.tools
def test_workflows_pass_actionlint(actionlint):
    assert WORKFLOWS, "the repository ships workflows"
    result = _lint(actionlint, *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.tools
def test_actionlint_catches_a_broken_workflow(actionlint, tmp_path):
    # Positive control: a copy of our preview workflow with a typo'd expression context.
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    text = (ROOT / ".github" / "workflows" / "preview.yml").read_text()
    assert "${{" in text
    broken = workflows / "preview.yml"
    broken.write_text(text.replace("${{", "${{ githubb.x || ", 1))
    result = _lint(actionlint, broken)
    assert result.returncode != 0 and "githubb" in result.stdout, result.stdout + result.stderr
