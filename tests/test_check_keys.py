"""The upstream key check (keycheck/, `make check-keys`): every scenario's rendered configs,
flags and env against reference/upstream-keys/, plus positive controls per tool.

`make test` runs this module; it calls the same entry point `make check-keys` runs
(`python -m keycheck.check <dir>`), in-process and once as a subprocess.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from observability_stack.components.render import render_all
from tooling.manifests import manifests_of
from keycheck import derive
from keycheck.check import REFERENCE_DIR, VERSIONS, InputError, check_dir, main as check_main
from keycheck.workloads import WORKLOADS_FILE, docker_workloads
from tests.harness import ROOT, run_program
from tests.scenarios import scenarios, settings_for

# Findings the check is known to report on today's renders, each with its upstream evidence (empty:
# Grafana's removed `lokiSearch` was the last, dropped in issue 11). A listed finding that is no
# longer reported fails the test.
KNOWN_FINDINGS: set[str] = set()


def render_scenario(name: str, out: Path) -> Path:
    """What `make render` writes for a scenario: every config, plus manifests (Kubernetes) or
    workloads.json (Docker), from the program run under mocks."""
    stack, config = scenarios()[name]
    settings = settings_for(name)
    files = render_all(settings)
    run = run_program(stack, config)
    assert run.error is None, run.error
    if settings.target == "kubernetes":
        for i, obj in enumerate(manifests_of(run.resources), start=1):
            files[f"manifests/{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"] = yaml.safe_dump(obj)
    else:
        files[WORKLOADS_FILE] = json.dumps(docker_workloads(run.resources))
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    return {name: render_scenario(name, tmp_path_factory.mktemp(name)) for name in sorted(scenarios())}


@pytest.fixture
def prod(rendered, tmp_path) -> Path:
    out = tmp_path / "prod"
    shutil.copytree(rendered["prod"], out)
    return out


@pytest.fixture
def dev(rendered, tmp_path) -> Path:
    out = tmp_path / "dev"
    shutil.copytree(rendered["dev"], out)
    return out


def problems(path: Path, **kwargs) -> list[str]:
    return check_dir(path, **kwargs).problems


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


# --- every scenario --------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", sorted(scenarios()))
def test_every_scenario_matches_upstream_reference(rendered, scenario):
    report = check_dir(rendered[scenario])
    unexpected = [p for p in report.problems if p not in KNOWN_FINDINGS]
    assert not unexpected, "\n".join(unexpected)
    settings = settings_for(scenario)
    tools = [t for t in ("loki", "tempo", "mimir", "pyroscope", "grafana") if settings.enabled(t)]
    # Every enabled tool's config and workload was actually checked (not silently skipped).
    for tool in tools:
        assert any(c.startswith(f"{tool}/") for c in report.checked), (tool, report.checked)
        assert any(f"({tool}" in c or f"-{tool})" in c for c in report.checked), (tool, report.checked)
    if settings.enabled("grafana") and settings.enabled("tempo"):
        assert set(report.problems) == KNOWN_FINDINGS, "a known finding is gone: drop it from KNOWN_FINDINGS"


def test_make_check_keys_runs_the_same_entry_point(rendered):
    recipe = re.search(r"^check-keys:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert recipe and "-m keycheck.check $(DIR)" in recipe.group(1)
    proc = subprocess.run([sys.executable, "-m", "keycheck.check", str(rendered["minimal"])],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "match upstream's reference" in proc.stdout


# --- positive controls: a misspelled key per tool, named with its file and path ----------------

@pytest.mark.parametrize("rel, old, new, expected", [
    ("loki/loki.yaml", "retention_period:", "retention_perod:",
     "loki/loki.yaml: limits_config.retention_perod: unknown key in Loki 3.7.6 (did you mean retention_period?)"),
    ("tempo/tempo.yaml", "block_retention:", "block_retentoin:",
     "tempo/tempo.yaml: compactor.compaction.block_retentoin: unknown key in Tempo 2.10.8"),
    ("mimir/mimir.yaml", "compactor_blocks_retention_period:", "compactor_block_retention_period:",
     "mimir/mimir.yaml: limits.compactor_block_retention_period: unknown key in Mimir 3.0.2"),
    ("pyroscope/config.yaml", "min_free_disk_gb:", "min_free_disk_gib:",
     "pyroscope/config.yaml: pyroscopedb.min_free_disk_gib: unknown key in Pyroscope 1.21.1"),
    ("grafana/provisioning/datasources/datasources.yaml", "isDefault:", "isDefualt:",
     "grafana/provisioning/datasources/datasources.yaml: datasources[0].isDefualt: unknown key in Grafana 12.3.1 "
     "datasources provisioning"),
    ("grafana/provisioning/datasources/datasources.yaml", "    tracesToMetrics:", "    tracesToMetric:",
     "grafana/provisioning/datasources/datasources.yaml: datasources[3].jsonData.tracesToMetric: unknown key in "
     "Grafana 12.3.1 tempo jsonData"),
    ("grafana/provisioning/dashboards/dashboards.yaml", "updateIntervalSeconds:", "updateIntervalSecond:",
     "grafana/provisioning/dashboards/dashboards.yaml: providers[0].updateIntervalSecond: unknown key in Grafana "
     "12.3.1 dashboards provisioning"),
])
def test_misspelled_key_is_caught(prod, rel, old, new, expected):
    edit(prod / rel, old, new)
    found = problems(prod)
    assert any(p.startswith(expected) for p in found), found


def test_map_and_open_fields_are_not_false_positives(prod):
    # Tempo's receivers are the OpenTelemetry collector's (a map upstream does not describe):
    # any receiver is accepted; Mimir's per-tenant limits stay a checked block.
    edit(prod / "tempo/tempo.yaml", "    otlp:\n", "    jaeger:\n      protocols: {thrift_http: {}}\n    otlp:\n")
    assert not [p for p in problems(prod) if p.startswith("tempo/")]


def test_wrong_types_are_caught(prod):
    edit(prod / "loki/loki.yaml", "retention_enabled: true", "retention_enabled: 'yes'")
    # Tempo 2.10.8's page states no type for the compaction block; it states stream_over_http_enabled's.
    edit(prod / "tempo/tempo.yaml", "stream_over_http_enabled: true", "stream_over_http_enabled: 'on'")
    edit(prod / "mimir/mimir.yaml", "http_listen_port: 8080", "http_listen_port: '8080'")
    found = problems(prod)
    assert any(p.startswith("loki/loki.yaml: compactor.retention_enabled: \"yes\" is not a boolean") for p in found), found
    assert any(p.startswith("tempo/tempo.yaml: stream_over_http_enabled: \"on\" is not a boolean") for p in found), found
    assert any(p.startswith("mimir/mimir.yaml: server.http_listen_port: \"8080\" is not an integer") for p in found), found


# --- flags and env ---------------------------------------------------------------------------

def test_unknown_flag_in_a_kubernetes_manifest_is_caught(prod):
    manifest = next((prod / "manifests").glob("*-statefulset-loki.yaml"))
    edit(manifest, "-config.file=", "-config.fle=")
    found = problems(prod)
    assert any(re.match(rf"manifests/{re.escape(manifest.name)} \(loki/loki\): -config.fle: unknown flag for Loki 3.7.6 "
                        r"\(did you mean -config.file\?\)", p) for p in found), found


def test_unknown_flag_and_env_in_docker_workloads_are_caught(dev):
    workloads = json.loads((dev / WORKLOADS_FILE).read_text())
    for w in workloads:
        if w["image"].startswith("grafana/mimir:"):
            w["args"].append("-ingester.ring.replication-factr=1")
        if w["image"].startswith("grafana/tempo:"):
            w["env"]["TEMPO_RETENTION"] = "14d"
        if w["image"].startswith("grafana/pyroscope:"):
            w["args"].append("-server.http-listen-port=not-a-number")
    (dev / WORKLOADS_FILE).write_text(json.dumps(workloads))
    found = problems(dev)
    assert any(re.match(r"workloads.json \(obs-dev-mimir\): -ingester.ring.replication-factr: unknown flag for Mimir 3.0.2", p)
               for p in found), found
    assert any(re.match(r"workloads.json \(obs-dev-tempo\): env TEMPO_RETENTION: Tempo 2.10.8 reads no such environment", p)
               for p in found), found
    assert any(re.match(r"workloads.json \(obs-dev-pyroscope\): -server.http-listen-port: 'not-a-number' is not a int", p)
               for p in found), found


# --- pins and references ---------------------------------------------------------------------

def test_changing_a_pin_without_regenerating_the_reference_fails_with_how_to(prod, tmp_path):
    versions = json.loads(VERSIONS.read_text())
    versions["images"]["loki"]["tag"] = "3.99.0"
    changed = tmp_path / "versions.json"
    changed.write_text(json.dumps(versions))
    shutil.rmtree(prod / "manifests")  # as if rendered with the new pin: the pin decides
    with pytest.raises(InputError) as err:
        check_dir(prod, versions_file=changed)
    assert "Loki 3.99.0 is pinned but reference/upstream-keys/loki-3.99.0.json does not exist" in str(err.value)
    assert "scripts/upstream_keys.py derive loki --version 3.99.0" in str(err.value)
    # The command line: one line, exit 2, no traceback.
    proc = subprocess.run([sys.executable, "-m", "keycheck.check", str(prod), "--versions", str(changed)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_a_stack_running_another_tag_needs_its_reference_too(prod):
    manifest = next((prod / "manifests").glob("*-statefulset-tempo.yaml"))
    edit(manifest, "grafana/tempo:2.10.8", "grafana/tempo:2.10.99")
    with pytest.raises(InputError, match="Tempo 2.10.99 is pinned but .*derive tempo --version 2.10.99"):
        check_dir(prod)


def test_missing_dir_is_one_line():
    assert check_main(["/nonexistent/rendered"]) == 2


def test_every_pinned_version_has_a_reference_that_records_its_sources():
    versions = json.loads(VERSIONS.read_text())["images"]
    for tool in ("loki", "tempo", "mimir", "pyroscope", "grafana"):
        tag = versions[tool]["tag"].lstrip("v")
        ref = json.loads((REFERENCE_DIR / f"{tool}-{tag}.json").read_text())
        assert ref["tool"] == tool and ref["version"] == tag
        assert ref["upstream"]["repo"].startswith("grafana/") and re.fullmatch(r"[0-9a-f]{40}", ref["upstream"]["commit"])
        for src in ref["sources"]:
            assert src["path"] and re.fullmatch(r"[0-9a-f]{64}", src["sha256"]) and re.fullmatch(r"[0-9a-f]{40}", src["commit"])
        assert ref["command"].startswith(f"scripts/upstream_keys.py derive {tool} --version {tag}")


# --- the parsers, on upstream-shaped snippets ------------------------------------------------

DOCGEN = """
### Supported contents and default values of `x.yaml`

