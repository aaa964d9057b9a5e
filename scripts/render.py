"""`make render STACK=<stack> [OUT=<dir>]`: write every rendered config of a stack, offline.

Reads `Pulumi.<stack>.yaml` the way the program does (secure values become placeholders), so
invalid config fails here with the same messages as `pulumi up`. For a Kubernetes-target stack
it also writes `OUT/manifests/*.yaml`: the objects the program declares, captured under Pulumi
mocks without a cluster.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from observability_stack.components.render import render_all  # noqa: E402
from observability_stack.config import ConfigError, settings_from_stack_file  # noqa: E402


def docker_workloads_file(stack_file: Path, stack: str) -> dict[str, str]:
    import json

    import yaml

    from tooling.mockrun import run_program
    from keycheck.workloads import WORKLOADS_FILE, docker_workloads

    doc = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
    run = run_program(stack, doc.get("config") or {})
    if run.error:
        raise RuntimeError(f"the program failed under mocks: {run.error}")
    return {WORKLOADS_FILE: json.dumps(docker_workloads(run.resources), indent=1) + "\n"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--out", default=None, help="default: rendered/<stack>")
    args = parser.parse_args(argv)
    stack_file = ROOT / f"Pulumi.{args.stack}.yaml"
    if not stack_file.exists():
        print(f"no stack file {stack_file.name} (stacks: "
              f"{', '.join(sorted(p.name[7:-5] for p in ROOT.glob('Pulumi.*.yaml')))})", file=sys.stderr)
        return 2
    try:
        settings = settings_from_stack_file(str(stack_file), args.stack)
    except ConfigError as err:
        print(f"invalid stack config in {stack_file.name}:\n{err}", file=sys.stderr)
        return 1
    out = Path(args.out or ROOT / "rendered" / args.stack)
    if out.exists():
        shutil.rmtree(out)
    files = render_all(settings)
    if settings.target == "kubernetes":
        from tooling.manifests import declared_manifests

        files.update(declared_manifests(stack_file, args.stack))
    else:
        # Docker stacks have no manifests: how each container is started (image, args, env)
        # goes to workloads.json for `make check-keys` (keycheck/workloads.py).
        files.update(docker_workloads_file(stack_file, args.stack))
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"rendered {len(files)} files for stack {args.stack} into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
