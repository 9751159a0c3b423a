"""``rerank``: sample ``n`` candidates from the first planned model, drop those with no
extracted answer, and let a reranker (CodeRSA by default, arXiv 2502.15835) pick one with
the same model. Nothing is executed: the pick uses the model's log-probs only.

What the reranker reads: for code tasks the extracted code of each candidate and the query
text as ``I_0``; for other tasks each candidate's full text and the question (with its
choices, for multiple choice) as ``I_0``. ``extra["rerank"]`` keeps ``kept`` and
``dropped`` (indices into the candidates), ``chosen`` (an index into the candidates),
``scores`` (``scores[k]`` belongs to candidate ``kept[k]``), the reranker's own details
(e.g. ``descriptions``, ``L0``, ``pairwise``, ``support`` for RSA) and ``usage``: the
reranking calls' count, tokens and seconds, sampling excluded. With one kept candidate no
reranking call is made.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from orchestrator.rerank.base import Reranker
from orchestrator.rerank.evidence import ComponentCost, Evidence
from orchestrator.rerank.registry import build_reranker
from orchestrator.rerank.task import RerankTask
from orchestrator.strategies.base import StrategyContext, StrategyResult, sampling_params
from orchestrator.strategies.config import RerankConfig
from orchestrator.types import Candidate, Query
from workers.base import GenerateRequest

__all__ = ["rerank_task", "run_rerank"]


async def run_rerank(ctx: StrategyContext, config: RerankConfig) -> StrategyResult:
    model = ctx.models[0]
    params = sampling_params(config, n=config.n, stop=config.stop)
    request = GenerateRequest(prompt=ctx.prompt, params=params, request_id=ctx.query.id)
    candidates = ctx.candidates(await ctx.calls.generate(model, request))
    kept = [i for i, c in enumerate(candidates) if c.answer is not None]
    record: dict[str, Any] = {
        "reranker": config.reranker.kind,
        "kept": kept,
        "dropped": [i for i, c in enumerate(candidates) if c.answer is None],
    }
    if not kept:
        return StrategyResult(
            answer=None, chosen=None, candidates=candidates, extra={"rerank": record}
        )

    reranker = build_reranker(**config.reranker.model_dump())
    task = rerank_task(ctx.query, [candidates[i] for i in kept])
    evidence = Evidence()
    ranking = await reranker.rerank(ctx.calls, model, task, evidence)
    chosen = candidates[kept[ranking.best]]
    record.update(
        chosen=kept[ranking.best],
        scores=list(ranking.scores),
        **ranking.details,
        usage=_usage(evidence, reranker),
    )
    if config.compare:
        record["compare"] = {}
        for kind in config.compare:
            other = build_reranker(kind)
            other_ranking = await other.rerank(ctx.calls, model, task, evidence)
            record["compare"][kind] = {
                "chosen": kept[other_ranking.best],
                "scores": list(other_ranking.scores),
                "usage": _usage(evidence, other),
            }
    return StrategyResult(
        answer=chosen.answer, chosen=chosen, candidates=candidates, extra={"rerank": record}
    )


def rerank_task(query: Query, candidates: list[Candidate]) -> RerankTask:
    """The reranker's view of ``candidates``: code and the query text for code tasks, the
    full texts and the question (with its choices) otherwise."""
    if query.task == "code":
        return RerankTask(
            instruction=query.text,
            candidates=tuple(c.answer or "" for c in candidates),
            code=True,
            entry_point=query.entry_point,
            request_id=query.id,
        )
    choices = "\n".join(f"({chr(ord('A') + i)}) {c}" for i, c in enumerate(query.choices))
    instruction = f"{query.text}\n\n{choices}" if choices else query.text
    return RerankTask(
        instruction=instruction,
        candidates=tuple(c.text for c in candidates),
        request_id=query.id,
    )


def _usage(evidence: Evidence, reranker: Reranker) -> dict[str, float]:
    """What ``reranker``'s calls cost (sampling excluded), shared calls charged in full."""
    if not evidence.cost:  # one kept candidate: no call was made
        return asdict(ComponentCost())
    return asdict(evidence.cost_of(reranker.needs))
