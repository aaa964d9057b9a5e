"""Drive the example service: normal traffic, then a 5xx burst, then slow requests.

    python load.py --url http://127.0.0.1:8000 [--seconds 20] [--rps 20] [--phases normal,errors,slow]

Each phase sends `--rps` requests per second for `--seconds` to /orders/<n>:
- normal: every request succeeds quickly;
- errors: half the requests answer 500 (`?fail=true`), the rest succeed;
- slow:   every request takes `--slow-delay` seconds (default 1.5, above the seed's 1 s p95 threshold).
Prints one JSON object: per phase, the status counts and the trace ids the service reported
(`x-trace-id`) for failed and slow requests, which is what a test needs to find them again.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def _get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers.get("x-trace-id", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("x-trace-id", "")
    except OSError:
        return 0, ""


def run_phase(base: str, phase: str, seconds: float, rps: float, slow_delay: float) -> dict:
    statuses: dict[str, int] = {}
    error_traces: list[str] = []
    slow_traces: list[str] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        query = ""
        if phase == "errors" and n % 2 == 0:
            query = "?fail=true"
        elif phase == "slow":
            query = f"?delay={slow_delay}"
        status, trace_id = _get(f"{base}/orders/{n}{query}", timeout=slow_delay + 10)
        with lock:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if status >= 500 and trace_id:
                error_traces.append(trace_id)
            if phase == "slow" and trace_id:
                slow_traces.append(trace_id)

    total = int(seconds * rps)
    start = time.monotonic()
    # Enough workers that slow requests do not lower the request rate.
    with ThreadPoolExecutor(max_workers=max(4, int(rps * (slow_delay + 1)) if phase == "slow" else 8)) as pool:
        for n in range(total):
            pause = start + n / rps - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            pool.submit(one, n)
    return {"requests": total, "statuses": statuses, "error_traces": error_traces, "slow_traces": slow_traces}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rps", type=float, default=20)
    parser.add_argument("--slow-delay", type=float, default=1.5)
    parser.add_argument("--phases", default="normal,errors,slow")
    args = parser.parse_args()
    result = {}
    for phase in args.phases.split(","):
        if phase not in ("normal", "errors", "slow"):
            parser.error(f"--phases: {phase!r} is not a phase (normal, errors, slow)")
        result[phase] = run_phase(args.url.rstrip("/"), phase, args.seconds, args.rps, args.slow_delay)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
