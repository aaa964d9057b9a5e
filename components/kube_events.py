"""Kubernetes events as logs (issue 13 section 3): the contract between the collector's events
workload (components/collector.py) and Loki's OTLP label mapping (components/loki.py).

Not a tool: both tool modules import these names, so the attribute the collector sets and the
attribute Loki indexes cannot drift apart (tool modules never import each other).

Upstream references:
- contrib `k8sobjectsreceiver` v0.141.0 README and `unstructured_to_logdata.go`: in `watch` mode
  each watch event becomes ONE log record in its own ResourceLogs, whose body is the map
  `{"type": <ADDED|MODIFIED|DELETED>, "object": <the Event>}` and whose only resource attribute is
  `k8s.namespace.name` (the Event's namespace); the README's events example is
  `{name: events, mode: watch, group: events.k8s.io}`, and it says the receiver "must be deployed
  as one replica, otherwise it'll be producing duplicated data".
- Kubernetes API `events.k8s.io/v1` Event: `regarding` (the involved object: kind, name,
  namespace), `reason`, `type` (Normal | Warning), `note` (the message). The same objects are
  served as core `v1` Events (`involvedObject`, `message`); `events.k8s.io/v1` is the current API
  (core v1 Event is kept for compatibility), and the one the receiver's own example watches.
  Without `group`, the receiver would pick core v1 (the first group serving `events`).
- Loki 3.7.6 `pkg/loghttp/push/otlp_config.go`: resource attributes in
  `distributor.otlp_config.default_resource_attributes_as_index_labels` (service.name,
  k8s.namespace.name, ... 18 names; none for an event's kind, reason or type) become index
  labels, every other resource or log attribute becomes structured metadata unless
  `limits_config.otlp_config.resource_attributes.attributes_config` says `index_label`; label
  names are the attribute names with dots turned into underscores (`otlptranslator.LabelNamer`).
  The log line is the record's body as a string.

Labels vs structured metadata (Loki's cardinality rule: labels for what selects a stream, not for
what identifies one record):
- index labels: `k8s_namespace_name` (Loki's default list), `k8s_object_kind` (tens of kinds),
  `k8s_event_reason` (the controllers' fixed reasons: tens to a few hundred), `k8s_event_type`
  (Normal or Warning), and `service_name="kubernetes-events"` (the stream of all events);
- structured metadata: `k8s_object_name`, the involved object's name. Pod names carry a random
  suffix and change with every rollout, so as a label they would make a new stream per pod;
  as structured metadata they are still selectable (`| k8s_object_name="api-7d9f-x2x4q"`).
"""

from __future__ import annotations

GROUP = "events.k8s.io"
RESOURCE = "events"
# service.name of the events' stream (Loki: `service_name`, one of its default index labels).
SERVICE_NAME = "kubernetes-events"

# Resource attributes the collector sets from the Event (besides the receiver's own
# k8s.namespace.name, which Loki indexes by default) and Loki indexes as labels.
KIND = "k8s.object.kind"
REASON = "k8s.event.reason"
TYPE = "k8s.event.type"
INDEX_LABEL_ATTRIBUTES = (KIND, REASON, TYPE)
# Log attribute (Loki: structured metadata): the involved object's name.
OBJECT_NAME = "k8s.object.name"


def cluster_rules() -> tuple[dict, ...]:
    """List (the receiver's initial list for a resourceVersion, and recovery from 410 Gone, per
    its README) and watch on events.k8s.io Events: nothing else."""
    return ({"apiGroups": [GROUP], "resources": [RESOURCE], "verbs": ["list", "watch"]},)


def receiver() -> dict:
    return {"k8sobjects": {
        # The pod's ServiceAccount token (the workload's ClusterRole: `cluster_rules()`).
        "auth_type": "serviceAccount",
        "objects": [{
            "name": RESOURCE,
            "group": GROUP,
            "mode": "watch",
            # An Event that expires (the API server's --event-ttl, 1h by default) is DELETED:
            # that is not an occurrence, and shipping it would repeat the event. ADDED is a new
            # event; MODIFIED is the same event seen again (its series count grows), kept.
            "exclude_watch_type": ["DELETED"],
        }],
        # No `resource_version`: the receiver lists first and watches from there, so a restart
        # does not ship the cluster's stored events again (README: `resource_version`).
    }}


def transform_statements() -> list[str]:
    """OTTL (transform processor, log context) lifting the Event's fields out of the body.

    Setting resource attributes from a log record is sound here because the receiver gives every
    watch event a ResourceLogs of its own (see above) and this runs before `batch`."""
    obj = 'log.body["object"]'
    return [
        f'set(resource.attributes["service.name"], "{SERVICE_NAME}")',
        f'set(resource.attributes["{KIND}"], {obj}["regarding"]["kind"])',
        f'set(resource.attributes["{REASON}"], {obj}["reason"])',
        f'set(resource.attributes["{TYPE}"], {obj}["type"])',
        f'set(log.attributes["{OBJECT_NAME}"], {obj}["regarding"]["name"])',
        # The message becomes the log line (last: it replaces the body the others read).
        f'set(log.body, {obj}["note"])',
    ]
