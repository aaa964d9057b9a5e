"""Point a stack's receivers at the local sinks, keeping names, kinds, routes and teams.

Works on the stack's raw config (after `secure:` values were decrypted), before `load_settings`:
every receiver in `alerting.receivers` and every inline team receiver keeps its name and its
kinds; only where each kind delivers changes:
- slack: `apiUrl` -> `<sink>/slack/<receiver>` (channel kept);
- pagerduty: `url` (the Events v2 endpoint) -> `<sink>/pagerduty/<receiver>`, `routingKey` ->
  `e2e-routing-key-<receiver>`;
- email: `smarthost` -> that receiver's SMTP sink, `requireTls: false` (the sink has no TLS),
  `authPassword` (when set) -> `e2e-smtp-password-<receiver>`; to/from/authUsername kept;
- webhook: `url` -> `<sink>/webhook/<receiver>`.
A receiver with no kinds (dev's `null`) stays a null receiver.
"""

from __future__ import annotations

import copy
from typing import Callable

from tests.e2e.http_sink import HttpSink


def routing_key(receiver: str) -> str:
    return f"e2e-routing-key-{receiver}"


def smtp_password(receiver: str) -> str:
    return f"e2e-smtp-password-{receiver}"


def _point(receiver: dict, name: str, sink: HttpSink, smarthost: Callable[[str], str]) -> dict:
    out = copy.deepcopy(receiver)
    if "slack" in out:
        out["slack"]["apiUrl"] = sink.url("slack", name)
    if "pagerduty" in out:
        out["pagerduty"].update(routingKey=routing_key(name), url=sink.url("pagerduty", name))
    if "email" in out:
        out["email"].update(smarthost=smarthost(name), requireTls=False)
        if "authPassword" in out["email"]:
            out["email"]["authPassword"] = smtp_password(name)
    if "webhook" in out:
        out["webhook"]["url"] = sink.url("webhook", name)
    return out


def pointed_at_sinks(raw: dict, sink: HttpSink, smarthost: Callable[[str], str]) -> dict:
    """A copy of `raw` (keys without the namespace) whose receivers deliver to the sinks.

    `smarthost(receiver name)` returns the `host:port` of that email receiver's SMTP sink.
    """
    raw = copy.deepcopy(raw)
    alerting = raw.get("alerting") or {}
    if "receivers" in alerting:  # else the preset's receivers apply (dev: one null receiver)
        alerting["receivers"] = [_point(r, r["name"], sink, smarthost) for r in alerting["receivers"]]
    for team in raw.get("teams") or []:
        if isinstance(team.get("receiver"), dict):
            name = team["receiver"].get("name") or f"team-{team['name']}"
            team["receiver"] = _point(team["receiver"], name, sink, smarthost)
    return raw
