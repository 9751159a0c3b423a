"""How a step verifier (``workers.verifier.steps``) is declared in YAML and built.

A config's top-level ``step_verifier`` is one of:

* ``token``: the LLM2 token verifier attached to a declared model
  (``Worker.token_step_verifier``: a ``transformers`` model with a ``verifier``), each step
  scored by the mean of its tokens' scores (logits);
* ``prm``: a process reward model loaded from a local directory with transformers
  (P(step correct));
* ``pooled``: a PRM behind a declared ``openai`` model served with ``vllm serve --runner
  pooling`` (P(step correct)).

Strategies use it when asked to (``vote: verifier``, ``value: verifier``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from workers.base import StepVerifier, Worker
from workers.errors import UnsupportedRequest

__all__ = [
    "PRMStepVerifierConfig",
    "PooledStepVerifierConfig",
    "StepVerifierConfig",
    "TokenStepVerifierConfig",
    "build_step_verifier",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenStepVerifierConfig(_Strict):
    """The token verifier of a declared transformers model, averaged over each step."""

    kind: Literal["token"] = "token"
    model: str = Field(description="a declared transformers model with a `verifier`")


class PRMStepVerifierConfig(_Strict):
    """A process reward model in a local directory, run in-process with transformers."""

    kind: Literal["prm"] = "prm"
    path: str = Field(description="the PRM's directory (no hub downloads here)")
    reading: Literal["classes", "tokens"] = "classes"
    step_tag: str = "<extra_0>"
    positive_class: int = -1
    good_token: str | None = None
    bad_token: str | None = None


class PooledStepVerifierConfig(_Strict):
    """A PRM served over HTTP (``vllm serve --runner pooling``), declared as a model."""

    kind: Literal["pooled"] = "pooled"
    model: str = Field(description="a declared openai model serving the PRM")


StepVerifierConfig = Annotated[
    TokenStepVerifierConfig | PRMStepVerifierConfig | PooledStepVerifierConfig,
    Field(discriminator="kind"),
]


def build_step_verifier(config: StepVerifierConfig, workers: Mapping[str, Worker]) -> StepVerifier:
    """The step verifier ``config`` declares, using the already built ``workers``."""
    from workers.verifier.steps import PooledStepVerifier, PRMStepVerifier  # imports torch

    if isinstance(config, PRMStepVerifierConfig):
        return PRMStepVerifier.load(
            config.path,
            reading=config.reading,
            step_tag=config.step_tag,
            positive_class=config.positive_class,
            good_token=config.good_token,
            bad_token=config.bad_token,
        )
    worker = workers.get(config.model)
    if worker is None:
        raise ValueError(
            f"step_verifier names model {config.model!r}, which is not declared "
            f"(declared: {', '.join(sorted(workers))})"
        )
    if isinstance(config, TokenStepVerifierConfig):
        try:
            return worker.token_step_verifier()
        except UnsupportedRequest as exc:
            raise ValueError(
                f"step_verifier kind 'token' needs model {config.model!r} to be a transformers "
                f"model with a `verifier`: {exc.reason}"
            ) from exc
    from workers.openai.worker import OpenAIWorker  # imports httpx

    if not isinstance(worker, OpenAIWorker):
        raise ValueError(
            f"step_verifier kind 'pooled' needs model {config.model!r} to be an openai model "
            f"(it is a {type(worker).__name__})"
        )
    return PooledStepVerifier(worker)
