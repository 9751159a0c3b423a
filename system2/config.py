"""The one config schema, loaded from YAML.

Loading has no side effects: it parses and validates, nothing is built or downloaded.
Every error names the file, the key path, the bad value and what was expected. Each rule is
checked here once, at load time; a rule across keys (a policy's models declared, a rule
that needs a strategy, a strategy that needs a verifier) is reported at the key path of
the value that breaks it.

``profiles`` name what ``system2 serve`` serves (each a model id of its API): a policy and
a strategy each, either defaulting to the config's own, checked by the same rules at their
own key paths (``profiles.NAME.policy.models``). A config without profiles serves one,
``default``: its policy and strategy. ``server`` holds the server's address and limits
(both in ``system2.server_config``, re-exported here).

A model is any worker of ``workers.config``, or ``kind: ray``: replicas of one on Ray Serve
(``system2.ray.config``); the top-level ``ray`` section names the cluster they run on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from orchestrator.prompts import PromptConfig
from orchestrator.strategies.config import (
    SelfConsistencyConfig,
    StrategyConfig,
    uses_step_verifier,
)
from orchestrator.types import TaskType
from policies.config import PolicyConfig, policy_strategy
from policies.selectllm.compute_aware import ComputeAwarePolicyConfig
from policies.selectllm.policy import SelectLLMPolicyConfig, rule_strategy_conflict
from system2.ray.config import RayClusterConfig, RayWorkerConfig
from system2.server_config import ProfileConfig, ProfileName, ServedProfile, ServerConfig
from workers.config import (
    OpenAIWorkerConfig,
    PoolConfig,
    ScriptedWorkerConfig,
    TransformersWorkerConfig,
    VLLMWorkerConfig,
)
from workers.step_verifier_config import (
    PooledStepVerifierConfig,
    StepVerifierConfig,
    TokenStepVerifierConfig,
)

__all__ = [
    "DEFAULT_PROFILE",
    "ConfigError",
    "LoggingConfig",
    "ModelConfig",
    "ProfileConfig",
    "ServedProfile",
    "ServerConfig",
    "System2Config",
    "load_config",
    "parse_config",
]

DEFAULT_PROFILE = "default"
"""The one profile served from a config that declares none."""


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


ModelConfig = Annotated[
    TransformersWorkerConfig
    | ScriptedWorkerConfig
    | OpenAIWorkerConfig
    | VLLMWorkerConfig
    | PoolConfig
    | RayWorkerConfig,
    Field(discriminator="kind"),
]
"""A declared model: a worker of ``workers.config``, or replicas on Ray Serve (``ray``)."""


@dataclass(frozen=True)
class _PlanKeys:
    """Where a (policy, strategy) pair's values sit in the file, for error paths."""

    policy: str
    strategy: str


_TOP = _PlanKeys(policy="policy", strategy="strategy")


