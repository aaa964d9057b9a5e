"""The e2e test's model of Loki's OTLP ingestion and of Grafana's "logs for this span" query
(tests/test_python_service_e2e.py), checked on hand-made records so the judge itself is judged."""

from __future__ import annotations

from components import grafana
from tests.e2e.otlp_sinks import LogRecord
from tests.test_python_service_e2e import logql_select, logs_for_span_query, loki_view
from tests.tools import settings

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


def test_query_built_from_the_provisioned_datasource(monkeypatch):
    s = settings("dev")
    assert logs_for_span_query(s, "shop", T, S) == f'{{service_name="shop"}} |="{T}"'
    real = grafana.datasources

    def with_custom_query(settings_):
        found = real(settings_)
        tempo = next(d for d in found if d["uid"] == "tempo")
        tempo["jsonData"]["tracesToLogsV2"].update(
            customQuery=True, query='{$${__tags}} | trace_id="$${__trace.traceId}"')
        return found

    monkeypatch.setattr(grafana, "datasources", with_custom_query)
    assert logs_for_span_query(s, "shop", T, S) == f'{{service_name="shop"}} | trace_id="{T}"'
