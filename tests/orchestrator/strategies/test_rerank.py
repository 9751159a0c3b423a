"""The rerank strategy and its rerankers on a scripted worker with scripted log-probs."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from orchestrator import (
    CoderRerankerConfig,
    CoderReviewerRerankerConfig,
    Orchestrator,
    Query,
    RandomRerankerConfig,
    RerankConfig,
    RSARerankerConfig,
)
from policies import FixedPolicy
from system2.config import parse_config
from workers.base import (
    ChatMessage,
    ContinuationScore,
    GenerateRequest,
    Prompt,
    ScoreRequest,
    ScoreResult,
    WorkerUsage,
)
from workers.scripted import ScriptedWorker

QUERY = Query(
    text='def add(a, b):\n    """Add two numbers."""\n', task="code", entry_point="add", id="q1"
)
SAMPLES = [
    "```python\ndef add(a, b):\n    return a + b\n```",
    "```python\ndef add(a, b):\n    return a - b\n```",
    "```python\ndef add(a, b):\n    return a * b\n```",
    "I cannot write this.",  # no code: dropped before reranking
]
DESCRIPTIONS = {"a + b": "Returns the SUM.", "a - b": "Returns the DIFFERENCE.",
                "a * b": "Returns the PRODUCT."}  # fmt: skip

# (marker in the prompt, marker in the continuation) -> summed log-prob. Listener rows are
# the candidates' code, columns I_0 ("Add two numbers") and the three descriptions: the
# 3x4 matrix L0 = [[-10, -4, -30, -30], [-9, -12, -3, -12], [-12, -30, -30, -4]].
# Contests: c0 beats c1 (20 vs 3) and c2 (20 vs 18), c2 beats c1 (18 vs 3): pairwise
# [1, 0, 0.5]; support [-18.5, -9, -19]; score ~ [0.573, 0.188, -0.761], so RSA picks c0 while
# Coder (column I_0 alone) picks c1 (-9).
COLUMNS = ("Add two numbers", "SUM", "DIFFERENCE", "PRODUCT")
ROWS = ("a + b", "a - b", "a * b")
L0 = [[-10.0, -4.0, -30.0, -30.0], [-9.0, -12.0, -3.0, -12.0], [-12.0, -30.0, -30.0, -4.0]]
LISTENER = {(col, row): L0[i][j] for i, row in enumerate(ROWS) for j, col in enumerate(COLUMNS)}
# Reviewer log P(I_0 | c): the code is in the prompt and I_0 is the continuation.
REVIEWER = {("a + b", "Add two numbers"): -20.0, ("a - b", "Add two numbers"): -9.0,
            ("a * b", "Add two numbers"): -1.0}  # fmt: skip


def _text(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(m.content for m in prompt)


class LogProbTableWorker(ScriptedWorker):
    """Samples ``SAMPLES``, describes greedily from ``DESCRIPTIONS`` and scores from a table
    keyed by (prompt marker, continuation marker); an unmatched or ambiguous pair fails."""

    def __init__(self, table: Mapping[tuple[str, str], float]) -> None:
        super().__init__("m", self._respond)
        self.table = table

    def _respond(self, request: GenerateRequest, index: int) -> str:
        if not request.params.greedy:
            return SAMPLES[index % len(SAMPLES)]
        prompt = _text(request.prompt)
        (description,) = [d for code, d in DESCRIPTIONS.items() if code in prompt]
        return f"\n{description}\nIt uses one line."  # the first non-empty line is kept

    async def score(self, request: ScoreRequest) -> ScoreResult:
        self.requests.append(request)
        prompt = _text(request.prompt)
        scores = []
        for continuation in request.continuations:
            (logp,) = [v for (p, c), v in self.table.items() if p in prompt and c in continuation]
            scores.append(ContinuationScore(token_ids=(0,), token_logprobs=(logp,)))
        return ScoreResult(model=self.model_name, scores=tuple(scores), usage=WorkerUsage())


def _orch(config: RerankConfig) -> tuple[Orchestrator, LogProbTableWorker]:
    worker = LogProbTableWorker({**LISTENER, **REVIEWER})
    return Orchestrator({"m": worker}, FixedPolicy(("m",), config)), worker


async def test_rsa_picks_the_pragmatic_candidate() -> None:
    """RSA drops the code-less sample, builds the 3x4 matrix and picks c0 (not Coder's c1)."""
    orch = _orch(RerankConfig(n=4, reranker=RSARerankerConfig()))[0]
    answer = await orch.answer(QUERY)
    assert answer.status == "ok"
    assert answer.text == SAMPLES[0]
    record = answer.trace.extra["rerank"]
    assert (record["kept"], record["dropped"], record["chosen"]) == ([0, 1, 2], [3], 0)
    assert record["descriptions"] == ["Returns the SUM.", "Returns the DIFFERENCE.",
                                      "Returns the PRODUCT."]  # fmt: skip
    assert record["L0"] == L0
    assert record["pairwise"] == [1.0, 0.0, 0.5]
    assert record["support"] == [-18.5, -9.0, -19.0]
    assert record["scores"] == pytest.approx([0.5727, 0.1881, -0.7607], abs=1e-4)
    # 1 sampling call, then the I_0 listener column, 3 describe calls, 3 more columns.
    kinds = [g.kind for g in answer.trace.generations]
    assert kinds == ["generate", "score"] + ["generate"] * 3 + ["score"] * 3
    assert record["usage"]["calls"] == 7
    assert record["usage"]["completion_tokens"] == 3 * 7  # three 7-word scripted replies
    assert json.loads(answer.model_dump_json())["trace"]["extra"]["rerank"]["L0"] == L0


async def test_listener_calls_batch_every_candidate_and_rename_f() -> None:
    """Each listener call scores all candidates, renamed to f, as fenced code."""
    orch, worker = _orch(RerankConfig(n=4))
    await orch.answer(QUERY)
    scores = [r for r in worker.requests if isinstance(r, ScoreRequest)]
    assert len(scores) == 4
    for request in scores:
        assert request.continuations == (
            "```python\ndef f(a, b):\n    return a + b\n```",
            "```python\ndef f(a, b):\n    return a - b\n```",
            "```python\ndef f(a, b):\n    return a * b\n```",
        )
    first = scores[0].prompt
    assert isinstance(first, tuple)
    assert "def f(a, b):" in first[-1].content  # I_0 renamed too
    assert "add" not in _text(first)
    describes = [r for r in worker.requests if isinstance(r, GenerateRequest)][1:]
    assert all(r.params.greedy for r in describes)
    assert all("def add" not in _text(r.prompt) for r in describes)


async def test_coder_baseline_picks_the_most_likely_code() -> None:
    """The Coder reranker ranks by the I_0 column alone: one score call, picks c1."""
    answer = await _orch(RerankConfig(n=4, reranker=CoderRerankerConfig()))[0].answer(QUERY)
    record = answer.trace.extra["rerank"]
    assert record["chosen"] == 1
    assert record["logp_c_given_i0"] == [-10.0, -9.0, -12.0]
    assert [g.kind for g in answer.trace.generations] == ["generate", "score"]


async def test_coder_reviewer_adds_the_reverse_term() -> None:
    """Coder-Reviewer adds log P(I_0 | c) (one score call per candidate) and picks c2."""
    config = RerankConfig(n=4, reranker=CoderReviewerRerankerConfig())
    answer = await _orch(config)[0].answer(QUERY)
    record = answer.trace.extra["rerank"]
    assert record["logp_i0_given_c"] == [-20.0, -9.0, -1.0]
    assert record["scores"] == [-30.0, -18.0, -13.0]
    assert record["chosen"] == 2
    assert [g.kind for g in answer.trace.generations].count("score") == 1 + 3


async def test_compare_scores_every_reranker_on_one_candidate_set() -> None:
    """``compare`` records Coder's and Coder-Reviewer's picks beside RSA's, reusing RSA's
    I_0 column: RSA's 4 listener calls plus 3 reviewer calls, no second sampling."""
    config = RerankConfig(n=4, compare=("coder", "coder_reviewer", "random"))
    answer = await _orch(config)[0].answer(QUERY)
    record = answer.trace.extra["rerank"]
    assert record["chosen"] == 0
    compare = record["compare"]
    assert (compare["coder"]["chosen"], compare["coder_reviewer"]["chosen"]) == (1, 2)
    assert compare["coder_reviewer"]["scores"] == [-30.0, -18.0, -13.0]
    assert compare["random"]["chosen"] in (0, 1, 2)
    kinds = [g.kind for g in answer.trace.generations]
    assert (kinds.count("generate"), kinds.count("score")) == (1 + 3, 4 + 3)
    # Each reranker is charged what it reads: Coder the I_0 column only, RSA no reviewer.
    assert compare["coder"]["usage"]["calls"] == 1
    assert compare["coder_reviewer"]["usage"]["calls"] == 1 + 3
    assert record["usage"]["calls"] == 1 + 3 + 3
    assert compare["random"]["usage"]["calls"] == 0


async def test_stop_strings_reach_the_sampling_call() -> None:
    """``stop`` is passed to the worker with the sampling settings."""
    orch, worker = _orch(RerankConfig(n=4, stop=("\n```\n",)))
    await orch.answer(QUERY)
    sampling = next(r for r in worker.requests if isinstance(r, GenerateRequest))
    assert sampling.params.stop == ("\n```\n",)


async def test_random_baseline_makes_no_model_call() -> None:
    """The seeded random reranker picks a kept candidate without scoring anything."""
    config = RerankConfig(n=4, seed=1, reranker=RandomRerankerConfig(seed=5))
    answer = await _orch(config)[0].answer(QUERY)
    record = answer.trace.extra["rerank"]
    assert record["chosen"] in (0, 1, 2)
    assert record["usage"]["calls"] == 0
    again = (await _orch(config)[0].answer(QUERY)).trace.extra["rerank"]
    assert (again["chosen"], again["scores"]) == (record["chosen"], record["scores"])


async def test_no_code_at_all_gives_no_answer_without_reranking() -> None:
    """When every sample lacks code the answer is None and no reranking call is made."""
    orch, worker = _orch(RerankConfig(n=1))
    worker.handler = lambda request, index: "no code"
    answer = await orch.answer(QUERY)
    assert answer.status == "no_answer"
    assert answer.trace.extra["rerank"]["dropped"] == [0]
    assert len(answer.trace.generations) == 1


async def test_text_candidates_are_reranked_against_the_question() -> None:
    """On a math query RSA scores the full texts under the bare question, no renaming."""
    texts = ["Two plus two is 4. The answer is 4.", "It is 5. The answer is 5."]
    worker = LogProbTableWorker({})
    worker.handler = lambda request, index: (
        texts[index % 2] if not request.params.greedy else "What is 2 + 2?"
    )
    worker.table = {("2+2?", "is 4"): -1.0, ("2+2?", "is 5"): -2.0,
                    ("What is 2 + 2?", "is 4"): -1.5, ("What is 2 + 2?", "is 5"): -2.5}  # fmt: skip
    orch = Orchestrator({"m": worker}, FixedPolicy(("m",), RerankConfig(n=2)))
    answer = await orch.answer(Query(text="2+2?", task="math"))
    assert answer.answer == "4"
    first = next(r for r in worker.requests if isinstance(r, ScoreRequest))
    assert first.prompt == (ChatMessage(role="user", content="2+2?"),)
    assert first.continuations == tuple(texts)


def test_yaml_rerank_config_loads() -> None:
    """A config with kind: rerank and reranker: {kind: rsa} parses to typed configs."""
    config = parse_config(
        {
            "models": {"m": {"kind": "scripted", "responses": ["x"]}},
            "policy": {"kind": "fixed", "models": ["m"]},
            "task": "code",
            "strategy": {"kind": "rerank", "n": 6, "reranker": {"kind": "rsa"}},
        }
    )
    assert isinstance(config.strategy, RerankConfig)
    assert config.strategy.n == 6
    assert config.strategy.temperature == 1.2
    assert isinstance(config.strategy.reranker, RSARerankerConfig)
