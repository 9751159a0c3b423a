"""The one config schema, loaded from YAML.

Loading has no side effects: it parses and validates, nothing is built or downloaded.
Every error names the file, the key path, the bad value and what was expected. Each rule is
checked here once, at load time; a rule across keys (a policy's models declared, a rule
that needs a strategy, a strategy that needs a verifier) is reported at the key path of
the value that breaks it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from orchestrator.prompts import PromptConfig
from orchestrator.strategies.config import (
    SelfConsistencyConfig,
    StrategyConfig,
    uses_step_verifier,
)
from orchestrator.types import TaskType
from policies.config import PolicyConfig, policy_strategy
from policies.selectllm.policy import SelectLLMPolicyConfig, rule_strategy_conflict
from workers.config import (
    OpenAIWorkerConfig,
    PoolConfig,
    TransformersWorkerConfig,
    VLLMWorkerConfig,
    WorkerConfig,
)
from workers.step_verifier_config import (
    PooledStepVerifierConfig,
    StepVerifierConfig,
    TokenStepVerifierConfig,
)

__all__ = ["ConfigError", "LoggingConfig", "System2Config", "load_config", "parse_config"]


class ConfigError(ValueError):
    """A config that cannot be used; the message says where and why."""


class _RuleViolation(ValueError):
    """A rule across keys, broken: reported at key ``path``, whose value is ``value``."""

    def __init__(self, path: str, value: Any, problem: str) -> None:
        self.path, self.value = path, value
        super().__init__(problem)


class LoggingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["console", "json"] = "console"
    level: Literal["debug", "info", "warning", "error"] = "info"


class System2Config(BaseModel):
    """Models (name -> worker), the routing policy, the default strategy, prompts, and the
    step verifier that strategies asking for one (``vote``/``value: verifier``) use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, WorkerConfig] = Field(min_length=1)
    policy: PolicyConfig
    strategy: StrategyConfig = SelfConsistencyConfig()
    task: TaskType = "math"
    prompts: dict[TaskType, PromptConfig] = Field(default_factory=dict)
    logging: LoggingConfig = LoggingConfig()
    step_verifier: StepVerifierConfig | None = None
    _source: str = PrivateAttr(default="<config>")

    @property
    def source(self) -> str:
        """Where the config was read from (its file, or ``<config>``), for later errors."""
        return self._source

    @property
    def planned_strategy(self) -> StrategyConfig:
        """The strategy the policy plans: its own, else the default ``strategy``."""
        return policy_strategy(self.policy, self.strategy)

    @property
    def _planned_strategy_key(self) -> str:
        return "strategy" if self.policy.strategy is None else "policy.strategy"

    @model_validator(mode="after")
    def _policy_models_exist(self) -> System2Config:
        unknown = [m for m in self.policy.models if m not in self.models]
        if unknown:
            raise _RuleViolation(
                "policy.models",
                list(self.policy.models),
                f"policy names model(s) {', '.join(map(repr, unknown))} that are not declared "
                f"under 'models' (declared: {', '.join(sorted(self.models))})",
            )
        return self

    @model_validator(mode="after")
    def _rule_fits_strategy(self) -> System2Config:
        """A SelectLLM rule fits the strategy the policy plans (``weighted_maxconf`` needs
        ``self_consistency``, which may be the default)."""
        if not isinstance(self.policy, SelectLLMPolicyConfig):
            return self
        conflict = rule_strategy_conflict(self.policy.rule, self.planned_strategy)
        if conflict is not None:
            key = f"{self._planned_strategy_key}.kind"
            raise _RuleViolation(key, self.planned_strategy.kind, conflict)
        return self

    @model_validator(mode="after")
    def _verifiers_for_system2(self) -> System2Config:
        """Strategy ``system2`` on an in-process model needs that model's verifier (other
        backends are checked when the strategy runs)."""
        strategy = self.planned_strategy
        if strategy.kind != "system2":
            return self
        lacking = [m for m in self.policy.models if _lacks_verifier(self.models.get(m))]
        if lacking:
            raise _RuleViolation(
                f"{self._planned_strategy_key}.kind",
                strategy.kind,
                f"strategy 'system2' needs a token verifier on model(s) "
                f"{', '.join(map(repr, lacking))}: add `verifier: {{path: DIR}}` to the "
                "transformers or vllm config (train one with `system2 verifier train`)",
            )
        return self

    @model_validator(mode="after")
    def _step_verifier_fits(self) -> System2Config:
        declared = self.step_verifier
        strategy = self.planned_strategy
        if declared is None:
            if uses_step_verifier(strategy):
                raise _RuleViolation(
                    self._planned_strategy_key,
                    strategy.model_dump(mode="json", exclude_unset=True),
                    f"strategy {strategy.kind!r} asks for a step verifier (vote or value "
                    "'verifier', or a cascade's min_verifier_score) but none is declared: "
                    "add a top-level `step_verifier:` (kind token, prm or pooled)",
                )
            return self
        if isinstance(declared, TokenStepVerifierConfig | PooledStepVerifierConfig):
            model = self.models.get(declared.model)
            if model is None:
                raise _RuleViolation(
                    "step_verifier.model",
                    declared.model,
                    f"step_verifier names model {declared.model!r}, which is not declared "
                    f"under 'models' (declared: {', '.join(sorted(self.models))})",
                )
            if isinstance(declared, TokenStepVerifierConfig) and not (
                isinstance(model, TransformersWorkerConfig) and model.verifier is not None
            ):
                raise _RuleViolation(
                    "step_verifier.model",
                    declared.model,
                    f"step_verifier kind 'token' needs model {declared.model!r} to be a "
                    f"transformers model with a `verifier` (it is {model.kind!r}"
                    f"{'' if model.kind != 'transformers' else ' without one'})",
                )
            if isinstance(declared, PooledStepVerifierConfig) and not isinstance(
                model, OpenAIWorkerConfig
            ):
                raise _RuleViolation(
                    "step_verifier.model",
                    declared.model,
                    f"step_verifier kind 'pooled' needs model {declared.model!r} to be an "
                    f"openai model (it is {model.kind!r})",
                )
        return self


def _lacks_verifier(config: WorkerConfig | None) -> bool:
    if isinstance(config, TransformersWorkerConfig | VLLMWorkerConfig):
        return config.verifier is None
    if isinstance(config, PoolConfig):
        return any(_lacks_verifier(r) for r in config.replicas)
    return False


def parse_config(data: Any, *, source: str = "<config>") -> System2Config:
    """Validate already-parsed YAML data."""
    try:
        config = System2Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    config._source = source
    return config


def load_config(path: str | Path) -> System2Config:
    """Read and validate a YAML config file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return parse_config(data, source=str(path))


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid config ({exc.error_count()} error(s))"]
    for error in exc.errors(include_url=False):
        broken = error.get("ctx", {}).get("error")
        if isinstance(broken, _RuleViolation):
            lines.append(f"  {broken.path}: {broken} (got {broken.value!r})")
            continue
        # The path keeps the union member tag (e.g. 'strategy.self_consistency.n').
        path = ".".join(str(p) for p in error["loc"])
        value = error.get("input")
        shown = "" if error["type"] == "missing" else f" (got {value!r})"
        lines.append(f"  {path or '<top level>'}: {error['msg']}{shown}")
    return "\n".join(lines)
