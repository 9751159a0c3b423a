"""Building a ``ray`` model's worker: deploy (or find) its Serve application, attach a
``RayHandleWorker`` to it, and wrap that in a ``WorkerPool`` for retries.

The application (``system2-<model>``, see ``ray_app_name``) has one deployment,
``ModelReplica``, sized and placed from the model's config (replicas or autoscaling,
``num_cpus``/``num_gpus`` per replica, calls in flight per replica). Each replica builds the
backend of the model's ``replica`` config with ``workers.config.build_worker``, as an
in-process model would be built. ``deploy: false`` (or ``deploy=False``: eval actors and
the ``--ray`` server's ingress, whose driver deployed the models) only looks the
application up.

The pool around the handle retries a call that Ray lost (a replica that died, a node
gone) up to ``max_attempts`` tries; Serve routes the retry to a live replica and replaces
the dead one. A result's usage then reads ``replica="ray:<app>/<replica id>"`` and
``attempts`` > 1.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ray import serve
from ray.serve.exceptions import RayServeException

from system2.ray.cluster import connect, start_serve
from system2.ray.config import RayClusterConfig, RayWorkerConfig, ray_app_name
from system2.ray.handle_worker import RayHandleWorker
from system2.ray.replica import DEPLOYMENT_NAME, ModelReplica
from workers.base import Worker
from workers.config import build_worker
from workers.pool import WorkerPool

__all__ = ["deploy_model", "find_model", "ray_worker", "replica_actor_name"]

_CONSTRUCTOR_TRIES = 3
"""A replica whose backend fails to build is retried this often before the deploy fails."""


def deploy_model(name: str, config: RayWorkerConfig) -> Any:
    """Deploy (or update) model ``name``'s application and wait until its replicas are up;
    its ``DeploymentHandle``. Needs a connected cluster (``connect``)."""
    start_serve()
    deployment = serve.deployment(name=DEPLOYMENT_NAME)(ModelReplica).options(
        **config.serve_options(),
        max_constructor_retry_count=_CONSTRUCTOR_TRIES,
        logging_config={"enable_access_log": False, "log_level": "WARNING"},
    )
    make_worker = partial(build_worker, name, config.replica)
    app = deployment.bind(name, make_worker, config.replica_batch_window_s())
    return serve.run(app, name=ray_app_name(name, config), route_prefix=None)


def find_model(name: str, config: RayWorkerConfig) -> Any:
    """The handle of model ``name``'s application, deployed elsewhere; a ``ValueError``
    saying so when there is none."""
    app = ray_app_name(name, config)
    try:
        return serve.get_app_handle(app)
    except RayServeException as exc:
        raise ValueError(
            f"model {name!r}: no Ray Serve application {app!r} on the cluster ({exc}); "
            "deploy it (serve deploy, KubeRay) or set `deploy: true`"
        ) from None


def ray_worker(
    name: str, config: RayWorkerConfig, cluster: RayClusterConfig, *, deploy: bool = True
) -> Worker:
    """Model ``name``'s worker (see the module's docstring): deployed here when both
    ``deploy`` and ``config.deploy`` say so (and deleted when the worker closes)."""
    connect(cluster)
    app = ray_app_name(name, config)
    owned = deploy and config.deploy
    handle = deploy_model(name, config) if owned else find_model(name, config)
    adapter = RayHandleWorker.attach(name, handle, owned_app=app if owned else None)
    return WorkerPool(
        name,
        {f"ray:{app}": adapter},
        max_attempts=config.max_attempts,
        request_timeout_s=config.request_timeout_s,
        eject_after=None,  # Serve replaces dead replicas; the handle always has live ones
    )


def replica_actor_name(app: str, replica_id: str) -> str:
    """The Ray actor (namespace ``serve``) of replica ``replica_id`` of ``app``."""
    return f"SERVE_REPLICA::{app}#{DEPLOYMENT_NAME}#{replica_id}"
