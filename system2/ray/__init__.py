"""Scale-out on Ray: models as Ray Serve applications (``kind: ray``), evaluation items
spread over a cluster (``system2 eval --ray``), and the server as a Serve ingress
(``system2 serve --ray``).

Ray is an optional extra (``pip install 'system2[ray]'``). Only the configs are imported
here; the modules that need Ray (``cluster``, ``deploy``, ``replica``, ``handle_worker``,
``errors``, ``evaluation``, ``serve_app``, ``cli_options``' eval) import it and are
imported where a ray model is built or a ``--ray`` command runs.
"""

from __future__ import annotations

from system2.ray.config import (
    RayAutoscalingConfig,
    RayClusterConfig,
    RayReplicaConfig,
    RayWorkerConfig,
    ray_app_name,
)

__all__ = [
    "RayAutoscalingConfig",
    "RayClusterConfig",
    "RayReplicaConfig",
    "RayWorkerConfig",
    "ray_app_name",
]
