"""What application stacks read by StackReference: URLs and the telemetry environment."""

from observability_stack.components.stack import telemetry_env
from observability_stack.config import load_settings
from tests.harness import run_stack

NS = "observability:"


def test_dev_outputs_point_at_the_bind_address():
    r = run_stack("dev")
    env = r.outputs["telemetryEnv"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == r.outputs["urls"]["collector"]["otlp-grpc"] == "http://127.0.0.1:4317"
    assert env["PYROSCOPE_SERVER_ADDRESS"] == "http://127.0.0.1:4040"
    assert all(u.startswith("http://127.0.0.1:") for tool in r.outputs["urls"].values() for u in tool.values())
    assert set(r.outputs["urls"]) == {"prometheus", "alertmanager", "loki", "tempo", "mimir", "pyroscope",
                                      "collector", "grafana"}
    assert r.secret_outputs == {"grafanaAdminPassword"}


def test_prod_outputs_are_in_cluster_urls():
    r = run_stack("prod")
    env = r.outputs["telemetryEnv"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector.observability.svc.cluster.local:4317"
    assert r.outputs["urls"]["grafana"]["http"] == "http://grafana.observability.svc.cluster.local:3000"


def test_sampling_happens_once():
    # Tail sampling in the collector: SDKs send everything, the collector keeps sampling.traces.
    prod = load_settings({"alerting": {"receivers": [{"name": "w", "webhook": {"url": "u"}}],
                                       "routes": {"critical": "w", "warning": "w"}},
                          "objectStorage": {"s3": {"region": "eu-west-1", "bucket": "example-bucket"}}}, stack="prod")
    assert telemetry_env(prod, "x", None)["OTEL_TRACES_SAMPLER_ARG"] == "1.0"
    # Without the collector, apps send to Tempo and the SDK applies the environment's ratio.
    r = run_stack("prod", {NS + "components": {"collector": {"enabled": False}}})
    env = r.outputs["telemetryEnv"]
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.05"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tempo.observability.svc.cluster.local:4317"
