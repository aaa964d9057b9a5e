"""Start a real binary in its own process group, wait until it answers, always stop it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional, Sequence


def free_port() -> int:
    """A loopback port nobody listens on right now (bind to 0, read it, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def http_post_json(url: str, body: Any, timeout: float = 5) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


class Process:
    """A child process whose output goes to `log`; `stop()` is safe to call any number of times."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, cwd: Optional[Path] = None,
                 env: Optional[dict[str, str]] = None):
        """`env`: variables added to this process' environment."""
        self.name, self.argv, self.log = name, list(argv), log
        self._log_file = open(log, "wb")
        # Own session: stop() signals the whole group, nothing outlives the test.
        self.proc = subprocess.Popen(self.argv, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True,
                                     env={**os.environ, **env} if env else None)

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def wait_ready(self, url: str, timeout: float = 30) -> None:
        """Poll `url` until it answers 200; fail with the process' log if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready at {url} after {timeout}s:\n{self.output()}")

    def stop(self, grace: float = 5) -> None:
        stop_group(self.proc, grace)
        self._log_file.close()

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_group(proc: subprocess.Popen, grace: float = 5) -> None:
    """SIGTERM the process group (started with start_new_session), SIGKILL after `grace` s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)
        except ProcessLookupError:
            pass
