"""The curated public API: what each package exports is pinned, so changes are deliberate."""

from __future__ import annotations

import orchestrator
import policies
import system2
import workers


def test_orchestrator_exports() -> None:
    """orchestrator's __all__ is exactly the documented set and every name resolves."""
    assert set(orchestrator.__all__) == {
        "Answer", "Candidate", "EarlyStopConfig", "GenerationRecord",
        "GreedyConfig", "ModelUsage", "Orchestrator", "Plan", "PromptConfig", "Query",
        "RoutingPolicy", "SampleConfig", "SelfConsistencyConfig", "StrategyConfig", "TaskType",
        "Trace", "Usage", "VoteRecord",
        "RerankConfig", "RerankerConfig", "RSARerankerConfig", "CoderRerankerConfig",
        "CoderReviewerRerankerConfig", "RandomRerankerConfig", "StepBeamConfig", "MetastableConfig",
        "VerifierGuidedConfig",
    }  # fmt: skip
    for name in orchestrator.__all__:
        assert getattr(orchestrator, name) is not None


def test_workers_exports() -> None:
    """workers exports the seam, its backends, configs and errors, all resolvable."""
    expected = {"Worker", "GenerateRequest", "ScoreRequest", "TransformersWorker", "ScriptedWorker",
                "WorkerFailure", "ChecksumMismatchError", "build_worker"}  # fmt: skip
    assert expected <= set(workers.__all__)
    for name in workers.__all__:
        assert getattr(workers, name) is not None


def test_policies_exports() -> None:
    """policies exports the routing seam and the fixed policy."""
    assert {"RoutingPolicy", "Plan", "FixedPolicy", "build_policy"} <= set(policies.__all__)
    for name in policies.__all__:
        assert getattr(policies, name) is not None


def test_policies_exports_every_policy_with_its_config() -> None:
    """Every policy kind's class and config, the constant-plan base, the build error and
    the SelectLLM policy are importable from ``policies``; the torch-backed router is not."""
    expected = {
        "ConstantPolicy", "FixedPolicy", "FixedPolicyConfig", "AllModelsPolicy",
        "AllModelsPolicyConfig", "CascadePolicy", "CascadePolicyConfig", "RandomSubsetPolicy",
        "RandomSubsetPolicyConfig", "RoundRobinPolicy", "RoundRobinPolicyConfig",
        "SelectLLMPolicy", "SelectLLMPolicyConfig", "PolicyConfig", "PolicyBuildError",
        "POLICY_BUILDERS", "policy_strategy",
        "ComputeAwarePolicy", "ComputeAwarePolicyConfig", "ArmConfig",
    }  # fmt: skip
    assert expected <= set(policies.__all__)
    assert sorted(policies.__all__) == sorted(set(policies.__all__))
    assert "QueryRouter" not in policies.__all__
    assert issubclass(policies.FixedPolicy, policies.ConstantPolicy)
    assert issubclass(policies.PolicyBuildError, ValueError)


def test_compute_aware_policy_is_public_and_buildable_by_kind() -> None:
    """The compute-aware policy, its config and its arms are the same objects from
    ``policies`` and ``policies.selectllm``; ``kind: compute_aware`` has a builder."""
    from policies import selectllm

    for name in ("ComputeAwarePolicy", "ComputeAwarePolicyConfig", "ArmConfig"):
        assert name in selectllm.__all__
        assert getattr(policies, name) is getattr(selectllm, name)
    assert issubclass(policies.ComputeAwarePolicy, policies.RoutingPolicy)
    assert policies.ComputeAwarePolicyConfig.model_fields["kind"].default == "compute_aware"
    assert "compute_aware" in policies.POLICY_BUILDERS


def test_system2_is_the_front_door() -> None:
    """system2 exports config loading, assembly from YAML, and the query/answer types."""
    assert set(system2.__all__) == {
        "Answer", "ConfigError", "LoggingConfig", "Orchestrator", "Query", "System2Config",
        "Trace", "Usage", "build_orchestrator", "load_config", "load_orchestrator",
        "parse_config",
    }  # fmt: skip
    for name in system2.__all__:
        assert getattr(system2, name) is not None
    assert system2.Orchestrator is orchestrator.Orchestrator
