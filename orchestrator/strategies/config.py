"""Each strategy's settings, one pydantic model per ``kind``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.aggregation.verifier_vote import PathAggregate
from orchestrator.aggregation.voting import TieBreak

__all__ = [
    "CascadeConfig",
    "CoderRerankerConfig",
    "CoderReviewerRerankerConfig",
    "EarlyStopConfig",
    "GreedyConfig",
    "MetastableConfig",
    "RSARerankerConfig",
    "RandomRerankerConfig",
    "RerankConfig",
    "RerankerConfig",
    "RerankerKind",
    "SampleConfig",
    "SelfConsistencyConfig",
    "StepBeamConfig",
    "StrategyConfig",
    "VerifierGuidedConfig",
    "uses_step_verifier",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


VoteKind = Literal["majority", "verifier"]


def _vote_field() -> Any:
    return Field(
        default="majority",
        description="majority: one vote per answer; verifier: weighted by the step verifier",
    )


def _path_aggregate_field() -> Any:
    return Field(
        default="min", description="a path's score from its step scores: min, mean, last, product"
    )


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


def _exact_stop_field() -> Any:
    return Field(
        default=False,
        description="sample each path as a call of its own and cancel the rest once they can "
        "no longer change the winner (same answer, fewer tokens)",
    )


class SelfConsistencyConfig(_Strict):
    """``n`` samples per planned model, majority vote over extracted answers.

    ``exact_stop``: the samples run as concurrent streamed calls, and once the leader
    cannot be overtaken by the samples still running or to come (the vote's own rule,
    ``cannot_be_overtaken``), those are cancelled: the answer is the one all ``n`` would
    give, for fewer tokens (the chosen path's text may differ: another path with the same
    answer). Off by default (YAML written before it keeps its results: the vote tally, the
    chosen text and the usage change with it); it combines with ``early_stop``'s rounds.
    """

    kind: Literal["self_consistency"] = "self_consistency"
    n: int = Field(default=5, ge=1)
    temperature: float = Field(default=0.7, gt=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int | None = None
    early_stop: EarlyStopConfig | None = None
    exact_stop: bool = _exact_stop_field()
    vote: VoteKind = _vote_field()
    path_aggregate: PathAggregate = _path_aggregate_field()
    tie_break: TieBreak = Field(
        default="first",
        description="a tie at the top of the vote goes to: first (the first planned model's "
        "answer, then the first to appear) or mean_logprob (the answer whose samples have "
        "the highest mean per-token log-probability)",
    )

    @model_validator(mode="after")
    def _early_stop_counts_votes(self) -> SelfConsistencyConfig:
        for name, on in (
            ("early_stop", self.early_stop is not None),
            ("exact_stop", self.exact_stop),
        ):
            if on and self.vote == "verifier":
                raise ValueError(f"{name} needs vote 'majority' (it counts votes as they come)")
        return self


class CascadeConfig(_Strict):
    """Self-consistency on each planned model in turn until a vote is decisive (and, with
    ``min_verifier_score``, the step verifier agrees)."""

    kind: Literal["cascade"] = "cascade"
    stage: SelfConsistencyConfig = SelfConsistencyConfig(n=3)
    min_margin: float = Field(
        default=0.6, gt=0.0, le=1.0, description="a stage at or above this margin stops"
    )
    min_verifier_score: float | None = Field(
        default=None,
        description="needs a step verifier: a stage also needs its chosen candidate's path "
        "score (stage.path_aggregate, in the verifier's scale) at or above this to stop",
    )

    @model_validator(mode="after")
    def _margins_of_whole_stages(self) -> CascadeConfig:
        if self.stage.exact_stop:
            raise ValueError(
                "stage.exact_stop would change the stage margins the cascade escalates on "
                "(fewer votes), so its answers; leave it off in a cascade"
            )
        return self


class RSARerankerConfig(_Strict):
    """CodeRSA (arXiv 2502.15835): describe each candidate, score the listener matrix."""

    kind: Literal["rsa"] = "rsa"
    describe_max_tokens: int = Field(default=96, ge=1)


class CoderRerankerConfig(_Strict):
    """Coder baseline: argmax log P(candidate | instruction)."""

    kind: Literal["coder"] = "coder"


class CoderReviewerRerankerConfig(_Strict):
    """Coder-Reviewer baseline: argmax log P(c | I) + log P(I | c)."""

    kind: Literal["coder_reviewer"] = "coder_reviewer"


class RandomRerankerConfig(_Strict):
    """Random baseline; ``seed`` None draws a fresh choice each query."""

    kind: Literal["random"] = "random"
    seed: int | None = None


RerankerConfig = Annotated[
    RSARerankerConfig | CoderRerankerConfig | CoderReviewerRerankerConfig | RandomRerankerConfig,
    Field(discriminator="kind"),
]


RerankerKind = Literal["random", "coder", "coder_reviewer", "rsa"]


class RerankConfig(_Strict):
    """``n`` samples from the first planned model, reranked by the same model; candidates
    without an extracted answer are dropped before reranking.

    ``compare`` lists further rerankers (default options) to run on the same candidates and
    record beside the pick, for evaluation; they share the reranker's model calls.
    ``stop`` ends each sample at any of these strings (e.g. a closing code fence).
    """

    kind: Literal["rerank"] = "rerank"
    n: int = Field(default=10, ge=1)
    temperature: float = Field(default=1.2, gt=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int | None = None
    stop: tuple[str, ...] = ()
    reranker: RerankerConfig = RSARerankerConfig()
    compare: tuple[RerankerKind, ...] = ()


class _StepSearch(_Strict):
    """Step-level search: steps are lines sampled one call at a time; ``budget_tokens``
    caps the generated tokens (a round starts only while some are left)."""

    temperature: float = Field(default=0.7, gt=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    step_max_tokens: int = Field(default=96, ge=1, description="tokens per step")
    max_steps: int = Field(default=24, ge=1, description="steps per path")
    max_tokens: int = Field(default=512, ge=1, description="tokens per path")
    seed: int | None = None
    budget_tokens: int = Field(default=2048, ge=1, description="generated tokens per query")
    value: Literal["confidence", "verifier"] = Field(
        default="confidence",
        description="a path's value: the model's own confidence, or the step verifier's score",
    )
    path_aggregate: PathAggregate = _path_aggregate_field()


class StepBeamConfig(_StepSearch):
    """Beam search over steps: each of ``beam_width`` partial paths gets ``expansions``
    sampled next steps; the ``beam_width`` best children by path value go on; finished
    paths vote weighted by value."""

    kind: Literal["step_beam"] = "step_beam"
    beam_width: int = Field(default=3, ge=1)
    expansions: int = Field(default=3, ge=1)


class MetastableConfig(_StepSearch):
    """Search over a metastable reasoning graph (arXiv 2502.01694, our reading): sample
    ``seed_paths`` paths, build the step graph, find clusters and sparse edges, then
    repeatedly branch ``branch_factor`` next steps from the ``branch_states`` best states
    (value + ``sparse_bonus`` right after a sparse edge - ``revisit_penalty`` per earlier
    branching) and roll the branches out; finished paths vote weighted by value."""

    kind: Literal["metastable"] = "metastable"
    seed_paths: int = Field(default=4, ge=1)
    branch_states: int = Field(default=2, ge=1)
    branch_factor: int = Field(default=2, ge=1)
    sparse_bonus: float = Field(default=1.0, ge=0.0, description="lambda")
    sparse_threshold: float = Field(default=0.2, gt=0.0, le=1.0)
    cluster_method: Literal["modularity", "markov"] = "modularity"
    revisit_penalty: float = Field(default=0.5, ge=0.0)
    merge: Literal["text", "embedding"] = Field(
        default="text",
        description="merge steps by normalised text, or also by sentence-embedding cosine",
    )
    similarity: float = Field(default=0.9, gt=0.0, le=1.0, description="embedding merge")
    embedder: str = Field(default="all-minilm-l6-v2", description="catalog embedder")


class VerifierGuidedConfig(_Strict):
    """System-2 decoding (LLM2, arXiv 2412.20372): the planned models' token verifiers steer
    every step (z + ``beta`` * s on the ``alpha``-plausible candidates, at most ``top_k``).

    ``n = 1`` with ``temperature = 0`` is verifier-guided greedy; ``n > 1`` (which needs
    ``temperature > 0``) is verifier-guided self-consistency: ``n`` guided samples per
    planned model and a majority vote (``exact_stop`` as in ``SelfConsistencyConfig``).
    Every planned model needs a verifier attached (``verifier:`` in its transformers
    config); otherwise the query fails with a ``ConfigError`` naming the model.
    """

    kind: Literal["system2"] = "system2"
    beta: float = Field(default=0.25, ge=0.0, description="verifier weight (paper: 0.25)")
    alpha: float = Field(default=0.1, ge=0.0, le=1.0, description="plausibility (paper: 0.1)")
    top_k: int = Field(default=10, ge=0, description="most candidates per step; 0: no cap")
    n: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int | None = None
    exact_stop: bool = _exact_stop_field()
    vote: VoteKind = _vote_field()
    path_aggregate: PathAggregate = _path_aggregate_field()

    @model_validator(mode="after")
    def _sampled_when_many(self) -> VerifierGuidedConfig:
        if self.n > 1 and self.temperature == 0.0:
            raise ValueError(f"n = {self.n} samples need temperature > 0 (e.g. 0.7)")
        if self.exact_stop and self.vote == "verifier":
            raise ValueError("exact_stop needs vote 'majority' (it counts votes as they come)")
        if self.alpha == 0.0 and self.top_k == 0:
            raise ValueError("alpha = 0 needs a top_k cap")
        return self


StrategyConfig = Annotated[
    GreedyConfig
    | SampleConfig
    | SelfConsistencyConfig
    | CascadeConfig
    | RerankConfig
    | StepBeamConfig
    | MetastableConfig
    | VerifierGuidedConfig,
    Field(discriminator="kind"),
]


def uses_step_verifier(config: StrategyConfig) -> bool:
    """Whether ``config`` asks for the config's ``step_verifier``."""
    if isinstance(config, CascadeConfig):
        return config.min_verifier_score is not None or uses_step_verifier(config.stage)
    return getattr(config, "vote", None) == "verifier" or getattr(config, "value", None) == (
        "verifier"
    )
