"""`ObservabilityStack`: the umbrella component that wires every enabled tool from settings.

It picks the target backend, builds each tool's workload (tool modules derive links to each
other from their port constants), and exports what users and application stacks need: URLs,
the Grafana admin password (secret) and the telemetry environment for applications.
"""

from __future__ import annotations

import importlib
from typing import Optional

import pulumi
import pulumi_random as random

from components.base import Backend, ToolComponent
from components.secrets import secret_output
from config.model import Settings

# Module and component class per tool, in the order they are declared.
TOOLS: tuple[tuple[str, str], ...] = (
    ("prometheus", "Prometheus"),
    ("alertmanager", "Alertmanager"),
    ("loki", "Loki"),
    ("tempo", "Tempo"),
    ("mimir", "Mimir"),
    ("pyroscope", "Pyroscope"),
    ("collector", "Collector"),
    ("grafana", "Grafana"),
)


def make_backend(name: str, settings: Settings, parent: pulumi.Resource) -> Backend:
    if settings.target == "docker":
        from components.targets.docker import DockerBackend

        return DockerBackend(name, settings, parent)
    from components.targets.kubernetes import KubernetesBackend

    return KubernetesBackend(name, settings, parent)


def telemetry_env(settings: Settings, otlp_endpoint: Optional[str], pyroscope: Optional[str]) -> dict[str, str]:
    """What an application sets to send telemetry here (OpenTelemetry SDK environment spec).

    Sampling happens once. With the collector deployed it tail-samples (keeping errors and slow
    traces, `sampling.traces` of the rest), so SDKs must send every trace: sampling in the SDK as
    well would square the ratio and drop errors before the collector sees them. Without the
    collector, apps send to Tempo directly and the SDK applies `sampling.traces` itself.
    """
    tail = settings.enabled("collector")
    env = {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1.0" if tail else repr(float(settings.sampling.traces)),
    }
    if otlp_endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
    if pyroscope:
        env["PYROSCOPE_SERVER_ADDRESS"] = pyroscope
    return env


class ObservabilityStack(pulumi.ComponentResource):
    """Every enabled tool of the stack on the configured target."""

    urls: pulumi.Output[dict]
    """User-facing and ingest URLs by name (`grafana`, `prometheus`, `otlp_grpc`, ...)."""
    internal_urls: pulumi.Output[dict]
    """Each tool's main URL inside the stack's network."""
    grafana_admin_password: pulumi.Output[str]
    """Secret. The configured password, or the generated one."""
    telemetry_env: pulumi.Output[dict]
    """Environment for applications (OTEL_* and PYROSCOPE_SERVER_ADDRESS)."""

    def __init__(self, name: str, settings: Settings, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("observability:stack:ObservabilityStack", name, None, opts)
        self.settings = settings
        backend = make_backend(name, settings, self)

        if not settings.enabled("grafana"):
            password = pulumi.Output.secret("")
        elif settings.grafana.admin_password is not None:
            password = secret_output(settings.grafana.admin_password)
        else:
            # Never a default password: generate one, keep it in state, export it as a secret.
            password = pulumi.Output.secret(random.RandomPassword(
                f"{name}-grafana-admin-password", length=24, special=False,
                opts=pulumi.ResourceOptions(parent=self),
            ).result)
        self.grafana_admin_password = password

        self.tools: dict[str, ToolComponent] = {}
        for module_name, class_name in TOOLS:
            if not settings.enabled(module_name):
                continue
            module = importlib.import_module(f"components.{module_name}")
            extra = {"admin_password": password} if module_name == "grafana" else {}
            component_cls = getattr(module, class_name)
            self.tools[module_name] = component_cls(
                f"{name}-{module_name}", module.workloads(settings, **extra), backend,
                opts=pulumi.ResourceOptions(parent=self),
            )
        finish = getattr(backend, "finish", None)
        if finish is not None:
            finish([w for tool in self.tools.values() for w in tool.workloads])

        urls: dict[str, pulumi.Output] = {}
        for tool_name, tool in self.tools.items():
            urls[tool_name] = tool.urls
        self.urls = pulumi.Output.all(**urls) if urls else pulumi.Output.from_input({})
        self.internal_urls = (
            pulumi.Output.all(**{n: t.internal_url for n, t in self.tools.items()})
            if self.tools else pulumi.Output.from_input({})
        )
        otlp = self.tools["collector"].urls.apply(lambda u: u.get("otlp-grpc")) if "collector" in self.tools else (
            self.tools["tempo"].urls.apply(lambda u: u.get("otlp-grpc")) if "tempo" in self.tools else None
        )
        pyro = self.tools["pyroscope"].urls.apply(lambda u: u.get("http")) if "pyroscope" in self.tools else None
        self.telemetry_env = pulumi.Output.all(otlp, pyro).apply(lambda v: telemetry_env(settings, v[0], v[1]))
        self.register_outputs({
            "urls": self.urls,
            "internal_urls": self.internal_urls,
            "grafana_admin_password": self.grafana_admin_password,
            "telemetry_env": self.telemetry_env,
        })
