"""`make bench-eval` (part of `make bench`): how fast the program plans, how it scales with teams,
what the stack costs to run. The deployed pipeline under load is `benchmarks/pipeline.py`.

Prints, for this machine:
1. wall time to evaluate the dev and prod stacks under Pulumi mocks, imports included (a fresh
   interpreter per run), median of several runs;
2. the same program's registrations replayed as plain resource registrations in a fresh
   interpreter (the floor the SDK itself imposes) and the ratio between the two, program and
   floors run in turn;
3. evaluation time with 1, 10, 100 and 1000 teams (each with a receiver, rules and scrape
   targets), and the size of the rendered Prometheus and Alertmanager configs;
4. the deployed footprint per stack: requests/limits summed, storage per volume.
Figures only; the tests assert behaviour.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable

# The program as the engine runs it: config handed over as strings (prepared outside the timing,
# as the floor's recording is), `__main__.py` run under Pulumi's plain mock monitor. Not
# `mockrun.run_program`: its recording monitor converts every registration to dicts for the tests
# (protobuf -> dict, secret unwrapping), work the floor does not do and a real engine run does
# not include. The mocks are mockrun's (echo, plus the few computed outputs the program reads).
EVALUATE = """
import asyncio, json, runpy, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import pulumi
from pulumi.runtime import mocks
from pulumi.runtime.stack import wait_for_rpcs
from tooling.mockrun import _Mocks
engine = json.load(open({engine!r}))
loop = asyncio.new_event_loop(); asyncio.set_event_loop(loop)
mocks.set_mocks(_Mocks(), project="observability", stack={stack!r}, preview=False)
pulumi.runtime.set_all_config(engine["values"], engine["secret_keys"])
runpy.run_path({main!r}, run_name="__main__")
loop.run_until_complete(wait_for_rpcs())
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""

RECORD = """
import json, sys
sys.path.insert(0, {root!r})
from tooling.mockrun import run_program, stack_file_config
run = run_program({stack!r}, stack_file_config({stack!r}))
modules = sorted(m for m in sys.modules if m.split(".")[0] in ("pulumi_kubernetes", "pulumi_docker", "pulumi_random"))
json.dump({{"modules": modules, "resources": [{{"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent,
            "custom": r.custom, "inputs": r.inputs}} for r in run.resources]}}, open({out!r}, "w"))
"""

