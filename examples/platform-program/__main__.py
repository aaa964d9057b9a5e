"""A platform program that owns its Kubernetes provider and namespace, and runs the observability
stack inside them (examples/platform-program/README.md)."""

import pulumi
import pulumi_kubernetes as k8s

from observability_stack import ObservabilityStack, Settings

config = pulumi.Config()
NAMESPACE = "monitoring"

# The platform's own provider and namespace: the stack creates neither when given them.
provider = k8s.Provider("platform", kubeconfig=config.get("kubeconfig"), enable_server_side_apply=True)
namespace = k8s.core.v1.Namespace(
    "monitoring",
    metadata={"name": NAMESPACE, "labels": {"team": "platform"}},
    opts=pulumi.ResourceOptions(provider=provider, retain_on_delete=True),
)

# The prod preset plus what this platform differs in. `require` returns the decrypted value of a
# `pulumi config set --secret` key; the stack wraps it as a Pulumi secret again the moment it
# becomes file content, and it only ever reaches Alertmanager as a Kubernetes Secret.
settings = Settings.for_environment(
    "prod",
    stack=pulumi.get_stack(),
    kubernetes={"namespace": NAMESPACE},
    retention={"logs": "90d"},
    # Prod runs highly available, which keeps the storage backends' data in a bucket: here an S3
    # bucket reached through workload identity (the ServiceAccounts get this role annotation).
    object_storage={"s3": {"region": "eu-west-1", "bucket": "platform-observability"},
                    "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": config.require("storageRoleArn")}},
    alerting={
        "receivers": [{"name": "oncall", "pagerduty": {"routing_key": config.require("pagerdutyRoutingKey")}}],
        "routes": {"critical": "oncall", "warning": "oncall"},
    },
)

stack = ObservabilityStack("observability", settings, provider=provider, namespace=namespace)

pulumi.export("endpoints", {
    "grafana": stack.grafana_url,
    "otlpGrpc": stack.otlp_grpc_endpoint,
    "otlpHttp": stack.otlp_http_endpoint,
})
pulumi.export("namespace", stack.namespace)
pulumi.export("telemetryEnv", stack.telemetry_env)
pulumi.export("grafanaAdminPassword", stack.grafana_admin_password)
