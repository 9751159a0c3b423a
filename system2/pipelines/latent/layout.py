"""Where the latent pipeline keeps its outputs under one directory, how its steps read the
training chains, and the training budget they spent (what ``benchmarks.latent`` reports).

    <root>/chains.jsonl          step 1, the chains (a resumable run file)
    <root>/vqvae/                step 2, the VQ-VAE
    <root>/finetune/latent/      step 3, Token Assorted (a checkpoint)
    <root>/finetune/text/        step 3, the text-CoT baseline (a checkpoint)
    <root>/codi/                 step 4, the continuous-thought student (a checkpoint)

Each directory holds its step's ``step.json`` marker (``steps``) once the step finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from system2.pipelines.latent.chains import chains_digest, kept_chains
from system2.pipelines.latent.encoding import ChainTokens, encode_chains
from system2.pipelines.latent.finetune import Arm
from system2.pipelines.latent.steps import read_step

__all__ = ["PipelineLayout", "TrainingChains"]


@dataclass(frozen=True, slots=True)
class TrainingChains:
    """The kept chains as token ids, their fingerprint and how many were too long."""

    chains: list[ChainTokens]
    digest: str
    too_long: int

    def upstream(self, model: str) -> dict[str, Any]:
        """What the steps trained on them record of their data."""
        return {"model": model, "chains": self.digest, "too_long": self.too_long}


@dataclass(frozen=True, slots=True)
class PipelineLayout:
    root: Path

    @property
    def chains(self) -> Path:
        return self.root / "chains.jsonl"

    @property
    def vqvae(self) -> Path:
        return self.root / "vqvae"

    def finetune(self, arm: Arm) -> Path:
        return self.root / "finetune" / arm

    @property
    def codi(self) -> Path:
        return self.root / "codi"

    def training_chains(self, tokenizer: Any, *, max_length: int) -> TrainingChains:
        """The kept chains encoded with ``tokenizer`` (ValueError when there are none)."""
        if not self.chains.is_file():
            raise ValueError(f"{self.chains} does not exist: run `system2 latent chains` first")
        records = kept_chains(self.chains)
        if not records:
            raise ValueError(f"{self.chains} has no kept chains to train on")
        encoded, too_long = encode_chains(tokenizer, records, max_length=max_length)
        if not encoded:
            raise ValueError(f"every chain of {self.chains} is longer than {max_length} tokens")
        return TrainingChains(encoded, chains_digest(records), too_long)

    def budget(self) -> dict[str, Any]:
        """Per finished step: examples, epochs, steps, wall seconds and CPU-hours; and the
        CPU-hours of all of them."""
        steps: dict[str, Any] = {}
        for name, directory in (
            ("vqvae", self.vqvae),
            ("finetune-latent", self.finetune("latent")),
            ("finetune-text", self.finetune("text")),
            ("codi", self.codi),
        ):
            marker = read_step(directory)
            if marker is None:
                continue
            results = marker.results
            steps[name] = {
                "examples": results.get("examples", results.get("chunks")),
                "epochs": results.get("epochs"),
                "steps": results.get("steps", marker.config.get("steps")),
                "seconds": round(marker.seconds, 1),
                "cpu_hours": round(marker.cpu_hours, 3),
            }
        total = sum(s["cpu_hours"] for s in steps.values())
        return {"steps": steps, "cpu_hours": round(total, 3)}
