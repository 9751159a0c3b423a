"""Shared-trunk head guidance inside a vLLM engine: a logits processor fed hidden states.

The route: the engine serves the model wrapped by ``workers.vllm.trunk_model`` (its
``compute_logits`` leaves the step's final-norm hidden states and LM-head weight behind),
and these processors, loaded like the LLM2 ones of ``workers.vllm.processors``, take them
in the same step and run ``workers.verifier.trunk_scoring.guide_trunk_rows`` on the
guided rows: V_t from the raw logits, s(x | h_t) = e_xᵀ U Vᵀ h_t for x in V_t, z + beta * s
on V_t and -inf elsewhere. No second model and no extra forward pass. Per-request settings
come as for LLM2 (``SamplingParams.extra_args``, ``parse_guidance``), so ``VLLMWorker``
sends guided requests the same way whichever kind is loaded.

``prepare_engine_args`` is the engine-side set-up ``workers.vllm.engine.start_engine`` runs
when the guidance entry's ``verifier`` directory holds a trunk head: it checks the head
against the served weights (shape, and the base fingerprint unless ``verify_base`` is
false, reading the checkpoint once with transformers on the CPU), registers the wrapper
and points the engine at it (``hf_overrides``); ``adapter_for`` names the processor for the
engine's runner (V1: CPU, and GPU without Triton; V2: the GPU default). Stats go to the
entry's ``stats_file`` as the LLM2 processors write them (``read_guidance_stats``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate
from vllm.v1.sample.logits_processor import LogitsProcessor as _V1LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates
from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcessor as _V2LogitsProcessor

from workers.guidance_stats import GuidanceStats
from workers.verifier.trunk_head import TrunkHead, check_base, read_meta
from workers.verifier.trunk_kinds import saved_verifier_kind
from workers.verifier.trunk_scoring import guide_trunk_rows
from workers.vllm.processors import (
    CONFIG_KEY,
    STATS_FILE_KEY,
    GuidanceSettings,
    parse_guidance,
)
from workers.vllm.trunk_model import STEP_STATES, register_trunk_architecture

if TYPE_CHECKING:
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.config import VllmConfig
    from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext, LogitsProcRequestState

__all__ = [
    "TRUNK_V1_PROCESSOR",
    "TRUNK_V2_PROCESSOR",
    "TrunkProcessorV1",
    "TrunkProcessorV2",
    "adapter_for",
    "is_trunk_guidance",
    "prepare_engine_args",
]

TRUNK_V1_PROCESSOR = f"{__name__}:TrunkProcessorV1"
TRUNK_V2_PROCESSOR = f"{__name__}:TrunkProcessorV2"


def is_trunk_guidance(guidance: Mapping[str, Any] | None) -> bool:
    """Whether a guidance entry's ``verifier`` directory holds a trunk head."""
    directory = (guidance or {}).get("verifier")
    return bool(directory) and saved_verifier_kind(str(directory)) == "trunk_head"