```yaml
# CLI flag: -target
[target: <string> | default = "all"]

[server: <server>]

limits:
  # CLI flag: -limits.retention
  [retention_period: <duration> | default = 0s]

  [labels: <map of string to string>]

# The CLI flags prefix for this block configuration is: ring
[consul: <consul>]

[configs: <list of period_configs>]
```

### server

```yaml
# CLI flag: -server.http-listen-port
[http_listen_port: <int> | default = 80]
```

### consul

Configuration for a Consul client. The supported CLI flags `<prefix>` used to reference this configuration block are:

- `ring`
- `other`

&nbsp;

```yaml
# CLI flag: -<prefix>.consul.hostname
[host: <string> | default = "localhost:8500"]
```

### period_config

```yaml
[from: <daytime>]
```
"""


def test_docgen_parser():
    keys, flags = derive.docgen_reference(DOCGEN)
    assert keys["target"] == "string" and keys["server"] == "block" and keys["server.http_listen_port"] == "int"
    assert keys["limits"] == "block" and keys["limits.retention_period"] == "duration"
    assert keys["limits.labels"].startswith("map of") and keys["consul.host"] == "string"
    assert keys["configs"] == "list" and keys["configs[].from"] == "string"
    assert {"target", "server.http-listen-port", "limits.retention", "ring.consul.hostname",
            "other.consul.hostname"} <= set(flags)


def test_mimir_descriptor_parser():
    text = json.dumps({"kind": "block", "name": "", "blockEntries": [
        {"kind": "field", "name": "target", "fieldType": "string", "fieldFlag": "target"},
        {"kind": "block", "name": "limits", "blockEntries": [
            {"kind": "field", "name": "retention", "fieldType": "duration", "fieldFlag": "compactor.retention"},
            {"kind": "field", "name": "rules", "fieldType": "slice", "fieldElement": {"kind": "block", "blockEntries": [
                {"kind": "field", "name": "pattern", "fieldType": "string"}]}},
            {"kind": "field", "name": "relabel", "fieldType": "relabel_config..."},
        ]}]})
    keys, flags = derive.mimir_descriptor(text)
    assert keys == {"target": "string", "limits": "block", "limits.retention": "duration", "limits.rules": "list",
                    "limits.rules[]": "block", "limits.rules[].pattern": "string", "limits.relabel": "open"}
    assert flags == {"target": "string", "compactor.retention": "duration"}


def test_go_flag_parsers():
    assert derive.go_help_flags("Usage:\n  -config.file value\n    \tx\n  -version\n    \tprint\n") == {
        "config.file": "value", "version": "boolean"}
    src = 'const configFileOption = "config.file"\nf.StringVar(&c, configFileOption, "", "x")\nflag.Bool("version", false, "v")\n'
    assert derive.go_source_flags(src) == {"config.file": "string", "version": "boolean"}
