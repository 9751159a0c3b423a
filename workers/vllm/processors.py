"""LLM2 token-verifier guidance inside a vLLM engine, as engine-level logits processors.

vLLM loads logits processors once per engine (at start) and runs them on the whole batch;
per-request settings travel in ``SamplingParams.extra_args`` (over HTTP: ``vllm_xargs``,
flat values only). A request is guided when its extra args carry ``system2_beta > 0``
(``guidance_extra_args`` writes them); every other row's logits are left untouched.

One step, shared by both adapters and the transformers processor, is
``workers.verifier.guidance.guide_rows``: V_t from the row's raw logits, the scorer's
s(x_<t, v) for v in V_t, then z* = z + beta * s on V_t and -inf elsewhere. vLLM returns
the log-probs of the unmodified distribution (``logprobs_mode="raw_logprobs"``, its
default), as the worker seam promises.

Two adapters, because vLLM has two incompatible runner interfaces:

* ``VerifierProcessorV1``: ``vllm.v1.sample.logits_processor.LogitsProcessor`` (the V1 model
  runner: CPU, and GPU without Triton). Rows are tracked through ``BatchUpdate``s: added
  rows bring a reference to their growing output-token list, so a row's sequence is its
  prompt plus that list.
* ``VerifierProcessorV2``: ``vllm.v1.worker.gpu.sample.logits_processor.LogitsProcessor``
  (Model Runner V2, the GPU default). Settings are kept per request slot; a row's sequence
  is its slot's committed tokens before its position plus the row's input token.
  Speculative decoding (draft rows) is not supported.

The scorer (a ``CandidateScorer``) is built in the engine process from
``vllm_config.additional_config["system2_guidance"]``: ``{"verifier": DIR,
"attn_implementation": "sdpa", "verify_base": true}`` loads a saved ``TokenVerifier`` onto
the served model's weights (read again with transformers, in float32 on CPU), and
``{"scorer": "package.module:factory"}`` calls ``factory(vllm_config)`` for any other
scorer (tests use a deterministic one). ``VLLMWorker.load(verifier=...)`` writes this
config and picks the adapter matching the engine's runner.

The processor runs in the engine's process, out of the caller's reach, so with
``"stats_file": PATH`` in that config it keeps its running ``GuidanceStats`` (rows guided,
candidates scored, wall seconds) in a JSON file there after every guided step;
``read_guidance_stats`` reads it back (``VLLMWorker.guidance_stats``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate
from vllm.v1.sample.logits_processor import LogitsProcessor as _V1LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates
from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcessor as _V2LogitsProcessor

from workers.guidance_stats import GuidanceStats
from workers.verifier.guidance import CandidateScorer, VerifierScorer, guide_rows
from workers.verifier.network import TokenVerifier

if TYPE_CHECKING:
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.config import VllmConfig
    from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext, LogitsProcRequestState

__all__ = [
    "BETA_KEY",
    "CONFIG_KEY",
    "V1_PROCESSOR",
    "V2_PROCESSOR",
    "GuidanceSettings",
    "VerifierProcessorV1",
    "VerifierProcessorV2",
    "guidance_extra_args",
    "parse_guidance",
    "read_guidance_stats",
    "scorer_from_config",
]

CONFIG_KEY = "system2_guidance"
"""The ``additional_config`` key the adapters read their scorer's description from."""
STATS_FILE_KEY = "stats_file"
BETA_KEY, ALPHA_KEY, TOP_K_KEY = "system2_beta", "system2_alpha", "system2_top_k"
V1_PROCESSOR = f"{__name__}:VerifierProcessorV1"
V2_PROCESSOR = f"{__name__}:VerifierProcessorV2"


@dataclass(frozen=True, slots=True)
class GuidanceSettings:
    """One request's guidance (the fields of ``workers.base.Guidance``)."""

    beta: float
    alpha: float = 0.1
    top_k: int = 10


def guidance_extra_args(beta: float, alpha: float = 0.1, top_k: int = 10) -> dict[str, Any]:
    """The ``SamplingParams.extra_args`` (or ``vllm_xargs``) asking for guidance."""
    return {BETA_KEY: float(beta), ALPHA_KEY: float(alpha), TOP_K_KEY: int(top_k)}


