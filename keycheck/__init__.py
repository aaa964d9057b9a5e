"""The upstream key check (issue 12).

Loki, Tempo, Mimir and Pyroscope unmarshal their YAML strictly, so one unknown key stops the
process at start; Grafana, Loki, Tempo, Mimir and Pyroscope are AGPL and must not be built or run
here. So their configs, flags and environment are checked against a reference of valid key paths
derived from upstream's own generated reference at the pinned tag:

- `keycheck.derive`: parsers for upstream's references (Mimir's config descriptor, the
  doc-generator reference pages of Loki and Pyroscope, Tempo's manifest and configuration page,
  Go `-help` dumps, Grafana's provisioning docs); run by `scripts/upstream_keys.py derive`.
- `keycheck.check`: `make check-keys DIR=<rendered dir>`; no Pulumi imports, runs offline.

The references live in `reference/upstream-keys/<tool>-<version>.json`, each recording where
its sources came from.
"""
