"""`ObservabilityStack`: the umbrella component that wires every enabled tool from settings.

It picks the target backend, resolves every link between the tools once
(`components/wiring.py`), builds each registered tool's workloads (`components/registry.py`) and
exports what users and application stacks need: URLs, the Grafana admin password (secret) and
the telemetry environment for applications.

Another Pulumi program can use it as a library (pulumi-eks / pulumi-awsx style): pass your own
Kubernetes provider and Namespace (or Docker provider and network), and read the typed outputs.
Physical names derive from the component name: the default name `observability` keeps the names
the committed stacks have (`prometheus`, `obs-<stack>-prometheus`); any other name prefixes them
(`team-a-prometheus`), so two instances in one program or namespace don't collide.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_random as random

from . import render
from .base import Backend, StackFlags, ToolComponent
from .registry import TOOLS
from .secrets import secret_output
from .wiring import Names
from ..config.model import Settings

DEFAULT_NAME = "observability"
# A generated Grafana admin password: 24 characters of [A-Za-z0-9] (~143 bits).
GENERATED_PASSWORD_LENGTH = 24


def make_backend(name: str, settings: Settings, parent: pulumi.Resource, flags: StackFlags, *,
                 provider: Optional[pulumi.ProviderResource] = None, namespace=None, network=None) -> Backend:
    """The target's backend, given only its own target settings and the stack-wide flags."""
    if settings.target == "docker":
        from .targets.docker import DockerBackend

        return DockerBackend(name, settings.docker, flags, parent, chown_image=render.chown_image(settings),
                             provider=provider, network=network)
    from .targets.kubernetes import KubernetesBackend

    return KubernetesBackend(name, settings.kubernetes, flags, parent, provider=provider, namespace=namespace)


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


def _url(tool: Optional[ToolComponent], port: str) -> Optional[pulumi.Output]:
    return tool.urls.apply(lambda u: u.get(port)) if tool is not None else None


class ObservabilityStack(pulumi.ComponentResource):
    """Every enabled tool of the stack on the configured target."""

    urls: pulumi.Output[dict]
    """User-facing and ingest URLs by tool, then port name (`{"grafana": {"http": ...}}`)."""
    internal_urls: pulumi.Output[dict]
    """Each tool's main URL inside the stack's network."""
    grafana_admin_password: pulumi.Output[str]
    """Secret. The configured password, or the generated one ("" without Grafana)."""
    grafana_url: pulumi.Output[Optional[str]]
    """Grafana for users (the Ingress URL when enabled), or None without Grafana."""
    otlp_grpc_endpoint: pulumi.Output[Optional[str]]
    """Where applications send OTLP/gRPC: the collector, else Tempo; None without either."""
    otlp_http_endpoint: pulumi.Output[Optional[str]]
    """Where applications send OTLP/HTTP."""
    telemetry_env: pulumi.Output[dict]
    """Environment for applications (OTEL_* and PYROSCOPE_SERVER_ADDRESS)."""
    namespace: Optional[pulumi.Output[str]]
    """Kubernetes: the namespace the stack lives in; None on Docker."""
    provider: pulumi.ProviderResource
    """The Kubernetes or Docker provider every resource of the stack uses."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        opts: Optional[pulumi.ResourceOptions] = None,
        *,
        provider: Optional[pulumi.ProviderResource] = None,
        namespace=None,
        network=None,
    ):
        """`settings`: from `config.load_settings` (stack config) or `Settings.for_environment`.
        `provider`: your `kubernetes.Provider` / `docker.Provider` (default: one is created from
        `settings.kubernetes` / `settings.docker`). `namespace`: your `kubernetes.core.v1.Namespace`,
        named `settings.kubernetes.namespace` (default: created, retained on delete). `network`:
        your `docker.Network` (default: `obs-<stack>` is created)."""
        super().__init__("observability:stack:ObservabilityStack", name, None, opts)
        self.settings = settings
        instance = "" if name == DEFAULT_NAME else name
        flags = StackFlags(stack=settings.stack, protect_data=settings.protect_data, instance=instance)
        backend = make_backend(name, settings, self, flags, provider=provider, namespace=namespace, network=network)
        self.provider = backend.provider
        platform = backend.platform()
        links = render.links_for(settings, Names(prefix=f"{instance}-" if instance else ""))

        if not settings.enabled("grafana"):
            password = pulumi.Output.secret("")
        elif settings.grafana.admin_password is not None:
            password = secret_output(settings.grafana.admin_password)
        else:
            # Never a default password: generate one, keep it in state, export it as a secret.
            password = pulumi.Output.secret(random.RandomPassword(
                f"{name}-grafana-admin-password", length=GENERATED_PASSWORD_LENGTH, special=False,
                opts=pulumi.ResourceOptions(parent=self),
            ).result)
        self.grafana_admin_password = password

        self.tools: dict[str, ToolComponent] = {}
        for tool in TOOLS:
            if not settings.enabled(tool.name):
                continue
            extra = {"admin_password": password} if tool.name == "grafana" else {}
            entry = links.endpoint(tool.name, "http")
            self.tools[tool.name] = tool.component(
                f"{name}-{tool.name}", tool.workloads(settings, links, platform, **extra), backend,
                opts=pulumi.ResourceOptions(parent=self), entry=entry.service if entry else None,
            )
        backend.finish([w for component in self.tools.values() for w in component.workloads])

        # Tools that publish nothing (the host exporters) are left out.
        self.urls = pulumi.Output.all(**{n: t.urls for n, t in self.tools.items()}).apply(
            lambda urls: {n: u for n, u in urls.items() if u}) if self.tools else pulumi.Output.from_input({})
        self.internal_urls = (
            pulumi.Output.all(**{n: t.internal_url for n, t in self.tools.items()})
            if self.tools else pulumi.Output.from_input({})
        )
        ingest = self.tools.get("collector") or self.tools.get("tempo")
        grafana = self.tools.get("grafana")
        self.grafana_url = pulumi.Output.from_input(
            grafana.urls.apply(lambda u: u.get("ingress") or u.get("http")) if grafana else None)
        self.otlp_grpc_endpoint = pulumi.Output.from_input(_url(ingest, "otlp-grpc"))
        self.otlp_http_endpoint = pulumi.Output.from_input(_url(ingest, "otlp-http"))
        self.namespace = getattr(backend, "ns", None)
        pyro = _url(self.tools.get("pyroscope"), "http")
        self.telemetry_env = pulumi.Output.all(self.otlp_grpc_endpoint, pyro).apply(
            lambda v: telemetry_env(settings, v[0], v[1]))
        self.register_outputs({
            "urls": self.urls,
            "internal_urls": self.internal_urls,
            "grafana_admin_password": self.grafana_admin_password,
            "grafana_url": self.grafana_url,
            "otlp_grpc_endpoint": self.otlp_grpc_endpoint,
            "otlp_http_endpoint": self.otlp_http_endpoint,
            "telemetry_env": self.telemetry_env,
        })
