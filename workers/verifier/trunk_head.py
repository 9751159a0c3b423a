"""The shared-trunk token verifier: a low-rank bilinear head on the generator's own state.

    s(x | x_<t) = e_xᵀ A h_t,   A = U Vᵀ,  U, V in R^{d x r}

``h_t`` is the generator's last hidden state at the step (after the final norm: exactly
what its LM head reads to predict x_t) and ``e_x`` the output embedding of candidate x (its
LM-head row). Why this form (ours; the LLM2 verifier is a second full copy of the
generator, run on every candidate):

* no extra transformer pass: h_t is already computed for the step, so scoring the
  candidate set C costs ``(E_C U)(Vᵀ h_t)``, O(|C|·r·d), next to the step's O(vocab·d) LM
  head;
* the form is the LM head's own (z_x = e_xᵀ h_t) plus a learned low-rank correction, so the
  head can say "this token, in this state" with the generator's embeddings as the token
  features, and ``z + beta * s`` stays a logit-shaped correction;
* U starts at zero (V is random, as in LoRA), so an untrained head scores every candidate
  0: guided greedy decoding with it is plain greedy decoding, token for token (sampling is
  only truncated to the alpha-plausible set); the first gradient step moves U (V's
  gradient is zero until U is not).

Training (``workers.verifier.trunk_train``) keeps the generator frozen; only U and V move.

Saved form (a directory): ``trunk_head.safetensors`` holds U and V; ``verifier.json`` has
``kind: "trunk_head"`` (what ``workers.verifier.trunk_kinds`` dispatches on), the base
model's name and shape, the rank, and, when asked, ``base_sha256``: the sha256 of the
generator's weights, which ``load`` checks against the generator it is loaded onto. The
weights are hashed as float32 (names, shapes, bytes), so a checkpoint loaded in bf16 on a
GPU and in float32 on a CPU has one fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = [
    "TRUNK_FORMAT",
    "TrunkHead",
    "base_fingerprint",
    "check_base",
    "output_embeddings",
    "read_meta",
]

TRUNK_FORMAT = "system2-trunk-head"
_WEIGHTS = "trunk_head.safetensors"
_META = "verifier.json"


class TrunkHead(nn.Module):
    """s(x | h) = (Uᵀ e_x)·(Vᵀ h) for candidates x in the generator's state h (module doc).

    Build it with ``from_generator`` or ``load``; it holds only U and V (float32), never the
    generator, so every scoring call is handed the hidden states and the output embeddings.
    """

    def __init__(
        self,
        hidden_size: int,
        rank: int = 16,
        *,
        base_model: str = "",
        vocab_size: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if hidden_size < 1 or rank < 1:
            raise ValueError(f"hidden_size and rank must be >= 1, got {hidden_size}, {rank}")
        self.hidden_size = hidden_size
        self.rank = rank
        self.base_model = base_model
        self.vocab_size = vocab_size
        generator = torch.Generator().manual_seed(seed)
        self.U = nn.Parameter(torch.zeros(hidden_size, rank))
        self.V = nn.Parameter(
            torch.randn(hidden_size, rank, generator=generator) / math.sqrt(hidden_size)
        )

    @classmethod
    def from_generator(
        cls, causal_lm: Any, *, rank: int = 16, base_model: str | None = None, seed: int = 0
    ) -> TrunkHead:
        """An untrained head (U = 0) sized for ``causal_lm``; ``base_model`` defaults to
        its config's ``name_or_path``."""
        config = causal_lm.config
        name = base_model if base_model is not None else _name_or_path(config)
        head = cls(
            int(config.hidden_size),
            rank,
            base_model=name,
            vocab_size=int(config.vocab_size),
            seed=seed,
        )
        return head.to(output_embeddings(causal_lm).device)

    # -- scoring --------------------------------------------------------------------------

    def query(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vᵀ h for ``[..., d]`` hidden states: ``[..., r]`` float32."""
        return hidden.to(self.V.dtype) @ self.V

    def keys(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Uᵀ e for ``[..., d]`` output embeddings: ``[..., r]`` float32."""
        return embeddings.to(self.U.dtype) @ self.U

    def score_candidates(
        self, hidden: torch.Tensor, embeddings: torch.Tensor, candidates: torch.Tensor
    ) -> torch.Tensor:
        """Scores ``[rows, k]`` (float32) of ``candidates`` (``[rows, k]`` token ids) in each
        row's state ``hidden`` (``[rows, d]``); ``embeddings`` is the ``[vocab, d]`` LM-head
        weight. Padding ids are scored like any other id (callers mask them)."""
        if hidden.dim() != 2 or candidates.dim() != 2 or hidden.shape[0] != candidates.shape[0]:
            raise ValueError("hidden must be [rows, d] and candidates [rows, k], same rows")
        keys = self.keys(embeddings[candidates.to(embeddings.device)])  # [rows, k, r]
        query = self.query(hidden).to(keys.device)  # [rows, r]
        return (keys * query.unsqueeze(1)).sum(-1)

    def score_tokens(self, hidden: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """Score of token i with embedding ``embeddings[i]`` in state ``hidden[i]``: both
        ``[n, d]``, the result ``[n]`` float32 (the training and step-scoring form)."""
        if hidden.shape != embeddings.shape:
            raise ValueError(f"hidden {tuple(hidden.shape)} and embeddings differ in shape")
        return (self.keys(embeddings) * self.query(hidden)).sum(-1)

    def is_untrained(self) -> bool:
        """Whether U is all zero (every score is then exactly 0)."""
        return not bool(self.U.detach().any())

    # -- save / load ----------------------------------------------------------------------

    def save(
        self, directory: str | Path, *, generator: Any = None, fingerprint: bool = True
    ) -> Path:
        """Write U, V and the meta file; with ``fingerprint`` (needs ``generator``, the base
        model) the meta file records ``base_fingerprint(generator)``."""
        if fingerprint and generator is None:
            raise ValueError("fingerprint=True needs the generator the head was trained on")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {"U": self.U.detach().contiguous().cpu(), "V": self.V.detach().contiguous().cpu()}
        save_file(tensors, str(path / _WEIGHTS))
        meta = {
            "format": TRUNK_FORMAT,
            "version": 1,
            "kind": "trunk_head",
            "base_model": self.base_model,
            "hidden_size": self.hidden_size,
            "vocab_size": self.vocab_size,
            "rank": self.rank,
            "form": "s(x|h) = e_x^T U V^T h (e_x: LM-head row, h: final-norm hidden state)",
            "base_sha256": base_fingerprint(generator) if fingerprint else None,
        }
        (path / _META).write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(
        cls, directory: str | Path, generator: Any = None, *, verify_base: bool = True
    ) -> TrunkHead:
        """Rebuild a saved head for ``generator`` (the base model it was trained on).

        Raises ValueError when the directory holds no trunk head, when the generator's
        shape differs from the saved one, or when ``verify_base`` is set and the weights'
        fingerprint differs. ``generator=None`` loads the head alone (no checks; for an
        engine that checks the base elsewhere).
        """
        path = Path(directory)
        meta = read_meta(path)
        head = cls(
            int(meta["hidden_size"]),
            int(meta["rank"]),
            base_model=str(meta["base_model"]),
            vocab_size=int(meta["vocab_size"]),
        )
        if generator is not None:
            check_base(meta, generator, verify_base=verify_base)
        tensors = load_file(str(path / _WEIGHTS))
        if sorted(tensors) != ["U", "V"]:
            raise ValueError(f"{path / _WEIGHTS} must hold exactly U and V")
        with torch.no_grad():
            head.U.copy_(tensors["U"])
            head.V.copy_(tensors["V"])
        if generator is not None:
            head = head.to(output_embeddings(generator).device)
        return head.eval()


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The saved head's ``verifier.json``; ValueError if it is not a trunk head's."""
    path = Path(directory) / _META
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.get("format") != TRUNK_FORMAT:
        raise ValueError(f"{path.parent} does not hold a saved shared-trunk head")
    return meta


def check_base(meta: dict[str, Any], generator: Any, *, verify_base: bool = True) -> None:
    """ValueError unless ``generator`` fits the saved head (shape, and fingerprint when
    ``verify_base`` and one was saved)."""
    config = generator.config
    for key in ("hidden_size", "vocab_size"):
        if int(getattr(config, key)) != int(meta[key]):
            raise ValueError(
                f"generator {key}={getattr(config, key)} differs from the saved trunk head's "
                f"{meta[key]} (trained on {meta['base_model']!r})"
            )
    expected = meta.get("base_sha256")
    if verify_base and expected is not None and base_fingerprint(generator) != expected:
        raise ValueError(
            f"the generator's weights differ from the trunk head's base model "
            f"{meta['base_model']!r} (weight sha256 mismatch)"
        )


def output_embeddings(causal_lm: Any) -> torch.Tensor:
    """The ``[vocab, d]`` LM-head weight: row x is e_x."""
    layer = (
        causal_lm.get_output_embeddings() if hasattr(causal_lm, "get_output_embeddings") else None
    )
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise ValueError("cannot find the generator's output embeddings (get_output_embeddings)")
    return weight


def base_fingerprint(causal_lm: Any) -> str:
    """sha256 over the generator's parameters as float32 (names, shapes, bytes), sorted by
    name; tied weights count once. About a second per GB on a CPU."""
    digest = hashlib.sha256()
    for name, tensor in sorted(causal_lm.named_parameters(), key=lambda item: item[0]):
        flat = tensor.detach().to(device="cpu", dtype=torch.float32).contiguous().reshape(-1)
        digest.update(f"{name}|{tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy().data)
    return digest.hexdigest()


def _name_or_path(config: Any) -> str:
    return str(getattr(config, "name_or_path", "") or getattr(config, "_name_or_path", "") or "")
