"""The ``ray`` worker kind and the ``ray`` cluster section: validation at load time."""

from __future__ import annotations

from typing import Any

import pytest

from system2.config import ConfigError, parse_config
from system2.ray.config import RayClusterConfig, RayWorkerConfig, ray_app_name

SMALL = {"kind": "transformers", "model": "smollm2-135m-instruct", "threads": 1}


def _config(model: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"models": {"m": model}, "policy": {"kind": "fixed", "models": ["m"]}, **top}


def test_a_ray_model_wraps_an_in_process_config() -> None:
    """A ray model is the in-process config, wrapped; Serve options come from it."""
    config = parse_config(_config({"kind": "ray", "replica": SMALL, "num_cpus": 1}))
    model = config.models["m"]
    assert isinstance(model, RayWorkerConfig)
    assert model.replica.kind == "transformers"
    assert model.serve_options() == {
        "num_replicas": 1,
        "max_ongoing_requests": 8,
        "ray_actor_options": {"num_cpus": 1.0, "num_gpus": 0.0},
    }
    assert config.ray == RayClusterConfig()


def test_autoscaling_becomes_serves_autoscaling_config() -> None:
    """Autoscaling bounds go to Serve as its autoscaling_config."""
    model = RayWorkerConfig.model_validate(
        {"replica": SMALL, "autoscaling": {"min_replicas": 1, "max_replicas": 4}, "num_gpus": 1}
    )
    options = model.serve_options()
    assert "num_replicas" not in options
    assert options["autoscaling_config"]["max_replicas"] == 4
    assert options["ray_actor_options"] == {"num_cpus": 1.0, "num_gpus": 1.0}


def test_batch_window_defaults_by_backend() -> None:
    """Replicas of the batching transformers backend hold close arrivals 15 ms; others not."""
    assert RayWorkerConfig.model_validate({"replica": SMALL}).replica_batch_window_s() == 0.015
    vllm = {"kind": "vllm", "model": "m"}
    assert RayWorkerConfig.model_validate({"replica": vllm}).replica_batch_window_s() == 0.0
    chosen = RayWorkerConfig.model_validate({"replica": SMALL, "batch_window_s": 0})
    assert chosen.replica_batch_window_s() == 0.0


def test_node_types_come_from_resources() -> None:
    """Custom resources and a GPU type place a pool on the nodes that have them."""
    model = RayWorkerConfig.model_validate(
        {"replica": SMALL, "num_gpus": 1, "resources": {"coder": 1}, "accelerator_type": "H100"}
    )
    assert model.serve_options()["ray_actor_options"] == {
        "num_cpus": 1.0,
        "num_gpus": 1.0,
        "resources": {"coder": 1.0},
        "accelerator_type": "H100",
    }


@pytest.mark.parametrize(
    ("model", "where", "says"),
    [
        (
            {"replicas": 2},
            "models.m.ray",
            "Extra inputs are not permitted",
        ),
        (
            {"num_replicas": 2, "autoscaling": {"max_replicas": 3}},
            "models.m.ray",
            "either num_replicas or autoscaling",
        ),
        (
            {"autoscaling": {"min_replicas": 3, "max_replicas": 2}},
            "models.m.ray.autoscaling",
            "exceeds max_replicas",
        ),
        ({"num_gpus": -1}, "models.m.ray.num_gpus", "greater than or equal to 0"),
        ({"app": "no spaces"}, "models.m.ray.app", "String should match pattern"),
    ],
)
def test_bad_ray_models_name_the_key(model: dict[str, Any], where: str, says: str) -> None:
    """A broken ray model is refused at load time, at its key path."""
    with pytest.raises(ConfigError) as raised:
        parse_config(_config({"kind": "ray", "replica": SMALL, **model}))
    assert where in str(raised.value)
    assert says in str(raised.value)


def test_a_pool_or_http_model_cannot_be_a_replica() -> None:
    """Replicas host in-process backends only (an HTTP model needs no Ray)."""
    replica = {"kind": "openai", "base_url": "http://x", "model": "m"}
    with pytest.raises(ConfigError, match=r"models\.m\.ray\.replica"):
        parse_config(_config({"kind": "ray", "replica": replica}))


def test_system2_strategy_needs_the_replicas_verifier() -> None:
    """Strategy system2 on a ray model needs a verifier in its replica config."""
    with pytest.raises(ConfigError, match="needs a token verifier on model"):
        parse_config(_config({"kind": "ray", "replica": SMALL}, strategy={"kind": "system2"}))
    with_verifier = {**SMALL, "verifier": {"path": "/v"}}
    parse_config(_config({"kind": "ray", "replica": with_verifier}, strategy={"kind": "system2"}))


def test_a_token_step_verifier_may_live_in_ray_replicas() -> None:
    """A token step verifier may name a ray model whose replicas carry a verifier."""
    step = {"kind": "token", "model": "m"}
    with pytest.raises(ConfigError, match="kind 'token' needs model 'm'"):
        parse_config(_config({"kind": "ray", "replica": SMALL}, step_verifier=step))
    with_verifier = {**SMALL, "verifier": {"path": "/v"}}
    parse_config(_config({"kind": "ray", "replica": with_verifier}, step_verifier=step))


def test_the_cluster_section() -> None:
    """The ray section names the cluster; unknown keys are refused."""
    config = parse_config(_config(SMALL, ray={"address": "auto", "object_store_mb": 512}))
    assert config.ray.address == "auto"
    with pytest.raises(ConfigError, match=r"ray\.object_store_mb"):
        parse_config(_config(SMALL, ray={"object_store_mb": 1}))
    with pytest.raises(ConfigError, match=r"ray\.adress"):
        parse_config(_config(SMALL, ray={"adress": "auto"}))


def test_app_names() -> None:
    """Each model's Serve application is named after it, unless the config names it."""
    model = RayWorkerConfig.model_validate({"replica": SMALL})
    assert ray_app_name("qwen/coder 1.5b", model) == "system2-qwen-coder-1.5b"
    named = model.model_copy(update={"app": "coder"})
    assert ray_app_name("x", named) == "coder"
