"""Data volume sizing: explicit sizes win, retention drives estimates, knobs stay independent."""

from __future__ import annotations

import pytest

from observability_stack.components import sizing
from observability_stack.config import load_settings
from observability_stack.config.durations import parse_bytes, parse_duration

STATEFUL = ("prometheus", "alertmanager", "grafana", "loki", "tempo", "mimir", "pyroscope")


def _settings(**raw):
    return load_settings(raw, stack="dev", secret_keys=[])


def _gib(settings, tool: str) -> int:
    return parse_bytes(sizing.volume_size(settings, tool)) // 2**30


@pytest.mark.parametrize("tool", STATEFUL)
def test_explicit_size_wins(tool):
    s = _settings(components={tool: {"storage": {"size": "123Gi"}}}, retention={"logs": "365d"})
    assert sizing.volume_size(s, tool) == "123Gi"


@pytest.mark.parametrize("tool,signal", [
    ("loki", "logs"), ("tempo", "traces"), ("mimir", "metrics"), ("pyroscope", "profiles"),
])
def test_longer_retention_grows_the_volume(tool, signal):
    ingest = {"logGbPerDay": 50, "spansPerSecond": 5000, "metricsSamplesPerSecond": 200000,
              "profileMbPerDay": 20000}
    short = _settings(ingest=ingest, retention={signal: "7d"})
    long = _settings(ingest=ingest, retention={signal: "90d"})
    assert _gib(long, tool) > _gib(short, tool)
    assert sizing.estimated_bytes(long, tool) == pytest.approx(sizing.estimated_bytes(short, tool) * 90 / 7)


def test_more_ingest_grows_the_volume():
    assert _gib(_settings(ingest={"logGbPerDay": 100}), "loki") > _gib(_settings(ingest={"logGbPerDay": 1}), "loki")


def test_changing_log_retention_changes_only_loki():
    base = _settings(ingest={"logGbPerDay": 20})
    changed = _settings(ingest={"logGbPerDay": 20}, retention={"logs": "60d"})
    differ = {t for t in STATEFUL if sizing.volume_size(base, t) != sizing.volume_size(changed, t)}
    assert differ == {"loki"}


def test_estimate_includes_headroom_and_rounds_up_to_whole_gi():
    s = _settings(ingest={"logGbPerDay": 10}, retention={"logs": "10d"})
    expected = 10e9 * 10 / sizing.LOG_COMPRESSION * sizing.HEADROOM
    assert parse_bytes(sizing.volume_size(s, "loki")) >= expected
    assert parse_bytes(sizing.volume_size(s, "loki")) - expected < 2**30
    assert sizing.volume_size(s, "loki").endswith("Gi")


def test_tiny_estimates_get_at_least_one_gi():
    s = _settings(ingest={"profileMbPerDay": 0.001}, retention={"profiles": "1d"})
    assert sizing.volume_size(s, "pyroscope") == "1Gi"


def test_stateless_tool_has_no_volume():
    with pytest.raises(ValueError):
        sizing.volume_size(_settings(), "collector")


def test_mimir_caps_prometheus_local_retention():
    with_mimir = _settings(retention={"metrics": "30d"})
    assert sizing.local_metrics_retention(with_mimir) == sizing.LOCAL_RETENTION_WITH_MIMIR
    # The long-term copy (Mimir) keeps the full retention.
    assert sizing.estimated_bytes(with_mimir, "mimir") == pytest.approx(
        with_mimir.ingest.metrics_samples_per_second * parse_duration("30d") * sizing.BYTES_PER_SAMPLE)
    without = _settings(retention={"metrics": "30d"}, components={"mimir": {"enabled": False}})
    assert sizing.local_metrics_retention(without) == "30d"
    assert sizing.estimated_bytes(without, "prometheus") > sizing.estimated_bytes(with_mimir, "prometheus")


def test_short_metrics_retention_is_not_raised_to_the_cap():
    assert sizing.local_metrics_retention(_settings(retention={"metrics": "1d"})) == "1d"
