"""How a model served by Ray Serve is declared (``kind: ray``), and which cluster to use.

A ``ray`` model is a Ray Serve application of identical replicas, each hosting one of
system2's own backends built from ``replica`` (the same YAML as an in-process model:
``transformers``, ``vllm``, or ``scripted`` for tests). Moving a model onto a cluster is
wrapping its config::

    models:
      small:
        kind: ray
        replica: {kind: transformers, model: smollm2-135m-instruct, threads: 1}
        num_replicas: 2
        num_cpus: 1

The top-level ``ray:`` section (``RayClusterConfig``) says which cluster to join; the
resources of a local one started on the spot are small by default. Loading these models
has no side effects: nothing imports ``ray`` here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from workers.config import ScriptedWorkerConfig, TransformersWorkerConfig, VLLMWorkerConfig

__all__ = [
    "RayAutoscalingConfig",
    "RayClusterConfig",
    "RayReplicaConfig",
    "RayWorkerConfig",
    "ray_app_name",
]


_TRANSFORMERS_BATCH_WINDOW_S = 0.015
"""Calls through a Ray hop reach a replica milliseconds apart; the embedded model batches
what is queued within 5 ms."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


RayReplicaConfig = Annotated[
    TransformersWorkerConfig | VLLMWorkerConfig | ScriptedWorkerConfig,
    Field(discriminator="kind"),
]
"""What one Serve replica hosts: an in-process backend (HTTP models need no Ray)."""


class RayAutoscalingConfig(_Strict):
    """Ray Serve's autoscaling of a model's replicas (its ``autoscaling_config``): replicas
    are added while each has more than ``target_ongoing_requests`` in flight."""

    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(ge=1)
    initial_replicas: int | None = Field(default=None, ge=0)
    target_ongoing_requests: float = Field(default=2.0, gt=0)
    upscale_delay_s: float = Field(default=30.0, ge=0)
    downscale_delay_s: float = Field(default=600.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RayAutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) exceeds max_replicas ({self.max_replicas})"
            )
        initial = self.initial_replicas
        if initial is not None and not self.min_replicas <= initial <= self.max_replicas:
            raise ValueError(
                f"initial_replicas ({initial}) is outside [min_replicas, max_replicas] "
                f"([{self.min_replicas}, {self.max_replicas}])"
            )
        return self

    def serve_options(self) -> dict[str, Any]:
        """The ``autoscaling_config`` Ray Serve takes."""
        return self.model_dump(exclude_none=True)


class RayWorkerConfig(_Strict):
    """A model served by Ray Serve replicas, called through a ``DeploymentHandle``.

    Serve balances the calls over the replicas and replaces a replica that dies; a call
    that fails on a dead or unreachable replica is tried again (``max_attempts`` tries in
    all), and its trace says which replica answered and how many tries it took.
    """

    kind: Literal["ray"] = "ray"
    replica: RayReplicaConfig = Field(description="the backend each replica hosts")
    num_replicas: int | None = Field(
        default=None, ge=1, description="a fixed replica count (default 1); or `autoscaling`"
    )
    autoscaling: RayAutoscalingConfig | None = None
    num_cpus: float = Field(default=1.0, ge=0, description="CPUs each replica reserves")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs each replica reserves")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="custom resources each replica reserves: places the pool on the nodes "
        "started with them (ray start --resources='{\"coder\": 1}')",
    )
    accelerator_type: str | None = Field(
        default=None, description="the GPU type its nodes must have (Ray's, e.g. A100, H100)"
    )
    max_ongoing_requests: int = Field(
        default=8, ge=1, description="calls one replica takes at once (its engine batches them)"
    )
    batch_window_s: float | None = Field(
        default=None,
        ge=0,
        description="a replica holds calls arriving this close together and lets them go at "
        "once, so a batching backend takes them together; None: 0.015 for transformers, else 0",
    )
    max_attempts: int = Field(default=3, ge=1, description="tries per call, retries included")
    request_timeout_s: float | None = Field(default=None, gt=0, description="per try")
    app: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")] | None = (
        Field(default=None, description="the Serve application's name; default system2-<model>")
    )
    deploy: bool = Field(
        default=True,
        description="deploy the application (False: call one deployed by `serve deploy`/KubeRay)",
    )

    @model_validator(mode="after")
    def _one_way_to_size(self) -> RayWorkerConfig:
        if self.num_replicas is not None and self.autoscaling is not None:
            raise ValueError("set either num_replicas or autoscaling, not both")
        return self

    def replica_batch_window_s(self) -> float:
        """``batch_window_s``, its default filled in (see ``system2.ray.arrivals``)."""
        if self.batch_window_s is not None:
            return self.batch_window_s
        return _TRANSFORMERS_BATCH_WINDOW_S if self.replica.kind == "transformers" else 0.0

    def serve_options(self) -> dict[str, Any]:
        """The deployment options Ray Serve takes (``Deployment.options``)."""
        sizing: dict[str, Any] = (
            {"autoscaling_config": self.autoscaling.serve_options()}
            if self.autoscaling is not None
            else {"num_replicas": self.num_replicas or 1}
        )
        placement: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.resources:
            placement["resources"] = dict(self.resources)
        if self.accelerator_type is not None:
            placement["accelerator_type"] = self.accelerator_type
        return {
            **sizing,
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": placement,
        }


class RayClusterConfig(_Strict):
    """The Ray cluster that ``ray`` models (and ``--ray`` runs) use.

    ``address``: ``auto`` (the cluster this machine joined with ``ray start``), a head's
    ``host:port``, or ``ray://host:10001``; None joins ``RAY_ADDRESS`` when it is set and
    otherwise starts a local one-node cluster sized by ``num_cpus``/``num_gpus`` and
    ``object_store_mb`` (these three apply only to such a local cluster).
    """

    address: str | None = None
    namespace: str = "system2"
    num_cpus: int | None = Field(default=None, ge=1, description="local cluster: CPUs")
    num_gpus: int | None = Field(default=None, ge=0, description="local cluster: GPUs")
    object_store_mb: int = Field(default=256, ge=64, description="local cluster: object store")


def ray_app_name(model: str, config: RayWorkerConfig) -> str:
    """The Serve application that serves ``model``: ``config.app``, else ``system2-<model>``
    (characters Serve does not take in names become ``-``)."""
    if config.app is not None:
        return config.app
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in model)
    return f"system2-{safe}"