# The floor: the same registrations with no program logic, no config model, no renders. With
# `sdk_modules`, it first imports the provider SDK modules the program loaded (the Kubernetes
# SDK alone costs ~0.4 s of imports): what any program declaring these resources pays.
REPLAY = """
import asyncio, importlib, json, sys, time
t0 = time.perf_counter()
import pulumi
recorded = json.load(open({path!r}))
if {sdk_modules!r}:
    for module in recorded["modules"]:
        importlib.import_module(module)
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import wait_for_rpcs

class Echo(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return args.name + "-id", args.inputs
    def call(self, args):
        return {{}}

loop = asyncio.new_event_loop(); asyncio.set_event_loop(loop)
mocks.set_mocks(Echo(), project="observability", stack={stack!r}, preview=False)
by_urn = {{}}
for r in recorded["resources"]:
    opts = pulumi.ResourceOptions(parent=by_urn.get(r["parent"]))
    if r["custom"]:
        res = pulumi.CustomResource(r["type"], r["name"], r["inputs"], opts)
    else:
        res = pulumi.ComponentResource(r["type"], r["name"], None, opts)
        res.register_outputs({{}})
    by_urn[r["urn"]] = res
loop.run_until_complete(wait_for_rpcs())
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""


def _python(code: str) -> dict:
    out = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_seconds(code: str, runs: int) -> tuple[float, dict]:
    results = [_python(code) for _ in range(runs)]
    return statistics.median(r["seconds"] for r in results), results[0]


def interleaved_medians(codes: list[str], runs: int) -> list[float]:
    """Median seconds of each snippet, run in turn (A B C A B C ...) so that a load change on the
    machine affects the program and its floors alike."""
    times: list[list[float]] = [[] for _ in codes]
    for _ in range(runs):
        for i, code in enumerate(codes):
            times[i].append(_python(code)["seconds"])
    return [statistics.median(t) for t in times]


def evaluate_code(stack: str, config: dict, tmp: str) -> str:
    """The EVALUATE snippet for `stack` with stack-file `config`, its engine config in `tmp`."""
    from tooling.mockrun import engine_config

    values, secret_keys = engine_config(config)
    path = str(Path(tmp) / f"engine-{stack}-{len(json.dumps(config))}.json")
    Path(path).write_text(json.dumps({"values": values, "secret_keys": secret_keys}))
    return EVALUATE.format(root=str(ROOT), stack=stack, engine=path, main=str(ROOT / "__main__.py"))


def teams_config(count: int) -> dict:
    from tooling.mockrun import stack_file_config

    config = dict(stack_file_config("prod"))
    config["observability:teams"] = [
        {
            "name": f"team-{i}",
            "receiver": {"webhook": {"url": {"secure": "v1:x"}}},
            "alertRules": [
                {"alert": "TeamErrors", "expr": f'sum(rate(http_requests_total{{job="team-{i}-api",status=~"5.."}}[5m])) > 1',
                 "for": "5m", "labels": {"severity": "warning"}},
                {"alert": "TeamDown", "expr": f'up{{job="team-{i}-api"}} == 0', "for": "1m",
                 "labels": {"severity": "critical"}},
            ],
            "scrapeTargets": [{"job": f"team-{i}-api", "targets": [f"api.team-{i}.svc:8000"]}],
        }
        for i in range(count)
    ]
    return config


def rendered_sizes(config: dict, stack: str) -> tuple[int, int]:
    from tooling.mockrun import engine_config
    from observability_stack.components.render import render_all
    from observability_stack.config import load_settings
    from observability_stack.config.loader import parse_raw

    values, secret = engine_config(config)
    raw = {k.split(":", 1)[1]: parse_raw(v) for k, v in values.items() if k.startswith("observability:")}
    files = render_all(load_settings(raw, stack=stack, secret_keys=secret))
    prom = sum(len(t) for p, t in files.items() if p.startswith("prometheus/"))
    return prom, len(files.get("alertmanager/alertmanager.yml", ""))


def footprint(stack: str) -> list[tuple]:
    """Per deployed workload (the collector's per-node agent included, counted once): replicas,
    then requests, limits and volume summed over its replicas (prod runs highAvailability)."""
    from observability_stack.components.registry import NAMES
    from observability_stack.components.render import workloads_of
    from observability_stack.config import settings_from_stack_file

    settings = settings_from_stack_file(str(ROOT / f"Pulumi.{stack}.yaml"), stack)
    rows = []
    for tool in NAMES:
        if not settings.enabled(tool):
            continue
        extra = {"admin_password": "unused"} if tool == "grafana" else {}
        for w in workloads_of(tool, settings, **extra):
            r, n = w.resources, (1 if w.per_node else w.replicas)
            size = f"{n} x {w.data.size}" if w.data and n > 1 else (w.data.size if w.data else "-")
            rows.append((w.name, n, r.cpu_request_cores * n, r.memory_request_bytes * n, r.cpu_limit_cores * n,
                         r.memory_limit_bytes * n, size))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--teams", default="1,10,100,1000")
    args = parser.parse_args()

    print(f"# benchmarks ({args.runs} runs each, median; python {sys.version.split()[0]})\n")
    print("## evaluation under Pulumi mocks, imports included\n")
    print("| stack | resources | program s | floor: pulumi only s | floor: + provider SDK imports s | ratio to SDK floor |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for stack in ("dev", "prod"):
            from tooling.mockrun import stack_file_config

            path = str(Path(tmp) / f"{stack}.json")
            subprocess.run([PY, "-c", RECORD.format(root=str(ROOT), stack=stack, out=path)], cwd=ROOT, check=True)
            resources = len(json.loads(Path(path).read_text())["resources"])
            seconds, bare, floor = interleaved_medians([
                evaluate_code(stack, stack_file_config(stack), tmp),
                REPLAY.format(stack=stack, path=path, sdk_modules=False),
                REPLAY.format(stack=stack, path=path, sdk_modules=True),
            ], args.runs)
            print(f"| {stack} | {resources} | {seconds:.3f} | {bare:.3f} | {floor:.3f} | {seconds / floor:.2f}x |")

    print("\n## scaling with teams (prod stack; each team: a receiver, 2 rules, 1 scrape job)\n")
    print("| teams | program s | vs 1 team | prometheus config bytes | alertmanager.yml bytes |")
    print("|---|---|---|---|---|")
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for count in [int(c) for c in args.teams.split(",")]:
            config = teams_config(count)
            seconds, _ = median_seconds(evaluate_code("prod", config, tmp), max(1, args.runs // 2 + 1))
            base = base or seconds
            prom, am = rendered_sizes(config, "prod")
            print(f"| {count} | {seconds:.3f} | {seconds / base:.2f}x | {prom} | {am} |")

    gib, mib = 2**30, 2**20
    for stack in ("dev", "prod"):
        rows = footprint(stack)
        print(f"\n## footprint: {stack}\n")
        print("| tool | replicas | cpu request | memory request | cpu limit | memory limit | volume |\n"
              "|---|---|---|---|---|---|---|")
        for tool, n, cr, mr, cl, ml, size in rows:
            print(f"| {tool} | {n} | {cr:g} | {mr / mib:.0f}Mi | {cl:g} | {ml / mib:.0f}Mi | {size} |")
        total = [sum(r[i] for r in rows) for i in range(2, 6)]

        def gib_of(size: str) -> int:  # "12Gi" or "3 x 12Gi"
            count, _, each = size.rpartition(" x ")
            return int(count or 1) * int(each[:-2])

        storage = sum(gib_of(r[6]) for r in rows if r[6] != "-")
        print(f"| **total** | | {total[0]:g} | {total[1] / gib:.2f}Gi | {total[2]:g} | {total[3] / gib:.2f}Gi | {storage}Gi |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
