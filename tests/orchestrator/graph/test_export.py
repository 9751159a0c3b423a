"""Exports: JSON and GraphML round trips, the PNG drawing and preference records."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import networkx as nx
import pytest

from orchestrator.graph import (
    ReasoningGraph,
    cluster_graph,
    draw_png,
    from_json,
    preference_records,
    read_graphml,
    read_json,
    to_json,
    write_graphml,
    write_json,
    write_preferences,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sample_graph() -> ReasoningGraph:
    """Two dense clusters with answers, scores, token counts and one sparse bridge."""
    g = ReasoningGraph()
    for clique, answer, correct in ((["a", "b", "c"], "1", False), (["x", "y", "z"], "2", True)):
        for i, (s, t) in enumerate(itertools.permutations(clique, 2)):
            for k in range(3):
                g.add_path([s, t], answer=answer, correct=correct, tokens=10 + i + k)
    g.add_path(["Multi\nline step: é", "c", "x"], answer="2", value=0.75)
    return g


def assert_same(a: ReasoningGraph, b: ReasoningGraph) -> None:
    assert a == b
    assert [n for n in a.nodes()] == [n for n in b.nodes()]
    assert a.edges() == b.edges()
    assert dict(a.paths) == dict(b.paths)
    assert a.clustering == b.clustering


@pytest.mark.parametrize("clustered", [False, True])
def test_json_round_trips_to_an_equal_graph(clustered: bool) -> None:
    g = sample_graph()
    if clustered:
        cluster_graph(g)
        assert g.sparse_edges()
    text = to_json(g)
    data = json.loads(text)
    assert set(data) >= {"nodes", "edges", "graph", "directed"}
    back = from_json(text)
    assert_same(back, g)
    assert back.clustered is clustered
    assert back.sparse_edges() == g.sparse_edges()
    assert [n.cluster for n in back.nodes()] == [n.cluster for n in g.nodes()]


def test_a_loaded_graph_keeps_merging_like_the_original(tmp_path: Path) -> None:
    g = sample_graph()
    back = read_json(write_json(g, tmp_path / "out" / "g.json"))
    for graph in (g, back):
        graph.add_path(["A.", "B!"], answer="1", path_id="later")
    assert_same(back, g)
    assert back.node(back.key_of("a") or "").visits == g.node(g.key_of("a") or "").visits


def test_graphs_that_differ_are_not_equal() -> None:
    g, h = sample_graph(), sample_graph()
    h.add_path(["a"])
    assert g != h
    cluster_graph(g)
    assert g != sample_graph()  # clusters are part of the graph


@pytest.mark.parametrize("clustered", [False, True])
def test_graphml_holds_scalars_and_round_trips(tmp_path: Path, clustered: bool) -> None:
    g = sample_graph()
    if clustered:
        cluster_graph(g)
    path = write_graphml(g, tmp_path / "g.graphml")
    raw = nx.read_graphml(path)
    scalars = (str, int, float, bool)
    assert all(isinstance(v, scalars) for _, a in raw.nodes(data=True) for v in a.values())
    assert all(isinstance(v, scalars) for _, _, a in raw.edges(data=True) for v in a.values())
    defaults = {"node_default", "edge_default"}  # networkx's reader adds these two
    assert all(isinstance(v, scalars) for k, v in raw.graph.items() if k not in defaults)
    back = read_graphml(path)
    assert_same(back, g)
    assert back.sparse_edges() == g.sparse_edges()


def test_png_is_written_and_deterministic(tmp_path: Path) -> None:
    g = sample_graph()
    g.add_path(["a", "a", "b"])  # a self-loop is drawn too
    cluster_graph(g)
    first = draw_png(g, tmp_path / "a.png", title="two clusters")
    second = draw_png(g, tmp_path / "b.png", title="two clusters")
    data = first.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 1000
    assert data == second.read_bytes()
    plain = draw_png(ReasoningGraph(), tmp_path / "sub" / "empty.png", labels=False)
    assert plain.read_bytes().startswith(PNG_MAGIC)


# --- preference records ------------------------------------------------------------------


def preference_graph(bridge_value: float) -> ReasoningGraph:
    """Cluster A = {a1, a2, a3}, cluster B = {b1, b2, b3}; from a3 the paths go on to
    a1 (values 0, 0, 1, and one unscored), a2 (1, 1, 1) and, once, across to b1."""
    g = ReasoningGraph()
    values = {("a3", "a1"): [0.0, 0.0, 1.0], ("a3", "a2"): [1.0, 1.0, 1.0]}
    for clique in (["a1", "a2", "a3"], ["b1", "b2", "b3"]):
        for s, t in itertools.permutations(clique, 2):
            for v in values.get((s, t), [0.5, 0.5, 0.5]):
                g.add_path([s, t], value=v)
    g.add_path(["a3", "a1"])  # no score: it counts as a transition, not as a value
    g.add_path(["A1.", "a2", "A3!", "b1", "b2"], value=bridge_value, path_id="bridge")
    return g


def test_a_sparse_step_with_a_better_outcome_is_preferred() -> None:
    g = preference_graph(bridge_value=1.0)
    result = cluster_graph(g)
    a3, b1 = g.key_of("a3"), g.key_of("b1")
    assert g.transition_prob(a3 or "", b1 or "") == pytest.approx(1 / 8)
    assert result.sparse_edges == ((a3, b1),)

    records = preference_records(g)

    # vs a1 (mean 1/3): b1 preferred; vs a2 (mean 1.0): a tie, so no record.
    assert len(records) == 1
    r = records[0]
    assert r.sparse_edge == (a3, b1)
    assert r.prefix == ("A1.", "a2", "A3!")  # the bridge path's own texts, up to a3's
    assert r.prefix_path == "bridge"
    assert (r.preferred, r.dispreferred) == ("b1", "a1")
    assert (r.preferred_node, r.dispreferred_node) == (b1, g.key_of("a1"))
    assert r.preferred_value == 1.0
    assert r.dispreferred_value == pytest.approx(1 / 3)
    assert (r.n_preferred, r.n_dispreferred) == (1, 3)
    assert r.sparse_preferred
    assert preference_records(g, min_margin=0.7) == []  # the margin is 2/3


def test_a_sparse_step_with_a_worse_outcome_is_dispreferred() -> None:
    g = preference_graph(bridge_value=0.0)
    cluster_graph(g)
    records = preference_records(g)
    assert [(r.preferred, r.dispreferred, r.sparse_preferred) for r in records] == [
        ("a1", "b1", False),
        ("a2", "b1", False),
    ]
    assert [r.preferred_value for r in records] == [pytest.approx(1 / 3), 1.0]


def test_preferences_are_written_as_json_lines(tmp_path: Path) -> None:
    g = preference_graph(bridge_value=0.0)
    cluster_graph(g)
    records = preference_records(g)
    path = write_preferences(records, tmp_path / "prefs" / "p.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in records]
    assert json.loads(lines[0])["prefix"] == ["A1.", "a2", "A3!"]


def test_preferences_need_a_clustered_graph() -> None:
    with pytest.raises(ValueError, match="cluster_graph"):
        preference_records(preference_graph(1.0))
