"""The ``vllm`` worker kind in configs, and how ``VLLMWorker.load`` turns its options into
engine arguments, without starting an engine (the engine itself: ``test_vllm_worker.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from workers import ScriptedWorker, VLLMWorkerConfig, WorkerConfig, build_worker, cycle_texts
from workers.config import WORKER_BUILDERS, PoolConfig
from workers.errors import UnsupportedRequest
from workers.vllm.worker import VLLMWorker

CONFIG = TypeAdapter(WorkerConfig)


def test_vllm_kind_parses_alone_and_inside_a_pool() -> None:
    alone = CONFIG.validate_python(
        {"kind": "vllm", "model": "m", "max_model_len": 1024, "kv_cache_gib": 0.5}
    )
    assert isinstance(alone, VLLMWorkerConfig)
    assert (alone.dtype, alone.enforce_eager, alone.seed, alone.verifier) == (
        "float32",
        False,
        0,
        None,
    )
    pool = CONFIG.validate_python(
        {
            "kind": "pool",
            "replicas": [
                {"kind": "vllm", "model": "m", "verifier": {"path": "v"}},
                {"kind": "openai", "base_url": "http://127.0.0.1:8000", "model": "m"},
            ],
        }
    )
    assert isinstance(pool, PoolConfig)
    assert [r.kind for r in pool.replicas] == ["vllm", "openai"]
    with pytest.raises(ValidationError):
        CONFIG.validate_python({"kind": "vllm", "model": "m", "kv_cache_gib": 0})
    with pytest.raises(ValidationError):
        CONFIG.validate_python({"kind": "vllm", "model": "m", "tensor_parallel": 2})


def test_builder_passes_every_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """``build_worker`` hands the config to ``VLLMWorker.load`` (patched: no engine)."""
    seen: dict[str, Any] = {}

    def fake_load(cls: type[VLLMWorker], model: str, **kwargs: Any) -> ScriptedWorker:
        seen.update(kwargs, model=model)
        return ScriptedWorker(kwargs["model_name"], cycle_texts(["ok"]))

    monkeypatch.setattr(VLLMWorker, "load", classmethod(fake_load))
    assert "vllm" in WORKER_BUILDERS
    config = VLLMWorkerConfig(
        model="m",
        max_model_len=512,
        kv_cache_gib=0.25,
        enforce_eager=True,
        seed=3,
        verifier={"path": "vdir", "verify_base": False},  # type: ignore[arg-type]
    )
    worker = build_worker("name", config)
    assert worker.model_name == "name"
    assert seen == {
        "model": "m",
        "model_name": "name",
        "dtype": "float32",
        "max_model_len": 512,
        "kv_cache_gib": 0.25,
        "enforce_eager": True,
        "seed": 3,
        "verifier": "vdir",
        "verifier_attn_implementation": "sdpa",
        "verify_base": False,
    }


def test_load_turns_options_into_engine_args(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """kv_cache_gib becomes kv_cache_memory_bytes; a verifier becomes the processor's
    additional_config entry (absolute path); on CPU prompts prefill whole; engine_kwargs
    win."""
    (tmp_path / "config.json").write_text("{}")
    captured: dict[str, Any] = {}

    def fake_init(self: VLLMWorker, engine_args: Any, **kwargs: Any) -> None:
        captured.update(engine_args=engine_args, **kwargs)

    monkeypatch.setattr(VLLMWorker, "__init__", fake_init)
    monkeypatch.setattr("workers.vllm.engine.cpu_only", lambda: True)
    VLLMWorker.load(
        tmp_path,
        kv_cache_gib=0.5,
        max_model_len=256,
        verifier="relative/dir",
        engine_kwargs={"seed": 9, "max_num_seqs": 4},
    )
    assert captured["engine_args"] == {
        "model": str(tmp_path),
        "dtype": "float32",
        "seed": 9,
        "enforce_eager": False,
        "disable_log_stats": True,
        "max_model_len": 256,
        "kv_cache_memory_bytes": 2**29,
        "enable_chunked_prefill": False,
        "max_num_seqs": 4,
    }
    assert captured["model_name"] == str(tmp_path)
    assert captured["verifier"] == {
        "verifier": str(Path("relative/dir").resolve()),
        "attn_implementation": "sdpa",
        "verify_base": True,
    }
    with pytest.raises(ValueError, match="not both"):
        VLLMWorker.load(tmp_path, verifier="v", guidance_scorer="m:f")
    VLLMWorker.load(tmp_path, guidance_scorer="pkg.mod:factory")
    assert captured["verifier"] == {"scorer": "pkg.mod:factory"}


def test_token_step_verifier_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine keeps its verifier in its own process: steps cannot be scored there, and
    the refusal says where they can."""

    def fake_init(self: VLLMWorker, engine_args: Any, **kwargs: Any) -> None:
        self.model_name = kwargs["model_name"]

    monkeypatch.setattr(VLLMWorker, "__init__", fake_init)
    worker = VLLMWorker({}, model_name="engine")
    with pytest.raises(UnsupportedRequest, match="engine process") as info:
        worker.token_step_verifier()
    assert info.value.model == "engine"
    assert "verifier: {path: DIR}" in info.value.reason
