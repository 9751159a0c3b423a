"""``value: verifier`` in step beam and metastable search with the shared-trunk head.

The paths come from the scripted reasoner of ``test_step_search`` (a scripted worker with
two routes: a common one answering 6, a rare one answering 7). The step values come from a
real ``TrunkStepVerifier`` on a real (random, byte-level; SmolLM2 in the slow tier)
generator, built the way YAML builds it (``step_verifier: {kind: token, model: ...}`` on a
transformers worker with the head attached), with a rank-1 head set by hand:

    U = u, V = v  with  e_x · u = w(x) for every token of the two routes
                  and   v · h_t = 1   at every state the verifier reads,

both solved exactly by least squares (fewer equations than hidden dimensions), so at those
states s(x | h_t) = w(x): a pure token preference. "Prefer 7" is w = +c for "7", -c for "6"
and 0 for every other token, so a step's score is ±c / (its tokens) when it holds the
digit. With the default ``min`` aggregate a common path is then worth sigmoid(-c / 14) and
a rare one sigmoid(0) = 1/2, so the search must answer 7; "prefer 6" mirrors it. An
untrained head (U = 0) values every path 1/2, which leaves the plain count of whatever
paths the search happened to keep (6 for metastable, 7 for this step beam): one of the two
preferences overturns it either way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import torch
from transformers import Qwen2ForCausalLM

from orchestrator import MetastableConfig, Orchestrator, Query, StepBeamConfig
from orchestrator.prompts import build_prompt
from orchestrator.strategies.stepwise import split_steps
from policies import FixedPolicy
from tests.orchestrator.strategies.test_step_search import COMMON, RARE, reasoner
from tests.workers.tiny_model import tiny_config
from tests.workers.verifier.byte_model import VOCAB, ByteTokenizer
from workers.base import Prompt
from workers.scripted import ScriptedWorker
from workers.step_verifier_config import TokenStepVerifierConfig, build_step_verifier
from workers.transformers_worker import TransformersWorker
from workers.verifier import TrunkHead, TrunkStepVerifier, step_spans
from workers.verifier.trunk_head import output_embeddings
from workers.verifier.trunk_scoring import last_hidden_states

QUERY = Query(text="x is 3. What is 2x + 1?", id="q")
STRENGTH = 40.0  # c: a step holding the digit scores ±c / (its tokens)

SEARCHES = [
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
]
SEARCH_IDS = ["step_beam", "metastable"]


def wide_byte_model() -> Qwen2ForCausalLM:
    """A random byte-level Qwen2 (``tests.workers.verifier.byte_model``'s vocabulary), 256
    wide so the hand-set head can be solved exactly at every state of both routes."""
    torch.manual_seed(0)
    config = tiny_config(VOCAB, hidden_size=256, max_position_embeddings=2048)
    return Qwen2ForCausalLM(config).eval()


def token_preference_head(
    model: Any,
    tokenizer: Any,
    prompt: Prompt,
    routes: Sequence[Sequence[str]],
    weights: Mapping[int, float],
) -> TrunkHead:
    """The rank-1 head (module doc) with s(x | h_t) = ``weights.get(x, 0)`` at every state
    the step verifier reads on ``routes`` (and on their prefixes: the states are causal)."""
    states, tokens = [], set()
    for steps in routes:
        ids, spans = step_spans(tokenizer, prompt, steps, "\n")
        with torch.no_grad():
            hidden = last_hidden_states(model, torch.tensor([ids]))[0]
        for a, b in spans:
            states.append(hidden[a - 1 : b - 1])
            tokens.update(ids[a:b])
    h = torch.cat(states).double()
    ordered = sorted(tokens)
    e = output_embeddings(model).detach()[ordered].double()
    if max(h.shape[0], e.shape[0]) >= h.shape[1]:
        raise ValueError(f"{h.shape[0]} states, {e.shape[0]} tokens: too many to solve exactly")
    target = torch.tensor([weights.get(t, 0.0) for t in ordered], dtype=torch.float64)
    v = torch.linalg.lstsq(h, torch.ones(h.shape[0], 1, dtype=torch.float64)).solution
    u = torch.linalg.lstsq(e, target[:, None]).solution
    head = TrunkHead(h.shape[1], rank=1, vocab_size=int(model.config.vocab_size))
    with torch.no_grad():
        head.U.copy_(u.float())
        head.V.copy_(v.float())
    return head


def designed_step_scores(
    tokenizer: Any, prompt: Prompt, steps: Sequence[str], weights: Mapping[int, float]
) -> list[float]:
    """Each step's mean of ``weights`` over its tokens: what the head must give."""
    ids, spans = step_spans(tokenizer, prompt, steps, "\n")
    return [sum(weights.get(i, 0.0) for i in ids[a:b]) / (b - a) for a, b in spans]


def digit_weights(tokenizer: Any, prefer: str, avoid: str) -> dict[int, float]:
    (good,) = tokenizer.encode(prefer, add_special_tokens=False)
    (bad,) = tokenizer.encode(avoid, add_special_tokens=False)
    return {good: STRENGTH, bad: -STRENGTH}


async def search_with_head(
    config: StepBeamConfig | MetastableConfig, model: Any, tokenizer: Any, head: TrunkHead
) -> Any:
    """The scripted reasoner searched, valued by ``head`` on ``model`` via the worker."""
    worker = TransformersWorker(model, tokenizer, model_name="trunk", verifier=head)
    try:
        verifier = build_step_verifier(TokenStepVerifierConfig(model="trunk"), {"trunk": worker})
        assert isinstance(verifier, TrunkStepVerifier)
        orch = Orchestrator(
            {"m": ScriptedWorker("m", reasoner)},
            FixedPolicy(("m",), config),
            step_verifier=verifier,
        )
        return await orch.answer(QUERY)
    finally:
        await worker.close()


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def check_search_follows_head(
    answer: Any, tokenizer: Any, prompt: Prompt, weights: Mapping[int, float]
) -> None:
    """Every answer's vote weight is the sum over its finished paths of sigmoid(min of the
    designed step scores): the search voted with the head's values, and nothing else."""
    assert answer.status == "ok"
    assert answer.trace.extra["search"]["value"] == "verifier"
    assert answer.trace.vote is not None
    by_answer: dict[str, float] = {}
    for c in answer.trace.candidates:
        scores = designed_step_scores(tokenizer, prompt, split_steps(c.text), weights)
        by_answer[c.answer] = by_answer.get(c.answer, 0.0) + sigmoid(min(scores))
    assert answer.trace.vote.counts == pytest.approx(by_answer, abs=1e-3)


async def _check_preference_turns_the_search(
    config: StepBeamConfig | MetastableConfig, model: Any, tokenizer: Any
) -> None:
    prompt = build_prompt(QUERY, None)
    routes = (COMMON, RARE)
    prefer_7 = digit_weights(tokenizer, "7", "6")
    head = token_preference_head(model, tokenizer, prompt, routes, prefer_7)
    verifier = TrunkStepVerifier(head, model, tokenizer)
    for steps in routes:  # the head gives what it was set to give
        got = verifier.score_steps_now(prompt, steps)
        want = designed_step_scores(tokenizer, prompt, steps, prefer_7)
        assert got == pytest.approx(want, abs=1e-3)

    untrained = await search_with_head(config, model, tokenizer, TrunkHead(head.hidden_size))
    finished = [c.answer for c in untrained.trace.candidates]
    counts = {a: float(finished.count(a)) for a in set(finished)}
    assert untrained.trace.vote is not None  # every value 1/2: the plain count
    assert untrained.trace.vote.counts == pytest.approx({a: n / 2 for a, n in counts.items()})
    assert untrained.answer == max(counts, key=lambda a: counts[a])

    # Each preference wins, whichever answer the plain count gave: one of the two turns it.
    for prefer, avoid, kept in (("7", "6", RARE[1]), ("6", "7", COMMON[1])):
        weights = digit_weights(tokenizer, prefer, avoid)
        preferring = token_preference_head(model, tokenizer, prompt, routes, weights)
        answer = await search_with_head(config, model, tokenizer, preferring)
        assert answer.answer == prefer
        assert kept in answer.text  # the path the search keeps is the preferred route
        check_search_follows_head(answer, tokenizer, prompt, weights)


@pytest.mark.parametrize("config", SEARCHES, ids=SEARCH_IDS)
async def test_trunk_head_values_turn_the_search(
    config: StepBeamConfig | MetastableConfig,
) -> None:
    """On a random byte-level Qwen2: an untrained head leaves the count (6), a head that
    prefers "7" turns the search to the rare route (7) with the vote weights it implies, and
    one that prefers "6" keeps 6."""
    await _check_preference_turns_the_search(config, wide_byte_model(), ByteTokenizer())


@pytest.mark.slow
@pytest.mark.parametrize("config", SEARCHES, ids=SEARCH_IDS)
async def test_trunk_head_values_turn_the_search_on_smollm2(
    config: StepBeamConfig | MetastableConfig, small_model_name: str
) -> None:
    """The same on SmolLM2-135M-Instruct (its chat template and BPE tokens; digits are
    single tokens)."""
    loaded = TransformersWorker.load(small_model_name, threads=2)
    try:
        await _check_preference_turns_the_search(config, loaded.model, loaded.tokenizer)
    finally:
        await loaded.close()
