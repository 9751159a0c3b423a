"""Strategies that use the step verifier: verifier-weighted voting (self-consistency and
system2), verifier values in step beam and metastable search, and the config that
declares the verifier.

``ScriptedStepVerifier`` is a test double: it scores a step 0.9 when it contains "Add one"
and 0.2 otherwise, so it prefers the rare route of the scripted reasoner, which the
model's own confidence and the plain majority do not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import fmean
from typing import ClassVar

import pytest

from orchestrator import MetastableConfig, Orchestrator, Query, StepBeamConfig
from orchestrator.errors import NoStepVerifierError
from orchestrator.recorder import STEP_VERIFIER
from orchestrator.strategies import SelfConsistencyConfig, VerifierGuidedConfig
from orchestrator.strategies.stepwise import Path, StepValue, split_steps
from policies import FixedPolicy
from system2.config import ConfigError, parse_config
from tests.orchestrator.strategies.test_step_search import reasoner
from tests.workers.verifier.byte_model import ByteTokenizer, byte_model
from tests.workers.verifier.helpers import randomize_head
from workers.base import Prompt, StepScale
from workers.scripted import ScriptedWorker
from workers.step_verifier_config import TokenStepVerifierConfig, build_step_verifier
from workers.transformers_worker import TransformersWorker
from workers.verifier import TokenStepVerifier, TokenVerifier

COMMON = "Let x be 3.\nThen 2x is 6.\nThe answer is 6."
RARE = "Let x be 3.\nAdd one to 2x: 7.\nThe answer is 7."


class ScriptedStepVerifier:
    """Test double: 0.9 for a step containing "Add one", else 0.2 (probabilities)."""

    scale: ClassVar[StepScale] = "probability"

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        self.calls.append(tuple(steps))
        return [0.9 if "Add one" in s else 0.2 for s in steps]


def _orchestrator(
    strategy: object, texts: Sequence[str] | None = None, verifier: object | None = None
) -> Orchestrator:
    if texts is None:
        worker = ScriptedWorker("m", reasoner)
    else:
        worker = ScriptedWorker("m", lambda request, i: texts[i % len(texts)], guidance=True)
    return Orchestrator(
        {"m": worker},
        FixedPolicy(("m",), strategy),  # type: ignore[arg-type]
        step_verifier=verifier,  # type: ignore[arg-type]
    )


async def test_verifier_vote_outweighs_the_majority() -> None:
    """Two common paths against one rare: the majority says 6. With the mean step score as
    path weight, each common path weighs 0.2 (0.4 in all) and the rare one
    (0.2 + 0.9 + 0.2) / 3 = 0.433, so the verifier overturns the 2-to-1 vote."""
    majority = await _orchestrator(SelfConsistencyConfig(n=3), [COMMON, COMMON, RARE]).answer(
        "x is 3. What is 2x + 1?"
    )
    assert majority.answer == "6"
    verifier = ScriptedStepVerifier()
    config = SelfConsistencyConfig(n=3, vote="verifier", path_aggregate="mean")
    answer = await _orchestrator(config, [COMMON, COMMON, RARE], verifier).answer("x is 3?")
    assert answer.answer == "7"
    assert answer.trace.vote is not None
    assert answer.trace.vote.counts["7"] == pytest.approx(1.3 / 3)
    assert answer.trace.vote.counts["6"] == pytest.approx(0.4)
    assert answer.trace.extra["path_scores"] == pytest.approx([0.2, 0.2, 1.3 / 3])
    assert "Add one" in answer.text  # the representative is the verified path
    assert len(verifier.calls) == 3
    (record,) = [g for g in answer.trace.generations if g.kind == "score_steps"]
    assert record.model == STEP_VERIFIER
    assert record.n == 3
    assert answer.usage.per_model[STEP_VERIFIER].calls == 1


async def test_min_aggregate_keeps_the_majority_when_weakest_steps_tie() -> None:
    config = SelfConsistencyConfig(n=3, vote="verifier")  # min: every path weighs 0.2
    answer = await _orchestrator(config, [COMMON, COMMON, RARE], ScriptedStepVerifier()).answer(
        "x is 3?"
    )
    assert answer.answer == "6"
    assert answer.trace.vote is not None
    assert answer.trace.vote.counts == pytest.approx({"6": 0.4, "7": 0.2})


async def test_plain_vote_never_calls_the_verifier() -> None:
    verifier = ScriptedStepVerifier()
    answer = await _orchestrator(SelfConsistencyConfig(n=3), [COMMON], verifier).answer("q?")
    assert answer.answer == "6"
    assert verifier.calls == []
    assert "path_scores" not in answer.trace.extra


async def test_guided_sc_can_vote_with_the_verifier() -> None:
    config = VerifierGuidedConfig(n=3, temperature=0.7, vote="verifier", path_aggregate="mean")
    answer = await _orchestrator(config, [COMMON, COMMON, RARE], ScriptedStepVerifier()).answer(
        "x is 3?"
    )
    assert answer.answer == "7"
    assert answer.trace.extra["guidance"]["beta"] == config.beta


async def test_asking_for_a_missing_verifier_fails_clearly() -> None:
    """A strategy that asks for a step verifier the orchestrator lacks fails the query, the
    reason telling how to declare one; the samples drawn before stay in the trace."""
    config = SelfConsistencyConfig(n=2, vote="verifier")
    answer = await _orchestrator(config, [COMMON]).answer("q?")
    assert answer.status == "failed"
    [failure] = answer.trace.failures
    assert failure.startswith(f"strategy self_consistency: {NoStepVerifierError.__name__}: ")
    assert "step_verifier" in failure
    assert len(answer.trace.candidates) == 2


@pytest.mark.parametrize(
    "config",
    [
        StepBeamConfig(beam_width=2, expansions=3, seed=0, value="verifier"),
        MetastableConfig(
            seed_paths=4,
            branch_states=2,
            branch_factor=2,
            seed=0,
            budget_tokens=80,
            value="verifier",
            sparse_bonus=0.0,
        ),
    ],
    ids=["step_beam", "metastable"],
)
async def test_search_with_verifier_values_follows_the_verifier(
    config: StepBeamConfig | MetastableConfig,
) -> None:
    """The scripted reasoner's own confidence prefers the common route (answer 6, see
    test_step_search); valued by a verifier that prefers the rare route (path value =
    mean step score), the search answers 7, and every finished path was verified."""
    verifier = ScriptedStepVerifier()
    config = config.model_copy(update={"path_aggregate": "mean"})
    answer = await _orchestrator(config, verifier=verifier).answer(
        Query(text="x is 3. What is 2x + 1?", id="q")
    )
    assert answer.answer == "7"
    assert answer.trace.extra["search"]["value"] == "verifier"
    assert answer.trace.vote is not None
    for digit in ("6", "7"):
        texts = [c.text for c in answer.trace.candidates if c.answer == digit]
        weights = [fmean(0.9 if "Add one" in s else 0.2 for s in split_steps(t)) for t in texts]
        assert answer.trace.vote.counts[digit] == pytest.approx(sum(weights))
    finished = {tuple(c.text.strip().splitlines()) for c in answer.trace.candidates}
    assert finished <= set(verifier.calls)


def test_branch_states_rank_prefixes_by_their_step_scores() -> None:
    """With a value rule, a state's value is the rule applied to its prefix's step scores
    (the first i of the path's), not answer agreement."""
    from orchestrator.graph import ReasoningGraph
    from orchestrator.strategies.metastable import branch_states

    graph = ReasoningGraph()
    paths = [
        Path(steps=("a", "b", "The answer is 1."), answer="1", step_scores=(0.9, 0.1, 0.5)),
        Path(steps=("a", "c", "The answer is 2."), answer="2", step_scores=(0.9, 0.8, 0.5)),
    ]
    ids = [graph.add_path(p.steps, answer=p.answer).path_id for p in paths]
    rule = StepValue("min", "probability")
    states = branch_states(graph, paths, ids, {}, MetastableConfig(sparse_bonus=0.0), rule)
    texts = [s.prefix.text for s in states]
    assert texts[0] == "a\n"  # min 0.9
    assert texts.index("a\nc\n") < texts.index("a\nb\n")  # 0.8 beats 0.1
    assert states[-1].priority == pytest.approx(0.1)
    assert texts.count("") == 1  # the root: no steps, value 0.5


def test_step_value_reads_probabilities_and_logits() -> None:
    assert StepValue("min", "probability")([0.9, 0.4]) == 0.4
    assert StepValue("mean", "logit")([0.0, 2.0]) == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert StepValue("min", "logit")([]) == 0.5


BASE = """
models:
  m: {kind: scripted, responses: ["The answer is 4."]}
  served: {kind: openai, base_url: "http://127.0.0.1:9", model: prm}
policy: {kind: fixed, models: [m]}
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("strategy: {kind: self_consistency, vote: verifier}", "none is declared"),
        ("strategy: {kind: step_beam, value: verifier}", "none is declared"),
        ("strategy: {kind: cascade, min_verifier_score: 0.5}", "min_verifier_score"),
        ("step_verifier: {kind: token, model: nope}", "not declared"),
        ("step_verifier: {kind: token, model: m}", "transformers model with a `verifier`"),
        ("step_verifier: {kind: pooled, model: m}", "to be an openai model"),
        (
            "strategy: {kind: self_consistency, vote: verifier, early_stop: {}}\n"
            "step_verifier: {kind: pooled, model: served}",
            "early_stop needs vote 'majority'",
        ),
    ],
)
def test_step_verifier_config_errors_name_the_problem(extra: str, message: str) -> None:
    import yaml

    with pytest.raises(ConfigError, match=message):
        parse_config(yaml.safe_load(BASE + extra))


def test_a_declared_pooled_verifier_loads() -> None:
    import yaml

    text = BASE + "strategy: {kind: metastable, value: verifier}\n"
    config = parse_config(yaml.safe_load(text + "step_verifier: {kind: pooled, model: served}"))
    assert config.step_verifier is not None
    assert config.step_verifier.kind == "pooled"


async def test_token_step_verifier_is_built_from_the_models_verifier() -> None:
    """``kind: token`` wraps the verifier attached to a transformers worker, and its scores
    through the orchestrator are those of ``TokenStepVerifier`` on that verifier."""
    verifier = randomize_head(TokenVerifier.from_generator(byte_model()), 0)
    worker = TransformersWorker(byte_model(), ByteTokenizer(), model_name="tiny", verifier=verifier)
    try:
        built = build_step_verifier(TokenStepVerifierConfig(model="tiny"), {"tiny": worker})
        assert isinstance(built, TokenStepVerifier)
        assert built.verifier is verifier
        with pytest.raises(ValueError, match="not declared"):
            build_step_verifier(TokenStepVerifierConfig(model="other"), {"tiny": worker})
        config = SelfConsistencyConfig(n=2, max_tokens=8, seed=0, vote="verifier")
        orch = Orchestrator({"tiny": worker}, FixedPolicy(("tiny",), config), step_verifier=built)
        answer = await orch.answer("What is 2 + 2?")
        from orchestrator.prompts import build_prompt

        prompt = build_prompt(answer.query, None)
        expected = [
            await built.score_steps(prompt, split_steps(c.text)) for c in answer.trace.candidates
        ]
        got = answer.trace.extra["path_scores"]
        assert got == pytest.approx([min(s) if s else None for s in expected])
    finally:
        await worker.close()
