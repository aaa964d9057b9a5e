"""A real Kubernetes API server (+ etcd) on loopback, for tests that `up` against it.

Binaries come from scripts/build-kube-apiserver.sh (Go modules, versions under "kube" in
components/versions.json). `apiserver` (a module-scoped fixture; import it into the test module)
starts, in a temp dir:

- etcd on 127.0.0.1 (plain HTTP client/peer ports, loopback only);
- kube-apiserver on 127.0.0.1:<free port> with TLS from a throwaway CA made by the `openssl`
  CLI, client-certificate authentication (admin: CN=obs-admin, O=system:masters),
  `--authorization-mode=RBAC`, a service-account signing key, and
  `--enable-garbage-collector=false` (no kube-controller-manager runs, so foreground deletes
  must not wait on a garbage collector that never comes);

writes a kubeconfig, waits for /readyz (bounded: 60 s) and stops both on teardown. There is no
kubelet, scheduler or controller manager: objects are stored and validated (schema, admission,
RBAC-free admin) but nothing ever runs.

`KubeAPI` is a tiny urllib client (no kubectl, no extra dependency) holding the admin cert.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from tests.harness import ROOT

STARTUP_TIMEOUT_S = 60.0
TOOLS = ("kube-apiserver", "etcd")


def kube_bin_dir() -> Path:
    return Path(subprocess.run([str(ROOT / "scripts" / "build-kube-apiserver.sh"), "--print-path"],
                               capture_output=True, text=True, check=True).stdout.strip())


def require_binaries() -> Path:
    """The bin dir; fails the test (skips only with OBS_ALLOW_MISSING_TOOLS=1) when not built."""
    bin_dir = kube_bin_dir()
    missing = [t for t in TOOLS if not (bin_dir / t).is_file()]
    if shutil.which("openssl") is None:
        missing.append("openssl (Debian package openssl)")
    if missing:
        message = f"{', '.join(missing)} missing: run scripts/build-kube-apiserver.sh"
        if os.environ.get("OBS_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return bin_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """ca.{crt,key}; apiserver.{crt,key} for 127.0.0.1/localhost; admin.{crt,key}; sa.{key,pub}."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=obs-test-ca", cwd=d)
    (d / "apiserver.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
    for name, subj, ext in (("apiserver", "/CN=kube-apiserver", "apiserver.ext"),
                            ("admin", "/O=system:masters/CN=obs-admin", "client.ext")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subj, cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", "-extfile", ext, cwd=d)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)


def write_kubeconfig(path: Path, server: str, pki: Path) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "obs-test", "preferences": {},
        "clusters": [{"name": "obs-test", "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [{"name": "obs-admin", "user": {"client-certificate-data": b64("admin.crt"),
                                                 "client-key-data": b64("admin.key")}}],
        "contexts": [{"name": "obs-test", "context": {"cluster": "obs-test", "user": "obs-admin"}}],
    }
    path.write_text(json.dumps(doc, indent=2))  # JSON is YAML


class KubeAPIError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


class KubeAPI:
    """Minimal REST client for the test API server (admin client certificate)."""

    def __init__(self, server: str, pki: Path):
        self.server = server
        self.ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                timeout: float = 10.0) -> Any:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        req.add_header("Accept", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise KubeAPIError(e.code, e.read().decode(errors="replace")) from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def items(self, path: str) -> list[dict]:
        return self.get(path)["items"]

    def names(self, path: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.items(path)}


@dataclass
class APIServer:
    server: str
    kubeconfig: Path
    pki: Path
    api: KubeAPI
    logs: Path
    startup_s: float


def _stop(proc: Optional[subprocess.Popen]) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def start_apiserver(base: Path, bin_dir: Path) -> Iterator[APIServer]:
    """Generator: yields a ready APIServer, stops etcd and kube-apiserver when resumed."""
    start = time.perf_counter()
    pki = base / "pki"
    make_pki(pki)
    logs = base / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    etcd_client, etcd_peer, secure = free_port(), free_port(), free_port()
    etcd_proc = api_proc = None
    try:
        etcd_proc = subprocess.Popen(
            [str(bin_dir / "etcd"), "--name", "obs-test", "--data-dir", str(base / "etcd"),
             "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
             "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
             "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
             "--initial-cluster", f"obs-test=http://127.0.0.1:{etcd_peer}",
             "--log-level", "warn", "--unsafe-no-fsync"],
            stdout=subprocess.DEVNULL, stderr=open(logs / "etcd.log", "w"), cwd=base)
        api_proc = subprocess.Popen(
            [str(bin_dir / "kube-apiserver"),
             "--etcd-servers", f"http://127.0.0.1:{etcd_client}",
             "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
             "--secure-port", str(secure), "--cert-dir", str(base / "certs"),
             "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
             "--client-ca-file", str(pki / "ca.crt"),
             "--authorization-mode", "RBAC", "--anonymous-auth=false",
             "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
             "--service-account-key-file", str(pki / "sa.pub"),
             "--service-account-signing-key-file", str(pki / "sa.key"),
             "--service-cluster-ip-range", "10.0.0.0/24",
             "--allow-privileged=true",
             # No controller manager: deletes must not wait for a garbage collector.
             "--enable-garbage-collector=false",
             "--endpoint-reconciler-type", "none",
             "--enable-priority-and-fairness=false",
             "--v", "1"],
            stdout=subprocess.DEVNULL, stderr=open(logs / "kube-apiserver.log", "w"), cwd=base)
        server = f"https://127.0.0.1:{secure}"
        api = KubeAPI(server, pki)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            for name, proc, log in (("etcd", etcd_proc, "etcd.log"), ("kube-apiserver", api_proc, "kube-apiserver.log")):
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{_tail(logs / log)}")
            try:
                if api.request("GET", "/readyz", timeout=2) == "ok":
                    break
            except (KubeAPIError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kube-apiserver not ready after {STARTUP_TIMEOUT_S:.0f}s:\n"
                                   f"{_tail(logs / 'kube-apiserver.log')}")
            time.sleep(0.5)
        kubeconfig = base / "kubeconfig"
        write_kubeconfig(kubeconfig, server, pki)
        yield APIServer(server, kubeconfig, pki, api, logs, time.perf_counter() - start)
    finally:
        _stop(api_proc)
        _stop(etcd_proc)


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory) -> Iterator[APIServer]:
    bin_dir = require_binaries()
    yield from start_apiserver(tmp_path_factory.mktemp("kube"), bin_dir)
