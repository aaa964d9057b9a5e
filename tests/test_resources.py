"""Resources derived from `ingest` (components/sizing.py): the rules, by hand-computed figures.

Every expected figure below is worked out by hand from the rule's inputs (written next to it),
not taken from the code. The constants the arithmetic uses are pinned first: changing one (after
a new `make bench-pipeline` measurement) means redoing the arithmetic here on purpose.
"""

from __future__ import annotations


import pytest

from observability_stack.components import collector, sizing
from observability_stack.components.registry import NAMES
from observability_stack.components.render import links_for, workloads_of
from observability_stack.config import ConfigError, load_settings, settings_from_stack_file
from observability_stack.config.durations import parse_bytes
from tests.tools import ROOT

MIB = 2**20


def prod(**raw):
    base = {
        "alerting": {"receivers": [{"name": "p", "webhook": {"url": "http://x"}}],
                     "routes": {"critical": "p", "warning": "p"}},
        # Prod runs highAvailability, which needs object storage for the storage backends.
        "objectStorage": {"s3": {"region": "eu-west-1", "bucket": "example-observability"}},
    }
    return load_settings({**base, **raw}, stack="prod")


def test_constants_the_arithmetic_below_assumes():
    assert sizing.PROMETHEUS_BASE_BYTES == 96 * MIB
    assert sizing.PROMETHEUS_BYTES_PER_SERIES == 2048
    assert sizing.COLLECTOR_BASE_BYTES == 64 * MIB
    assert sizing.COLLECTOR_BYTES_PER_HELD_SPAN == 2048
    assert sizing.MEMORY_LIMIT_HEADROOM == 2.0
    assert collector.DECISION_WAIT == "10s"


def test_prometheus_memory_follows_active_series():
    # 20,000 samples/s x 15 s scrape interval = 300,000 series.
    # 96 MiB + 300,000 x 2048 B = 100,663,296 + 614,400,000 = 715,063,296 B
    #   = 10.66 x 64 MiB -> request 11 x 64 = 704Mi
    # x 2 = 1,430,126,592 B = 21.31 x 64 MiB -> limit 22 x 64 = 1408Mi
    r = sizing.resources(prod(), "prometheus")
    assert (r.memory_request, r.memory_limit) == ("704Mi", "1408Mi")
    assert (r.cpu_request, r.cpu_limit) == ("500m", "2")  # the prod preset's CPU, not derived


def test_prometheus_at_the_seeds_headline():
    # 100,000 x 15 = 1,500,000 series; 100,663,296 + 3,072,000,000 = 3,172,663,296 B
    #   = 47.28 x 64 MiB -> 48 x 64 = 3072Mi; x 2 = 94.55 x 64 MiB -> 95 x 64 = 6080Mi
    r = sizing.resources(prod(ingest={"metricsSamplesPerSecond": 100_000}), "prometheus")
    assert (r.memory_request, r.memory_limit) == ("3072Mi", "6080Mi")


def test_prometheus_in_dev():
    # 2,000 x 15 = 30,000 series; 100,663,296 + 61,440,000 = 162,103,296 B = 2.42 x 64 MiB -> 192Mi
    # x 2 = 324,206,592 B = 4.83 x 64 MiB -> 320Mi
    r = sizing.resources(load_settings({}, stack="dev"), "prometheus")
    assert (r.memory_request, r.memory_limit) == ("192Mi", "320Mi")


def test_collector_memory_follows_incoming_spans_times_decision_wait():
    # 500 kept spans/s / 0.05 sampled = 10,000 spans/s in; x 10 s = 100,000 spans held.
    # 64 MiB + 100,000 x 2048 B = 67,108,864 + 204,800,000 = 271,908,864 B = 4.05 x 64 MiB -> 320Mi
    # x 2 = 543,817,728 B = 8.10 x 64 MiB -> 576Mi
    s = prod()
    r = sizing.resources(s, "collector")
    assert (r.memory_request, r.memory_limit) == ("320Mi", "576Mi")
    gateway = workloads_of("collector", s)[0]
    assert gateway.resources == r
    # GOMEMLIMIT 80% of 576 MiB = 460.8 MiB, rounded down.
    assert gateway.env == {"GOMEMLIMIT": "460MiB"}


def test_num_traces_from_the_same_figures():
    # prod: 10,000 spans/s x 10 s x 2 = 200,000
    assert sizing.num_traces(prod()) == 200_000
    # dev: 50 spans/s / 1.0 x 10 s x 2 = 1,000 -> upstream's default 50,000 is the floor
    assert sizing.num_traces(load_settings({}, stack="dev")) == 50_000
    # sampling 0.1% counts as 1%: 500 / 0.01 = 50,000 spans/s x 10 s x 2 = 1,000,000
    assert sizing.num_traces(prod(sampling={"traces": 0.001})) == 1_000_000
    # Prod samples in the collector's second tier (highAvailability); each sampler is sized for
    # the whole load, which it carries alone when the other is lost.
    rendered = collector.sampling_config(prod(), links_for(prod()))["processors"]["tail_sampling"]
    assert rendered["num_traces"] == 200_000 and rendered["decision_wait"] == "10s"
    single = prod(highAvailability=False, objectStorage=None)
    assert collector.gateway_config(single, links_for(single))["processors"]["tail_sampling"] == rendered


