"""Joining the Ray cluster a config names (``ray:``), and starting Serve on it.

``connect`` does nothing inside a Ray worker (an eval actor, a Serve replica): the process
is already part of its cluster. Elsewhere it joins ``address`` (the CLI's ``--address``),
else the config's, else ``RAY_ADDRESS``; with none of them it starts a local one-node
cluster of the config's small size (no dashboard), which ends with this process.
"""

from __future__ import annotations

import os

import ray
from ray import serve

from system2.ray.config import RayClusterConfig

__all__ = ["connect", "start_serve"]


def connect(cluster: RayClusterConfig, *, address: str | None = None) -> None:
    """Join (or start) the cluster, once per process (see the module's docstring)."""
    if ray.is_initialized():
        return
    address = address or cluster.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, namespace=cluster.namespace)
        return
    ray.init(
        address="local",  # a new cluster, even where `ray start` left one running
        namespace=cluster.namespace,
        num_cpus=cluster.num_cpus,
        num_gpus=cluster.num_gpus,
        object_store_memory=cluster.object_store_mb << 20,
        include_dashboard=False,
    )


def start_serve(*, host: str | None = None, port: int | None = None) -> None:
    """Start Serve on the cluster: with an HTTP proxy on the head node at ``host:port``
    (what ``system2 serve --ray`` listens on), or, without them, with no proxy at all (the
    models are called through handles only). Serve already running keeps its settings."""
    logs = {"log_level": "WARNING"}  # the controller's and proxies' own logs
    if host is None or port is None:
        serve.start(proxy_location="Disabled", logging_config=logs)
        return
    serve.start(
        proxy_location="HeadOnly", http_options={"host": host, "port": port}, logging_config=logs
    )
