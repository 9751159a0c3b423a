"""Token quality exploration on a scripted worker whose rollout outcomes are known."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrator.types import Query
from system2.evaluation.datasets import EvalItem
from system2.pipelines.verifier_triplets import (
    ExplorationSettings,
    prompt_from_json,
    read_triplets,
    synthesize_triplets,
)
from system2.runfile import RunConfigMismatchError
from workers.base import (
    Completion,
    ContinuationScore,
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
    TokenAlternative,
    Worker,
    WorkerUsage,
)

REFERENCE = "the answer is 4."
EOS = 0  # decodes to no text
# position -> (gold probability, [(alternative, probability)]); other positions: p(gold) 0.99
WALK: dict[int, tuple[float, list[tuple[int, float]]]] = {
    0: (0.4, [(ord("w"), 0.3), (ord("s"), 0.2), (0xFFFD, 0.1)]),  # U+FFFD: a partial char
    4: (0.95, [(ord("b"), 0.05)]),  # certain enough: never explored
    8: (0.01, [(ord("x"), 0.9)]),  # gold below alpha * max p: explored without plausible_gold
    14: (0.5, [(ord("5"), 0.3), (ord("6"), 0.15), (ord("7"), 0.01)]),  # "7" < alpha * max
    15: (0.6, [(EOS, 0.3)]),
}
# prefix -> the four rollouts' continuations (anything else continues with "")
ROLLOUTS = {
    "t": ["he answer is 4.", "he answer is 4.", "oo bad, 3", "oo bad, 3"],  # 0.5
    "w": ["rong: 3"] * 4,  # 0.0: exactly gold - margin, a negative
    "s": ["o the answer is 4.", "o 3", "o 3", "o 3"],  # 0.25: above gold - margin
    "the answer is 4": ["."] * 4,  # 1.0
    "the answer is 5": ["."] * 4,  # 0.0: a negative
    "the answer is 6": [", no, the answer is 4."] * 3 + ["."],  # 0.75: not a negative
}


class ExplorationWorker(Worker):
    """Characters are tokens (id = code point, 0 = EOS); outcomes come from the tables."""

    def __init__(self) -> None:
        self.model_name = "scripted-explorer"
        self.generated: list[GenerateRequest] = []

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        self.generated.append(request)
        prefix = request.assistant_prefix
        if not prefix:
            texts = [REFERENCE if request.params.greedy else "the answer is 9."] * request.params.n
        else:
            texts = ROLLOUTS.get(prefix, [""] * 4)[: request.params.n]
        completions = tuple(
            Completion(
                text=t,
                token_ids=tuple(map(ord, t)),
                logprobs=(-0.1,) * len(t),
                finish_reason="stop",
            )
            for t in texts
        )
        return GenerateResult(model=self.model_name, completions=completions, usage=WorkerUsage())

    async def score(self, request: ScoreRequest) -> ScoreResult:
        assert request.continuations == (REFERENCE,)
        ids = tuple(map(ord, REFERENCE))
        logprobs, alternatives = [], []
        for t, gold in enumerate(ids):
            gold_prob, others = WALK.get(t, (0.99, []))
            ranked = sorted([(gold, gold_prob), *others], key=lambda x: -x[1])
            logprobs.append(math.log(gold_prob))
            alternatives.append(
                tuple(TokenAlternative(token_id=i, logprob=math.log(p)) for i, p in ranked)[
                    : request.top_logprobs
                ]
            )
        score = ContinuationScore(
            token_ids=ids, token_logprobs=tuple(logprobs), top_alternatives=tuple(alternatives)
        )
        return ScoreResult(model=self.model_name, scores=(score,), usage=WorkerUsage())

    async def decode_tokens(self, token_ids: Sequence[int]) -> str:
        return "".join(chr(i) for i in token_ids if i != EOS)


def _item(name: str) -> EvalItem:
    return EvalItem(id=name, query=Query(id=name, text=f"what is 2 + 2 ({name})?"), gold="4")


async def test_negatives_exactly_where_accuracy_drops_by_the_margin(tmp_path: Path) -> None:
    out = tmp_path / "triplets.jsonl"
    settings = ExplorationSettings(reference_samples=2)
    stats = await synthesize_triplets(
        [_item("a")], ExplorationWorker(), out, settings=settings, progress=False
    )
    header, records = read_triplets(out)
    assert header is not None
    assert header["kind"] == "verifier_triplets"
    record = records["a"]
    assert record["status"] == "ok"
    reference = record["references"][0]
    assert reference["source"] == "greedy"
    assert reference["token_ids"] == list(map(ord, REFERENCE))
    explored = {p["position"]: p for p in reference["positions"]}
    assert sorted(explored) == [0, 14, 15]  # position 4 is too certain
    accuracy = {
        (t, a["token_id"]): a["accuracy"] for t, p in explored.items() for a in p["alternatives"]
    }
    assert accuracy == {
        (0, ord("w")): 0.0,
        (0, ord("s")): 0.25,
        (14, ord("5")): 0.0,
        (14, ord("6")): 0.75,  # "7" fell below alpha * max p
        (15, EOS): 1.0,  # EOS ends the reply at "the answer is 4": right
    }
    assert [explored[t]["gold_accuracy"] for t in (0, 14, 15)] == [0.5, 1.0, 1.0]
    triplets = {(t["position"], t["gold_id"], t["negative_id"]) for t in record["triplets"]}
    assert triplets == {(0, ord("t"), ord("w")), (14, ord("4"), ord("5"))}
    assert stats.triplets == 2
    assert stats.with_reference == 1
    assert stats.rollouts == 4 * (3 + 3 + 1)  # the EOS alternative needs no rollout
    assert prompt_from_json(record["prompt"])[-1].content.startswith("what is 2 + 2")


async def test_positions_cap_keeps_the_least_certain(tmp_path: Path) -> None:
    out = tmp_path / "triplets.jsonl"
    settings = ExplorationSettings(positions=2, alternatives=1, reference_samples=0)
    await synthesize_triplets([_item("a")], ExplorationWorker(), out, settings=settings)
    reference = read_triplets(out)[1]["a"]["references"][0]
    assert [p["position"] for p in reference["positions"]] == [0, 14]
    assert [len(p["alternatives"]) for p in reference["positions"]] == [1, 1]


async def test_implausible_gold_positions_only_when_asked(tmp_path: Path) -> None:
    """Without ``plausible_gold`` the least certain position is one where p(gold) falls
    below alpha * max p, a choice guided decoding would never face."""
    out = tmp_path / "triplets.jsonl"
    settings = ExplorationSettings(
        positions=1, alternatives=1, reference_samples=0, plausible_gold=False
    )
    stats = await synthesize_triplets([_item("a")], ExplorationWorker(), out, settings=settings)
    reference = read_triplets(out)[1]["a"]["references"][0]
    assert [p["position"] for p in reference["positions"]] == [8]
    # The gold prefix never reaches the answer (accuracy 0 < margin), so no alternative can
    # be a negative: they are not rolled out.
    assert reference["positions"][0]["gold_accuracy"] == 0.0
    assert reference["positions"][0]["alternatives"] == [
        {"token_id": ord("x"), "prob": pytest.approx(0.9), "accuracy": None, "negative": False}
    ]
    assert stats.rollouts == 4


async def test_rollouts_are_seeded_and_sampled(tmp_path: Path) -> None:
    worker = ExplorationWorker()
    await synthesize_triplets([_item("a")], worker, tmp_path / "t.jsonl", progress=False)
    rollouts = [r for r in worker.generated if r.assistant_prefix]
    assert all(r.params.seed is not None and r.params.temperature == 0.7 for r in rollouts)
    assert len({r.params.seed for r in rollouts}) == len(rollouts)


async def test_resumes_and_refuses_other_settings(tmp_path: Path) -> None:
    out = tmp_path / "triplets.jsonl"
    first = ExplorationWorker()
    await synthesize_triplets([_item("a")], first, out, progress=False)
    second = ExplorationWorker()
    stats = await synthesize_triplets([_item("a"), _item("b")], second, out, progress=False)
    asked = {str(r.prompt[-1].content)[:18] for r in second.generated if not r.assistant_prefix}
    assert asked == {"what is 2 + 2 (b)?"}  # item a was not redone
    assert stats.items == 2
    assert stats.triplets == 4
    with pytest.raises(RunConfigMismatchError, match="settings"):
        await synthesize_triplets(
            [_item("a")], second, out, settings=ExplorationSettings(rollouts=2)
        )


async def test_no_correct_reference_is_recorded(tmp_path: Path) -> None:
    item = EvalItem(id="x", query=Query(id="x", text="what is 3 + 3?"), gold="6")
    out = tmp_path / "t.jsonl"
    stats = await synthesize_triplets([item], ExplorationWorker(), out, progress=False)
    assert read_triplets(out)[1]["x"]["status"] == "no_reference"
    assert stats.with_reference == 0
    assert stats.triplets == 0


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="margin"):
        ExplorationSettings(margin=0.0)
    with pytest.raises(ValueError, match="rollouts"):
        ExplorationSettings(rollouts=0)
