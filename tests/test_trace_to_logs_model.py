"""The e2e test's model of Loki's OTLP ingestion and of Grafana's "logs for this span" query
(tests/test_python_service_e2e.py), checked on hand-made records so the judge itself is judged."""

from __future__ import annotations

from tests.e2e.loki_model import logql_select, logs_for_span_query, loki_view
from tests.e2e.otlp_sinks import LogRecord
from tests.scenarios import settings_for

T, S = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
OTLP = LogRecord({"service.name": "shop", "telemetry.sdk.language": "python"}, {"order_id": "7"},
                 "order_failed", T, S, "ERROR")
AGENT = LogRecord({"container.id": "ab" * 32}, {"log.file.path": "/x-json.log", "trace_id": T, "span_id": S},
                  f'{{"event": "order_failed", "trace_id": "{T}", "service": "shop"}}', "", "", "")
AGENT_NAMED = LogRecord({"service.name": "shop", **AGENT.resource}, AGENT.attributes, AGENT.body, "", "", "")
OTHER = LogRecord({"service.name": "shop"}, {}, "order_processed", "1" * 32, S, "INFO")


def test_loki_view_labels_and_structured_metadata():
    labels, metadata, line = loki_view(OTLP)
    assert labels == {"service_name": "shop"}
    assert metadata == {"order_id": "7", "telemetry_sdk_language": "python", "trace_id": T, "span_id": S}
    assert line == "order_failed"
    assert loki_view(AGENT)[0] == {"service_name": "unknown_service"}


def test_line_filter_misses_structured_metadata_label_filter_finds_it():
    records = [OTLP, AGENT, AGENT_NAMED, OTHER]
    assert logql_select(f'{{service_name="shop"}} |="{T}"', records) == [AGENT_NAMED]
    assert logql_select(f'{{service_name="shop"}} | trace_id="{T}"', records) == [OTLP, AGENT_NAMED]
    assert logql_select(f'{{service_name="unknown_service"}} |="{T}"', records) == [AGENT]


def test_query_built_from_the_provisioned_datasource():
    s = settings_for("defaults-dev")
    query = logs_for_span_query(s, "shop", T, S)
    # The provisioned custom query (issue 11): a trace_id label filter over every stream.
    assert query == f'{{service_name=~".+"}} | trace_id="{T}"'
    assert logql_select(query, [OTLP, AGENT, AGENT_NAMED, OTHER]) == [OTLP, AGENT, AGENT_NAMED]


def test_the_builtin_query_would_miss_otlp_lines():
    # What Grafana builds without a custom query (filterByTraceID): the line filter misses the
    # structured-metadata trace id of OTLP records and the agent's unnamed lines.
    assert logql_select(f'{{service_name="shop"}} |="{T}"', [OTLP, AGENT]) == []
