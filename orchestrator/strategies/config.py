"""Each strategy's settings, one pydantic model per ``kind``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EarlyStopConfig",
    "GreedyConfig",
    "SampleConfig",
    "SelfConsistencyConfig",
    "StrategyConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GreedyConfig(_Strict):
    """One greedy completion per planned model; the first model's answer is returned."""

    kind: Literal["greedy"] = "greedy"
    max_tokens: int = Field(default=512, ge=1)


class SampleConfig(_Strict):
    """One sampled completion from the first planned model."""

    kind: Literal["sample"] = "sample"
    temperature: float = Field(default=0.7, ge=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int | None = None


class EarlyStopConfig(_Strict):
    """Sample in rounds; stop once the vote is settled.

    Stops when the leader cannot be overtaken by the samples left, or when at least
    ``min_samples`` have voted and the margin (top - runner-up) / votes >= ``min_margin``.
    """

    round_size: int = Field(default=2, ge=1)
    min_samples: int = Field(default=3, ge=1)
    min_margin: float = Field(default=0.6, gt=0.0, le=1.0)


class SelfConsistencyConfig(_Strict):
    """``n`` samples per planned model, majority vote over extracted answers."""

    kind: Literal["self_consistency"] = "self_consistency"
    n: int = Field(default=5, ge=1)
    temperature: float = Field(default=0.7, gt=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int | None = None
    early_stop: EarlyStopConfig | None = None


StrategyConfig = Annotated[
    GreedyConfig | SampleConfig | SelfConsistencyConfig, Field(discriminator="kind")
]
