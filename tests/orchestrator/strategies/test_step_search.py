"""Step beam search and metastable search on a scripted reasoner (no model).

The scripted reasoner knows two routes through one problem; which one a sample takes is
fixed by its seed, so every run is repeatable:

- common route: "Let x be 3." / "Then 2x is 6." / "The answer is 6."
- rare route:   "Let x be 3." / "Add one to 2x: 7." / "The answer is 7."

Step calls (stop "\\n") get the next line of the route; rollouts get the rest of it. Every
word is one token.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator import MetastableConfig, Orchestrator, Query, StepBeamConfig
from orchestrator.graph import ReasoningGraph, from_json
from orchestrator.strategies.stepwise import split_steps
from policies import FixedPolicy
from system2.config import parse_config
from workers.base import GenerateRequest
from workers.scripted import ScriptedWorker

COMMON = ("Let x be 3.", "Then 2x is 6.", "The answer is 6.")
RARE = ("Let x be 3.", "Add one to 2x: 7.", "The answer is 7.")


def reasoner(request: GenerateRequest, index: int) -> str:
    call = (request.params.seed or 0) // 1000  # the search seeds call i with seed + 1000 i
    done = split_steps(request.assistant_prefix)
    route = RARE if (done and done[-1] == RARE[1]) or (call + index) % 4 == 3 else COMMON
    rest = route[len(done) :]
    if not rest:
        return ""
    if "\n" in request.params.stop:
        return rest[0]
    return "\n".join(rest)


def _answer(config: MetastableConfig | StepBeamConfig):  # type: ignore[no-untyped-def]
    worker = ScriptedWorker("m", reasoner)
    orch = Orchestrator({"m": worker}, FixedPolicy(("m",), config))
    return orch.answer_sync(Query(text="x is 3. What is 2x + 1?", id="q")), worker


def test_beam_search_grows_paths_one_step_per_call() -> None:
    """Every call of the beam search generates one line continuing a partial reply; the
    finished paths vote and the tokens spent equal the tokens in the trace."""
    answer, worker = _answer(StepBeamConfig(beam_width=2, expansions=2, seed=0))
    assert answer.status == "ok"
    requests = [r for r in worker.requests if isinstance(r, GenerateRequest)]
    assert all(r.params.stop == ("\n",) for r in requests)
    assert {r.assistant_prefix for r in requests} >= {"", "Let x be 3.\n"}
    search = answer.trace.extra["search"]
    assert search["tokens"] == sum(g.completion_tokens for g in answer.trace.generations)
    assert search["finished_paths"] == len(answer.trace.candidates) >= 2
    assert all(c.answer in ("6", "7") for c in answer.trace.candidates)


def test_beam_budget_stops_the_search_and_forces_a_rollout() -> None:
    """With a 3-token budget the first round spends it all; nothing has finished, so the
    best beam is rolled out to give an answer."""
    answer, _ = _answer(StepBeamConfig(beam_width=2, expansions=1, seed=0, budget_tokens=3))
    search = answer.trace.extra["search"]
    assert search["rounds"] == 1
    assert search["forced_rollout"] is True
    assert answer.answer == "6"


def test_metastable_search_branches_and_records_the_graph() -> None:
    """Seeds 0..3: three common paths and one rare one. The graph merges the shared first
    step, so both routes leave one node; the search branches from graph states, rolls
    out within the budget, and keeps a graph whose paths are the finished ones."""
    config = MetastableConfig(seed_paths=4, branch_states=2, branch_factor=2, seed=0,
                              budget_tokens=80)  # fmt: skip
    answer, worker = _answer(config)
    search = answer.trace.extra["search"]
    assert search["tokens"] == sum(g.completion_tokens for g in answer.trace.generations)
    assert search["rounds"]
    assert search["rounds"][-1]["tokens"] == search["tokens"]
    # Rounds start only when their expected cost fits (the scripted paths are regular, so
    # the expectation holds): the budget is kept, and the search stopped only when what was
    # left could not pay for one state's 2 branches (each at most a mean whole path).
    assert search["tokens"] <= 80
    finished = answer.trace.candidates
    mean_path = sum(c.completion_tokens for c in finished) / len(finished)
    assert 80 - search["tokens"] < 2 * mean_path
    graph = from_json_dict(answer.trace.extra["graph"])
    assert len(graph.paths) == search["finished_paths"] == len(answer.trace.candidates)
    first_steps = {graph.paths[p].nodes[1] for p in graph.paths}
    assert len(first_steps) == 1  # "Let x be 3." merged across every path
    branch_prefixes = [
        r.assistant_prefix for r in worker.requests
        if isinstance(r, GenerateRequest) and r.params.stop == ("\n",)
    ]  # fmt: skip
    states = (
        "",
        "Let x be 3.\n",
        "Let x be 3.\nThen 2x is 6.\n",
        "Let x be 3.\nAdd one to 2x: 7.\n",
    )
    assert branch_prefixes
    assert set(branch_prefixes) <= set(states)
    assert {c.answer for c in answer.trace.candidates} == {"6", "7"}
    assert answer.answer == "6"  # the common route carries more value
    assert answer.trace.vote is not None
    assert answer.trace.vote.counts["6"] > answer.trace.vote.counts["7"] > 0


def test_states_right_after_a_sparse_edge_are_preferred() -> None:
    """Two dense clusters (a<->b, x<->y) joined by the rare step b -> x: with a sparse
    bonus the state ending at x ranks first; without it, it does not."""
    from orchestrator.graph import cluster_graph
    from orchestrator.strategies.metastable import branch_states
    from orchestrator.strategies.stepwise import Path

    graph = ReasoningGraph()
    paths, ids = [], []
    routes = [["a", "b", "a", "b", "The answer is 1."]] * 6 + [["a", "b", "x", "y", "x", "y",
              "The answer is 2."]]  # fmt: skip
    for steps in routes:
        path = Path(
            steps=tuple(steps), text="\n".join(steps), tokens=len(steps), answer=steps[-1][-2]
        )
        ids.append(graph.add_path(path.steps, answer=path.answer).path_id)
        paths.append(path)
    cluster_graph(graph)
    (sparse,) = graph.sparse_edges()
    assert (graph.node(sparse[0]).text, graph.node(sparse[1]).text) == ("b", "x")
    with_bonus = branch_states(graph, paths, ids, {}, MetastableConfig(sparse_bonus=2.0))
    assert with_bonus[0].after_sparse
    assert with_bonus[0].prefix.text == "a\nb\nx\n"
    without = branch_states(graph, paths, ids, {}, MetastableConfig(sparse_bonus=0.0))
    assert not without[0].after_sparse
    penalised = branch_states(
        graph, paths, ids, {with_bonus[0].nodes: 10}, MetastableConfig(sparse_bonus=2.0)
    )
    assert penalised[0].nodes != with_bonus[0].nodes


def from_json_dict(data: dict[str, object]) -> ReasoningGraph:
    return from_json(json.dumps(data))


@pytest.mark.parametrize("kind", ["step_beam", "metastable"])
def test_search_strategies_load_from_yaml(kind: str) -> None:
    config = parse_config(
        {
            "models": {"m": {"kind": "scripted", "responses": ["x"]}},
            "policy": {"kind": "fixed", "models": ["m"]},
            "strategy": {"kind": kind, "budget_tokens": 1000},
        }
    )
    assert config.strategy.kind == kind


def _run_file(tmp_path: Path, with_graph: bool = True) -> Path:
    answer, _ = _answer(MetastableConfig(seed_paths=4, seed=0, budget_tokens=80))
    trace = answer.trace.model_dump(mode="json")
    if not with_graph:
        trace["extra"].pop("graph")
    path = tmp_path / "run.jsonl"
    lines = [{"type": "header"}, {"type": "item", "id": "q", "status": "ok", "trace": trace}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_graph_command_draws_and_exports(tmp_path: Path, cli_runner: CliRunner) -> None:
    """`system2 graph RUN --item ID` draws the PNG, writes JSON that reads back to the
    trace's graph, and writes preference pairs."""
    from system2.cli.main import app

    run = _run_file(tmp_path)
    png, js, prefs = tmp_path / "g.png", tmp_path / "g.json", tmp_path / "p.jsonl"
    result = cli_runner.invoke(app, ["graph", str(run), "--item", "q", "--out", str(png),
                                     "--json", str(js), "--preferences", str(prefs)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recorded = json.loads(run.read_text().splitlines()[1])["trace"]["extra"]["graph"]
    assert from_json(js.read_text()) == from_json_dict(recorded)
    assert prefs.exists()
    assert "meta-chain" in result.output


def test_graph_command_names_what_is_missing(tmp_path: Path, cli_runner: CliRunner) -> None:
    from system2.cli.main import app

    run = _run_file(tmp_path, with_graph=False)
    result = cli_runner.invoke(app, ["graph", str(run), "--item", "nope"])
    assert result.exit_code == 2
    assert "no item 'nope'" in result.output
    result = cli_runner.invoke(app, ["graph", str(run), "--item", "q"])
    assert result.exit_code == 2
    assert "has no graph" in result.output


def test_embedding_merge_joins_paraphrased_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """With merge: embedding, steps whose embeddings are close share a node; with text
    merging they do not. (A hand-made embedding stands in for MiniLM.)"""
    from orchestrator.strategies import metastable

    def embed(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0] if "x" in t.lower() else [0.0, 1.0] for t in texts]

    monkeypatch.setattr(metastable, "step_embedder", lambda name: embed)
    by_text = metastable.new_graph(MetastableConfig())
    by_meaning = metastable.new_graph(MetastableConfig(merge="embedding", similarity=0.95))
    for graph in (by_text, by_meaning):
        graph.add_path(["Let x be 3.", "The answer is 6."], answer="6")
        graph.add_path(["Set X to three.", "The answer is 6."], answer="6")
    assert len(by_text.nodes("step")) == 3
    assert len(by_meaning.nodes("step")) == 2
