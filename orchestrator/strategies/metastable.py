"""``metastable``: search over a metastable reasoning graph (arXiv 2502.01694; our
operational reading, docs/methods.md section 5).

1. Sample ``seed_paths`` whole paths and add them to a ``ReasoningGraph`` (steps are lines,
   merged by normalised text, or with ``merge: embedding`` also by the cosine of their
   sentence embeddings; each path ends at its answer's node).
2. Each round: cluster the graph and mark sparse edges (low-probability transitions
   between clusters); rank every state (a prefix of a finished path, the root included) by

       priority = agreement(last node) + sparse_bonus * [the prefix's last edge is sparse]
                  - revisit_penalty * (times already branched from it)

   where agreement(u) is the mean, over finished paths through u, of their answer's vote
   share among all finished paths (answer agreement stands in for a step verifier); with
   ``value: verifier`` the prefix's verifier value (``StepValue`` of its step scores)
   replaces agreement, and every new path is verified;
   branch ``branch_factor`` sampled next steps from each of the ``branch_states`` best
   states (one call each, with ``"\\n"`` as stop), roll the branches out, add them.
3. A round branches only from as many of those states as its expected cost fits in the
   budget left (per branch: the mean tokens of the finished paths minus the state's
   prefix tokens); the search stops when not even one fits, so it spends at most about
   the budget. Answer by value-weighted vote over every finished path. The graph (JSON),
   its clusters and sparse edges go into the trace.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from orchestrator.graph import ROOT, EmbedFn, ReasoningGraph, cluster_graph, to_json
from orchestrator.strategies.base import StrategyContext, StrategyResult
from orchestrator.strategies.config import MetastableConfig
from orchestrator.strategies.step_beam import step_settings
from orchestrator.strategies.stepwise import (
    Path,
    StepSampler,
    StepValue,
    TokenBudget,
    extend_one_step,
    roll_out,
    search_result,
    value_rule,
    verify_paths,
)

__all__ = [
    "BranchState",
    "affordable",
    "agreement",
    "branch_states",
    "new_graph",
    "run_metastable",
    "step_embedder",
]


@dataclass(frozen=True)
class BranchState:
    """A state to branch from: the node keys from the root to it, and its prefix."""

    nodes: tuple[str, ...]
    prefix: Path
    priority: float
    after_sparse: bool


def agreement(graph: ReasoningGraph, key: str, shares: Mapping[str, float]) -> float:
    """Mean vote share (``shares``: answer -> share) of the answers reached through ``key``;
    0 when no answered path passes through it."""
    reached = graph.node(key).answers
    total = sum(reached.values())
    if not total:
        return 0.0
    return sum(count * shares.get(answer, 0.0) for answer, count in reached.items()) / total


def branch_states(
    graph: ReasoningGraph,
    paths: Sequence[Path],
    path_ids: Sequence[str],
    branched: Mapping[tuple[str, ...], int],
    config: MetastableConfig,
    rule: StepValue | None = None,
) -> list[BranchState]:
    """Every distinct proper prefix of the finished ``paths``, best priority first; a
    prefix's value is its answer agreement, or ``rule`` of its step scores when given."""
    answered = [p.answer for p in paths if p.answer is not None]
    shares = {a: c / len(answered) for a, c in Counter(answered).items()} if answered else {}
    sparse = set(graph.sparse_edges())
    states: dict[tuple[str, ...], BranchState] = {}
    for path, path_id in zip(paths, path_ids, strict=True):
        nodes = graph.paths[path_id].nodes
        for i in range(len(path.steps)):  # i steps taken; the full path is not a state
            key = nodes[: i + 1]
            if key in states:
                continue
            after_sparse = i >= 1 and (nodes[i - 1], nodes[i]) in sparse
            prefix = path.prefix_after(i)
            if rule is not None and prefix.step_scores is not None:
                value = rule(prefix.step_scores)
            else:
                value = agreement(graph, nodes[i], shares)
            priority = (
                value
                + config.sparse_bonus * after_sparse
                - config.revisit_penalty * branched.get(key, 0)
            )
            states[key] = BranchState(key, prefix, priority, after_sparse)
    return sorted(states.values(), key=lambda s: (-s.priority, len(s.nodes)))


