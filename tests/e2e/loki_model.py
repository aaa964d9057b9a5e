"""Loki's view of OTLP logs and the LogQL Grafana's "logs for this span" link builds, as a small
model the end-to-end test (tests/test_python_service_e2e.py) evaluates against what the sinks
received; tests/test_trace_to_logs_model.py checks the model itself on hand-made records."""

from __future__ import annotations

import re

from observability_stack.components import grafana
from observability_stack.components.render import links_for


# Loki's default `distributor.otlp_config.default_resource_attributes_as_index_labels` (Loki docs,
# "Ingesting logs to Loki using OpenTelemetry": service.name, service.namespace,
# service.instance.id, deployment.environment, cloud.*, container.name, k8s.* ...). A record's
# index labels are those resource attributes with `.` -> `_`; everything else (other resource
# attributes, log attributes, trace_id, span_id) becomes structured metadata, which label filters
# see but line filters do not.
INDEX_RESOURCE_ATTRIBUTES = (
    "service.name", "service.namespace", "service.instance.id", "deployment.environment",
    "deployment.environment.name", "cloud.region", "cloud.availability_zone", "k8s.cluster.name",
    "k8s.namespace.name", "k8s.pod.name", "k8s.container.name", "container.name", "k8s.replicaset.name",
    "k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name", "k8s.cronjob.name", "k8s.job.name",
)


def loki_view(record) -> tuple[dict, dict, str]:
    labels = {k.replace(".", "_"): str(v) for k, v in record.resource.items() if k in INDEX_RESOURCE_ATTRIBUTES}
    # Without service.name Loki labels the stream `service_name="unknown_service"`.
    labels.setdefault("service_name", "unknown_service")
    metadata = {k.replace(".", "_"): str(v) for k, v in record.attributes.items()}
    metadata.update({k.replace(".", "_"): str(v) for k, v in record.resource.items()
                     if k not in INDEX_RESOURCE_ATTRIBUTES})
    if record.trace_id:
        metadata["trace_id"], metadata["span_id"] = record.trace_id, record.span_id
    return labels, metadata, record.body


def logs_for_span_query(settings, service: str, trace_id: str, span_id: str) -> str:
    """The LogQL Grafana's Tempo datasource opens from a span, per the provisioned
    `tracesToLogsV2`: tags -> `{label="value"}` from the span's resource; with `customQuery` the
    configured query with `${__tags}`, `${__trace.traceId}`, `${__span.traceId}`, `${__span.spanId}`
    interpolated; without it Grafana's built-in query, a selector plus a line filter on the trace
    id (`|="<trace id>"`, as issue 11 describes it)."""
    tempo = next(d for d in grafana.datasources(links_for(settings)) if d["uid"] == "tempo")
    t2l = tempo["jsonData"]["tracesToLogsV2"]
    span_tags = {"service.name": service}
    tags = ", ".join(f'{t.get("value") or t["key"]}="{span_tags[t["key"]]}"'
                     for t in t2l.get("tags", []) if t["key"] in span_tags)
    if t2l.get("customQuery"):
        # Provisioning files are env-interpolated by Grafana: `$$` is a literal `$`.
        q = t2l["query"].replace("$$", "$")
        for var, value in (("${__tags}", tags), ("${__trace.traceId}", trace_id),
                           ("${__span.traceId}", trace_id), ("${__span.spanId}", span_id)):
            q = q.replace(var, value)
        return q
    q = "{" + tags + "}"
    if t2l.get("filterByTraceID"):
        q += f' |="{trace_id}"'
    if t2l.get("filterBySpanID"):
        q += f' |="{span_id}"'
    return q


LOGQL = re.compile(r'^\{(?P<selector>[^}]*)\}(?P<pipeline>.*)$')
MATCHER = re.compile(r'\s*(\w+)\s*(=~|=)\s*"([^"]*)"\s*')
STAGE = re.compile(r'\s*(\|=|\|)\s*(?:"([^"]*)"|(\w+)\s*=\s*"([^"]*)")')


def logql_select(q: str, records) -> list:
    """Evaluate the LogQL subset the trace-to-logs link uses: `{a="x", b=~"re", ...}` selector,
    `|= "s"` line filters and `| label="v"` label filters (labels or structured metadata)."""
    m = LOGQL.match(q.strip())
    assert m, f"not a supported LogQL query: {q}"
    selector = MATCHER.findall(m["selector"])
    # Loki refuses a selector whose every matcher matches the empty value.
    assert any(op == "=" and v or op == "=~" and not re.fullmatch(v, "") for _, op, v in selector), q
    stages = STAGE.findall(m["pipeline"])
    assert "".join(s[0] for s in stages) or not m["pipeline"].strip(), q
    picked = []
    for record in records:
        labels, metadata, line = loki_view(record)
        if not all(labels.get(k, "") == v if op == "=" else re.fullmatch(v, labels.get(k, ""))
                   for k, op, v in selector):
            continue
        ok = True
        for op, needle, key, value in stages:
            if op == "|=":
                ok &= needle in line
            else:
                ok &= {**labels, **metadata}.get(key) == value
        if ok:
            picked.append(record)
    return picked
