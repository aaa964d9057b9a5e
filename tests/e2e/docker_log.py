"""Run a process the way Docker's json-file logging driver records it, so the stack's log agent
(filelog + the `container` parser, format docker) reads its stdout from a real file.

Each stdout line becomes `{"log": "<line>\\n", "stream": "stdout", "time": "<RFC3339Nano>"}` in
`<root>/var/lib/docker/containers/<id>/<id>-json.log`, the driver's layout and record shape
(https://docs.docker.com/engine/logging/drivers/json-file/); `<id>` is a 64-hex container id.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
import threading
from pathlib import Path
from typing import Mapping, Sequence

from tests.e2e.procs import stop_group


class DockerLoggedProcess:
    def __init__(self, name: str, argv: Sequence[str], containers_dir: Path, env: Mapping[str, str],
                 stderr_log: Path) -> None:
        self.name = name
        self.container_id = hashlib.sha256(name.encode()).hexdigest()
        directory = containers_dir / self.container_id
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / f"{self.container_id}-json.log"
        self.lines: list[str] = []
        self._stderr = open(stderr_log, "wb")
        self.proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, env=dict(env), start_new_session=True)
        self._pump = threading.Thread(target=self._copy, name=f"{name}-stdout", daemon=True)
        self._pump.start()

    def _copy(self) -> None:
        with open(self.log_path, "a", buffering=1) as out:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append(line)
                now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
                out.write(json.dumps({"log": line + "\n", "stream": "stdout", "time": now}) + "\n")

    def output(self, tail: int = 50) -> str:
        return "\n".join(self.lines[-tail:])

    def stop(self, grace: float = 5) -> None:
        stop_group(self.proc, grace)
        self._pump.join(timeout=grace)
        self._stderr.close()

    def __enter__(self) -> "DockerLoggedProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
