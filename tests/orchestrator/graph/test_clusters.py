"""Clusters, sparse edges and the meta-chain on graphs whose structure is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from orchestrator.graph import (
    ROOT,
    ReasoningGraph,
    cluster_graph,
    find_clusters,
    markov_clusters,
    meta_chain,
)

A = ["a1", "a2", "a3", "a4"]
B = ["b1", "b2", "b3", "b4"]


def two_cliques() -> ReasoningGraph:
    """Two dense 4-cliques (every ordered pair taken 3 times, except a1 -> a2 once) joined
    by one rare transition a4 -> b1: P(b1 | a4) = 1 / (9 + 1) = 0.1."""
    g = ReasoningGraph()
    for clique in (A, B):
        for x, y in itertools.permutations(clique, 2):
            for _ in range(1 if (x, y) == ("a1", "a2") else 3):
                g.add_path([x, y])
    g.add_path(["a4", "b1"])
    return g


def keys(g: ReasoningGraph, texts: list[str]) -> tuple[str, ...]:
    return tuple(g.key_of(t) or "" for t in texts)


@pytest.mark.parametrize("method", ["modularity", "markov"])
def test_the_cliques_are_the_clusters_and_only_the_rare_bridge_is_sparse(method: str) -> None:
    g = two_cliques()
    a1, a2, a4, b1 = (g.key_of(t) or "" for t in ("a1", "a2", "a4", "b1"))
    assert g.transition_prob(a4, b1) == pytest.approx(0.1)
    assert g.transition_prob(a1, a2) == pytest.approx(1 / 7)  # rare, but inside a cluster

    result = cluster_graph(g, method=method)  # type: ignore[arg-type]

    assert result.clusters == (keys(g, A), keys(g, B))
    assert result.sparse_edges == ((a4, b1),)
    assert g.sparse_edges() == [(a4, b1)]
    assert g.clustered
    assert g.clustering["method"] == method
    assert g.node(a1).cluster == 0
    assert g.node(b1).cluster == 1
    assert g.node(ROOT).cluster == -1
    assert g.edge(a4, b1).sparse
    assert not g.edge(a1, a2).sparse
    assert not any(g.edge(ROOT, k).sparse for k in keys(g, B))  # root edges never are


def test_the_threshold_is_an_upper_bound_on_the_probability() -> None:
    g = two_cliques()
    assert cluster_graph(g, threshold=0.1).sparse_edges != ()  # P = 0.1 <= 0.1
    assert cluster_graph(g, threshold=0.09).sparse_edges == ()
    assert not g.sparse_edges()
    assert len(cluster_graph(g, threshold=1.0).sparse_edges) == 1  # the only cross edge
    with pytest.raises(ValueError, match="threshold"):
        cluster_graph(g, threshold=0.0)


def test_a_common_cross_cluster_edge_is_not_sparse() -> None:
    g = two_cliques()
    for _ in range(4):  # P(a1 | b4) = 4 / 13, a lighter tie than those inside a clique
        g.add_path(["b4", "a1"])
    result = cluster_graph(g)
    b4, a1 = g.key_of("b4") or "", g.key_of("a1") or ""
    assert result.clusters == (keys(g, A), keys(g, B))
    assert g.transition_prob(b4, a1) > 0.2
    assert (b4, a1) not in result.sparse_edges
    assert result.sparse_edges == ((g.key_of("a4"), g.key_of("b1")),)


def test_the_meta_chain_counts_transitions_between_clusters() -> None:
    g = two_cliques()
    cluster_graph(g)
    chain = meta_chain(g)
    # inside A: 11 pairs x 3 + a1 -> a2 once; inside B: 12 x 3; across: a4 -> b1 once.
    assert chain.counts == ((34, 1), (0, 36))
    assert chain.probs == ((34 / 35, 1 / 35), (0.0, 1.0))
    assert chain.initial == (35 / 71, 36 / 71)  # first steps: 34 + 1 paths in A, 36 in B
    assert chain.sizes == (4, 4)
    assert chain.prob(0, 1) == pytest.approx(1 / 35)
    assert chain.to_dict()["counts"] == [[34, 1], [0, 36]]


def test_a_cluster_without_out_transitions_has_a_zero_row() -> None:
    g = ReasoningGraph()
    for _ in range(3):
        g.add_path(["x", "y", "x"], answer="1")
    x, y, one = g.key_of("x") or "", g.key_of("y") or "", g.answer_key("1") or ""
    g.set_clusters({x: 0, y: 0, one: 1}, [(x, one)], {"method": "by hand"})
    chain = meta_chain(g)
    assert chain.counts == ((6, 3), (0, 0))
    assert chain.probs == ((2 / 3, 1 / 3), (0.0, 0.0))
    assert chain.initial == (1.0, 0.0)
    assert g.sparse_edges() == [(x, one)]
    with pytest.raises(ValueError, match="no cluster"):
        g.set_clusters({x: 0}, [], {})


def test_unclustered_graphs_have_no_meta_chain() -> None:
    with pytest.raises(ValueError, match="cluster_graph"):
        meta_chain(two_cliques())


def test_adding_a_path_clears_the_stale_clusters() -> None:
    g = two_cliques()
    cluster_graph(g)
    g.add_path(["a1", "new"])
    assert not g.clustered
    assert g.sparse_edges() == []
    assert all(n.cluster is None for n in g.nodes())


def test_a_graph_with_only_the_root_has_no_clusters() -> None:
    g = ReasoningGraph()
    assert find_clusters(g) == ()
    result = cluster_graph(g)
    assert (result.clusters, result.sparse_edges) == ((), ())
    assert meta_chain(g).counts == ()


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="method"):
        find_clusters(two_cliques(), method="louvain")  # type: ignore[arg-type]


def test_markov_clustering_splits_weakly_joined_triangles() -> None:
    m = np.zeros((6, 6))
    for group in ((0, 1, 2), (3, 4, 5)):
        for i, j in itertools.permutations(group, 2):
            m[i, j] = 5.0
    m[2, 3] = m[3, 2] = 0.5
    assert markov_clusters(m) == [[0, 1, 2], [3, 4, 5]]
    assert markov_clusters(np.zeros((3, 3))) == [[0], [1], [2]]  # isolated nodes
    assert markov_clusters(np.ones((3, 3))) == [[0, 1, 2]]


def test_markov_clustering_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="square"):
        markov_clusters([[1.0, -1.0], [-1.0, 1.0]])
    with pytest.raises(ValueError, match="inflation"):
        markov_clusters(np.eye(2), inflation=1.0)
