"""What ``system2 serve`` reads from the config: its profiles and its server settings.

``profiles`` name what the server serves (each a model id of its API): a policy and a
strategy each, either defaulting to the config's own (``ServedProfile`` holds a profile
with those defaults filled in). ``server`` holds the server's address and limits. The
rules across keys (a profile's models declared, its strategy runnable) are checked by
``System2Config`` (``system2.config``), which re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from orchestrator.budget import QueryBudget
from orchestrator.strategies.config import StrategyConfig
from orchestrator.types import TaskType
from policies.config import PolicyConfig, policy_strategy

__all__ = ["ProfileConfig", "ProfileName", "ServedProfile", "ServerConfig"]

ProfileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
"""A model id clients send: up to 64 letters, digits and ``._:-``, starting alphanumeric."""


class ProfileConfig(BaseModel):
    """One served model id: a policy and a strategy (each None: the config's own), the
    task whose answers it reads (None: the config's), and a default per-query budget that
    a request may tighten or loosen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: PolicyConfig | None = None
    strategy: StrategyConfig | None = None
    task: TaskType | None = None
    budget: QueryBudget = QueryBudget()
    description: str = ""


class ServerConfig(BaseModel):
    """``system2 serve``: where it listens and what it admits (``--host``/``--port`` win)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="larger bodies: 413")
    max_n: int = Field(default=64, ge=1, description="largest sample count a request may ask")
    max_running: int = Field(default=8, ge=1, description="queries answered at once")
    max_waiting: int = Field(default=64, ge=0, description="queries queued; beyond: 429")
    retry_after_s: int = Field(default=1, ge=1, description="Retry-After of a 429/503")
    request_timeout_s: float = Field(
        default=600.0, gt=0, description="queueing + answering; the query's deadline at most"
    )
    drain_timeout_s: float = Field(
        default=30.0, ge=0, description="on SIGTERM, how long in-flight queries may finish"
    )


@dataclass(frozen=True)
class ServedProfile:
    """A profile with its defaults filled in: what ``system2 serve`` builds and runs."""

    name: str
    policy: PolicyConfig
    strategy: StrategyConfig
    task: TaskType
    budget: QueryBudget
    description: str

    @property
    def planned_strategy(self) -> StrategyConfig:
        """The strategy its policy plans: the policy's own, else ``strategy``."""
        return policy_strategy(self.policy, self.strategy)
