"""`make up` prerequisites, all checked before the engine runs (called by scripts/up.sh).

    python scripts/preflight.py <stack> --engine installed|installer|build|none --online 0|1

Each missing prerequisite prints one `error:` line (plus its ways out) on stderr and the exit
status is 1; nothing is created. On success it prints, on stdout, `export NAME=value` lines for
up.sh to eval (the passphrase file, the plugin directory to put on PATH, what to build).

Checked, in order:
1. the stack config validates (the program's own messages);
2. the Pulumi CLI: installed, downloadable, or buildable from Go modules (up.sh decides which);
3. the secrets passphrase: PULUMI_CONFIG_PASSPHRASE(_FILE), or for a dev-environment stack a
   passphrase generated into the ignored local file `.pulumi-passphrase` (README: "make up");
4. what the program will register, found by running it under Pulumi mocks
   (components/mockrun.py): its providers' plugins (on PATH, in the plugin cache, buildable here
   — only the Docker one, scripts/build-docker-provider.sh — or downloadable when online) and, on
   Docker, the Docker engine and every image (present on the host, else pulled now; an image
   that cannot be pulled stops here, with `registryMirror` or switching the component off as
   the ways out).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from observability_stack.config import ConfigError, Settings, load_settings  # noqa: E402
from observability_stack.config.loader import stack_config_values  # noqa: E402

PASSPHRASE_FILE = ".pulumi-passphrase"
PULL_TIMEOUT = 600  # seconds per image: a real pull of a large image on a slow line
# Images whose source this project may build (scripts/build-local-images.py); the others (Grafana,
# Loki, Tempo, Mimir, Pyroscope) are AGPL and are never built here.
LOCAL_BUILD_TOOLS = ("prometheus", "alertmanager", "collector")
# Every provider the program may use and how to get its plugin without a download.
BUILDERS = {
    "docker": "scripts/build-docker-provider.sh",
    "kubernetes": "scripts/build-pulumi.sh",
}


@dataclass
class Result:
    problems: list[str] = field(default_factory=list)
    exports: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    generate_passphrase: Optional[Path] = None


def _print_path(script: str) -> Optional[Path]:
    try:
        out = subprocess.run([str(ROOT / script), "--print-path"], capture_output=True, text=True,
                             timeout=60, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def stack_doc(work_dir: Path, stack: str) -> dict:
    path = work_dir / f"Pulumi.{stack}.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def load(work_dir: Path, stack: str, result: Result) -> Optional[Settings]:
    raw, secret_keys = stack_config_values(stack_doc(work_dir, stack).get("config") or {}, "secret-placeholder")
    try:
        return load_settings(raw, stack=stack, secret_keys=secret_keys)
    except ConfigError as err:
        result.problems.append(f"invalid stack config in Pulumi.{stack}.yaml:\n{err}")
        return None


def check_cli(engine: str, result: Result) -> None:
    if engine == "none":
        result.problems.append(
            "no Pulumi CLI: install it (https://www.pulumi.com/docs/install/), or install Go so "
            "`make up` can build the pinned engine from Go modules (scripts/build-pulumi.sh)")


def check_passphrase(work_dir: Path, stack: str, settings: Settings, result: Result) -> None:
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE") is not None or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        return
    doc = stack_doc(work_dir, stack)
    provider = doc.get("secretsprovider")
    if provider and not str(provider).startswith("passphrase"):
        return  # a cloud KMS or the Pulumi Cloud: no passphrase involved
    local = work_dir / PASSPHRASE_FILE
    if settings.environment != "dev":
        result.problems.append(
            f"stack '{stack}' encrypts its secrets with a passphrase: export PULUMI_CONFIG_PASSPHRASE "
            f"(or PULUMI_CONFIG_PASSPHRASE_FILE). The committed example stacks use the passphrase `example`.")
        return
    if not local.exists():
        if doc.get("encryptionsalt"):
            result.problems.append(
                f"Pulumi.{stack}.yaml was set up with a passphrase this clone does not have (it has an "
                f"encryptionsalt and there is no {PASSPHRASE_FILE}): export PULUMI_CONFIG_PASSPHRASE, or "
                f"delete the encryptionsalt line and any `secure:` values to start over with a generated one.")
            return
        result.generate_passphrase = local  # written once every check passed
    else:
        result.notes.append(f"dev stack: using the passphrase in {PASSPHRASE_FILE}")
    result.exports["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(local)


def declared(stack: str, config: dict):
    """What the program registers for this config, under mocks (no engine, no provider)."""
    from tooling.mockrun import run_program

    return run_program(stack, config)


def sdk_version(package: str) -> str:
    try:
        return importlib.metadata.version(f"pulumi-{package}")
    except importlib.metadata.PackageNotFoundError:
        return "?"


def plugin_cached(package: str, version: str) -> bool:
    home = Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")
    return (home / "plugins" / f"resource-{package}-v{version}").is_dir()


def check_plugins(packages: set[str], engine: str, online: bool, result: Result) -> None:
    path_dirs: list[str] = []
    for package in sorted(packages):
        version = sdk_version(package)
        binary = f"pulumi-resource-{package}"
        if shutil.which(binary) or plugin_cached(package, version):
            continue
        builder = BUILDERS.get(package)
        built = _print_path(builder) if builder else None
        if built and (built / binary).is_file():
            path_dirs.append(str(built))
            continue
        if engine in ("installed", "installer") and online:
            continue  # the CLI downloads it on first use
        if package == "kubernetes" and engine == "build":
            continue  # scripts/build-pulumi.sh builds it with the engine
        if package == "docker" and shutil.which("go"):
            result.exports["OBS_BUILD_DOCKER_PROVIDER"] = "1"
            if built:
                path_dirs.append(str(built))
            continue
        ways = [f"`pulumi plugin install resource {package} {version}` on a machine that can download it"]
        if package in BUILDERS:
            ways.insert(0, f"install Go so {BUILDERS[package]} can build it from Go modules")
        if package == "random":
            ways.insert(0, "set observability:grafana.adminPassword as a secret (`pulumi config set --secret "
                           "--path observability:grafana.adminPassword ...`: only a generated password needs it) "
                           "or switch Grafana off")
        result.problems.append(f"provider plugin {binary} {version} is not installed and cannot be "
                               f"downloaded or built here: " + "; or ".join(ways))
    if path_dirs:
        result.exports["OBS_PLUGIN_PATH"] = os.pathsep.join(dict.fromkeys(path_dirs))


def docker_cmd(settings: Settings) -> list[str]:
    return ["docker"] + (["-H", settings.docker.host] if settings.docker.host else [])


def check_docker_engine(settings: Settings, result: Result) -> bool:
    if shutil.which("docker") is None:
        result.problems.append(
            "this stack deploys to Docker, but there is no docker command: install Docker Engine "
            "(e.g. apt-get install docker.io, then start dockerd)")
        return False
    probe = subprocess.run([*docker_cmd(settings), "info", "--format", "{{.ServerVersion}}"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        where = settings.docker.host or os.environ.get("DOCKER_HOST") or "the local socket"
        result.problems.append(
            f"this stack deploys to Docker, but no Docker engine answers at {where} (docker info failed): "
            f"start dockerd (e.g. `dockerd &` or `systemctl start docker`), or set observability:docker.host / DOCKER_HOST")
        return False
    return True


def tool_of(ref: str, settings: Settings) -> Optional[str]:
    from observability_stack.components.workload import pinned_versions

    mirror = (settings.registry_mirror or "").rstrip("/")
    bare = ref[len(mirror) + 1:] if mirror and ref.startswith(mirror + "/") else ref
    repository = bare.rsplit(":", 1)[0]
    for tool, entry in pinned_versions()["images"].items():
        if entry["repository"] == repository:
            return tool
    return None


def check_images(refs: list[str], settings: Settings, stack_file: str, result: Result) -> None:
    docker = docker_cmd(settings)
    missing: dict[str, str] = {}
    for ref in refs:
        if subprocess.run([*docker, "image", "inspect", ref], capture_output=True).returncode == 0:
            continue
        print(f"image {ref} is not on the Docker host: pulling it", file=sys.stderr)
        try:
            pull = subprocess.run([*docker, "pull", ref], capture_output=True, text=True, timeout=PULL_TIMEOUT)
            error = pull.stderr.strip().splitlines()[-1] if pull.returncode else ""
        except subprocess.TimeoutExpired:
            error = f"no answer within {PULL_TIMEOUT}s"
        if error:
            missing[ref] = error
    if not missing:
        return
    tools = {ref: tool_of(ref, settings) for ref in missing}
    listed = "\n".join(f"    {ref}" + (f"  (components.{tools[ref]})" if tools[ref] else "") for ref in missing)
    first_error = next(iter(missing.values()))
    off = sorted({t for t in tools.values() if t})
    buildable = [t for t in off if t in LOCAL_BUILD_TOOLS and not settings.registry_mirror]
    ways = [f"set observability:registryMirror in {stack_file} to a registry that serves them "
            "(e.g. `observability:registryMirror: mirror.example.com/hub`)"]
    if off:
        ways.append(f"switch those components off in {stack_file} (under observability:components: "
                    + ", ".join(f"{t}: {{enabled: false}}" for t in off) + ")")
    if buildable:
        ways.append(f"build {', '.join(buildable)} locally from Go modules: python3 scripts/build-local-images.py")
    result.problems.append(
        f"{len(missing)} image(s) are not on the Docker host and cannot be pulled ({first_error}):\n{listed}\n"
        "  Nothing was created. Ways out: " + "; or ".join(ways) + ".")


def check(stack: str, work_dir: Path, engine: str, online: bool) -> Result:
    result = Result()
    settings = load(work_dir, stack, result)
    check_cli(engine, result)
    if settings is None:
        return result
    check_passphrase(work_dir, stack, settings, result)
    config = stack_doc(work_dir, stack).get("config") or {}
    run = declared(stack, config)
    if run.error:
        result.problems.append(run.error)
        return result
    packages = {r.type.split(":")[0] for r in run.resources if r.custom} - {"pulumi"}
    packages |= {r.type.split(":")[2] for r in run.resources if r.type.startswith("pulumi:providers:")}
    check_plugins(packages, engine, online, result)
    if settings.target == "docker" and check_docker_engine(settings, result):
        refs = sorted({r.inputs["name"] for r in run.of_type("docker:index/remoteImage:RemoteImage")})
        check_images(refs, settings, f"Pulumi.{stack}.yaml", result)
    return result


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("--engine", choices=["installed", "installer", "build", "none"], required=True)
    parser.add_argument("--online", choices=["0", "1"], default="0")
    parser.add_argument("--work-dir", default=str(ROOT))
    args = parser.parse_args(argv)
    result = check(args.stack, Path(args.work_dir), args.engine, args.online == "1")
    if result.problems:
        for problem in result.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    if result.generate_passphrase is not None:
        result.generate_passphrase.write_text(secrets.token_urlsafe(32) + "\n")
        result.generate_passphrase.chmod(0o600)
        result.notes.append(f"dev stack: generated a passphrase into {PASSPHRASE_FILE} (git-ignored; keep it: "
                            f"it decrypts this stack's secrets)")
    for note in result.notes:
        print(note, file=sys.stderr)
    for name, value in result.exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
