"""A real S3-compatible server on loopback (moto's server mode) shows that the bucket layout and the
credentials the stack hands Loki, Mimir, Tempo and Pyroscope work (issue 15).

The server enforces IAM authentication (`INITIAL_NO_AUTH_ACTION_COUNT`: only the bootstrap calls
that create the user, its key and the buckets are unauthenticated, as an operator would do). The
key pair goes into the settings as secrets; for each tool the test reads back, from the rendered
config and the workload's secret environment only, the endpoint, bucket, prefix, addressing style
and credentials that tool would use, writes objects the way that tool lays them out (S3 PutObject,
path-style when an endpoint is named) and lists them back. A wrong secret is refused (positive
control).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

boto3 = pytest.importorskip("boto3")
from botocore.client import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from observability_stack.components.objectstorage import bucket_for  # noqa: E402
from observability_stack.components.render import render_all, workloads_of  # noqa: E402
from observability_stack.config import Settings, load_settings  # noqa: E402

SHARED, LOGS = "observability", "observability-logs"
PATHS = {"loki": "loki/loki.yaml", "mimir": "mimir/mimir.yaml", "tempo": "tempo/tempo.yaml",
         "pyroscope": "pyroscope/config.yaml"}
# One object per tool, at the path that tool writes (relative to its prefix): Loki's TSDB index
# table, Mimir's and Pyroscope's block meta under the tenant, Tempo's block meta under the tenant.
WRITES = {"loki": "index/index_20000/fake/1-compactor.tsdb.gz", "mimir": "anonymous/01J00000000000000000000000/meta.json",
          "tempo": "single-tenant/00000000-0000-0000-0000-000000000001/meta.json",
          "pyroscope": "anonymous/phlaredb/01J00000000000000000000000/meta.json"}
HA_OFF = {"highAvailability": False} if "high_availability" in Settings.model_fields else {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "5"}
    binary = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("moto_server did not listen within 30s")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def bootstrap(server):
    """The operator's setup (the unauthenticated calls): a user, its key, the two buckets."""
    anon = dict(endpoint_url=f"http://{server}", region_name="us-east-1",
                aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam = boto3.client("iam", **anon)
    iam.create_user(UserName="observability")
    key = iam.create_access_key(UserName="observability")["AccessKey"]
    iam.put_user_policy(UserName="observability", PolicyName="observability-buckets", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*",
                       "Resource": [f"arn:aws:s3:::{b}{suffix}" for b in (SHARED, LOGS) for suffix in ("", "/*")]}]}))
    s3 = boto3.client("s3", **anon, config=Config(s3={"addressing_style": "path"}))
    for bucket in (SHARED, LOGS):
        s3.create_bucket(Bucket=bucket)
    return key["AccessKeyId"], key["SecretAccessKey"]


def _expand(text: str, env: dict[str, str]) -> str:
    """What `-config.expand-env=true` does before the YAML is parsed."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env[m.group(1)], text)


def _as_tool_sees_it(tool: str, doc: dict) -> dict:
    """Endpoint, bucket, prefix, addressing and credentials, read with each tool's own keys."""
    if tool == "loki":
        s3 = doc["common"]["storage"]["s3"]
        return dict(endpoint=s3["endpoint"], insecure=s3["insecure"], path=s3["s3forcepathstyle"],
                    bucket=s3["bucketnames"], prefix=(doc.get("storage_config") or {}).get("object_prefix"),
                    key=s3["access_key_id"], secret=s3["secret_access_key"], region=s3["region"])
    if tool == "mimir":
        b = doc["blocks_storage"]
        s3 = b["s3"]
        return dict(endpoint=s3["endpoint"], insecure=s3["insecure"], path=s3.get("bucket_lookup_type") == "path",
                    bucket=s3["bucket_name"], prefix=b.get("storage_prefix"), key=s3["access_key_id"],
                    secret=s3["secret_access_key"], region=s3["region"])
    if tool == "tempo":
        s3 = doc["storage"]["trace"]["s3"]
        return dict(endpoint=s3["endpoint"], insecure=s3["insecure"], path=s3["forcepathstyle"], bucket=s3["bucket"],
                    prefix=s3.get("prefix"), key=s3["access_key"], secret=s3["secret_key"], region=s3["region"])
    st = doc["storage"]
    s3 = st["s3"]
    return dict(endpoint=s3["endpoint"], insecure=s3["insecure"], path=s3.get("bucket_lookup_type") == "path-style",
                bucket=s3["bucket_name"], prefix=st.get("prefix"), key=s3["access_key_id"],
                secret=s3["secret_access_key"], region=s3["region"])


