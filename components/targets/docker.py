"""Docker target: one `Workload` -> an image, a data volume, a one-shot chown and a container.

Upstream references: pulumi-docker v5 (bridged from terraform-provider-docker; argument names from
`pulumi_docker.Container`), Docker's `docker run` reference for capabilities, tmpfs, log options
and healthchecks.

Layout on the Docker host (every Docker object name starts with `obs-<stack>-`, so two stacks can
share a host):

- one explicit `docker.Provider` (`docker.host` from settings; the ambient DOCKER_HOST or local
  socket when unset) used by every resource here; with `pulumi:disable-default-providers` a
  forgotten provider fails loudly instead of silently targeting another daemon;
- one user-defined bridge network, `obs-<stack>`; each container joins it with its service
  name as DNS alias, which is how tools find each other (`http://loki:3100`);
- one named volume per stateful workload, `obs-<stack>-<service>-data`, protected and retained
  when `protectData` is on;
- one `RemoteImage` per distinct image reference (pinned tag, `keep_locally` so a destroy or a
  version bump never deletes an image another stack still runs).

Stability: the network's and the volumes' inputs depend only on the stack and service names, so
a change of retention, sampling or receivers only changes the config uploads of the affected
containers, which Docker cannot patch in place: the provider replaces those containers
(delete-before-replace, because container names and host ports are fixed) and nothing else.
"""

from __future__ import annotations

import math
from typing import Optional

import pulumi
import pulumi_docker as docker

from ..base import Deployed, StackFlags
from ..platform import DOCKER, Platform
from ..workload import Workload
from ...config.model import Docker

LABEL_PREFIX = "observability"
MANAGED_BY = "pulumi-observability"
# json-file with rotation: at most 3 x 10 MB of logs per container, so logs never fill the host
# (Docker's default json-file driver keeps everything). The collector's filelog receiver reads
# these same files, so the driver must stay json-file.
LOG_DRIVER = "json-file"
LOG_OPTS = {"max-size": "10m", "max-file": "3"}
# SIGTERM and this long to flush (TSDB head, WAL, compactor) before a replacement kills it;
# without it the provider force-removes the container at once.
STOP_GRACE_SECONDS = 30
TMPFS_OPTIONS = "rw,noexec,nosuid,size=64m"
INIT_MEMORY_MB = 64
# A per-node log agent (`Workload.reads_container_logs`) logs through the `local` driver: its
# files (`<id>/local-logs/container.log`) do not match the json-file glob it reads
# (platform.DOCKER), so it never ships its own lines. `docker logs` still works with it.
AGENT_LOG_DRIVER = "local"
AGENT_LOG_OPTS = {"max-size": "10m", "max-file": "3"}


def _megabytes(n_bytes: int) -> int:
    return max(1, math.ceil(n_bytes / (1024 * 1024)))


def _capability(name: str) -> str:
    # Docker reports capabilities as CAP_<NAME>; writing them the same way avoids a diff (and a
    # replacement) on every refresh.
    name = name.upper()
    return name if name.startswith("CAP_") or name == "ALL" else f"CAP_{name}"


def _cpus(cores: float) -> str:
    # Written the way the provider reads NanoCPUs back (nanoInt64ToDecimalString: "1.0", "0.5"),
    # so a refresh sees no change; `cpus` forces a replacement, so "1" vs "1.0" would replace the
    # container on every `up` (found by tests/test_docker_deploy.py).
    text = f"{cores:.9f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


