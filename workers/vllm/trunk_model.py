"""The served model, wrapped so a logits processor can read the step's hidden states.

A vLLM logits processor sees logits only. The shared-trunk head needs h_t, the final-norm
hidden state the LM head reads, which the model runner hands to ``model.compute_logits``
(``sample_hidden_states``: one row per sampled row, in the order of the logits rows the
processors then see). So the engine serves a subclass of the model's own vLLM class
(``trunk_model_class``) whose ``compute_logits`` computes the logits as before and leaves
that step's hidden states and LM-head weight in ``STEP_STATES``; the trunk processor
(``workers.vllm.trunk_processors``) takes them in the same step. Both run in the engine's
worker process, one model per process, so a module-level slot is enough; nothing else of
the model changes (same weights, same forward, same compiled graph).

``register_trunk_architecture("LlamaForCausalLM")`` registers the subclass with vLLM's
``ModelRegistry`` as ``System2TrunkLlamaForCausalLM`` and returns that name; the engine is
pointed at it with ``hf_overrides={"architectures": [name]}``. Registration must happen in
every process that resolves the architecture: the caller's (config checks) and the engine
worker's (model load), which the trunk processor does in its constructor (a forked engine
inherits it anyway). Tensor parallelism is not supported (the LM-head weight is sharded).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "PREFIX",
    "STEP_STATES",
    "StepStates",
    "register_trunk_architecture",
    "trunk_model_class",
]

PREFIX = "System2Trunk"


@dataclass
class _Step:
    hidden: torch.Tensor
    embeddings: torch.Tensor


class StepStates:
    """The last ``compute_logits`` call's hidden states and LM-head weight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._step: _Step | None = None

    def put(self, hidden: torch.Tensor, embeddings: torch.Tensor) -> None:
        with self._lock:
            self._step = _Step(hidden, embeddings)

    def take(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden [rows, d], LM-head weight [vocab, d]) of the step whose logits have
        ``rows`` rows; RuntimeError when the engine does not serve the wrapped model or
        its last hidden states do not match (speculative decoding, batch-sharded sampling)."""
        with self._lock:
            step = self._step
        if step is None:
            raise RuntimeError(
                "no hidden states from the model: the engine does not serve the system2 "
                "trunk wrapper (hf_overrides architectures) for its trunk-head processor"
            )
        if step.hidden.shape[0] != rows:
            raise RuntimeError(
                f"the model's last hidden states have {step.hidden.shape[0]} rows, the logits "
                f"{rows}: the trunk head supports plain decoding only (no speculative decoding "
                "or batch-sharded sampling)"
            )
        return step.hidden, step.embeddings


STEP_STATES = StepStates()

_CLASSES: dict[type, type] = {}


def trunk_model_class(base: type[Any]) -> type[Any]:
    """A subclass of vLLM model class ``base`` whose ``compute_logits`` also leaves its
    hidden states and LM-head weight in ``STEP_STATES`` (one class per base)."""
    if base in _CLASSES:
        return _CLASSES[base]

    def compute_logits(self: Any, hidden_states: torch.Tensor) -> torch.Tensor | None:
        logits: torch.Tensor | None = base.compute_logits(self, hidden_states)
        STEP_STATES.put(hidden_states, self.lm_head.weight)
        return logits

    wrapped = type(
        f"{PREFIX}{base.__name__}",
        (base,),
        {"compute_logits": compute_logits, "__module__": __name__, "__doc__": base.__doc__},
    )
    _CLASSES[base] = wrapped
    return wrapped


def register_trunk_architecture(architecture: str) -> str:
    """Register the wrapper of vLLM architecture ``architecture`` (idempotent); its name."""
    from vllm.model_executor.models import ModelRegistry

    base_name = architecture.removeprefix(PREFIX)
    name = f"{PREFIX}{base_name}"
    if name in ModelRegistry.get_supported_archs():
        return name
    registered = ModelRegistry.models.get(base_name)
    if registered is None:
        raise ValueError(f"vLLM has no model architecture {base_name!r} to wrap")
    ModelRegistry.register_model(name, trunk_model_class(registered.load_model_cls()))
    return name
