"""The one ComponentResource shape every tool shares (STYLE 7) and the backend interface.

A tool module builds a `Workload`; `ToolComponent` hands it to the target backend and exposes
typed endpoints. Type tokens are `observability:<module>:<Name>`; children are named
`f"{name}-<role>"` with `parent=self` (Pulumi's component boilerplate, `staticpage.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol

import pulumi

from .platform import Platform
from .workload import Workload


@dataclass(frozen=True)
class StackFlags:
    """The stack-wide facts a backend may read (besides its own target settings)."""

    stack: str  # the Pulumi stack name: labels, and Docker object names
    protect_data: bool  # protect + retain data volumes
    # "" for the default instance; otherwise the component's name, which every physical name
    # (Docker objects, namespace-wide Kubernetes objects) carries so two instances don't collide.
    instance: str = ""


@dataclass
class Deployed:
    """What a backend returns for one workload."""

    # `http://<service>:<port>` per port name, as other tools in the stack reach it.
    internal_urls: dict[str, pulumi.Output[str]]
    # Per published port: the URL a user or an application outside the stack uses.
    external_urls: dict[str, pulumi.Output[str]] = field(default_factory=dict)


class Backend(Protocol):
    """Turns workloads into resources of one target (Docker or Kubernetes). Backends never name
    a tool: everything they need is in the workload, their own target settings and StackFlags."""

    provider: pulumi.ProviderResource

    def platform(self) -> Platform:
        """What tools need to know about this target (components/platform.py)."""
        ...

    def deploy(self, name: str, workload: Workload, parent: pulumi.Resource) -> Deployed:
        """Resources for one workload, children of `parent`."""
        ...

    def finish(self, workloads: list[Workload]) -> None:
        """Called once with every deployed workload (Kubernetes: the NetworkPolicies)."""
        ...


class ToolComponent(pulumi.ComponentResource):
    """One deployed tool. Subclasses set TYPE only: everything tool-specific is in its Workload."""

    TYPE = "observability:tool:Tool"

    internal_url: pulumi.Output[str]
    """Main HTTP endpoint inside the stack's network (`http://<service>:<port>`)."""
    urls: pulumi.Output[dict]
    """External URL per published port name (empty when nothing is published)."""

    def __init__(
        self,
        name: str,
        workloads: tuple[Workload, ...],
        backend: Backend,
        opts: Optional[pulumi.ResourceOptions] = None,
        entry: Optional[str] = None,
    ):
        """`entry`: the workload whose Service is the tool's address (components/wiring.py, the
        `http` endpoint), when it is not the first one (Pyroscope's replicated components: the
        distributor takes pushes, the first workload is the ingesters)."""
        super().__init__(self.TYPE, name, None, opts)
        # The first workload is the tool itself; others are helpers it owns (the collector's
        # per-node log agent), named `<name>-<workload name minus the tool prefix>`.
        self.workloads = workloads
        main, *helpers = workloads
        deployed = backend.deploy(name, main, parent=self)
        external = dict(deployed.external_urls)
        entry_workload, entry_urls = main, deployed.internal_urls
        for helper in helpers:
            role = helper.name.removeprefix(main.name + "-")
            done = backend.deploy(f"{name}-{role}", helper, parent=self)
            external.update(done.external_urls)
            if helper.name == entry:
                entry_workload, entry_urls = helper, done.internal_urls
        # A per-node exporter on Kubernetes has no Service: nothing addresses one node's instance.
        self.internal_url = entry_urls.get(entry_workload.ports[0].name) or pulumi.Output.from_input("")
        self.urls = pulumi.Output.all(**external) if external else pulumi.Output.from_input({})
        self.register_outputs({"internal_url": self.internal_url, "urls": self.urls})
