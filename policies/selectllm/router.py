"""``QueryRouter``: SelectLLM's query-aware classifier (arXiv 2408.08545), one calibrated
probability per pool model that the model's majority answer to a query is right.

Choices the paper leaves open (it fine-tunes RoBERTa-base):

* Features: the query text only, embedded by a frozen sentence embedder (MiniLM,
  384-d); the head is ``Linear(dim, hidden) -> ReLU -> Dropout -> Linear(hidden, models)``,
  one logit per model (multi-label, trained with BCE, see ``train_router``).
* Calibration: Platt scaling per model, ``p = sigmoid(a * logit + b)`` with ``a > 0``
  (kept positive so calibration never reverses the ranking), fitted on a calibration
  split held out from the head's training and from the validation metrics (see
  ``train_router``) by minimising NLL against Platt's smoothed targets ``(N+ + 1) / (N+ + 2)``
  and ``1 / (N- + 2)`` (so a split where a model is always right, or always wrong, gives
  finite parameters). Platt rather than temperature scaling because the selection rules
  threshold at 0.5 per model, and only the bias ``b`` can move a model's 0.5 crossing.
  Where the logits carry no information about a model the fit drives ``a`` towards 0 and
  the model's confidence is constant (``train_router`` warns and records it).
* Probabilities are clipped to ``[1e-6, 1 - 1e-6]``: no model is ever certain.

On disk a router is a directory: ``head.safetensors`` (the head's weights) and
``router.json`` (format version, pool models in head order, mean latency and tokens per
model, embedder name and size, head shape, calibration, training settings and metrics).
``training`` and ``metrics`` are free-form records of how the router was made (split
fractions and sizes, per-model validation metrics, calibration slope and confidence
spread); the loader reads them as they are, so routers saved before a field was added
(e.g. ``calibration_fraction``, ``calibration_items``) still load.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workers.embedder import TextEmbedder

__all__ = [
    "FORMAT_VERSION",
    "PlattCalibration",
    "QueryRouter",
    "RouterHead",
    "RouterLoadError",
    "read_router_meta",
]

FORMAT_VERSION = 1
_WEIGHTS = "head.safetensors"
_META = "router.json"
_EPS = 1e-6


class RouterLoadError(ValueError):
    """A router directory that is missing, incomplete, corrupt or of another format."""


class RouterHead(nn.Module):
    """The classifier head: embedding -> one logit per pool model."""

    def __init__(self, dim: int, hidden: int, n_models: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dim, self.hidden, self.n_models, self.dropout = dim, hidden, n_models, dropout
        self.layers = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_models)
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.layers(embeddings)
        return logits


@dataclass(frozen=True)
class PlattCalibration:
    """Per-model ``p = sigmoid(a * logit + b)``; ``a > 0`` so it is strictly increasing."""

    a: Mapping[str, float]
    b: Mapping[str, float]

    @classmethod
    def identity(cls, models: Sequence[str]) -> PlattCalibration:
        return cls(a=dict.fromkeys(models, 1.0), b=dict.fromkeys(models, 0.0))

    @classmethod
    def fit(
        cls, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, models: Sequence[str]
    ) -> PlattCalibration:
        """Fit each model's (a, b) on its known labels (``mask``); identity where it has none."""
        a, b = {}, {}
        for j, model in enumerate(models):
            known = mask[:, j].bool()
            a[model], b[model] = _fit_platt(logits[known, j], labels[known, j])
        return cls(a=a, b=b)

    def apply(self, logits: torch.Tensor, models: Sequence[str]) -> torch.Tensor:
        """Calibrated probabilities for ``logits [n, len(models)]``."""
        a = torch.tensor([self.a[m] for m in models], dtype=torch.float64)
        b = torch.tensor([self.b[m] for m in models], dtype=torch.float64)
        return torch.sigmoid(a * logits.double() + b).clamp(_EPS, 1.0 - _EPS)