def affordable(
    states: Sequence[BranchState], finished: Sequence[Path], branch_factor: int, left: int
) -> list[BranchState]:
    """The longest head of ``states`` whose expected cost fits in ``left`` tokens: a branch
    from a state is expected to cost what finished paths spent on average after its
    prefix (at least one token).

    >>> done = [Path(steps=("a", "b"), tokens=100)]
    >>> root = BranchState(("r",), Path(), 1.0, False)  # 2 branches x 100 tokens
    >>> deeper = BranchState(("r", "a"), Path(tokens=60), 0.5, False)  # 2 x 40
    >>> len(affordable([root, deeper], done, 2, 200)), len(affordable([root, deeper], done, 2, 280))
    (1, 2)
    """
    mean_tokens = fmean(p.tokens for p in finished) if finished else 0.0
    kept: list[BranchState] = []
    cost = 0.0
    for state in states:
        cost += branch_factor * max(mean_tokens - state.prefix.tokens, 1.0)
        if cost > left:
            break
        kept.append(state)
    return kept


@functools.cache
def step_embedder(name: str) -> EmbedFn:
    """The catalog sentence embedder ``name`` as a graph ``EmbedFn`` (loaded once)."""
    from workers.embedder import SentenceEmbedder

    embedder = SentenceEmbedder.load(name)

    def embed(texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = embedder.embed(texts).tolist()
        return vectors

    return embed


def new_graph(config: MetastableConfig) -> ReasoningGraph:
    """An empty graph merging steps as ``config.merge`` says."""
    if config.merge == "embedding":
        return ReasoningGraph(embed=step_embedder(config.embedder), similarity=config.similarity)
    return ReasoningGraph()


async def run_metastable(ctx: StrategyContext, config: MetastableConfig) -> StrategyResult:
    model = ctx.models[0]
    sampler = StepSampler(step_settings(config))
    rule = value_rule(ctx, config.value, config.path_aggregate)
    budget = TokenBudget(config.budget_tokens)
    graph = new_graph(config)
    finished: list[Path] = []
    path_ids: list[str] = []

    def add(new: Sequence[Path]) -> None:
        for p in new:
            if not p.steps:
                continue  # an empty reply has no step to place in the graph
            info = graph.add_path(p.steps, answer=p.answer, value=p.value, tokens=p.tokens)
            finished.append(p)
            path_ids.append(info.path_id)

    seeds, completions = await roll_out(ctx, model, [Path()] * config.seed_paths, sampler)
    budget.charge(completions)
    seeds = await verify_paths(ctx, seeds, rule)
    add(seeds)
    unplaced = [p for p in seeds if not p.steps]
    branched: Counter[tuple[str, ...]] = Counter()
    rounds: list[dict[str, Any]] = []
    while budget.left and finished:
        clustering = cluster_graph(
            graph, method=config.cluster_method, threshold=config.sparse_threshold
        )
        states = branch_states(graph, finished, path_ids, branched, config, rule)
        left = budget.limit - budget.spent
        chosen = affordable(states[: config.branch_states], finished, config.branch_factor, left)
        if not chosen:
            break
        children, completions = await extend_one_step(
            ctx, model, [s.prefix for s in chosen], config.branch_factor, sampler
        )
        budget.charge(completions)
        flat = [c for group in children for c in group]
        rolled, completions = await roll_out(
            ctx, model, [c for c in flat if not c.finished], sampler
        )
        budget.charge(completions)
        add(await verify_paths(ctx, [c for c in flat if c.finished] + rolled, rule))
        for state in chosen:
            branched[state.nodes] += 1
        rounds.append(
            {
                "clusters": len(clustering.clusters),
                "sparse_edges": len(clustering.sparse_edges),
                "branched_after_sparse": sum(s.after_sparse for s in chosen),
                "branched_from_root": sum(s.nodes == (ROOT,) for s in chosen),
                "tokens": budget.spent,
            }
        )
    final = cluster_graph(graph, method=config.cluster_method, threshold=config.sparse_threshold)
    everything = finished + unplaced
    extra = {
        "search": {
            "kind": "metastable",
            "value": config.value,
            "budget_tokens": budget.limit,
            "tokens": budget.spent,
            "rounds": rounds,
            "finished_paths": len(everything),
            "nodes": len(graph),
            "clusters": len(final.clusters),
            "sparse_edges": len(final.sparse_edges),
        },
        "graph": json.loads(to_json(graph)),
    }
    return search_result(ctx, model, everything, extra)
