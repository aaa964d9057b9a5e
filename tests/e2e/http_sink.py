"""One loopback HTTP server standing in for Slack, PagerDuty and generic webhooks.

Each receiver gets its own URL, `/<service>/<receiver name>` with service one of `slack`,
`pagerduty`, `webhook`; every POST is recorded with its parsed JSON body. The answers are what
the real services send back, so Alertmanager counts the notification as delivered:
- Slack incoming webhook: 200 with body `ok`;
- PagerDuty Events API v2: 202 with `{"status": "success", "dedup_key": ...}`;
- webhook: 200.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

SERVICES = ("slack", "pagerduty", "webhook")


@dataclass(frozen=True)
class Delivery:
    service: str  # slack | pagerduty | webhook | email (email: see smtp_sink)
    receiver: str
    body: Any  # parsed JSON (email: the parsed message)
    headers: dict


class Deliveries:
    """A thread-safe list of deliveries the test waits on (shared by the HTTP and SMTP sinks)."""

    def __init__(self) -> None:
        self._items: list[Delivery] = []
        self._changed = threading.Condition()

    def add(self, delivery: Delivery) -> None:
        with self._changed:
            self._items.append(delivery)
            self._changed.notify_all()

    def all(self) -> list[Delivery]:
        with self._changed:
            return list(self._items)

    def clear(self) -> None:
        with self._changed:
            self._items.clear()

    def wait_for(self, done: Callable[[list[Delivery]], bool], timeout: float) -> bool:
        """Block until `done(all deliveries)` is true; False when `timeout` runs out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done(list(self._items)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
            return True


class _Handler(BaseHTTPRequestHandler):
    server: "HttpSink"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 2 or parts[0] not in SERVICES:
            self.send_error(404)
            return
        service, receiver = parts
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        self.server.deliveries.add(Delivery(service, receiver, body, dict(self.headers)))
        if service == "pagerduty":
            dedup = body.get("dedup_key", "") if isinstance(body, dict) else ""
            self._answer(202, json.dumps({"status": "success", "message": "Event processed",
                                          "dedup_key": dedup}), "application/json")
        elif service == "slack":
            self._answer(200, "ok", "text/plain")
        else:
            self._answer(200, "", "text/plain")

    def _answer(self, status: int, text: str, content_type: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # quiet
        pass


class HttpSink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, deliveries: Optional[Deliveries] = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.deliveries = deliveries or Deliveries()
        self._thread = threading.Thread(target=self.serve_forever, name="http-sink", daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, service: str, receiver: str) -> str:
        return f"http://127.0.0.1:{self.port}/{service}/{receiver}"

    def __enter__(self) -> "HttpSink":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
