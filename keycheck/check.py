"""`make check-keys DIR=<rendered dir>`: every Loki, Tempo, Mimir, Pyroscope config and Grafana
provisioning file of a `make render` output, and the flags and env each of those workloads is
started with, against upstream's reference for the pinned version.

    python -m keycheck.check rendered/prod [--versions components/versions.json]

One line per problem, `<file>: <key path>: <what is wrong>`; exit 1 when there is any, 2 when
the input itself is unusable (no such dir, no reference for a pinned version). No Pulumi import:
this runs offline on nothing but the rendered files and reference/upstream-keys/.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from keycheck.workloads import read_workloads

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT / "reference" / "upstream-keys"
VERSIONS = ROOT / "components" / "versions.json"

# What a rendered dir holds per tool (README "Render everything offline").
CONFIG_GLOBS = {
    "loki": ("loki/*.yaml", "loki/*.yml"),
    "tempo": ("tempo/*.yaml", "tempo/*.yml"),
    "mimir": ("mimir/*.yaml", "mimir/*.yml"),
    "pyroscope": ("pyroscope/*.yaml", "pyroscope/*.yml"),
}
GRAFANA_GLOBS = {
    "datasources": ("grafana/provisioning/datasources/*.yaml", "grafana/provisioning/datasources/*.yml"),
    "dashboards": ("grafana/provisioning/dashboards/*.yaml", "grafana/provisioning/dashboards/*.yml"),
}
TOOLS = ("loki", "tempo", "mimir", "pyroscope", "grafana")
TOOL_NAMES = {"loki": "Loki", "tempo": "Tempo", "mimir": "Mimir", "pyroscope": "Pyroscope", "grafana": "Grafana"}
# Go's runtime reads these in every Go binary (https://pkg.go.dev/runtime#hdr-Environment_Variables),
# whatever the tool's own reference says.
GO_RUNTIME_ENV = {"GOMAXPROCS", "GOMEMLIMIT", "GOGC", "GODEBUG", "GOTRACEBACK"}
# Google's Application Default Credentials, read by the GCS client of Loki, Mimir, Tempo and
# Pyroscope when their `service_account` is empty (Mimir 3.0.2: "If empty, fallback to Google
# default logic"; https://cloud.google.com/docs/authentication/application-default-credentials).
CLOUD_SDK_ENV = {"GOOGLE_APPLICATION_CREDENTIALS"}
# `${VAR}` / `${VAR:-default}` references a tool expands with `-config.expand-env=true` (all four
# document it: "Each variable reference is replaced at startup by the value of the environment
# variable ... before the YAML file is parsed").
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")
EXPAND_ENV_FLAG = "config.expand-env"
REGENERATE = "regenerate it: see docs/upstream-facts.md \"Upstream key references\" (scripts/upstream_keys.py derive {tool} --version {version} ...)"

_DURATION = re.compile(r"^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w|y))+$|^0$")


class InputError(Exception):
    """The input cannot be checked at all (reported as one line, exit 2)."""


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    def add(self, where: str, path: str, message: str) -> None:
        self.problems.append(f"{where}: {path}: {message}" if path else f"{where}: {message}")


def pinned_versions(versions_file: Path) -> dict[str, str]:
    data = json.loads(versions_file.read_text(encoding="utf-8"))
    return {tool: str(data["images"][tool]["tag"]).lstrip("v") for tool in TOOLS if tool in data.get("images", {})}


def image_repositories(versions_file: Path) -> dict[str, str]:
    data = json.loads(versions_file.read_text(encoding="utf-8"))
    return {tool: data["images"][tool]["repository"] for tool in TOOLS if tool in data.get("images", {})}


def load_reference(tool: str, version: str, reference_dir: Path = REFERENCE_DIR) -> dict:
    path = reference_dir / f"{tool}-{version}.json"
    if not path.exists():
        have = sorted(p.stem.split("-", 1)[1] for p in reference_dir.glob(f"{tool}-*.json"))
        raise InputError(
            f"{TOOL_NAMES[tool]} {version} is pinned but reference/upstream-keys/{tool}-{version}.json does "
            f"not exist (references for: {', '.join(have) or 'none'}); " + REGENERATE.format(tool=tool, version=version))
    ref = json.loads(path.read_text(encoding="utf-8"))
    if ref.get("version") != version or ref.get("tool") != tool:
        raise InputError(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: records "
                         f"{ref.get('tool')} {ref.get('version')}, not {tool} {version}; "
                         + REGENERATE.format(tool=tool, version=version))
    return ref


# ---------------------------------------------------------------------------------------------
# key paths

def _type_ok(expected: str, value: Any) -> Optional[str]:
    """None when `value` fits the type upstream states, else what was expected."""
    if value is None or expected in ("any", "open"):
        return None
    if expected == "boolean":
        return None if isinstance(value, bool) else "a boolean"
    if expected == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if expected == "float":
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if expected == "duration":
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return None if isinstance(value, str) and _DURATION.match(value) else "a duration (e.g. 30s, 5m, 720h)"
    if expected == "string":
        return None if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "a string"
    if expected.startswith("list"):
        return None if isinstance(value, list) else "a list"
    if expected.startswith("map of") or expected == "block":
        return None if isinstance(value, dict) else "a mapping"
    return None


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_tree(value: Any, keys: dict[str, str], where: str, report: Report, *,
               ref_path: str = "", shown: str = "", label: str = "") -> None:
    """Walk a parsed YAML document against a key table (see keycheck.derive for its notation)."""
    kind = keys.get(ref_path, "block") if ref_path else "block"
    if kind == "open":
        return
    if isinstance(value, dict):
        if kind not in ("block",) and not kind.startswith("map of") and kind != "any":
            report.add(where, shown, f"is a mapping; {label} expects {kind}")
            return
        for k, v in value.items():
            k = str(k)
            child = f"{ref_path}.{k}" if ref_path else k
            shown_child = f"{shown}.{k}" if shown else k
            if child in keys:
                check_tree(v, keys, where, report, ref_path=child, shown=shown_child, label=label)
            elif f"{ref_path}.*" in keys:
                check_tree(v, keys, where, report, ref_path=f"{ref_path}.*", shown=shown_child, label=label)
            elif kind.startswith("map of") or kind == "any":
                continue  # a map whose values upstream does not describe
            else:
                siblings = [p.rsplit(".", 1)[-1] for p in keys
                            if p.startswith(f"{ref_path}.") and "." not in p[len(ref_path) + 1:]] if ref_path \
                    else [p for p in keys if "." not in p and "[" not in p]
                near = difflib.get_close_matches(k, siblings, n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                report.add(where, shown_child, f"unknown key in {label}{hint}")
        return
    if isinstance(value, list):
        if kind not in ("list", "any") and not kind.startswith("list"):
            report.add(where, shown, f"is a list; {label} expects {kind}")
            return
        item = f"{ref_path}[]"
        if item in keys:
            for i, v in enumerate(value):
                check_tree(v, keys, where, report, ref_path=item, shown=f"{shown}[{i}]", label=label)
        return
    expected = _type_ok(kind, value)
    if expected:
        report.add(where, shown, f"{_show(value)} is not {expected} ({label} states {kind})")


def check_config_file(path: Path, rel: str, tool: str, ref: dict, report: Report) -> None:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except yaml.YAMLError as err:
        report.add(rel, "", f"is not valid YAML ({str(err).splitlines()[0]})")
        return
    label = f"{TOOL_NAMES[tool]} {ref['version']}"
    for doc in docs:
        if not isinstance(doc, dict):
            report.add(rel, "", f"top level is {type(doc).__name__}, {label} expects a mapping")
            continue
        check_tree(doc, ref["keys"], rel, report, label=label)
    report.checked.append(rel)


def check_grafana_file(path: Path, rel: str, kind: str, ref: dict, report: Report) -> None:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        report.add(rel, "", f"is not valid YAML ({str(err).splitlines()[0]})")
        return
    label = f"Grafana {ref['version']} {kind} provisioning"
    if not isinstance(doc, dict):
        report.add(rel, "", f"{label} expects a mapping at the top level")
        return
    keys = ref["provisioning"][kind]
    if kind == "datasources":
        # jsonData differs per data source type: checked per item below, not by the common table.
        stripped = {k: v for k, v in doc.items()}
        items = stripped.get("datasources")
        if isinstance(items, list):
            stripped["datasources"] = [{k: v for k, v in it.items() if k != "jsonData"} if isinstance(it, dict) else it
                                       for it in items]
        check_tree(stripped, keys, rel, report, label=label)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict) or "jsonData" not in item:
                continue
            ds_type = str(item.get("type"))
            where = f"datasources[{i}].jsonData"
            if ds_type in ref["jsonData"] and ref["jsonData"][ds_type] is None:
                continue  # upstream's page for this type was not read: recorded as not checked
            table = ref["jsonData"].get(ds_type)
            if table is None:
                report.add(rel, where, f"no jsonData reference for data source type {ds_type!r} in Grafana "
                           f"{ref['version']} (known: {', '.join(sorted(ref['jsonData']))})")
                continue
            check_tree(item["jsonData"], table, rel, report, shown=where,
                       label=f"Grafana {ref['version']} {ds_type} jsonData")
    else:
        check_tree(doc, keys, rel, report, label=label)
    report.checked.append(rel)


# ---------------------------------------------------------------------------------------------
# flags and env

def _tool_of(image: str, repos: dict[str, str]) -> Optional[str]:
    ref = image.split("@", 1)[0]
    name = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    for tool, repo in repos.items():
        if name == repo or name.endswith("/" + repo):
            return tool
    return None


def _image_tag(image: str) -> Optional[str]:
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1].lstrip("v") if ":" in last else None


def _expands_env(tokens: list[str]) -> bool:
    return any(str(t).lstrip("-") in (EXPAND_ENV_FLAG, f"{EXPAND_ENV_FLAG}=true") for t in tokens)


def check_flags(workload: dict, tool: str, ref: dict, report: Report,
                referenced_env: frozenset[str] = frozenset()) -> None:
    """`referenced_env`: the `${VAR}` names in the tool's rendered configs; such a variable is read
    (only) when the workload runs with `-config.expand-env=true`."""
    where = f"{workload['source']} ({workload['name']})"
    label = f"{TOOL_NAMES[tool]} {ref['version']}"
    flags = ref.get("flags") or {}
    # The image's entrypoint is the binary; an overridden command names it first.
    tokens = list(workload.get("command") or [])[1:] + list(workload.get("args") or [])
    expands = _expands_env(tokens)
    if expands and tool != "grafana":
        for name in sorted(referenced_env - set(workload.get("env") or {})):
            report.add(where, f"env {name}", f"the config references ${{{name}}} but the workload does not set it "
                       f"(it would expand to an empty string)")
    elif referenced_env and tool != "grafana":
        report.add(where, f"-{EXPAND_ENV_FLAG}", f"missing: the config references "
                   f"{', '.join('${' + n + '}' for n in sorted(referenced_env))}, which {label} reads literally "
                   f"without it")
    i = 0
    while i < len(tokens):
        tok = str(tokens[i])
        i += 1
        if not tok.startswith("-") or tok in ("-", "--"):
            report.add(where, tok, f"unexpected positional argument for {label}")
            continue
        name, eq, value = tok.lstrip("-").partition("=")
        if name not in flags:
            near = difflib.get_close_matches(name, list(flags), n=1)
            hint = f" (did you mean -{near[0]}?)" if near else ""
            report.add(where, f"-{name}", f"unknown flag for {label}{hint}")
            continue
        ftype = flags[name]
        if not eq and ftype != "boolean" and i < len(tokens) and not str(tokens[i]).startswith("-"):
            value, i = str(tokens[i]), i + 1
        if eq and ftype in ("boolean", "int", "duration"):
            ok = {"boolean": value in ("true", "false", "1", "0", "t", "f", "TRUE", "FALSE", "True", "False"),
                  "int": re.fullmatch(r"-?\d+", value) is not None,
                  "duration": bool(_DURATION.match(value))}[ftype]
            if not ok:
                report.add(where, f"-{name}", f"{value!r} is not a {ftype} ({label})")
    # A variable referenced as `$(NAME)` in the args or another variable's value is the kubelet's
    # input for dependent-variable expansion (e.g. the pod IP from the downward API), not a
    # setting of the tool (Kubernetes: "Define dependent environment variables").
    kubelet_inputs = {m for v in [*tokens, *(workload.get("env") or {}).values()]
                      for m in re.findall(r"\$\((\w+)\)", str(v or ""))}
    for name in sorted(workload.get("env") or {}):
        if name in GO_RUNTIME_ENV or name in CLOUD_SDK_ENV or name in kubelet_inputs:
            continue
        if expands and name in referenced_env:
            continue
        if tool == "grafana":
            _check_grafana_env(name, where, ref, report)
        elif name not in set(ref.get("env") or []):
            report.add(where, f"env {name}", f"{label} reads no such environment variable "
                       f"(its reference lists: {', '.join(ref.get('env') or []) or 'none'})")


def _check_grafana_env(name: str, where: str, ref: dict, report: Report) -> None:
    """GF_<SECTION>_<KEY>[__FILE]: Grafana overrides any ini setting this way (conf/defaults.ini;
    '.' and '-' in section and key names become '_')."""
    if not name.startswith("GF_"):
        report.add(where, f"env {name}", f"Grafana {ref['version']} reads only GF_<SECTION>_<KEY> settings here")
        return
    if ref.get("settings") is None:
        return  # conf/defaults.ini was not read for this reference: env not checked (recorded)
    base = name.removesuffix("__FILE")
    known = {}
    for section, keys in ref.get("settings", {}).items():
        for key in keys:
            env = "GF_" + re.sub(r"[.\-]", "_", section).upper() + "_" + re.sub(r"[.\-]", "_", key).upper()
            known[env] = f"[{section}] {key}"
    if base not in known:
        near = difflib.get_close_matches(base, list(known), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        report.add(where, f"env {name}", f"no such Grafana {ref['version']} setting in the reference{hint}")


# ---------------------------------------------------------------------------------------------

def check_dir(rendered: Path, versions_file: Path = VERSIONS, reference_dir: Path = REFERENCE_DIR) -> Report:
    if not rendered.is_dir():
        raise InputError(f"{rendered}: no such directory (run `make render STACK=<stack>` first)")
    report = Report()
    pins = pinned_versions(versions_file)
    repos = image_repositories(versions_file)
    workloads = [(w, _tool_of(str(w.get("image", "")), repos)) for w in read_workloads(rendered)]
    # The version a workload runs is its image tag (a per-stack `components.<tool>.version`
    # override included); configs are checked against the pinned one, and both must have a reference.
    refs: dict[tuple[str, str], dict] = {}

    def ref_for(tool: str, version: str) -> dict:
        if (tool, version) not in refs:
            refs[(tool, version)] = load_reference(tool, version, reference_dir)
        return refs[(tool, version)]

    running = {tool: _image_tag(str(w.get("image", ""))) for w, tool in workloads if tool}
    referenced: dict[str, frozenset[str]] = {}
    for tool, globs in CONFIG_GLOBS.items():
        files = sorted({p for g in globs for p in rendered.glob(g)})
        if not files:
            continue
        referenced[tool] = frozenset(m.group(1) for p in files
                                     for m in _ENV_REFERENCE.finditer(p.read_text(encoding="utf-8")))
        ref = ref_for(tool, running.get(tool) or pins[tool])
        for path in files:
            check_config_file(path, str(path.relative_to(rendered)), tool, ref, report)
    for kind, globs in GRAFANA_GLOBS.items():
        files = sorted({p for g in globs for p in rendered.glob(g)})
        if not files:
            continue
        ref = ref_for("grafana", running.get("grafana") or pins["grafana"])
        for path in files:
            check_grafana_file(path, str(path.relative_to(rendered)), kind, ref, report)
    for w, tool in workloads:
        if tool is None:
            continue
        ref = ref_for(tool, _image_tag(str(w["image"])) or pins[tool])
        check_flags(w, tool, ref, report, referenced.get(tool, frozenset()))
        report.checked.append(f"{w['source']} ({w['name']})")
    return report


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="make check-keys", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a `make render` output dir, e.g. rendered/prod")
    parser.add_argument("--versions", type=Path, default=VERSIONS, help="the version table (default: components/versions.json)")
    parser.add_argument("--reference-dir", type=Path, default=REFERENCE_DIR)
    args = parser.parse_args(argv)
    try:
        report = check_dir(args.dir, args.versions, args.reference_dir)
    except InputError as err:
        print(f"check-keys: {err}", file=sys.stderr)
        return 2
    for line in report.problems:
        print(line)
    sys.stdout.flush()
    if report.problems:
        print(f"check-keys: {len(report.problems)} problem(s) in {args.dir}", file=sys.stderr)
        return 1
    print(f"check-keys: {len(report.checked)} files/workloads in {args.dir} match upstream's reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
