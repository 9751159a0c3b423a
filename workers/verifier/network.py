"""The LLM2 token verifier: the generator's backbone plus a scalar head.

s(x_<t, v) is the head's output on the last hidden state at the position of v. The verifier
is a deep copy of the generator's decoder (``causal_lm.get_decoder()``, no LM head) and reads
the generator's tokenizer. Our choices, not the paper's: the head starts at zero (an untrained
verifier scores every candidate 0), and the verifier starts in eval mode.

Saved form (a directory): ``verifier.safetensors`` holds only what the trainable mode trains
(the head, plus the last layers / the whole backbone / the LoRA weights), ``verifier.json``
names the base model and the mode, and, when asked, the sha256 of the frozen backbone
weights, which ``load`` checks against the generator it is loaded onto.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["ATTENTION_IMPLEMENTATIONS", "TokenVerifier", "TrainableMode"]

TrainableMode = Literal["head", "last_layers", "full", "lora"]
ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa")  # both take a custom 4D float additive mask

_WEIGHTS = "verifier.safetensors"
_META = "verifier.json"
_FORMAT = "system2-token-verifier"
_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TokenVerifier(nn.Module):
    """Scores (prefix, candidate token) pairs; build it with ``from_generator`` or ``load``.

    Trainable modes (``requires_grad`` is set accordingly; everything else is frozen):
    ``"head"`` the head only; ``"last_layers"`` the head, the last ``trainable_layers``
    decoder layers and the final norm; ``"full"`` everything; ``"lora"`` the head and LoRA
    adapters of rank ``lora_rank`` on the attention and MLP projections (needs ``peft``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        base_model: str = "",
        trainable: TrainableMode = "head",
        trainable_layers: int = 2,
        lora_rank: int = 8,
    ) -> None:
        super().__init__()
        config = getattr(backbone, "config", None)
        if config is None:
            raise ValueError("the backbone has no transformers config")
        if "sliding_attention" in (getattr(config, "layer_types", None) or ()):
            raise NotImplementedError(
                "sliding-window attention layers are not supported by the candidate mask trick"
            )
        self.backbone: Any = backbone
        self.config: Any = config
        self.base_model = base_model
        weight = next(backbone.parameters())
        self.head = nn.Linear(
            int(config.hidden_size), 1, bias=False, device=weight.device, dtype=weight.dtype
        )
        nn.init.zeros_(self.head.weight)
        self.trainable: TrainableMode = trainable
        self.trainable_layers = trainable_layers
        self.lora_rank = lora_rank
        self._apply_trainable()

    @classmethod
    def from_generator(
        cls,
        causal_lm: Any,
        *,
        trainable: TrainableMode = "head",
        trainable_layers: int = 2,
        lora_rank: int = 8,
        attn_implementation: str = "sdpa",
        base_model: str | None = None,
    ) -> TokenVerifier:
        """A verifier on a deep copy of ``causal_lm``'s decoder (the generator is untouched).

        ``attn_implementation`` must be one of ``ATTENTION_IMPLEMENTATIONS``: the candidate
        mask is a custom 4D float mask, which flash-attention and flex attention do not take.
        ``base_model`` defaults to the generator config's ``name_or_path``.
        """
        if attn_implementation not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(
                f"attn_implementation must be one of {ATTENTION_IMPLEMENTATIONS}, "
                f"got {attn_implementation!r}"
            )
        decoder = causal_lm.get_decoder() if hasattr(causal_lm, "get_decoder") else None
        if decoder is None:
            decoder = getattr(causal_lm, "model", None)
        if decoder is None:
            raise ValueError("cannot find the generator's decoder (get_decoder() / .model)")
        backbone = copy.deepcopy(decoder)
        if backbone.config._attn_implementation != attn_implementation:
            backbone.set_attn_implementation(attn_implementation)
        name = base_model if base_model is not None else _name_or_path(causal_lm.config)
        verifier = cls(
            backbone,
            base_model=name,
            trainable=trainable,
            trainable_layers=trainable_layers,
            lora_rank=lora_rank,
        )
        return verifier.eval()

    # -- scoring --------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.head.weight.dtype

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Any = None,
    ) -> torch.Tensor:
        """Scores ``[batch, seq]`` (float32): the head on the last hidden state at each position.

        A given ``past_key_values`` is extended with this call's positions (transformers
        appends to any cache it is handed).
        """
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=past_key_values is not None,
        )
        scores: torch.Tensor = self.head(out.last_hidden_state).squeeze(-1).float()
        return scores

    # -- trainable parameters -------------------------------------------------------------

    def trained_parameter_names(self) -> list[str]:
        """Names (as in ``named_parameters``) of what the trainable mode trains and saves."""
        names = [name for name, _ in self.named_parameters()]
        if self.trainable == "full":
            return names
        if self.trainable == "head":
            return ["head.weight"]
        if self.trainable == "lora":
            return [n for n in names if n == "head.weight" or "lora_" in n]
        layers = _decoder_layers(self.backbone)
        if not 1 <= self.trainable_layers <= len(layers):
            raise ValueError(f"trainable_layers must lie in [1, {len(layers)}]")
        first = len(layers) - self.trainable_layers
        prefixes = tuple(f"backbone.layers.{i}." for i in range(first, len(layers)))
        prefixes += ("backbone.norm.",)
        return [n for n in names if n == "head.weight" or n.startswith(prefixes)]

    def _apply_trainable(self) -> None:
        if self.trainable not in get_args(TrainableMode):
            raise ValueError(f"unknown trainable mode {self.trainable!r}")
        if self.trainable == "lora":
            _inject_lora(self.backbone, self.lora_rank)
        trained = set(self.trained_parameter_names())
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(name in trained)

    def frozen_sha256(self) -> str | None:
        """sha256 over the frozen weights (names, dtypes, shapes, bytes); None if none are."""
        trained = set(self.trained_parameter_names())
        frozen = [(n, p) for n, p in self.named_parameters() if n not in trained]
        return _sha256(sorted(frozen, key=lambda item: item[0])) if frozen else None

    # -- save / load ----------------------------------------------------------------------

    def save(self, directory: str | Path, *, fingerprint: bool = True) -> Path:
        """Write the trained weights and the meta file; ``fingerprint`` hashes the frozen part.

        Hashing reads every frozen weight once (about a second per GB on a CPU).
        """
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        state = dict(self.named_parameters())
        tensors = {n: state[n].detach().contiguous().cpu() for n in self.trained_parameter_names()}
        save_file(tensors, str(path / _WEIGHTS))
        meta = {
            "format": _FORMAT,
            "version": 1,
            "base_model": self.base_model,
            "model_type": getattr(self.config, "model_type", ""),
            "hidden_size": int(self.config.hidden_size),
            "num_hidden_layers": int(self.config.num_hidden_layers),
            "vocab_size": int(self.config.vocab_size),
            "trainable": self.trainable,
            "trainable_layers": self.trainable_layers,
            "lora_rank": self.lora_rank,
            "frozen_sha256": self.frozen_sha256() if fingerprint else None,
            "tensors": sorted(tensors),
        }
        (path / _META).write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(
        cls,
        directory: str | Path,
        generator: Any,
        *,
        attn_implementation: str = "sdpa",
        verify_base: bool = True,
    ) -> TokenVerifier:
        """Rebuild a saved verifier on ``generator`` (the base model it was trained from).

        Raises ValueError when the generator's shape differs from the saved one, when
        ``verify_base`` is set and the frozen weights' sha256 differs, or when the saved
        tensors are not exactly the ones the saved mode trains.
        """
        path = Path(directory)
        meta = json.loads((path / _META).read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{path} does not hold a saved token verifier")
        config = generator.config
        for key in ("hidden_size", "num_hidden_layers", "vocab_size"):
            if int(getattr(config, key)) != meta[key]:
                raise ValueError(
                    f"generator {key}={getattr(config, key)} differs from the saved verifier's "
                    f"{meta[key]} (trained on {meta['base_model']!r})"
                )
        verifier = cls.from_generator(
            generator,
            trainable=meta["trainable"],
            trainable_layers=meta["trainable_layers"],
            lora_rank=meta["lora_rank"],
            attn_implementation=attn_implementation,
            base_model=meta["base_model"],
        )
        expected = meta["frozen_sha256"]
        if verify_base and expected is not None and verifier.frozen_sha256() != expected:
            raise ValueError(
                f"the generator's weights differ from the verifier's base model "
                f"{meta['base_model']!r} (frozen-weight sha256 mismatch)"
            )
        tensors = load_file(str(path / _WEIGHTS))
        if sorted(tensors) != sorted(verifier.trained_parameter_names()):
            raise ValueError(f"{path / _WEIGHTS} does not match the {meta['trainable']!r} mode")
        state = dict(verifier.named_parameters())
        with torch.no_grad():
            for name, tensor in tensors.items():
                state[name].copy_(tensor)
        return verifier


def _name_or_path(config: Any) -> str:
    return str(getattr(config, "name_or_path", "") or getattr(config, "_name_or_path", "") or "")


def _decoder_layers(backbone: Any) -> nn.ModuleList:
    layers = getattr(backbone, "layers", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(backbone, "norm"):
        raise ValueError("'last_layers' needs a backbone with .layers and .norm")
    return layers


def _inject_lora(backbone: nn.Module, rank: int) -> None:
    try:
        peft = importlib.import_module("peft")
    except ImportError as exc:
        raise ImportError(
            "trainable='lora' needs the 'peft' package, which is not installed; "
            "use 'head', 'last_layers' or 'full', or install peft"
        ) from exc
    config = peft.LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(_LORA_TARGETS))
    peft.inject_adapter_in_model(config, backbone)


def _sha256(named: Iterable[tuple[str, torch.Tensor]]) -> str:
    digest = hashlib.sha256()
    for name, tensor in named:
        flat = tensor.detach().contiguous().cpu().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy().data)
    return digest.hexdigest()
