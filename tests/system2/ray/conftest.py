"""A one-node Ray cluster for the fast tests, started once per module with small
resources (2 logical CPUs, a 128 MB object store, no dashboard) and shut down after.
Modules using it skip without Ray (``pytest.importorskip("ray")`` at their top)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def one_node() -> Iterator[None]:
    """A local one-node cluster with Serve (no HTTP proxy)."""
    import ray
    from ray import serve

    from system2.ray.cluster import connect, start_serve
    from system2.ray.config import RayClusterConfig

    if ray.is_initialized():
        ray.shutdown()
    connect(RayClusterConfig(num_cpus=2, object_store_mb=128, namespace="system2-tests"))
    start_serve()
    yield
    serve.shutdown()
    ray.shutdown()
