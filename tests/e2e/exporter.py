"""A loopback /metrics endpoint whose counters grow with time, to make the seed's alerts fire.

`Exporter(text_at)` serves `text_at(seconds since start)` in the Prometheus text format. The
bodies below are chosen against the rules in components/rules.py:
- `app_metrics`: `http_requests_total` with 20% status 500 (HighErrorRate: 5xx ratio > 0.05)
  and every request taking ~3 s (HighLatency: p95 of `http_request_duration_seconds` > 1 s);
- `payments_metrics`: `payments_failed_total` growing 1000/s (the payments team's
  PaymentsFailing: `sum(rate(payments_failed_total[5m])) > 1`). The window is not scaled, and a
  rate over [5m] with only seconds of samples is close to increase / 300 s, so the counter grows
  far faster than the threshold; the ratios above do not care;
- `stub_metrics`: a healthy target with one gauge (stands in for stack tools that are not running).
ServiceDown needs no exporter: a job pointing at a closed port has `up == 0`.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

REQUESTS_PER_SECOND = 100.0
ERROR_RATIO = 0.2
LATENCY_SECONDS = 3.0
BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0)
PAYMENT_FAILURES_PER_SECOND = 1000.0


def app_metrics(t: float) -> str:
    total = REQUESTS_PER_SECOND * t
    errors, ok = total * ERROR_RATIO, total * (1 - ERROR_RATIO)
    lines = [
        "# TYPE http_requests_total counter",
        f'http_requests_total{{endpoint="/checkout",status="200"}} {ok}',
        f'http_requests_total{{endpoint="/checkout",status="500"}} {errors}',
        "# TYPE http_request_duration_seconds histogram",
    ]
    for le in BUCKETS:
        lines.append(f'http_request_duration_seconds_bucket{{endpoint="/checkout",le="{le}"}} '
                     f"{total if le >= LATENCY_SECONDS else 0}")
    lines += [
        f'http_request_duration_seconds_bucket{{endpoint="/checkout",le="+Inf"}} {total}',
        f'http_request_duration_seconds_sum{{endpoint="/checkout"}} {total * LATENCY_SECONDS}',
        f'http_request_duration_seconds_count{{endpoint="/checkout"}} {total}',
    ]
    return "\n".join(lines) + "\n"


def payments_metrics(t: float) -> str:
    return f"# TYPE payments_failed_total counter\npayments_failed_total {PAYMENT_FAILURES_PER_SECOND * t}\n"


def stub_metrics(t: float) -> str:
    return "# TYPE e2e_stub_up gauge\ne2e_stub_up 1\n"


class _Handler(BaseHTTPRequestHandler):
    server: "Exporter"

    def do_GET(self) -> None:  # noqa: N802
        body = self.server.text_at(time.monotonic() - self.server.started).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Exporter(ThreadingHTTPServer):
    """Serves the same body on every path (team jobs may use any `metricsPath`)."""

    daemon_threads = True

    def __init__(self, text_at: Callable[[float], str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.text_at = text_at
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self.serve_forever, name="exporter", daemon=True)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> "Exporter":
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
