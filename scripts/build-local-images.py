#!/usr/bin/env python3
"""Build local Docker images of the tools whose source may be built here — Prometheus,
Alertmanager and the OpenTelemetry collector — from the binaries our scripts build from Go modules
at the pinned versions, tagged exactly as the stack references them (components/versions.json
`images`), so the Docker target's `RemoteImage` finds them on the daemon without a registry.

    python3 scripts/build-local-images.py [TOOL...]  build (or keep) the images (default: all three)
    python3 scripts/build-local-images.py --list     print the tags it builds, build nothing

Grafana, Loki, Tempo, Mimir and Pyroscope are AGPL-licensed and are never built here.

Each image copies the upstream image's layout (read from the upstream Dockerfiles at the pinned
tags: prometheus/prometheus and prometheus/alertmanager `Dockerfile`, whose base is
quay.io/prometheus/busybox = prometheus/busybox `glibc/Dockerfile`; the collector's is
open-telemetry/opentelemetry-collector-releases `distributions/otelcol-contrib/Dockerfile`):
same uid/gid and USER, binary paths, ENTRYPOINT/CMD, WORKDIR, VOLUME, EXPOSE, config and data
paths with their owners and modes, and the same health-check tools (busybox `wget`). Differences,
also listed in docs/local-images.md:

- busybox is Debian's `busybox-static` (one static binary, applets as symlinks in /bin), not the
  glibc build from the busybox image; /etc/passwd and /etc/group hold only root and nobody;
  CA certificates, /etc/services, /etc/nsswitch.conf and zoneinfo come from this host's Debian
  packages (ca-certificates, netbase, tzdata) as in prometheus/busybox, when installed;
- Prometheus is built without the `builtinassets` tag (the module has no built web UI): the UI
  pages are absent, the HTTP API is complete (scripts/build-prom-tools.sh); no
  npm_licenses.tar.bz2;
- the collector binary is `otelcol-obs` (scripts/build-otelcol.sh: only the components our
  configs use, `--version` says otelcol-obs) installed as /otelcol-contrib; its default
  /etc/otelcol-contrib/config.yaml is a minimal OTLP-to-debug config of ours (the stack uploads
  its own config over it);
- one layer made with `docker import`, label `observability.local-build` = content hash.

The build is skipped when an image with the same tag and content hash exists.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = json.loads((ROOT / "components" / "versions.json").read_text())
TOOLS = ("prometheus", "alertmanager", "collector")
NOBODY = 65534
COLLECTOR_UID = 10001
BUSYBOX = "/bin/busybox"  # Debian package busybox-static
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # the busybox image's
LABEL = "observability.local-build"


class BuildError(Exception):
    pass


def tag(tool: str) -> str:
    entry = VERSIONS["images"][tool]
    return f"{entry['repository']}:{entry['tag']}"


def run(argv: list[str], **kwargs) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(argv)} failed:\n{result.stderr.strip()}")
    return result.stdout


def module_dir(module: str, version: str) -> Path:
    info = json.loads(run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd="/"))
    if info.get("Error"):
        raise BuildError(f"go mod download {module}@{version}: {info['Error']}")
    return Path(info["Dir"])


class Rootfs:
    """A root filesystem built as a tar stream with explicit owners and modes (mtime 0)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.dirs: set[str] = set()

    def _info(self, path: str, kind: bytes, mode: int, uid: int, gid: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, 0
        return info

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/" + "/".join(parts[:i])
            if parent not in self.dirs:
                self.dir(parent)
        if path not in self.dirs:
            self.dirs.add(path)
            self.tar.addfile(self._info(path, tarfile.DIRTYPE, mode, uid, gid))

    def file(self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        self.dir(os.path.dirname(path))
        info = self._info(path, tarfile.REGTYPE, mode, uid, gid)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def copy(self, path: str, source: Path, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        self.file(path, source.read_bytes(), mode, uid, gid)

    def symlink(self, path: str, target: str) -> None:
        self.dir(os.path.dirname(path))
        info = self._info(path, tarfile.SYMTYPE, 0o777, 0, 0)
        info.linkname = target
        self.tar.addfile(info)

    def tree(self, path: str, source: Path) -> None:
        """A host directory (e.g. zoneinfo), root-owned, files 0644, symlinks kept."""
        for current, dirnames, filenames in os.walk(source):
            rel = os.path.relpath(current, source)
            base = path if rel == "." else f"{path}/{rel}"
            self.dir(base)
            for name in sorted(dirnames):
                full = Path(current) / name
                if full.is_symlink():
                    self.symlink(f"{base}/{name}", os.readlink(full))
            dirnames[:] = sorted(d for d in dirnames if not (Path(current) / d).is_symlink())
            for name in sorted(filenames):
                full = Path(current) / name
                if full.is_symlink():
                    self.symlink(f"{base}/{name}", os.readlink(full))
                else:
                    self.copy(f"{base}/{name}", full)

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def ca_certificates(fs: Rootfs) -> None:
    certs = Path("/etc/ssl/certs/ca-certificates.crt")
    if not certs.is_file():
        raise BuildError("no /etc/ssl/certs/ca-certificates.crt: apt-get install ca-certificates")
    fs.copy("/etc/ssl/certs/ca-certificates.crt", certs)


def is_static(path: Path) -> bool:
    """No PT_INTERP program header: the ELF binary needs no dynamic loader (64-bit little endian)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def busybox_base(fs: Rootfs) -> None:
    """quay.io/prometheus/busybox: the busybox image plus nsswitch.conf, CA certificates,
    zoneinfo and /etc/services from Debian (prometheus/busybox glibc/Dockerfile)."""
    busybox = Path(BUSYBOX)
    if not busybox.is_file() or not is_static(busybox):
        raise BuildError(f"no static {BUSYBOX}: apt-get install busybox-static")
    applets = run([BUSYBOX, "--list"]).split()
    if "wget" not in applets or "chown" not in applets:
        raise BuildError(f"{BUSYBOX} lacks wget or chown (the health check and the volume chown use them)")
    for d, mode in (("/bin", 0o755), ("/etc", 0o755), ("/home", 0o755), ("/root", 0o700), ("/tmp", 0o1777),
                    ("/usr", 0o755), ("/var", 0o755)):
        fs.dir(d, mode)
    fs.copy("/bin/busybox", busybox, 0o755)
    for applet in sorted(set(applets) - {"busybox"}):
        fs.symlink(f"/bin/{applet}", "busybox")
    fs.file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    fs.file("/etc/group", b"root:x:0:\nnobody:x:65534:\n")
    nsswitch = Path("/etc/nsswitch.conf")
    fs.file("/etc/nsswitch.conf", nsswitch.read_bytes() if nsswitch.is_file() else b"hosts: files dns\n")
    ca_certificates(fs)
    if Path("/etc/services").is_file():
        fs.copy("/etc/services", Path("/etc/services"))
    if Path("/usr/share/zoneinfo").is_dir():
        fs.tree("/usr/share/zoneinfo", Path("/usr/share/zoneinfo"))


def prom_bins() -> tuple[Path, Path]:
    """The version-keyed bin dirs of scripts/build-prom-tools.sh; built only when incomplete (the
    build takes a lock shared by every version, which another build may hold for long)."""
    script = str(ROOT / "scripts" / "build-prom-tools.sh")
    prom, am = (Path(p) for p in run([script, "--print-path"]).strip().split(":"))
    if not all(os.access(d / b, os.X_OK) for d, b in ((prom, "prometheus"), (prom, "promtool"),
                                                         (am, "alertmanager"), (am, "amtool"))):
        out = run([script], stdin=subprocess.DEVNULL).split()
        prom, am = Path(out[-2]), Path(out[-1])
    return prom, am


def prometheus_image(prom_bin: Path) -> tuple[bytes, list[str]]:
    mod = VERSIONS["go_modules"]["prometheus"]
    src = module_dir(mod["module"], mod["version"])
    fs = Rootfs()
    busybox_base(fs)
    fs.copy("/bin/prometheus", prom_bin / "prometheus", 0o755)
    fs.copy("/bin/promtool", prom_bin / "promtool", 0o755)
    fs.copy("/LICENSE", src / "LICENSE")
    fs.copy("/NOTICE", src / "NOTICE")
    # RUN chown -R nobody:nobody /etc/prometheus /prometheus && chmod g+w /prometheus
    fs.dir("/etc/prometheus", 0o755, NOBODY, NOBODY)
    fs.copy("/etc/prometheus/prometheus.yml", src / "documentation/examples/prometheus.yml", 0o644, NOBODY, NOBODY)
    fs.dir("/prometheus", 0o775, NOBODY, NOBODY)
    changes = [
        f"ENV {PATH_ENV}",
        "LABEL org.opencontainers.image.title=Prometheus",
        "LABEL org.opencontainers.image.source=https://github.com/prometheus/prometheus",
        "WORKDIR /prometheus",
        "USER nobody",
        "EXPOSE 9090",
        'VOLUME ["/prometheus"]',
        'ENTRYPOINT ["/bin/prometheus"]',
        'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]',
    ]
    return fs.bytes(), changes


def alertmanager_image(am_bin: Path) -> tuple[bytes, list[str]]:
    mod = VERSIONS["go_modules"]["alertmanager"]
    src = module_dir(mod["module"], mod["version"])
    fs = Rootfs()
    busybox_base(fs)
    fs.copy("/bin/amtool", am_bin / "amtool", 0o755)
    fs.copy("/bin/alertmanager", am_bin / "alertmanager", 0o755)
    # RUN mkdir -p /alertmanager && chown -R nobody:nobody /etc/alertmanager /alertmanager
    #     && chmod -R g+w /alertmanager
    fs.dir("/etc/alertmanager", 0o755, NOBODY, NOBODY)
    fs.copy("/etc/alertmanager/alertmanager.yml", src / "examples/ha/alertmanager.yml", 0o644, NOBODY, NOBODY)
    fs.dir("/alertmanager", 0o775, NOBODY, NOBODY)
    changes = [
        f"ENV {PATH_ENV}",
        "LABEL org.opencontainers.image.source=https://github.com/prometheus/alertmanager",
        "USER nobody",
        "EXPOSE 9093",
        'VOLUME ["/alertmanager"]',
        "WORKDIR /alertmanager",
        'ENTRYPOINT ["/bin/alertmanager"]',
        'CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]',
    ]
    return fs.bytes(), changes


# The image's default config (upstream ships one from the releases repo); the stack uploads its
# own. Only components otelcol-obs has.
COLLECTOR_DEFAULT_CONFIG = b"""\
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
exporters:
  debug: {}
service:
  extensions: [health_check]
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
    metrics: {receivers: [otlp], exporters: [debug]}
    logs: {receivers: [otlp], exporters: [debug]}
"""


def collector_image(otelcol: Path) -> tuple[bytes, list[str]]:
    fs = Rootfs()
    ca_certificates(fs)
    fs.copy("/otelcol-contrib", otelcol, 0o755)
    fs.file("/etc/otelcol-contrib/config.yaml", COLLECTOR_DEFAULT_CONFIG)
    changes = [
        f"USER {COLLECTOR_UID}:{COLLECTOR_UID}",
        'ENTRYPOINT ["/otelcol-contrib"]',
        'CMD ["--config", "/etc/otelcol-contrib/config.yaml"]',
        "EXPOSE 4317 4318 55679",
    ]
    return fs.bytes(), changes


def existing_hash(ref: str) -> str | None:
    result = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", ref],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return (json.loads(result.stdout) or {}).get(LABEL)


def import_image(ref: str, rootfs: bytes, changes: list[str]) -> str:
    digest = hashlib.sha256(rootfs + "\n".join(changes).encode()).hexdigest()[:16]
    if existing_hash(ref) == digest:
        return f"{ref}: cached ({digest})"
    argv = ["docker", "import"]
    for change in [*changes, f"LABEL {LABEL}={digest}"]:
        argv += ["--change", change]
    result = subprocess.run([*argv, "-", ref], input=rootfs, capture_output=True)
    if result.returncode != 0:
        raise BuildError(f"docker import {ref} failed:\n{result.stderr.decode().strip()}")
    return f"{ref}: built ({digest}, {len(rootfs) // (1024 * 1024)} MiB)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tools", nargs="*", metavar="TOOL", help=f"any of {', '.join(TOOLS)} (default: all)")
    parser.add_argument("--list", action="store_true", help="print the image tags, build nothing")
    args = parser.parse_args(argv)
    tools = args.tools or list(TOOLS)
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        parser.error(f"unknown tool(s) {', '.join(unknown)}: only {', '.join(TOOLS)} are built here "
                     "(Grafana, Loki, Tempo, Mimir and Pyroscope are AGPL and never built)")
    if args.list:
        print("\n".join(tag(t) for t in tools))
        return 0
    try:
        if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
            raise BuildError("no Docker engine answers (docker info failed): start dockerd or set DOCKER_HOST")
        builders = {
            "prometheus": lambda: prometheus_image(prom_bins()[0]),
            "alertmanager": lambda: alertmanager_image(prom_bins()[1]),
            "collector": lambda: collector_image(Path(run([str(ROOT / "scripts" / "build-otelcol.sh")],
                                                          stdin=subprocess.DEVNULL).split()[-1])),
        }
        for tool in tools:
            rootfs, changes = builders[tool]()
            print(import_image(tag(tool), rootfs, changes), flush=True)
    except BuildError as error:
        print(f"build-local-images: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