def parse_guidance(extra_args: Mapping[str, Any] | None) -> GuidanceSettings | None:
    """The guidance a request asks for (None: none, or beta = 0); ValueError if malformed."""
    if not extra_args or extra_args.get(BETA_KEY) is None:
        return None
    try:
        settings = GuidanceSettings(
            beta=float(extra_args[BETA_KEY]),
            alpha=float(extra_args.get(ALPHA_KEY, 0.1)),
            top_k=int(extra_args.get(TOP_K_KEY, 10)),
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed system2 guidance extra_args {dict(extra_args)}") from exc
    if not (math.isfinite(settings.beta) and settings.beta >= 0.0):
        raise ValueError(f"{BETA_KEY} must be a finite number >= 0, got {settings.beta}")
    if not 0.0 <= settings.alpha <= 1.0:
        raise ValueError(f"{ALPHA_KEY} must lie in [0, 1], got {settings.alpha}")
    if settings.top_k < 0:
        raise ValueError(f"{TOP_K_KEY} must be >= 0, got {settings.top_k}")
    if settings.alpha == 0.0 and settings.top_k == 0:
        raise ValueError(f"{ALPHA_KEY} = 0 needs a {TOP_K_KEY} cap")
    return settings if settings.beta > 0.0 else None


def _guidance_spec(vllm_config: VllmConfig) -> Mapping[str, Any] | None:
    """``additional_config[CONFIG_KEY]`` if it is a mapping."""
    extra = getattr(vllm_config, "additional_config", None) or {}
    spec = extra.get(CONFIG_KEY) if isinstance(extra, Mapping) else None
    return spec if isinstance(spec, Mapping) else None


def scorer_from_config(vllm_config: VllmConfig, device: torch.device) -> CandidateScorer:
    """Build the scorer ``additional_config[CONFIG_KEY]`` describes (see the module doc)."""
    spec = _guidance_spec(vllm_config)
    if spec is None:
        raise ValueError(
            f"the system2 verifier processor needs additional_config[{CONFIG_KEY!r}] = "
            '{"verifier": DIR} or {"scorer": "module:factory"}'
        )
    if spec.get("scorer"):
        factory = _import_object(str(spec["scorer"]))
        scorer: CandidateScorer = factory(vllm_config)
        return scorer
    if not spec.get("verifier"):
        raise ValueError(f"additional_config[{CONFIG_KEY!r}] names neither verifier nor scorer")
    return VerifierScorer(_load_verifier(vllm_config, spec, device))


class _StatsKeeper:
    """An adapter's running ``GuidanceStats``, written to the config's stats file (if any)
    after each guided step; the file is replaced whole, so a reader never sees half."""

    def __init__(self, vllm_config: VllmConfig) -> None:
        path = (_guidance_spec(vllm_config) or {}).get(STATS_FILE_KEY)
        self.path = str(path) if path else None
        self.stats = GuidanceStats()

    def guide(
        self,
        logits: torch.Tensor,
        sequences: Sequence[Sequence[int]],
        settings: Sequence[GuidanceSettings],
        scorer: CandidateScorer,
    ) -> torch.Tensor:
        out = guide_rows(logits, sequences, settings, scorer, self.stats)
        if self.path is not None:
            partial = f"{self.path}.{os.getpid()}.part"
            with open(partial, "w") as f:
                json.dump(dataclasses.asdict(self.stats), f)
            os.replace(partial, self.path)
        return out


def read_guidance_stats(path: str | os.PathLike[str]) -> GuidanceStats:
    """The stats an engine's processor wrote to ``path`` (zeros before its first step)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return GuidanceStats()
    return GuidanceStats(**{f.name: data[f.name] for f in dataclasses.fields(GuidanceStats)})


def _load_verifier(
    vllm_config: VllmConfig, spec: Mapping[str, Any], device: torch.device
) -> TokenVerifier:
    """Rebuild the saved verifier on the served model's weights (read with transformers)."""
    from transformers import AutoModelForCausalLM

    model_config = vllm_config.model_config
    dtype = model_config.dtype if device.type != "cpu" else torch.float32
    generator = AutoModelForCausalLM.from_pretrained(model_config.model, dtype=dtype)
    verifier = TokenVerifier.load(
        spec["verifier"],
        generator,
        attn_implementation=str(spec.get("attn_implementation", "sdpa")),
        verify_base=bool(spec.get("verify_base", True)),
    )
    del generator  # the verifier holds its own copy of the decoder
    return verifier.to(device).eval()


def _import_object(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"expected 'package.module:name', got {path!r}")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{path} is not callable")
    return obj  # type: ignore[no-any-return]


# -- the V1 runner (CPU) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _V1Row:
    settings: GuidanceSettings
    prompt: tuple[int, ...]
    output: list[int]  # vLLM's own running list of the row's generated ids


class VerifierProcessorV1(_V1LogitsProcessor):
    """Verifier guidance for the V1 model runner (``vllm.v1.sample.logits_processor``)."""

    @classmethod
    def validate_params(cls, sampling_params: VLLMSamplingParams) -> None:
        parse_guidance(sampling_params.extra_args)

    def __init__(self, vllm_config: VllmConfig, device: torch.device, is_pin_memory: bool) -> None:
        self.scorer = scorer_from_config(vllm_config, device)
        self.keeper = _StatsKeeper(vllm_config)
        self.rows: dict[int, _V1Row] = {}

    def is_argmax_invariant(self) -> bool:
        return False  # it masks every token outside V_t and moves the argmax

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        def new_row(
            params: VLLMSamplingParams, prompt: list[int] | None, output: list[int]
        ) -> _V1Row | None:
            settings = parse_guidance(params.extra_args)
            if settings is None:
                return None
            return _V1Row(settings, tuple(prompt or ()), output)

        process_dict_updates(self.rows, batch_update, new_row)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        index = sorted(i for i in self.rows if i < logits.shape[0])
        if not index:
            return logits
        rows = [self.rows[i] for i in index]
        logits[index] = self.keeper.guide(
            logits[index],
            [r.prompt + tuple(r.output) for r in rows],
            [r.settings for r in rows],
            self.scorer,
        )
        return logits


# -- Model Runner V2 (GPU) -----------------------------------------------------------------


class VerifierProcessorV2(_V2LogitsProcessor):
    """Verifier guidance for Model Runner V2 (``vllm.v1.worker.gpu.sample.logits_processor``).

    ``apply`` sees unscaled logits (after bias/penalties/grammar, before temperature and
    top-k/top-p), row ``r`` belonging to slot ``ctx.expanded_idx_mapping[r]``.
    """

    @classmethod
    def validate_params(cls, sampling_params: VLLMSamplingParams) -> None:
        parse_guidance(sampling_params.extra_args)

    def __init__(self, vllm_config: VllmConfig, req_states: LogitsProcRequestState) -> None:
        self.req_states = req_states
        self.scorer = scorer_from_config(vllm_config, torch.device(req_states.device))
        self.keeper = _StatsKeeper(vllm_config)
        self.settings: dict[int, GuidanceSettings] = {}  # request slot -> its guidance

    def add_request(self, req_idx: int, sampling_params: VLLMSamplingParams) -> bool:
        settings = parse_guidance(sampling_params.extra_args)
        if settings is None:
            self.settings.pop(req_idx, None)  # the slot's previous occupant may have had some
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
        tokens = _device_tensor(self.req_states.all_token_ids)
        positions = [int(p) for p in ctx.pos.tolist()]
        inputs = [int(t) for t in ctx.input_ids.tolist()]
        sequences = [
            [int(t) for t in tokens[slots[r], : positions[r]].tolist()] + [inputs[r]] for r in rows
        ]
        index = torch.tensor(rows, dtype=torch.long, device=logits.device)
        logits[index] = self.keeper.guide(
            logits[index], sequences, [self.settings[slots[r]] for r in rows], self.scorer
        )
        return logits


def _device_tensor(buffer: Any) -> torch.Tensor:
    """The tensor behind a runner buffer (``StagedWriteTensor``/``UvaBackedTensor``: ``.gpu``)."""
    tensor = getattr(buffer, "gpu", buffer)
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"cannot read token ids from {type(buffer).__name__}")
    return tensor
