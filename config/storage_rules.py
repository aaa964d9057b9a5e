"""Cross-field rules of `objectStorage` (issue 15).

Called from `config.loader.cross_field_problems`; same message shape: one line per problem,
`observability:<key>: <what is wrong> (<what to do>)`, and never a credential's value.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

# The tools that keep data in object storage when `objectStorage` is set.
STORAGE_TOOLS = ("loki", "mimir", "tempo", "pyroscope")
# A credential reaches Loki/Mimir/Tempo/Pyroscope as `${VAR}` in their config, expanded by
# `-config.expand-env=true` before the YAML is parsed (upstream: "The replacement is
# case-sensitive and occurs before the YAML file is parsed"). The config writes the reference in a
# double-quoted YAML scalar, so the value may hold any printable character except these.
_UNSAFE_IN_QUOTED_YAML = frozenset('"\\')


def _path(*parts: Any) -> str:
    from .loader import key_path

    return key_path(parts)


def _expandable(value: SecretStr) -> bool:
    text = value.get_secret_value()
    return all(c.isprintable() and c not in _UNSAFE_IN_QUOTED_YAML for c in text)


def object_storage_problems(s: Any) -> list[str]:
    problems: list[str] = []
    store = s.object_storage
    # `highAvailability` arrives with issue 14; until then the rule is dormant (getattr).
    ha = bool(getattr(s, "high_availability", False))
    stateful = [t for t in STORAGE_TOOLS if s.enabled(t)]
    if store is None:
        if ha and stateful:
            problems.append(
                f"{_path('objectStorage')}: is required with observability:highAvailability on, because "
                f"{', '.join(stateful)} keep their data on one node's disk; configure it (s3, gcs or azure), or set "
                f"observability:highAvailability: false to accept a single-node prod")
        return problems
    kinds = store.kinds()
    if len(kinds) != 1:
        problems.append(f"{_path('objectStorage')}: set exactly one of s3, gcs, azure "
                        f"(found: {', '.join(kinds) or 'none'})")
    if s.target != "kubernetes":
        problems.append(f"{_path('objectStorage')}: is for the kubernetes target; on {s.target} the tools keep "
                        f"their data on the host's volumes (credentials would have to be plain container "
                        f"environment there); remove it or set observability:target: kubernetes")
    if store.s3 is not None:
        s3 = store.s3
        if (s3.access_key_id is None) != (s3.secret_access_key is None):
            given, missing = (("accessKeyId", "secretAccessKey") if s3.secret_access_key is None
                              else ("secretAccessKey", "accessKeyId"))
            problems.append(f"{_path('objectStorage', 's3', missing)}: is required with {given} (set both, or "
                            f"neither to use workload identity)")
        if s3.secret_access_key is not None and not _expandable(s3.secret_access_key):
            problems.append(f"{_path('objectStorage', 's3', 'secretAccessKey')}: contains a character the tools "
                            f"cannot read from their expanded config (a quote, a backslash or a control character)")
        if s3.insecure and s3.endpoint is None:
            problems.append(f"{_path('objectStorage', 's3', 'insecure')}: true needs an endpoint (plain HTTP is for "
                            f"an S3-compatible server you name, never AWS)")
    if store.azure is not None and store.azure.account_key is not None and not _expandable(store.azure.account_key):
        problems.append(f"{_path('objectStorage', 'azure', 'accountKey')}: contains a character the tools cannot "
                        f"read from their expanded config (a quote, a backslash or a control character)")
    # No check of the GCS key's or the database URL's content: `make render` and the tests load
    # stack files with placeholders for secure values, and a message must never show a secret.
    for tool in STORAGE_TOOLS:
        bucket = getattr(store.buckets, tool)
        if bucket is not None and not s.enabled(tool):
            problems.append(f"{_path('objectStorage', 'buckets', tool)}: {json.dumps(bucket)} is set but {tool} "
                            f"is disabled (remove it)")
    return problems