class System2Config(BaseModel):
    """Models (name -> worker), the routing policy, the default strategy, prompts, and the
    step verifier that strategies asking for one (``vote``/``value: verifier``) use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelConfig] = Field(min_length=1)
    policy: PolicyConfig
    strategy: StrategyConfig = SelfConsistencyConfig()
    task: TaskType = "math"
    prompts: dict[TaskType, PromptConfig] = Field(default_factory=dict)
    logging: LoggingConfig = LoggingConfig()
    step_verifier: StepVerifierConfig | None = None
    profiles: dict[ProfileName, ProfileConfig] = Field(default_factory=dict)
    server: ServerConfig = ServerConfig()
    ray: RayClusterConfig = RayClusterConfig()
    _source: str = PrivateAttr(default="<config>")

    @property
    def source(self) -> str:
        """Where the config was read from (its file, or ``<config>``), for later errors."""
        return self._source

    @property
    def planned_strategy(self) -> StrategyConfig:
        """The strategy the policy plans: its own, else the default ``strategy``."""
        return policy_strategy(self.policy, self.strategy)

    def served_profiles(self) -> dict[str, ServedProfile]:
        """Every profile by name, defaults filled in; ``default`` when none is declared."""
        if not self.profiles:
            return {DEFAULT_PROFILE: self._served(DEFAULT_PROFILE, ProfileConfig())}
        return {name: self._served(name, p) for name, p in self.profiles.items()}

    def strategy_problem(self, profile: ServedProfile, strategy: StrategyConfig) -> str | None:
        """Why ``profile``'s policy cannot run ``strategy`` with this config's models and
        step verifier (the load-time rules, for a strategy given later), or None."""
        violation = self._strategy_violation(profile.policy, strategy, _TOP)
        return None if violation is None else str(violation)

    def _served(self, name: str, profile: ProfileConfig) -> ServedProfile:
        return ServedProfile(
            name=name,
            policy=profile.policy or self.policy,
            strategy=profile.strategy or self.strategy,
            task=profile.task or self.task,
            budget=profile.budget,
            description=profile.description,
        )

    @model_validator(mode="after")
    def _policy_models_exist(self) -> System2Config:
        return _raise(self, self._models_violation(self.policy, "policy"))

    @model_validator(mode="after")
    def _rule_fits_strategy(self) -> System2Config:
        """A SelectLLM rule fits the strategy the policy plans (``weighted_maxconf`` needs
        ``self_consistency``, which may be the default)."""
        return _raise(self, self._rule_violation(self.policy, self.strategy, _TOP))

    @model_validator(mode="after")
    def _verifiers_for_system2(self) -> System2Config:
        """Strategy ``system2`` on an in-process model needs that model's verifier (other
        backends are checked when the strategy runs)."""
        return _raise(self, self._verifier_violation(self.policy, self.strategy, _TOP))

    @model_validator(mode="after")
    def _step_verifier_fits(self) -> System2Config:
        _raise(self, self._step_verifier_violation(self.policy, self.strategy, _TOP))
        return _raise(self, self._declared_step_verifier_violation())

    @model_validator(mode="after")
    def _profiles_fit(self) -> System2Config:
        """Each profile passes the same rules, reported at its own key paths."""
        for name, profile in self.profiles.items():
            at = f"profiles.{name}"
            served = self._served(name, profile)
            if profile.policy is not None:
                _raise(self, self._models_violation(profile.policy, f"{at}.policy"))
            keys = _PlanKeys(
                policy=f"{at}.policy" if profile.policy is not None else "policy",
                strategy=f"{at}.strategy" if profile.strategy is not None else "strategy",
            )
            _raise(self, self._strategy_violation(served.policy, served.strategy, keys))
        return self

    def _models_violation(self, policy: PolicyConfig, key: str) -> _RuleViolation | None:
        """Models the policy at ``key`` names but the config does not declare; reported at
        ``key.models``, or for ``compute_aware`` at ``key.arms`` naming the arms."""
        declared = ", ".join(sorted(self.models))
        if isinstance(policy, ComputeAwarePolicyConfig):
            stray = {a.name: a.model for a in policy.arms if a.model not in self.models}
            if not stray:
                return None
            return _RuleViolation(
                f"{key}.arms",
                stray,
                f"arm(s) {', '.join(map(repr, stray))} name model(s) "
                f"{', '.join(map(repr, dict.fromkeys(stray.values())))} that are not declared "
                f"under 'models' (declared: {declared})",
            )
        unknown = [m for m in policy.models if m not in self.models]
        if not unknown:
            return None
        return _RuleViolation(
            f"{key}.models",
            list(policy.models),
            f"policy names model(s) {', '.join(map(repr, unknown))} that are not declared "
            f"under 'models' (declared: {declared})",
        )

    def _strategy_violation(
        self, policy: PolicyConfig, strategy: StrategyConfig, keys: _PlanKeys
    ) -> _RuleViolation | None:
        return (
            self._rule_violation(policy, strategy, keys)
            or self._verifier_violation(policy, strategy, keys)
            or self._step_verifier_violation(policy, strategy, keys)
        )

    @staticmethod
    def _strategy_key(policy: PolicyConfig, keys: _PlanKeys) -> str:
        """Where the planned strategy is set: the policy's own, else the default."""
        return keys.strategy if policy.strategy is None else f"{keys.policy}.strategy"

    def _rule_violation(
        self, policy: PolicyConfig, strategy: StrategyConfig, keys: _PlanKeys
    ) -> _RuleViolation | None:
        if not isinstance(policy, SelectLLMPolicyConfig):
            return None
        planned = policy_strategy(policy, strategy)
        conflict = rule_strategy_conflict(policy.rule, planned)
        if conflict is None:
            return None
        return _RuleViolation(f"{self._strategy_key(policy, keys)}.kind", planned.kind, conflict)

    def _verifier_violation(
        self, policy: PolicyConfig, strategy: StrategyConfig, keys: _PlanKeys
    ) -> _RuleViolation | None:
        planned = policy_strategy(policy, strategy)
        if planned.kind != "system2":
            return None
        lacking = [m for m in policy.models if _lacks_verifier(self.models.get(m))]
        if not lacking:
            return None
        return _RuleViolation(
            f"{self._strategy_key(policy, keys)}.kind",
            planned.kind,
            f"strategy 'system2' needs a token verifier on model(s) "
            f"{', '.join(map(repr, lacking))}: add `verifier: {{path: DIR}}` to the "
            "transformers or vllm config (train one with `system2 verifier train`)",
        )

    def _step_verifier_violation(
        self, policy: PolicyConfig, strategy: StrategyConfig, keys: _PlanKeys
    ) -> _RuleViolation | None:
        planned = policy_strategy(policy, strategy)
        if self.step_verifier is not None or not uses_step_verifier(planned):
            return None
        return _RuleViolation(
            self._strategy_key(policy, keys),
            planned.model_dump(mode="json", exclude_unset=True),
            f"strategy {planned.kind!r} asks for a step verifier (vote or value "
            "'verifier', or a cascade's min_verifier_score) but none is declared: "
            "add a top-level `step_verifier:` (kind token, prm or pooled)",
        )

    def _declared_step_verifier_violation(self) -> _RuleViolation | None:
        declared = self.step_verifier
        if not isinstance(declared, TokenStepVerifierConfig | PooledStepVerifierConfig):
            return None
        model = self.models.get(declared.model)
        if model is None:
            return _RuleViolation(
                "step_verifier.model",
                declared.model,
                f"step_verifier names model {declared.model!r}, which is not declared "
                f"under 'models' (declared: {', '.join(sorted(self.models))})",
            )
        # A ray model's verifier runs in its replicas, which host ``replica``.
        hosted = model.replica if isinstance(model, RayWorkerConfig) else model
        if isinstance(declared, TokenStepVerifierConfig) and not (
            isinstance(hosted, TransformersWorkerConfig) and hosted.verifier is not None
        ):
            return _RuleViolation(
                "step_verifier.model",
                declared.model,
                f"step_verifier kind 'token' needs model {declared.model!r} to be a "
                f"transformers model with a `verifier` (it is {hosted.kind!r}"
                f"{'' if hosted.kind != 'transformers' else ' without one'})",
            )
        if isinstance(declared, PooledStepVerifierConfig) and not isinstance(
            model, OpenAIWorkerConfig
        ):
            return _RuleViolation(
                "step_verifier.model",
                declared.model,
                f"step_verifier kind 'pooled' needs model {declared.model!r} to be an "
                f"openai model (it is {model.kind!r})",
            )
        return None


def _raise(config: System2Config, violation: _RuleViolation | None) -> System2Config:
    """``config``, if no rule is broken; else raise the violation."""
    if violation is not None:
        raise violation
    return config


def _lacks_verifier(config: ModelConfig | None) -> bool:
    if isinstance(config, TransformersWorkerConfig | VLLMWorkerConfig):
        return config.verifier is None
    if isinstance(config, PoolConfig):
        return any(_lacks_verifier(r) for r in config.replicas)
    if isinstance(config, RayWorkerConfig):
        return _lacks_verifier(config.replica)
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