def test_mimir_memory_by_upstreams_capacity_rule():
    # distributor 20,000 / 25,000 x 1 GB = 0.8 GB; ingester 300,000 / 300,000 x 2.5 GB = 2.5 GB
    # 3.3e9 B = 49.17 x 64 MiB -> request 50 x 64 = 3200Mi; + 50%: 4.95e9 B = 73.76 -> 74 x 64 = 4736Mi
    r = sizing.resources(prod(highAvailability=False), "mimir")
    assert (r.memory_request, r.memory_limit) == ("3200Mi", "4736Mi")
    # Prod's 3 replicas, per replica: the distributor receives a third of the pushes
    # (20,000 / 3 / 25,000 x 1 GB = 0.27 GB), the ingester holds RF 3 / 3 replicas = all series
    # (2.5 GB): 2.77e9 B = 41.23 x 64 MiB -> 42 x 64 = 2688Mi; + 50%: 61.84 -> 62 x 64 = 3968Mi
    r = sizing.resources(prod(), "mimir")
    assert (r.memory_request, r.memory_limit) == ("2688Mi", "3968Mi")
    # dev: 2,000 samples/s: 0.08 GB + 30,000 / 300,000 x 2.5 GB = 0.33 GB < the 384Mi base floor
    # -> request 384Mi; x 1.5 = 576Mi
    r = sizing.resources(load_settings({}, stack="dev"), "mimir")
    assert (r.memory_request, r.memory_limit) == ("384Mi", "576Mi")


def test_an_explicit_value_wins_and_the_others_stay_derived():
    r = sizing.resources(prod(components={"prometheus": {"resources": {"limits": {"memory": "8Gi"}}}}), "prometheus")
    assert (r.memory_request, r.memory_limit) == ("704Mi", "8Gi")


def test_a_derived_request_gives_way_to_an_explicit_lower_limit():
    r = sizing.resources(prod(components={"prometheus": {"resources": {"limits": {"memory": "512Mi"}}}}), "prometheus")
    assert (r.memory_request, r.memory_limit) == ("512Mi", "512Mi")  # derived request: 704Mi


def test_a_derived_limit_gives_way_to_an_explicit_higher_request():
    r = sizing.resources(prod(components={"collector": {"resources": {"requests": {"memory": "3Gi"}}}}), "collector")
    assert (r.memory_request, r.memory_limit) == ("3Gi", "3Gi")


def test_two_explicit_values_in_the_wrong_order_are_one_line_naming_the_key():
    with pytest.raises(ConfigError) as err:
        prod(components={"loki": {"resources": {"requests": {"cpu": "3"}, "limits": {"cpu": "2"}}}})
    assert err.value.problems == [
        'observability:components.loki.resources.requests.cpu: "3" is more than limits.cpu "2" '
        "(a request may not exceed its limit)"
    ]


def test_tools_without_a_rule_get_the_preset_or_their_base():
    s = prod()
    loki = sizing.resources(s, "loki")  # the prod preset
    assert (loki.cpu_request, loki.memory_request, loki.cpu_limit, loki.memory_limit) == ("500m", "1Gi", "2", "2Gi")
    grafana = sizing.resources(s, "grafana")  # nothing set anywhere: the base
    assert (grafana.cpu_request, grafana.memory_request, grafana.cpu_limit, grafana.memory_limit) == (
        "100m", "128Mi", "500m", "384Mi")


def test_the_log_agent_does_not_take_the_gateways_span_derived_memory():
    s = prod()
    agent = next(w for w in workloads_of("collector", s) if w.name == collector.AGENT)
    assert (agent.resources.memory_request, agent.resources.memory_limit) == ("128Mi", "256Mi")
    assert (agent.resources.cpu_request, agent.resources.cpu_limit) == ("250m", "1")  # collector's preset CPU


@pytest.mark.parametrize("tool,key,low,high", [
    ("prometheus", "metricsSamplesPerSecond", 20_000, 200_000),
    ("collector", "spansPerSecond", 500, 5_000),
    ("mimir", "metricsSamplesPerSecond", 20_000, 200_000),
])
def test_more_ingest_means_more_memory(tool, key, low, high):
    small = sizing.resources(prod(ingest={key: low}), tool)
    big = sizing.resources(prod(ingest={key: high}), tool)
    assert big.memory_limit_bytes > small.memory_limit_bytes
    assert big.memory_request_bytes > small.memory_request_bytes


def test_dev_stack_fits_a_4_gib_laptop():
    """Memory limits of every dev workload, the log agent included, leave >= 0.75 GiB of 4 GiB."""
    s = settings_from_stack_file(str(ROOT / "Pulumi.dev.yaml"), "dev")
    total = 0
    for tool in NAMES:
        if s.enabled(tool):
            extra = {"admin_password": "unused"} if tool == "grafana" else {}
            total += sum(w.resources.memory_limit_bytes for w in workloads_of(tool, s, **extra))
    assert total <= parse_bytes("3.25Gi"), f"{total / 2**30:.2f} GiB of limits"
