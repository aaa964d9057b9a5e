"""Object storage as Loki, Mimir, Tempo and Pyroscope each see it: one neutral description per
tool (bucket, prefix, endpoint, how credentials arrive); each tool module maps it to its own keys.

Layout (`objectStorage` in config/model.py): one bucket with a prefix per tool, or
`objectStorage.buckets.<tool>` for a bucket of its own (then no prefix). The prefix is the tool's
name. Upstream's prefix keys at the pinned versions (docs/upstream-facts.md section 14):
- Loki 3.7.6 `storage_config.object_prefix` ("Experimental. Sets a constant prefix for all keys
  inserted into object storage", pkg/storage/factory.go wraps every object client in a
  PrefixedObjectClient): used, and marked experimental in the README; a bucket of its own avoids it.
- Mimir 3.0.2 `blocks_storage.storage_prefix` ("may only contain digits and English alphabet
  letters").
- Tempo 2.10.8 `storage.trace.<s3|gcs|azure>.prefix` ("to nest all the objects within a shared bucket").
- Pyroscope 1.21.1 `storage.prefix` (`storage.storage_prefix` is deprecated for it).

Credentials never enter a config file, a ConfigMap or an argument:
- S3 key pair and Azure account key: the config holds `"${OBJSTORE_...}"` and the tool runs with
  `-config.expand-env=true` (all four document it: "Each variable reference is replaced at startup
  by the value of the environment variable ... before the YAML file is parsed"); the variable comes
  from a Kubernetes Secret (`Workload.secret_env`, `secretKeyRef`).
- GCS service account key: a secret file, named by `GOOGLE_APPLICATION_CREDENTIALS`; each tool's
  GCS client falls back to Google's Application Default Credentials when its `service_account` is
  empty (Mimir's reference: "If empty, fallback to Google default logic"), and ADC reads that file.
- No key at all: workload identity. Each tool's default credential chain (AWS web identity / IRSA,
  GKE metadata server, Azure federated token) is used, and
  `objectStorage.serviceAccountAnnotations` go on the tool's ServiceAccount; on Azure the pods
  also get the label its admission webhook selects on (`Bucket.pod_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

from ..config.model import ObjectStorage, Settings

# Neutral names: the same variables whichever tool reads them.
ACCESS_KEY_ID_ENV = "OBJSTORE_ACCESS_KEY_ID"
SECRET_ACCESS_KEY_ENV = "OBJSTORE_SECRET_ACCESS_KEY"
ACCOUNT_KEY_ENV = "OBJSTORE_ACCOUNT_KEY"
GCS_KEY_PATH = "/etc/objstore/gcs-service-account.json"
GCS_KEY_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
# The flag that makes the four tools expand `${VAR}` in their config (reference/upstream-keys:
# `config.expand-env` is a flag of Loki 3.7.6, Mimir 3.0.2, Tempo 2.10.8 and Pyroscope 1.21.1).
EXPAND_ENV_FLAG = "-config.expand-env=true"
HTTPS = 443
AZURE_WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"


class EnvRef(str):
    """`${NAME}` in a tool's config, written double-quoted: the tool substitutes the value into
    the text before parsing the YAML, so the value lands inside quotes and stays one string
    whatever it looks like (config/storage_rules.py refuses quotes and backslashes in it)."""


def _represent(dumper: Any, data: EnvRef) -> Any:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style='"')


for _dumper in {yaml.SafeDumper, getattr(yaml, "CSafeDumper", yaml.SafeDumper)}:
    _dumper.add_representer(EnvRef, _represent)


def ref(name: str) -> EnvRef:
    """`${NAME}`: expanded by the tool at startup (never the value itself)."""
    return EnvRef("${" + name + "}")


@dataclass(frozen=True)
class Bucket:
    """Where one tool's objects go, and how it authenticates. `prefix` is None with a bucket of
    its own. Credentials appear only as `${VAR}` references (`key_id`, `secret`) or a file path."""

    kind: str  # "s3" | "gcs" | "azure"
    bucket: str  # S3/GCS bucket or Azure container
    prefix: Optional[str]
    # S3
    endpoint: Optional[str] = None  # host[:port]
    region: Optional[str] = None
    insecure: bool = False
    path_style: bool = False
    key_id: Optional[str] = None  # "${OBJSTORE_ACCESS_KEY_ID}" or None (workload identity)
    secret: Optional[str] = None  # "${OBJSTORE_SECRET_ACCESS_KEY}" / "${OBJSTORE_ACCOUNT_KEY}" or None
    # Azure
    account_name: Optional[str] = None
    # Workload-facing facts (the Workload fields of the same names).
    secret_env: dict[str, Any] = field(default_factory=dict)  # env name -> SecretStr
    secret_files: dict[str, Any] = field(default_factory=dict)  # path -> SecretStr
    env: dict[str, str] = field(default_factory=dict)
    egress_ports: tuple[int, ...] = ()
    service_account_annotations: dict[str, str] = field(default_factory=dict)

    @property
    def workload_identity(self) -> bool:
        return not self.secret_env and not self.secret_files

    @property
    def pod_labels(self) -> dict[str, str]:
        """Azure workload identity: its admission webhook injects the federated token (the file
        every tool's Azure client reads with `use_federated_token`) only into pods carrying this
        label ("This label is **required** in the pod template spec", azure-workload-identity
        docs, "Service Account Labels and Annotations"). S3 (IRSA) and GCS (GKE metadata server)
        need only the ServiceAccount annotation."""
        return {AZURE_WORKLOAD_IDENTITY_LABEL: "true"} if self.kind == "azure" and self.workload_identity else {}

    @property
    def args(self) -> tuple[str, ...]:
        return (EXPAND_ENV_FLAG,) if self.secret_env else ()

    def objstore_s3(self, path_style_value: str) -> dict:
        """The S3 block of Thanos' objstore client, which Mimir and Pyroscope both embed; they
        spell path-style lookup differently (`path_style_value`, from each tool's reference)."""
        s3 = {"endpoint": self.endpoint, "region": self.region, "bucket_name": self.bucket,
              "insecure": self.insecure}
        if self.path_style:
            s3["bucket_lookup_type"] = path_style_value
        if self.key_id:
            s3.update(access_key_id=self.key_id, secret_access_key=self.secret)
        return s3


def bucket_for(settings: Settings, tool: str) -> Optional[Bucket]:
    """The tool's bucket, or None when `objectStorage` is not set (filesystem on the claim)."""
    store: Optional[ObjectStorage] = settings.object_storage
    if store is None:
        return None
    own = getattr(store.buckets, tool)
    annotations = dict(store.service_account_annotations)
    if store.s3 is not None:
        s3 = store.s3
        secret_env: dict[str, Any] = {}
        if s3.secret_access_key is not None and s3.access_key_id is not None:
            from pydantic import SecretStr

            # The key id is not secret to AWS, but it names the credential: it travels with it.
            secret_env = {ACCESS_KEY_ID_ENV: SecretStr(s3.access_key_id), SECRET_ACCESS_KEY_ENV: s3.secret_access_key}
        endpoint = s3.endpoint or f"s3.{s3.region}.amazonaws.com"
        port = int(endpoint.rsplit(":", 1)[1]) if ":" in endpoint else (80 if s3.insecure else HTTPS)
        return Bucket(
            "s3", own or s3.bucket, None if own else tool, endpoint=endpoint, region=s3.region,
            insecure=s3.insecure,
            # A named S3-compatible server (MinIO, SeaweedFS, ...) is addressed path-style:
            # virtual-hosted style needs wildcard DNS for every bucket.
            path_style=s3.endpoint is not None,
            key_id=ref(ACCESS_KEY_ID_ENV) if secret_env else None,
            secret=ref(SECRET_ACCESS_KEY_ENV) if secret_env else None,
            secret_env=secret_env, egress_ports=(port,), service_account_annotations=annotations,
        )
    if store.gcs is not None:
        gcs = store.gcs
        files = {GCS_KEY_PATH: gcs.service_account_key} if gcs.service_account_key is not None else {}
        return Bucket("gcs", own or gcs.bucket, None if own else tool, secret_files=files,
                      env={GCS_KEY_ENV: GCS_KEY_PATH} if files else {}, egress_ports=(HTTPS,),
                      service_account_annotations=annotations)
    azure = store.azure
    assert azure is not None  # exactly one kind: config/storage_rules.py
    secret_env = {ACCOUNT_KEY_ENV: azure.account_key} if azure.account_key is not None else {}
    return Bucket("azure", own or azure.container, None if own else tool, account_name=azure.account_name,
                  secret=ref(ACCOUNT_KEY_ENV) if secret_env else None, secret_env=secret_env,
                  egress_ports=(HTTPS,), service_account_annotations=annotations)


def workload_fields(bucket: Optional[Bucket]) -> dict[str, Any]:
    """The Workload fields a bucket adds (secret env and files as Pulumi secrets)."""
    if bucket is None:
        return {}
    from .secrets import secret_output
    from .workload import SecretFile

    return {
        "secret_env": {name: secret_output(value) for name, value in bucket.secret_env.items()},
        "extra_secret_files": tuple(SecretFile(path, secret_output(value)) for path, value in bucket.secret_files.items()),
        "env": dict(bucket.env),
        "egress_ports": bucket.egress_ports,
        "service_account_annotations": dict(bucket.service_account_annotations),
        "pod_labels": bucket.pod_labels,
        "extra_args": bucket.args,
    }
