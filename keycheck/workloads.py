"""How each workload is started (image, command, args, env), read from what a render holds.

A rendered Kubernetes stack has its Pods' containers in `manifests/*.yaml`; a Docker stack has
no manifests, so `make render` writes `workloads.json` (from the containers the program
declares under mocks, `docker_workloads`). Both become the same list of dicts:
`{"name", "image", "command", "args", "env": {NAME: value}, "source"}`. Nothing here imports Pulumi.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import yaml

WORKLOADS_FILE = "workloads.json"
POD_KINDS = ("StatefulSet", "Deployment", "DaemonSet", "Job", "CronJob", "Pod")


def docker_workloads(resources: Iterable[Any]) -> list[dict]:
    """From registered resources (objects with `.type`, `.name`, `.inputs`): every
    `docker:index/container:Container`. Under the mock runner a container's `image` is
    `sha256:<reference>` (tooling/mockrun.py derives the image id from the pulled reference),
    so the reference is what follows that prefix."""
    out = []
    for r in resources:
        if r.type != "docker:index/container:Container":
            continue
        i = r.inputs
        image = str(i.get("image") or "")
        env = {}
        for item in i.get("envs") or []:
            name, _, value = str(item).partition("=")
            env[name] = value
        out.append({
            "name": i.get("name") or r.name,
            "image": image.removeprefix("sha256:"),
            "command": list(i.get("entrypoints") or []),
            "args": list(i.get("command") or []),  # Docker's CMD: arguments to the entrypoint
            "env": env,
        })
    return sorted(out, key=lambda w: w["name"])


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    pod = spec if doc.get("kind") == "Pod" else ((spec.get("template") or {}).get("spec") or {})
    return list(pod.get("initContainers") or []) + list(pod.get("containers") or [])


def read_workloads(rendered: Path) -> list[dict]:
    """Workloads of a rendered dir: `workloads.json` if present, plus every Pod template in
    `manifests/`. Env entries from a Secret or ConfigMap (`valueFrom`) keep their name, value None."""
    out: list[dict] = []
    sidecar = rendered / WORKLOADS_FILE
    if sidecar.exists():
        for w in json.loads(sidecar.read_text(encoding="utf-8")):
            out.append({**w, "source": WORKLOADS_FILE})
    mdir = rendered / "manifests"
    if mdir.is_dir():
        for path in sorted(mdir.glob("*.y*ml")):
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if not isinstance(doc, dict) or doc.get("kind") not in POD_KINDS:
                    continue
                for c in _containers(doc):
                    out.append({
                        "name": f"{doc['metadata'].get('name')}/{c.get('name')}",
                        "image": c.get("image", ""),
                        "command": list(c.get("command") or []),
                        "args": list(c.get("args") or []),
                        "env": {e["name"]: e.get("value") for e in c.get("env") or []},
                        "source": str(path.relative_to(rendered)),
                    })
    return out
