"""Each strategy's settings, one pydantic model per ``kind``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CascadeConfig",
    "CoderRerankerConfig",
    "CoderReviewerRerankerConfig",
    "EarlyStopConfig",
    "GreedyConfig",
    "RSARerankerConfig",
    "RandomRerankerConfig",
    "RerankConfig",
    "RerankerConfig",
    "RerankerKind",
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


class CascadeConfig(_Strict):
    """Self-consistency on each planned model in turn until a vote is decisive."""

    kind: Literal["cascade"] = "cascade"
    stage: SelfConsistencyConfig = SelfConsistencyConfig(n=3)
    min_margin: float = Field(
        default=0.6, gt=0.0, le=1.0, description="a stage at or above this margin stops"
    )


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


StrategyConfig = Annotated[
    GreedyConfig | SampleConfig | SelfConsistencyConfig | CascadeConfig | RerankConfig,
    Field(discriminator="kind"),
]
