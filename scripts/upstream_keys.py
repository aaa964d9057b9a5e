#!/usr/bin/env python3
"""Upstream key references: derive them from upstream's own reference, or check a render.

    scripts/upstream_keys.py derive <tool> --version X (--git-dir DIR | --source-root DIR) [--ref TAG]
    scripts/upstream_keys.py check <rendered dir>          # the same as `make check-keys DIR=...`

`derive` reads, at upstream's tag, the files listed in SOURCES below (from a git directory such
as the `fetch` tool's snapshot, with `git show <tag>:<path>`, or from a plain checkout), parses
them with keycheck.derive and writes reference/upstream-keys/<tool>-<version>.json recording the
repository, tag, commit, path and sha256 of every source. Same sources in, same file out (the
`derived_on` date aside). docs/upstream-facts.md "Upstream key references" has the commands used.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from keycheck import derive  # noqa: E402
from keycheck.check import REFERENCE_DIR, main as check_main  # noqa: E402

# tool -> (upstream repository, tag format, [(role, path)])
SOURCES = {
    "mimir": ("grafana/mimir", "mimir-{v}", [
        ("descriptor", "cmd/mimir/config-descriptor.json"),
        ("help", "cmd/mimir/help-all.txt.tmpl"),
    ]),
    "pyroscope": ("grafana/pyroscope", "v{v}", [
        ("docgen", "docs/sources/configure-server/reference-configuration-parameters/index.md"),
        ("help", "cmd/pyroscope/help-all.txt.tmpl"),
    ]),
    "loki": ("grafana/loki", "v{v}", [
        ("docgen", "docs/sources/shared/configuration.md"),
        ("goflags", "pkg/loki/config_wrapper.go"),
        ("goflags?", "cmd/loki/main.go"),
    ]),
    "tempo": ("grafana/tempo", "v{v}", [
        ("manifest", "docs/sources/tempo/configuration/manifest.md"),
        ("index", "docs/sources/tempo/configuration/_index.md"),
        ("rootstruct", "cmd/tempo/app/config.go"),
        ("goflags", "cmd/tempo/main.go"),
    ]),
    "grafana": ("grafana/grafana", "v{v}", [
        ("provisioning", "docs/sources/administration/provisioning/index.md"),
        ("jsondata:prometheus", "docs/sources/datasources/prometheus/configure/index.md"),
        ("jsondata:loki", "docs/sources/datasources/loki/configure-loki-data-source.md"),
        ("jsondata:tempo", "docs/sources/datasources/tempo/configure-tempo-data-source/provision.md"),
        ("jsondata:alertmanager", "docs/sources/datasources/alertmanager/_index.md"),
        ("jsondata:grafana-pyroscope-datasource", "docs/sources/datasources/pyroscope/configure-pyroscope-data-source.md"),
        ("ini", "conf/defaults.ini"),
    ]),
}

# Env the tool itself reads, as its reference page states it (none of ours is configured by env
# but Grafana; see keycheck.check for Go's runtime variables).
ENV = {"mimir": [], "pyroscope": [], "loki": [], "tempo": []}


class Source:
    def __init__(self, repo: str, ref: str, git_dir: Path | None, root: Path | None, commit: str | None):
        self.repo, self.ref, self.git_dir, self.root = repo, ref, git_dir, root
        self.commit = commit
        if git_dir is not None:
            self.commit = subprocess.run(["git", "-C", str(git_dir), "rev-list", "-n1", ref], check=True,
                                         capture_output=True, text=True).stdout.strip()
        self.read: list[dict] = []
        self.commit_of: dict[str, str] = {}

    def get(self, path: str, optional: bool = False) -> str | None:
        if self.git_dir is not None:
            proc = subprocess.run(["git", "-C", str(self.git_dir), "show", f"{self.ref}:{path}"],
                                  capture_output=True)
            if proc.returncode != 0:
                if optional:
                    return None
                raise SystemExit(f"{self.repo}@{self.ref}: no {path} ({proc.stderr.decode().strip()})")
            data = proc.stdout
        else:
            file = self.root / path
            if not file.exists():
                if optional:
                    return None
                raise SystemExit(f"{self.root}: no {path}")
            data = file.read_bytes()
        self.read.append({"repo": self.repo, "ref": self.ref, "commit": self.commit_of.get(path, self.commit), "path": path,
                          "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
        return data.decode("utf-8")


def derive_tool(tool: str, src: Source) -> dict:
    paths = dict((role, path) for role, path in SOURCES[tool][2])
    keys: dict[str, str] = {}
    flags: dict[str, str] = {}
    notes: list[str] = []
    extra: dict = {}
    if tool == "mimir":
        keys, flags = derive.mimir_descriptor(src.get(paths["descriptor"]))
        flags.update(derive.go_help_flags(src.get(paths["help"])))
        notes.append("keys and types: every block/field of the config descriptor (fieldType); flags: the "
                     "descriptor's fieldFlag plus every flag of help-all.txt.tmpl (-config.file etc.).")
    elif tool == "pyroscope":
        page = src.get(paths["docgen"])
        keys, flags = derive.docgen_reference(page)
        flags.update(derive.go_help_flags(src.get(paths["help"])))
        notes.append("Pyroscope commits no config-descriptor.json; its configuration reference page is "
                     "generated from the Go structs (tools/doc-generator), so keys and types come from there; "
                     "flags from the page and help-all.txt.tmpl.")
    elif tool == "loki":
        page = src.get(paths["docgen"])
        keys, flags = derive.docgen_reference(page)
        flags.update(derive.prose_flags(page))
        flags.update(derive.go_source_flags(src.get(paths["goflags"])))
        main_go = src.get(paths["goflags?"], optional=True)
        if main_go:
            flags.update(derive.go_source_flags(main_go))
        notes.append("keys and types: the generated configuration reference (tools/doc-generator); flags: its "
                     "'CLI flag' lines with <prefix> expanded, the flags it names in prose, and those the "
                     "config wrapper and main.go register (-config.file, -config.expand-env, -verify-config...).")
    elif tool == "tempo":
        manifest = derive.tempo_manifest(src.get(paths["manifest"]))
        top = {p for p in manifest if "." not in p and "[" not in p}
        root_struct = derive.go_root_struct(src.get(paths["rootstruct"]))
        top |= set(root_struct)
        index = derive.tempo_index(src.get(paths["index"]), top)
        for name, t in root_struct.items():
            # The manifest leaves out empty omitempty fields; a root key the struct has but the
            # manifest and the page lack (e.g. stream_over_http_enabled) comes from the struct.
            if name not in manifest and name not in index:
                index[name] = t if t != "block" else "open"
        # A root key the manifest has but the struct no longer has does not exist.
        keys = derive.merge_tempo({p: t for p, t in manifest.items() if p.split(".")[0].split("[")[0] in root_struct},
                                  {p: t for p, t in index.items() if p.split(".")[0].split("[")[0] in root_struct})
        flags = derive.go_source_flags(src.get(paths["goflags"]))
        notes.append("structure: the generated manifest (complete default config); keys with empty "
                     "defaults (omitted by the manifest) and stated types: the configuration page's examples "
                     "(only blocks that start at a root key); root keys: the yaml tags of cmd/tempo/app/config.go "
                     "`Config`. `{}` in the manifest (maps such as distributor.receivers, the OpenTelemetry "
                     "receivers) is open: keys below it are not checked. Types are only what the page states "
                     "(`any` elsewhere). Flags: cmd/tempo/main.go; the per-field flags Tempo also registers are "
                     "documented nowhere, so they are not allowed here (use the config file).")
    elif tool == "grafana":
        return derive_grafana(src, paths)
    return {"keys": dict(sorted(keys.items())), "flags": dict(sorted(flags.items())), "env": ENV[tool],
            "notes": notes, **extra}


def derive_grafana(src: Source, paths: dict[str, str]) -> dict:
    provisioning_page = src.get(paths["provisioning"])
    datasources = derive.grafana_provisioning(provisioning_page, "datasources")
    dashboards = derive.grafana_provisioning(provisioning_page, "providers")
    table = derive.grafana_jsondata_table(provisioning_page)
    json_data: dict[str, dict[str, str]] = {}
    for role, path in paths.items():
        if not role.startswith("jsondata:"):
            continue
        ds_type = role.split(":", 1)[1]
        page = src.get(path, optional=True)
        keys: dict[str, str] = {}
        if page is None:
            # Not read: this data source's jsonData is not checked (recorded as null), rather
            # than reporting every key its own page would have shown.
            json_data[ds_type] = None
            continue
        if page:
            for p, t in derive.grafana_provisioning(page, "datasources").items():
                if p.startswith("datasources[].jsonData."):
                    keys[p[len("datasources[].jsonData."):]] = t
        # One example shows `tags` items as {key, value} (tracesToMetrics), the others only {key}:
        # the page describes one tag-mapping shape, so item keys of every `*.tags[]` are unioned.
        tag_items = {p.rsplit(".", 1)[-1]: t for p, t in keys.items() if re.search(r"\.tags\[\]\.[^.]+$", p)}
        for p in [p for p in keys if p.endswith(".tags[]")]:
            for k, t in tag_items.items():
                keys.setdefault(f"{p}.{k}", t)
        # The provisioning page's table: settings common to HTTP data sources and those it names.
        label = {"prometheus": "Prometheus", "loki": "Loki", "tempo": "Tempo", "alertmanager": "Alertmanager",
                 "grafana-pyroscope-datasource": "Pyroscope"}[ds_type]
        for name, (t, applies) in table.items():
            if "HTTP" in applies or label.lower() in applies.lower():
                keys.setdefault(name, {"boolean": "boolean", "string": "string", "number": "float"}.get(t, "any"))
        json_data[ds_type] = dict(sorted(keys.items()))
    ini = src.get(paths["ini"], optional=True)
    settings: dict[str, list[str]] | None = {} if ini else None
    if ini:
        section = None
        for line in ini.splitlines():
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                settings.setdefault(section, [])
            elif section and line and not line.startswith((";", "#")) and "=" in line:
                settings[section].append(line.split("=", 1)[0].strip())
    return {"provisioning": {"datasources": dict(sorted(datasources.items())),
                             "dashboards": dict(sorted(dashboards.items()))},
            "jsonData": json_data,
            "settings": None if settings is None else {s: sorted(set(k)) for s, k in sorted(settings.items())},
            "notes": ["Grafana states no machine-readable schema for provisioning files: keys come from the "
                      "annotated examples of the provisioning page (`# <type>` comments give the types), "
                      "jsonData keys per data source type from the provisioning example of that data source's "
                      "page plus the page's 'JSON Data' table (rows for HTTP data sources and for that type). "
                      "A key that no upstream example or table shows is reported even if Grafana accepts it. "
                      "Env: GF_<SECTION>_<KEY> for every [section] key of conf/defaults.ini. A data source "
                      "type whose page was not read has jsonData null (not checked); settings null means "
                      "conf/defaults.ini was not read and Grafana's env is not checked."]}


def cmd_derive(args: argparse.Namespace) -> int:
    tool = args.tool
    repo, tag_format, _ = SOURCES[tool]
    ref = args.ref or tag_format.format(v=args.version)
    if (args.git_dir is None) == (args.source_root is None):
        print("give exactly one of --git-dir or --source-root", file=sys.stderr)
        return 2
    if args.source_root is not None and not args.commit:
        print("--source-root needs --commit (the upstream commit those files are from)", file=sys.stderr)
        return 2
    src = Source(repo, ref, args.git_dir, args.source_root, args.commit)
    for item in args.source_commit or []:
        path, _, sha = item.partition("=")
        src.commit_of[path] = sha
    body = derive_tool(tool, src)
    command = (f"scripts/upstream_keys.py derive {tool} --version {args.version}"
               + (f" --ref {args.ref}" if args.ref else "")
               + (" --git-dir <git dir of " + repo + ">" if args.git_dir else
                  f" --source-root <checkout of {repo} at {src.commit}> --commit {src.commit}"
                  + "".join(f" --source-commit {p}={c}" for p, c in src.commit_of.items())))
    out = {
        "tool": tool,
        "version": args.version,
        "upstream": {"repo": repo, "ref": ref, "commit": src.commit},
        "sources": src.read,
        "derived_on": args.date or _dt.date.today().isoformat(),
        "command": command,
        **({"provenance": args.provenance} if args.provenance else {}),
        **body,
    }
    dest = (args.out_dir or REFERENCE_DIR) / f"{tool}-{args.version}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    n = len(body.get("keys") or {}) or sum(len(v) for v in body.get("provisioning", {}).values())
    if tool == "grafana":
        body.setdefault("flags", {})
    print(f"wrote {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}: {n} key paths, "
          f"{len(body.get('flags') or body.get('settings') or {})} flags/settings sections, from {repo}@{ref} ({src.commit})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("derive", help="write reference/upstream-keys/<tool>-<version>.json")
    d.add_argument("tool", choices=sorted(SOURCES))
    d.add_argument("--version", required=True, help="the image tag, e.g. 3.6.3")
    d.add_argument("--ref", help="upstream tag (default from the tool's tag format, e.g. v3.6.3, mimir-2.17.1)")
    d.add_argument("--git-dir", type=Path, help="a git directory holding the tag (read with git show)")
    d.add_argument("--source-root", type=Path, help="a plain checkout at the tag")
    d.add_argument("--commit", help="with --source-root: the commit the files are from")
    d.add_argument("--source-commit", action="append", metavar="PATH=SHA",
                   help="with --source-root: a file that comes from another commit than --commit")
    d.add_argument("--provenance", help="free text: how the sources were obtained (recorded)")
    d.add_argument("--date", help="the derived_on date to record (default today)")
    d.add_argument("--out-dir", type=Path)
    c = sub.add_parser("check", help="the same as make check-keys DIR=...")
    c.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.cmd == "check":
        return check_main(args.rest)
    return cmd_derive(args)


if __name__ == "__main__":
    sys.exit(main())