def prepare_engine_args(args: Mapping[str, Any], guidance: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` serving the trunk wrapper of the model, after checking the saved head in
    ``guidance["verifier"]`` against the model's weights (module doc)."""
    from transformers import AutoConfig

    out = dict(args)
    model = str(out["model"])
    meta = read_meta(str(guidance["verifier"]))
    if int(out.get("tensor_parallel_size", 1) or 1) != 1:
        raise ValueError("the trunk head needs tensor_parallel_size 1 (it reads the LM head)")
    if bool(guidance.get("verify_base", True)) and meta.get("base_sha256"):
        from transformers import AutoModelForCausalLM

        generator = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
        check_base(meta, generator, verify_base=True)
        del generator
    else:
        check_base(meta, _ShapeOnly(AutoConfig.from_pretrained(model)), verify_base=False)
    overrides = dict(out.get("hf_overrides") or {})
    architectures = (
        overrides.get("architectures") or AutoConfig.from_pretrained(model).architectures
    )
    if not architectures:
        raise ValueError(f"{model}: its config names no architecture to wrap")
    overrides["architectures"] = [register_trunk_architecture(str(architectures[0]))]
    out["hf_overrides"] = overrides
    return out


@dataclasses.dataclass(frozen=True)
class _ShapeOnly:
    config: Any


def adapter_for(use_v2_model_runner: bool) -> str:
    """The trunk processor (``module:class``) for the engine's runner."""
    return TRUNK_V2_PROCESSOR if use_v2_model_runner else TRUNK_V1_PROCESSOR


class _TrunkGuide:
    """The head, read once per engine, and its running stats (written to the stats file)."""

    def __init__(self, vllm_config: VllmConfig, device: torch.device) -> None:
        extra = getattr(vllm_config, "additional_config", None) or {}
        spec = extra.get(CONFIG_KEY) if isinstance(extra, Mapping) else None
        if not isinstance(spec, Mapping) or not spec.get("verifier"):
            raise ValueError(f"the trunk processor needs additional_config[{CONFIG_KEY!r}]")
        for name in vllm_config.model_config.architectures or ():
            register_trunk_architecture(name)  # a spawned engine process has not yet
        self.head = TrunkHead.load(str(spec["verifier"])).to(device)
        self.path = str(spec[STATS_FILE_KEY]) if spec.get(STATS_FILE_KEY) else None
        self.stats = GuidanceStats()

    def __call__(
        self, logits: torch.Tensor, rows: list[int], settings: list[GuidanceSettings]
    ) -> torch.Tensor:
        hidden, embeddings = STEP_STATES.take(logits.shape[0])
        with torch.no_grad():
            if len(rows) == logits.shape[0]:  # every row guided (the usual batch): no gather
                logits = guide_trunk_rows(
                    logits, hidden, settings, self.head, embeddings, self.stats
                )
            else:
                index = torch.tensor(rows, dtype=torch.long, device=logits.device)
                logits[index] = guide_trunk_rows(
                    logits[index],
                    hidden[index.to(hidden.device)],
                    settings,
                    self.head,
                    embeddings,
                    self.stats,
                )
        if self.path is not None:
            partial = f"{self.path}.{os.getpid()}.part"
            with open(partial, "w") as f:
                json.dump(dataclasses.asdict(self.stats), f)
            os.replace(partial, self.path)
        return logits


class TrunkProcessorV1(_V1LogitsProcessor):
    """Trunk-head guidance for the V1 model runner (``vllm.v1.sample.logits_processor``)."""

    @classmethod
    def validate_params(cls, sampling_params: VLLMSamplingParams) -> None:
        parse_guidance(sampling_params.extra_args)

    def __init__(self, vllm_config: VllmConfig, device: torch.device, is_pin_memory: bool) -> None:
        self.guide = _TrunkGuide(vllm_config, device)
        self.rows: dict[int, GuidanceSettings] = {}

    def is_argmax_invariant(self) -> bool:
        return False  # it masks every token outside V_t and moves the argmax

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        def new_row(
            params: VLLMSamplingParams, prompt: list[int] | None, output: list[int]
        ) -> GuidanceSettings | None:
            return parse_guidance(params.extra_args)

        process_dict_updates(self.rows, batch_update, new_row)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        rows = sorted(i for i in self.rows if i < logits.shape[0])
        if not rows:
            return logits
        return self.guide(logits, rows, [self.rows[i] for i in rows])


class TrunkProcessorV2(_V2LogitsProcessor):
    """Trunk-head guidance for Model Runner V2 (row ``r`` belongs to request slot
    ``ctx.expanded_idx_mapping[r]``)."""

    @classmethod
    def validate_params(cls, sampling_params: VLLMSamplingParams) -> None:
        parse_guidance(sampling_params.extra_args)

    def __init__(self, vllm_config: VllmConfig, req_states: LogitsProcRequestState) -> None:
        self.guide = _TrunkGuide(vllm_config, torch.device(req_states.device))
        self.settings: dict[int, GuidanceSettings] = {}  # request slot -> its guidance

    def add_request(self, req_idx: int, sampling_params: VLLMSamplingParams) -> bool:
        settings = parse_guidance(sampling_params.extra_args)
        if settings is None:
            self.settings.pop(req_idx, None)
            return False
        self.settings[req_idx] = settings
        return True

    def apply(self, logits: torch.Tensor, ctx: LogitsContext) -> torch.Tensor:
        if not self.settings:
            return logits
        slots = [int(s) for s in ctx.expanded_idx_mapping.tolist()]
        rows = [r for r, slot in enumerate(slots) if slot in self.settings]
        if not rows:
            return logits
        return self.guide(logits, rows, [self.settings[slots[r]] for r in rows])
