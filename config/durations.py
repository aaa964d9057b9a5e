"""Durations and quantities in the syntax users already know.

Durations follow Prometheus' duration syntax (https://prometheus.io/docs/prometheus/latest/
configuration/configuration/#duration): units ms, s, m, h, d, w, y, largest first, e.g. `90m`,
`12h`, `7d`, `2w`, `1y`, `1d12h`. Tools that only understand Go durations (Tempo) get hours via
`go_duration`. Quantities follow Kubernetes resource quantities (`512Mi`, `10Gi`, `500m`).
"""

from __future__ import annotations

import re

_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
DURATION_HINT = "use e.g. 12h, 7d, 2w"


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration; ValueError when it is not one (or is zero)."""
    match = _DURATION.match(text) if isinstance(text, str) and len(text) <= 32 else None
    if not text or not match or not any(match.groups()):
        raise ValueError(f'"{text}" is not a duration ({DURATION_HINT})')
    seconds = sum(int(v) * f for v, f in zip(match.groups(), _UNITS.values()) if v)
    if seconds <= 0:
        raise ValueError(f'"{text}" must be positive ({DURATION_HINT})')
    return seconds


def go_duration(text: str) -> str:
    """The same span as a Go duration (`7d` -> `168h`), for tools built on time.ParseDuration."""
    seconds = parse_duration(text)
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{int(seconds * 1000)}ms"


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P|m)?$")


def parse_bytes(text: str) -> int:
    """Bytes in a Kubernetes memory/storage quantity (`512Mi`, `10Gi`, `1G`)."""
    match = _QUANTITY.match(text) if isinstance(text, str) else None
    if not match or match.group(2) == "m":
        raise ValueError(f'"{text}" is not a size (use e.g. 512Mi, 10Gi)')
    number, unit = float(match.group(1)), match.group(2) or ""
    value = int(number * (_BINARY.get(unit) or _DECIMAL[unit]))
    if value <= 0:
        raise ValueError(f'"{text}" must be positive (use e.g. 512Mi, 10Gi)')
    return value


def parse_cpu(text: str) -> float:
    """Cores in a Kubernetes CPU quantity (`250m`, `1`, `1.5`)."""
    match = re.match(r"^(\d+(?:\.\d+)?)(m)?$", text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f'"{text}" is not a CPU amount (use e.g. 250m, 1, 1.5)')
    value = float(match.group(1)) / (1000 if match.group(2) else 1)
    if value <= 0:
        raise ValueError(f'"{text}" must be positive (use e.g. 250m, 1, 1.5)')
    return value


def format_gibibytes(num_bytes: float) -> str:
    """A storage request rounded up to a whole Gi (what storage classes provision)."""
    gib = max(1, -(-int(num_bytes) // 2**30))
    return f"{gib}Gi"
