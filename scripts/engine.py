"""Run this project's program on a real Pulumi engine through the Automation API.

The Pulumi CLI and Kubernetes provider can be built here from Go modules
(scripts/build-pulumi.sh), but the Python language host's module is not served, so
`pulumi up` cannot start a Python program by itself. The Automation API's inline programs need no
language host: the Python SDK serves `__main__.py` to the real CLI over gRPC. Everything else is
the real thing: project and stack files as the CLI parses them, secrets decryption, provider
checks and diffs, state.

    python scripts/engine.py <stack> preview|up|destroy [--work-dir DIR]

`make up` uses this when no Pulumi CLI is installed and none can be downloaded; the engine tests
(tests/test_engine.py) use `open_stack`.
"""

from __future__ import annotations

import argparse
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pulumi import automation as auto  # noqa: E402

PROJECT = "observability"


def engine_bin_dir() -> Path:
    return Path(subprocess.run([str(ROOT / "scripts" / "build-pulumi.sh"), "--print-path"],
                               capture_output=True, text=True, check=True).stdout.strip())


def offline_env(state_dir: Path, pulumi_home: Path, passphrase: Optional[str],
                passphrase_file: Optional[str] = None) -> dict[str, str]:
    """Environment for the engine built here: local file state, no plugin downloads, no update
    checks; plugins are found on PATH."""
    env = {
        "PATH": f"{engine_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_BACKEND_URL": f"file://{state_dir}",
        "PULUMI_HOME": str(pulumi_home),
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    if passphrase is not None:
        env["PULUMI_CONFIG_PASSPHRASE"] = passphrase
    elif passphrase_file:
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = passphrase_file
    return env


def program() -> None:
    """The project's own `__main__.py`, unchanged."""
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def open_stack(stack: str, work_dir: Path, env: dict[str, str]) -> auto.Stack:
    """Create or select `stack` whose Pulumi.yaml / Pulumi.<stack>.yaml live in `work_dir`."""
    for key in ("PULUMI_HOME", "PULUMI_BACKEND_URL"):
        if key in env:
            Path(env[key].removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    os.environ["PATH"] = env.get("PATH", os.environ.get("PATH", ""))
    command = auto.PulumiCommand(root=str(Path(env["PATH"].split(os.pathsep)[0]).parent), skip_version_check=True)
    return auto.create_or_select_stack(
        stack, project_name=PROJECT, program=program,
        opts=auto.LocalWorkspaceOptions(work_dir=str(work_dir), env_vars=env, pulumi_home=env.get("PULUMI_HOME"),
                                        pulumi_command=command),
    )


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="run the program on the engine built from Go modules")
    parser.add_argument("stack")
    parser.add_argument("action", choices=["preview", "up", "destroy"])
    parser.add_argument("--work-dir", default=str(ROOT))
    args = parser.parse_args(argv)
    backend = os.environ.get("PULUMI_BACKEND_URL", f"file://{ROOT / '.pulumi-state'}")
    env = offline_env(Path(backend.removeprefix("file://")), Path(os.environ.get("PULUMI_HOME", ROOT / ".pulumi-home")),
                      os.environ.get("PULUMI_CONFIG_PASSPHRASE"), os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"))
    env["PULUMI_BACKEND_URL"] = backend
    if "PULUMI_CONFIG_PASSPHRASE" not in env and "PULUMI_CONFIG_PASSPHRASE_FILE" not in env:
        print("error: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the stack's passphrase; "
              "`make up` generates one for a dev stack", file=sys.stderr)
        return 1
    out = {"on_output": print}
    try:
        stack = open_stack(args.stack, Path(args.work_dir), env)
        if args.action == "preview":
            stack.preview(diff=True, **out)
        elif args.action == "up":
            stack.up(diff=True, **out)
        else:
            stack.destroy(**out)
    except auto.CommandError as err:
        # The engine already printed the update's own diagnostics through on_output; what is
        # left is the CLI's error, without the Python traceback of the Automation API.
        print(f"error: pulumi {args.action} failed:\n{engine_error(err)}", file=sys.stderr)
        return 1
    return 0


def engine_error(err: Exception) -> str:
    """The CLI's own error lines from an Automation API CommandError."""
    # CommandError keeps only str(CommandResult): "\n code: ..\n stdout: ..\n stderr: ..".
    text = str(err)
    stderr = text[text.rfind("\n stderr: ") + len("\n stderr: "):] if "\n stderr: " in text else text
    lines = [line for line in stderr.splitlines() if line.strip()]
    return "\n".join(lines[-20:]) or str(err).strip()


if __name__ == "__main__":
    sys.exit(main())