def _fit_platt(z: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    if z.numel() == 0:
        return 1.0, 0.0
    # Gradients are needed even when called under inference mode (e.g. on logits made there).
    with torch.inference_mode(False), torch.enable_grad():
        z, y = z.double().clone(), y.double().clone()
        positives = float(y.sum())
        negatives = y.numel() - positives
        target = torch.where(y > 0.5, (positives + 1) / (positives + 2), 1 / (negatives + 2))
        log_a = torch.zeros((), dtype=torch.float64, requires_grad=True)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [log_a, b], lr=0.5, max_iter=200, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(log_a.exp() * z + b, target)
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        optimizer.step(closure)  # type: ignore[no-untyped-call]
    a_value, b_value = math.exp(float(log_a.detach())), float(b.detach())
    if not (math.isfinite(a_value) and math.isfinite(b_value)):
        return 1.0, 0.0
    return a_value, b_value


class QueryRouter:
    """Embeds a query, scores it with the head and calibrates: P(model m is right | query).

    ``latency`` and ``tokens`` are the pool models' mean seconds and generated tokens per
    query over the collected labels (the selection rules break ties by latency).
    """

    def __init__(
        self,
        head: RouterHead,
        embedder: TextEmbedder,
        *,
        models: Sequence[str],
        latency: Mapping[str, float],
        tokens: Mapping[str, float],
        calibration: PlattCalibration | None = None,
        metrics: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
    ) -> None:
        self.models = tuple(models)
        if not self.models or len(set(self.models)) != len(self.models):
            raise ValueError(f"router models must be distinct and non-empty, got {self.models}")
        if head.n_models != len(self.models):
            raise ValueError(f"head has {head.n_models} outputs for {len(self.models)} models")
        if head.dim != embedder.dim:
            raise ValueError(
                f"head expects {head.dim}-d embeddings, embedder {embedder.name!r} gives "
                f"{embedder.dim}-d"
            )
        for what, table in (("latency", latency), ("tokens", tokens)):
            if set(table) != set(self.models):
                raise ValueError(f"{what} is given for {sorted(table)}, pool is {sorted(models)}")
        self.head = head.eval()
        self.embedder = embedder
        self.latency = {m: float(latency[m]) for m in self.models}
        self.tokens = {m: float(tokens[m]) for m in self.models}
        self.calibration = calibration or PlattCalibration.identity(self.models)
        self.metrics = dict(metrics or {})
        self.training = dict(training or {})

    def logits(self, texts: Sequence[str]) -> torch.Tensor:
        """Uncalibrated head logits, ``[len(texts), len(models)]``."""
        embeddings = self.embedder.embed(texts)
        with torch.inference_mode():
            logits: torch.Tensor = self.head(embeddings)
        return logits

    def probabilities(self, texts: Sequence[str]) -> torch.Tensor:
        """Calibrated probabilities, ``[len(texts), len(models)]`` float64."""
        return self.calibration.apply(self.logits(texts), self.models)

    def confidences(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Per text, each pool model's calibrated probability of answering it right."""
        return [
            dict(zip(self.models, row, strict=True)) for row in self.probabilities(texts).tolist()
        ]

    def save(self, directory: Path | str) -> Path:
        """Write ``head.safetensors`` and ``router.json`` into ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.head.state_dict().items()}
        save_file(state, str(directory / _WEIGHTS))
        meta = {
            "format_version": FORMAT_VERSION,
            "models": list(self.models),
            "latency_s": self.latency,
            "completion_tokens": self.tokens,
            "embedder": self.embedder.name,
            "embedding_dim": self.head.dim,
            "hidden": self.head.hidden,
            "dropout": self.head.dropout,
            "calibration": {
                "method": "platt",
                "a": dict(self.calibration.a),
                "b": dict(self.calibration.b),
            },
            "training": self.training,
            "metrics": self.metrics,
        }
        (directory / _META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path | str, embedder: TextEmbedder | None = None) -> QueryRouter:
        """Read a saved router; without ``embedder``, load the one it was trained with."""
        directory = Path(directory)
        meta = read_router_meta(directory)
        if embedder is None:
            from workers.embedder import SentenceEmbedder

            embedder = SentenceEmbedder.load(meta["embedder"])
        elif embedder.name != meta["embedder"]:
            raise RouterLoadError(
                f"{directory} was trained on {meta['embedder']!r} embeddings, "
                f"got embedder {embedder.name!r}"
            )
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            models = meta["models"]
            head = RouterHead(meta["embedding_dim"], meta["hidden"], len(models), meta["dropout"])
            head.load_state_dict(load_file(str(directory / _WEIGHTS)))
            calibration = meta.get("calibration")
            return cls(
                head,
                embedder,
                models=models,
                latency=meta["latency_s"],
                tokens=meta["completion_tokens"],
                calibration=None
                if calibration is None
                else PlattCalibration(a=calibration["a"], b=calibration["b"]),
                metrics=meta.get("metrics"),
                training=meta.get("training"),
            )
        except RouterLoadError:
            raise
        except (OSError, RuntimeError, SafetensorError, ValueError, KeyError, TypeError) as exc:
            raise RouterLoadError(f"{directory}: corrupt router: {exc}") from None


_REQUIRED = ("models", "latency_s", "completion_tokens", "embedder", "embedding_dim", "hidden")


def read_router_meta(directory: Path) -> dict[str, Any]:
    """``router.json`` of a router directory, checked for format and required keys."""
    if not directory.is_dir():
        raise RouterLoadError(f"no router directory at {directory}")
    missing = [name for name in (_META, _WEIGHTS) if not (directory / name).is_file()]
    if missing:
        raise RouterLoadError(f"{directory} is not a router: missing {', '.join(missing)}")
    try:
        meta = json.loads((directory / _META).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RouterLoadError(f"{directory / _META}: unreadable: {exc}") from None
    if not isinstance(meta, dict):
        raise RouterLoadError(f"{directory / _META}: expected a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise RouterLoadError(
            f"{directory / _META}: format_version {version!r}, this code reads {FORMAT_VERSION}"
        )
    absent = [key for key in _REQUIRED if key not in meta]
    if absent:
        raise RouterLoadError(f"{directory / _META}: missing key(s) {', '.join(absent)}")
    models = meta["models"]
    if not (isinstance(models, list) and models and all(isinstance(m, str) for m in models)):
        raise RouterLoadError(f"{directory / _META}: 'models' is not a list of model names")
    meta.setdefault("dropout", 0.0)
    return meta
