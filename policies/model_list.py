"""The config fields the query-blind policies share: the models to plan, and an optional
strategy of their own in place of the config's default."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.strategies.config import StrategyConfig

__all__ = ["ModelListConfig"]


class ModelListConfig(BaseModel):
    """Base of the ``fixed``, ``all``, ``random`` and ``round_robin`` configs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...] = Field(min_length=1, description="models to run, in order")
    strategy: StrategyConfig | None = Field(
        default=None, description="overrides the config's default strategy"
    )