class DockerBackend:
    """Turns workloads into Docker resources; see the module docstring for the layout."""

    def __init__(self, name: str, settings: Docker, flags: StackFlags, parent: pulumi.Resource, *,
                 chown_image: str, provider: Optional[docker.Provider] = None,
                 network: Optional[docker.Network] = None):
        """`chown_image`: an image with busybox `chown` for the volume-ownership helper (the
        stack picks one it pulls anyway). `provider` / `network`: a program's own, used instead
        of creating them."""
        self.name = name
        self.flags = flags
        self.parent = parent
        self.chown_image_ref = chown_image
        # Every Docker object name starts with this (a second instance adds its name).
        self.prefix = f"obs-{flags.stack}" + (f"-{flags.instance}" if flags.instance else "")
        self.bind_address = settings.bind_address
        self.provider = provider or docker.Provider(
            f"{name}-docker", host=settings.host, opts=pulumi.ResourceOptions(parent=parent)
        )
        self.network = network or docker.Network(
            f"{name}-network",
            name=self.prefix,
            driver="bridge",
            labels=self._labels(docker.NetworkLabelArgs),
            opts=self._opts(parent),
        )
        self._images: dict[str, docker.RemoteImage] = {}

    def platform(self) -> Platform:
        return DOCKER

    def finish(self, workloads: list[Workload]) -> None:
        """Nothing stack-wide is left to create: the network already isolates the stack."""

    # -- helpers ----------------------------------------------------------------------------------

    def _opts(self, parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, **kwargs)

    def _label_map(self, service: Optional[str] = None, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
        labels = {f"{LABEL_PREFIX}.stack": self.flags.stack, f"{LABEL_PREFIX}.managed-by": MANAGED_BY}
        if service:
            labels[f"{LABEL_PREFIX}.tool"] = service
        labels.update(extra or {})
        return dict(sorted(labels.items()))

    def _labels(self, cls, service: Optional[str] = None, extra: Optional[dict[str, str]] = None) -> list:
        return [cls(label=k, value=v) for k, v in self._label_map(service, extra).items()]

    def _image(self, ref: str, resource_name: str, parent: pulumi.Resource) -> docker.RemoteImage:
        """One RemoteImage per distinct reference (a tool and its helper may share one)."""
        if ref not in self._images:
            self._images[ref] = docker.RemoteImage(
                resource_name, name=ref, keep_locally=True, opts=self._opts(parent)
            )
        return self._images[ref]

    def _chown_image(self) -> docker.RemoteImage:
        return self._image(self.chown_image_ref, f"{self.name}-chown-image", self.parent)

    # -- the backend interface ----------------------------------------------------------------------

    def deploy(self, name: str, workload: Workload, parent: pulumi.Resource) -> Deployed:
        w = workload
        if w.secret_env:
            # Docker has no secret environment: a container's env is plain in `docker inspect`.
            # config/storage_rules.py refuses the only setting that produces one on this target.
            raise ValueError(f"{w.name}: secret environment is not supported on the Docker target")
        container_name = f"{self.prefix}-{w.name}"
        img = self._image(w.image, f"{name}-image", parent)
        uid, gid = (0, 0) if w.root_reason else (w.uid, w.gid)

        volumes: list[docker.ContainerVolumeArgs] = []
        depends_on: list[pulumi.Resource] = []
        if w.data is not None:
            volume = self._data_volume(name, w, parent)
            volumes.append(docker.ContainerVolumeArgs(volume_name=volume.name, container_path=w.data.path))
            if (uid, gid) != (0, 0):
                depends_on.append(self._chown(name, w, volume, uid, gid, parent))
        if w.host_logs is not None:
            volumes.extend(
                docker.ContainerVolumeArgs(host_path=path, container_path=path, read_only=True)
                for path in w.host_logs.paths
            )

        # Host directories for a host exporter: read-only, rslave so later host mounts are seen
        # (node_exporter's README: `-v /:/host:ro,rslave`).
        mounts = [
            docker.ContainerMountArgs(target=m.path, source=m.host_path, type="bind", read_only=True,
                                      bind_options=docker.ContainerMountBindOptionsArgs(propagation="rslave"))
            for m in w.host_mounts
        ]

        uploads = [
            docker.ContainerUploadArgs(file=f.path, content=f.content, permissions="0444")
            for f in w.config_files
        ] + [
            # Content stays a Pulumi secret (encrypted in state). Root-owned and world-readable
            # inside the container, whose only process is the tool: an `owner`/`group` makes the
            # provider ask Docker to chown to the container's user, which dockerd looks up on the
            # *host* and cannot resolve for a numeric "uid:gid" ("getent unable to find entry";
            # moby/moby#34142, open; found by tests/test_docker_deploy.py).
            docker.ContainerUploadArgs(file=f.path, content=pulumi.Output.secret(f.content), permissions="0444")
            for f in w.secret_files
        ]

        memory = _megabytes(w.resources.memory_limit_bytes)
        reservation = _megabytes(w.resources.memory_request_bytes)
        health = w.health.docker_test
        healthcheck = None
        if health:
            h = w.health
            healthcheck = docker.ContainerHealthcheckArgs(
                tests=list(health),
                interval=f"{h.period_seconds}s",
                timeout=f"{h.timeout_seconds}s",
                start_period=f"{h.initial_delay_seconds}s",
                retries=h.failure_threshold,
            )

        container = docker.Container(
            f"{name}-container",
            name=container_name,
            # The image ID (not the tag): what the provider reads back, and a re-pulled image
            # replaces the container.
            image=img.image_id,
            hostname=w.name,
            entrypoints=list(w.command) if w.command else None,
            command=list(w.args) or None,
            envs=[f"{k}={v}" for k, v in sorted(w.env.items())] or None,
            user=f"{uid}:{gid}",
            # Docker refuses to copy files into a container whose root filesystem is read-only
            # (dockerd `containerExtractToDir`: "container rootfs is marked read-only"; the
            # provider extracts uploads at "/", never inside a volume). A workload with uploads
            # therefore keeps a writable root; it still runs as a non-root uid with every
            # capability dropped, so it can write only where the image gave that uid a directory.
            read_only=w.read_only_root and not uploads,
            tmpfs={path: TMPFS_OPTIONS for path in w.scratch} or None,
            capabilities=docker.ContainerCapabilitiesArgs(
                drops=["ALL"], adds=[_capability(c) for c in w.capabilities] or None
            ),
            security_opts=["no-new-privileges:true"],
            memory=memory,
            # = memory: no swap on top of the limit. Unset, Docker defaults it to twice the memory
            # and the provider reads that back, so every later `up` would diff it away.
            memory_swap=memory,
            memory_reservation=reservation if reservation < memory else None,
            cpus=_cpus(w.resources.cpu_limit_cores),
            restart="unless-stopped",
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            log_driver=AGENT_LOG_DRIVER if w.reads_container_logs else LOG_DRIVER,
            log_opts=AGENT_LOG_OPTS if w.reads_container_logs else LOG_OPTS,
            labels=self._labels(docker.ContainerLabelArgs, w.name, w.labels),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=self.network.name, aliases=[w.name])],
            # Only user-facing ports, only on the bind address (loopback unless allowPublicPorts);
            # everything else is reachable inside the stack's network only.
            ports=[
                docker.ContainerPortArgs(
                    internal=p.port, external=p.port, ip=self.bind_address, protocol=p.protocol.lower()
                )
                for p in w.ports if p.publish
            ] or None,
            volumes=volumes or None,
            mounts=mounts or None,
            # The host's processes (node_exporter's process counts). The host *network* is not
            # shared: a container there has no alias on the stack's network, so Prometheus could
            # not reach it; network counters are then the container's own (README).
            pid_mode="host" if w.host_pid else None,
            uploads=uploads or None,
            healthcheck=healthcheck,
            # Waiting for "healthy" needs a healthcheck (the provider errors otherwise).
            wait=True if healthcheck else None,
            wait_timeout=self._wait_timeout(w) if healthcheck else None,
            opts=self._opts(parent, delete_before_replace=True, depends_on=depends_on or None),
        )

        # URLs resolve once the container exists, so consumers of an endpoint wait for it.
        internal = {
            p.name: container.name.apply(lambda _, p=p: f"http://{w.name}:{p.port}") for p in w.ports
        }
        host = _url_host(self.bind_address)
        external = {
            p.name: container.name.apply(lambda _, p=p: f"http://{host}:{p.port}")
            for p in w.ports if p.publish
        }
        return Deployed(internal_urls=internal, external_urls=external)

    # -- pieces -------------------------------------------------------------------------------------

    def _data_volume(self, name: str, w: Workload, parent: pulumi.Resource) -> docker.Volume:
        # Inputs: stack and service name only (never sizes, retention or versions), so no config
        # change can replace it. protect + retain_on_delete when protectData: `pulumi destroy`
        # or disabling the tool then fails (protect) or leaves the data on the host (retain).
        protect = self.flags.protect_data
        return docker.Volume(
            f"{name}-data",
            name=f"{self.prefix}-{w.name}-data",
            driver="local",
            labels=self._labels(docker.VolumeLabelArgs, w.name),
            opts=self._opts(parent, protect=protect, retain_on_delete=protect),
        )

    def _chown(self, name: str, w: Workload, volume: docker.Volume, uid: int, gid: int,
               parent: pulumi.Resource) -> docker.Container:
        """A one-shot container that gives the data volume to the tool's uid.

        Docker creates a named volume root-owned and only copies content and ownership from the
        image when the image has that directory (Mimir has no /data and runs as 10001; Loki's uid
        changed in 3.6), so the tool could not write its own data dir. This runs
        `chown -R uid:gid <path>` with busybox from a Prometheus/Alertmanager image the stack
        pulls anyway, as root with only CAP_CHOWN (and CAP_DAC_READ_SEARCH, to descend into
        0700 directories the tool created on an earlier run), no network, no new privileges.

        - `attach=True`: the provider waits for it to exit before the tool container (which
          depends on it) is created;
        - `must_run=False`: an exited container is its expected state, not a reason to recreate it;
        - `rm=False`: it stays (exited) so the next refresh finds it; an auto-removed container
          would be re-created, and the chown re-run, on every `up`;
        - `logs=True`: chown's output lands in the resource's `container_logs`. A failed chown
          does not fail the update (the provider records `exit_code`); the tool then fails on
          its data dir and the logs say why.
        Its inputs depend on the volume, the uid and the helper image only: config changes never
        re-run it.
        """
        helper = self._chown_image()
        return docker.Container(
            f"{name}-data-init",
            name=f"{self.prefix}-{w.name}-data-init",
            image=helper.image_id,
            entrypoints=["chown"],
            command=["-R", f"{uid}:{gid}", w.data.path],
            user="0:0",
            capabilities=docker.ContainerCapabilitiesArgs(
                drops=["ALL"], adds=[_capability("CHOWN"), _capability("DAC_READ_SEARCH")]
            ),
            security_opts=["no-new-privileges:true"],
            network_mode="none",
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=w.data.path)],
            memory=INIT_MEMORY_MB,
            memory_swap=INIT_MEMORY_MB,
            restart="no",
            must_run=False,
            attach=True,
            logs=True,
            rm=False,
            log_driver=LOG_DRIVER,
            log_opts=LOG_OPTS,
            labels=self._labels(docker.ContainerLabelArgs, w.name, {f"{LABEL_PREFIX}.role": "data-init"}),
            opts=self._opts(parent, delete_before_replace=True),
        )

    @staticmethod
    def _wait_timeout(w: Workload) -> int:
        h = w.health
        return max(60, h.initial_delay_seconds + (h.period_seconds + h.timeout_seconds) * h.failure_threshold)
