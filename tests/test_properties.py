"""Property: any settings the loader accepts render configs that promtool and amtool accept.

Hypothesis draws stack configs across the whole model — retention, sampling, receivers of every
kind, severity routes, teams with rules and scrape targets, enabled tools, target — keeps the
ones the loader accepts (the loader is the contract: what it accepts must deploy), and judges
the rendered Prometheus config, every rule file and the Alertmanager config with the pinned
promtool 3.8.1 / amtool 0.30.0.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from observability_stack.components import alertmanager
from observability_stack.components.render import render_all
from observability_stack.config import ConfigError, load_settings
from observability_stack.components.workload import to_yaml
from tests.tools import require, with_service_account

pytestmark = pytest.mark.tools
CASES = {"tried": 0, "accepted": 0}

names = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
durations = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 400), st.sampled_from(["m", "h", "d", "w"]))
label_values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)
secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:/.-_?=&", min_size=1, max_size=40)
receiver_kinds = st.fixed_dictionaries({}, optional={
    "slack": st.fixed_dictionaries({"apiUrl": secret}, optional={"channel": st.from_regex(r"#[a-z0-9-]{1,20}", fullmatch=True)}),
    "pagerduty": st.fixed_dictionaries({"routingKey": secret}, optional={"url": st.just("https://events.example.invalid/v2/enqueue")}),
    "email": st.fixed_dictionaries(
        {"to": st.just("team@example.com"), "from": st.just("am@example.com"),
         "smarthost": st.from_regex(r"[a-z]{1,10}\.example\.com:(25|465|587)", fullmatch=True)},
        optional={"authPassword": secret, "requireTls": st.booleans()}),
    "webhook": st.fixed_dictionaries({"url": secret}),
})
metric = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)
rules = st.lists(st.fixed_dictionaries(
    {"alert": st.from_regex(r"[A-Z][A-Za-z0-9_]{0,20}", fullmatch=True),
     "expr": st.builds(lambda m, op, n: f"sum(rate({m}[5m])) {op} {n}", metric, st.sampled_from([">", "<", "=="]),
                       st.integers(0, 1000))},
    optional={"for": durations,
              "labels": st.dictionaries(st.sampled_from(["severity", "service", "tier"]),
                                        st.sampled_from(["critical", "warning", "info", "x"]), max_size=2),
              "annotations": st.dictionaries(st.sampled_from(["summary", "description"]), label_values, max_size=2)}),
    max_size=3)


@st.composite
def stack_configs(draw):
    receivers = draw(st.lists(st.builds(lambda n, k: {"name": n, **k}, names, receiver_kinds),
                              min_size=1, max_size=4, unique_by=lambda r: r["name"]))
    pick = st.sampled_from([r["name"] for r in receivers])
    teams = draw(st.lists(st.fixed_dictionaries(
        {"name": names, "receiver": st.one_of(pick, receiver_kinds.filter(bool))},
        optional={"alertRules": rules,
                  "scrapeTargets": st.lists(st.fixed_dictionaries(
                      {"job": st.from_regex(r"job-[a-z0-9]{1,8}", fullmatch=True),
                       "targets": st.lists(st.from_regex(r"[a-z]{1,8}:[1-9][0-9]{1,3}", fullmatch=True),
                                           min_size=1, max_size=3)},
                      optional={"metricsPath": st.from_regex(r"/[a-z/]{0,12}", fullmatch=True),
                                "scrapeInterval": durations}), max_size=2)}),
        max_size=3, unique_by=lambda t: t["name"]))
    environment = draw(st.sampled_from(["dev", "prod"]))
    raw = {
        "environment": environment,
        "target": draw(st.sampled_from(["docker", "kubernetes"])),
        "retention": draw(st.fixed_dictionaries({}, optional={k: durations for k in ("metrics", "traces", "profiles")})),
        "sampling": draw(st.fixed_dictionaries({}, optional={
            "traces": st.floats(0, 1, allow_nan=False), "keepErrors": st.booleans(), "slowTraceThreshold": durations})),
        "alerting": {"receivers": receivers,
                     "routes": {"critical": draw(pick), "warning": draw(pick), "default": draw(pick)}},
        "teams": teams,
        "components": {t: {"enabled": draw(st.booleans())} for t in ("grafana", "loki", "tempo", "mimir", "pyroscope")},
    }
    return environment, raw


def _check(promtool: str, amtool: str, s) -> None:
    files = render_all(s)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, text in with_service_account(files, root).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        # Alertmanager reads its *_file secrets at startup: give them the files it would have.
        secrets = root / "secrets"
        secrets.mkdir()
        for path, value in alertmanager.secret_values(s, str(secrets)).items():
            Path(path).write_text(value.get_secret_value())
        am = root / "am.yml"
        am.write_text(to_yaml(alertmanager.config(s, str(secrets))))
        rule_files = sorted(str(p) for p in (root / "prometheus" / "rules").glob("*.yml"))
        for argv in ([promtool, "check", "config", str(root / "prometheus" / "prometheus.yml")],
                     [promtool, "check", "rules", *rule_files],
                     [amtool, "check-config", str(am)]):
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"{' '.join(argv[:3])}:\n{result.stdout}\n{result.stderr}"


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(stack_configs())
def test_any_accepted_settings_render_configs_the_real_tools_accept(case):
    promtool, amtool = require("promtool"), require("amtool")
    environment, raw = case
    CASES["tried"] += 1
    try:
        s = load_settings(raw, stack=environment, secret_keys=list(raw))
    except ConfigError:
        return  # refused cleanly: nothing would deploy
    CASES["accepted"] += 1
    _check(promtool, amtool, s)


def test_property_run_accepted_enough_cases(capsys):
    with capsys.disabled():
        print(f"\nproperty: {CASES['accepted']} of {CASES['tried']} generated stack configs accepted, "
              f"all judged valid by promtool and amtool")
    assert CASES["tried"] == 0 or CASES["accepted"] >= 10
