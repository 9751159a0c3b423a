"""Self-consistency's tie-break option on scripted workers: first (default) and mean_logprob."""

from __future__ import annotations

import pydantic
import pytest

from orchestrator import Orchestrator, Query, SelfConsistencyConfig
from orchestrator.strategies.votes import mean_logprobs
from orchestrator.types import Candidate
from policies import FixedPolicy
from workers.base import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult, Worker
from workers.scripted import ScriptedWorker, cycle_texts

# Two answers, two samples each: a tie. "5" comes first; "6"'s samples are surer.
TEXTS = ["The answer is 5.", "The answer is 6.", "The answer is 5.", "The answer is 6."]
LOGPROB = {"5": -2.0, "6": -0.25}


class _ConfidenceScriptedWorker(Worker):
    """A scripted worker (no model) whose per-token log-probs depend on the answer in the
    text, so two answers can tie on votes yet differ in confidence."""

    def __init__(self) -> None:
        self.inner = ScriptedWorker("m0", cycle_texts(TEXTS))

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        result = await self.inner.generate(request)
        completions = tuple(
            c.model_copy(update={"logprobs": (LOGPROB[c.text[-2]],) * len(c.token_ids)})
            for c in result.completions
        )
        return result.model_copy(update={"completions": completions})

    async def score(self, request: ScoreRequest) -> ScoreResult:
        return await self.inner.score(request)


async def _answer(config: SelfConsistencyConfig) -> tuple[str | None, bool, str | None]:
    orch = Orchestrator({"m0": _ConfidenceScriptedWorker()}, FixedPolicy(("m0",), config))
    answer = await orch.answer(Query(text="q"))
    vote = answer.trace.vote
    assert vote is not None
    assert vote.counts == {"5": 2.0, "6": 2.0}
    return answer.answer, vote.tie, vote.tie_break


async def test_default_keeps_first_answer_and_records_tie() -> None:
    """Default tie_break 'first': the first answer to appear wins; the trace says tie+rule."""
    assert SelfConsistencyConfig().tie_break == "first"
    assert await _answer(SelfConsistencyConfig(n=4)) == ("5", True, "first")


async def test_mean_logprob_picks_the_more_confident_answer() -> None:
    """tie_break 'mean_logprob': the answer whose samples have the higher mean log-prob."""
    config = SelfConsistencyConfig(n=4, tie_break="mean_logprob")
    assert await _answer(config) == ("6", True, "mean_logprob")


async def test_no_tie_records_none() -> None:
    """A clear majority is not a tie, and no rule is recorded, whatever tie_break says."""
    config = SelfConsistencyConfig(n=3, tie_break="mean_logprob")
    orch = Orchestrator({"m0": _ConfidenceScriptedWorker()}, FixedPolicy(("m0",), config))
    answer = await orch.answer(Query(text="q"))
    assert answer.answer == "5"
    assert answer.trace.vote is not None
    assert (answer.trace.vote.tie, answer.trace.vote.tie_break) == (False, None)


def test_config_rejects_unknown_tie_break() -> None:
    """An unknown tie-break names the field and the allowed values."""
    with pytest.raises(pydantic.ValidationError, match=r"tie_break[\s\S]*'first'"):
        SelfConsistencyConfig.model_validate({"tie_break": "longest"})


def _candidate(answer: str | None, total_logprob: float, tokens: int) -> Candidate:
    return Candidate(
        model="m",
        text="t",
        answer=answer,
        completion_tokens=tokens,
        total_logprob=total_logprob,
        finish_reason="stop",
    )


def test_mean_logprobs_averages_per_sample_means() -> None:
    """Per answer: the mean of each sample's per-token mean; a tokenless sample is -inf."""
    scores = mean_logprobs(
        [
            _candidate("1", -2.0, 4),  # -0.5 per token
            _candidate("1", -1.0, 10),  # -0.1 per token
            _candidate("2", -1.0, 1),
            _candidate("3", 0.0, 0),
            _candidate(None, -0.1, 5),
        ]
    )
    assert scores == pytest.approx({"1": -0.3, "2": -1.0, "3": float("-inf")})