def _client(seen: dict, secret: str | None = None):
    scheme = "http" if seen["insecure"] else "https"
    return boto3.client("s3", endpoint_url=f"{scheme}://{seen['endpoint']}", region_name=seen["region"],
                        aws_access_key_id=seen["key"], aws_secret_access_key=secret or seen["secret"],
                        config=Config(s3={"addressing_style": "path" if seen["path"] else "auto"},
                                      retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def seen_by_tool(server, bootstrap, module_event_loop):
    key_id, secret = bootstrap
    settings = load_settings({
        "alerting": {"receivers": [{"name": "p", "pagerduty": {"routingKey": "x"}}],
                     "routes": {"critical": "p", "warning": "p"}},
        **HA_OFF,
        "objectStorage": {"s3": {"endpoint": server, "bucket": SHARED, "insecure": True,
                                 "accessKeyId": key_id, "secretAccessKey": secret},
                          "buckets": {"loki": LOGS}},
    }, stack="prod", secret_keys=["alerting", "objectStorage"])
    files = render_all(settings)
    seen = {}
    for tool, path in PATHS.items():
        assert secret not in files[path]
        # The workload carries exactly these variables as secret env (values: the settings' secrets).
        (workload,) = workloads_of(tool, settings)
        values = {k: v.get_secret_value() for k, v in bucket_for(settings, tool).secret_env.items()}
        assert set(values) == set(workload.secret_env)
        seen[tool] = _as_tool_sees_it(tool, yaml.safe_load(_expand(files[path], values)))
    return seen


def test_each_tool_writes_and_lists_in_its_bucket_and_prefix(seen_by_tool):
    for tool, seen in seen_by_tool.items():
        client = _client(seen)
        key = f"{seen['prefix']}/{WRITES[tool]}" if seen["prefix"] else WRITES[tool]
        client.put_object(Bucket=seen["bucket"], Key=key, Body=f"{tool} object".encode())
        listed = client.list_objects_v2(Bucket=seen["bucket"], Prefix=f"{seen['prefix']}/" if seen["prefix"] else "")
        assert key in [o["Key"] for o in listed.get("Contents", [])], tool
        assert client.get_object(Bucket=seen["bucket"], Key=key)["Body"].read() == f"{tool} object".encode()
    layout = {tool: (seen["bucket"], seen["prefix"]) for tool, seen in seen_by_tool.items()}
    assert layout == {"loki": (LOGS, None), "mimir": (SHARED, "mimir"), "tempo": (SHARED, "tempo"),
                      "pyroscope": (SHARED, "pyroscope")}


def test_shared_bucket_holds_one_prefix_per_tool_and_nothing_else(seen_by_tool):
    test_each_tool_writes_and_lists_in_its_bucket_and_prefix(seen_by_tool)
    client = _client(seen_by_tool["mimir"])
    top = client.list_objects_v2(Bucket=SHARED, Delimiter="/")
    assert sorted(p["Prefix"] for p in top.get("CommonPrefixes", [])) == ["mimir/", "pyroscope/", "tempo/"]
    assert top.get("Contents", []) == []
    logs = client.list_objects_v2(Bucket=LOGS)
    assert [o["Key"] for o in logs["Contents"]] == [WRITES["loki"]]


def test_a_wrong_secret_is_refused(seen_by_tool):
    """Positive control: the server really checks the credentials the tools are handed."""
    with pytest.raises(ClientError) as err:
        _client(seen_by_tool["tempo"], secret="not-the-secret").list_objects_v2(Bucket=SHARED)
    assert err.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied")
