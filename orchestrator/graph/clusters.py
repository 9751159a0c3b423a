"""Clusters of densely connected steps, the sparse edges between them and the meta-chain.

Rules we chose (arXiv 2502.01694 describes clusters and sparse edges, not how to find them):

- Clusters are found on the undirected weighted graph of the steps and answers: the root
  (a virtual start state linked to every first step) and self-loops are left out, and the
  weight of {u, v} is count(u -> v) + count(v -> u). ``method="modularity"`` (the default)
  takes networkx's greedy modularity communities (Clauset-Newman-Moore) at ``resolution``;
  ``method="markov"`` takes Markov clustering (van Dongen's MCL: self-loops added, then
  expansion and ``inflation`` until the flow matrix stops changing). Cluster ids are
  numbered by each cluster's oldest node, so they follow the order nodes were added.
- An edge u -> v is sparse when u and v lie in different clusters and the transition is
  rare from u: P(v | u) <= ``threshold`` (``DEFAULT_SPARSE_THRESHOLD`` = 0.2, taken at most
  one time in five). Edges out of the root are never sparse: many openings, each rarely
  sampled, is not a hard step. A node seen once has P = 1 on its only out-edge, so a
  sparse edge needs evidence that u usually goes elsewhere.
- The meta-chain is the chain over clusters: counts[i][j] sums count(u -> v) over edges
  from cluster i to cluster j (the root's edges excluded, within-cluster ones on the
  diagonal), ``probs`` is counts row-normalised (a row without out-transitions, e.g. a
  cluster of answers only, stays all zeros), and ``initial`` is where the root's
  transitions land, normalised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import networkx as nx
import numpy as np

from orchestrator.graph.build import ROOT, ReasoningGraph

__all__ = [
    "DEFAULT_SPARSE_THRESHOLD",
    "ClusterMethod",
    "Clustering",
    "MetaChain",
    "cluster_graph",
    "find_clusters",
    "find_sparse_edges",
    "markov_clusters",
    "meta_chain",
]

DEFAULT_SPARSE_THRESHOLD = 0.2
ClusterMethod = Literal["modularity", "markov"]


@dataclass(frozen=True)
class Clustering:
    """Clusters (node keys, oldest first; id = index) and the sparse edges between them."""

    method: ClusterMethod
    clusters: tuple[tuple[str, ...], ...]
    sparse_edges: tuple[tuple[str, str], ...]
    threshold: float

    @property
    def assignment(self) -> dict[str, int]:
        """Node key -> cluster id (the root has none)."""
        return {key: i for i, members in enumerate(self.clusters) for key in members}


@dataclass(frozen=True)
class MetaChain:
    """The Markov chain over clusters: counts, row-normalised ``probs`` and ``initial``."""

    counts: tuple[tuple[int, ...], ...]
    probs: tuple[tuple[float, ...], ...]
    initial: tuple[float, ...]
    sizes: tuple[int, ...]

    @property
    def n_clusters(self) -> int:
        return len(self.sizes)

    def prob(self, source: int, target: int) -> float:
        """P(next cluster = target | cluster = source)."""
        return self.probs[source][target]

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": [list(r) for r in self.counts],
            "probs": [list(r) for r in self.probs],
            "initial": list(self.initial),
            "sizes": list(self.sizes),
        }


def _weights(graph: ReasoningGraph) -> Any:
    """The undirected weighted graph clusters are found on (no root, no self-loops)."""
    und: nx.Graph[str] = nx.Graph()
    und.add_nodes_from(k for k in graph.nx.nodes if k != ROOT)
    for u, v, count in graph.nx.edges(data="count"):
        if ROOT in (u, v) or u == v:
            continue
        previous = und.edges[u, v]["weight"] if und.has_edge(u, v) else 0
        und.add_edge(u, v, weight=previous + int(count))
    return und


def markov_clusters(
    adjacency: Any,
    *,
    inflation: float = 2.0,
    expansion: int = 2,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> list[list[int]]:
    """Markov clustering (MCL) of a symmetric non-negative ``adjacency`` matrix.

    Self-loops are added and columns normalised; then expansion (matrix power), inflation
    (entrywise power, renormalised) and pruning of entries < 1e-12 repeat until the matrix
    changes by < ``tol``. Each attractor row's non-zero columns are a cluster; a node in
    several goes to the first. Clusters are returned as index lists, by smallest index.

    >>> markov_clusters([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    [[0, 1], [2, 3]]
    """
    if inflation <= 1 or expansion < 2:
        raise ValueError("MCL needs inflation > 1 and expansion >= 2")
    a = np.asarray(adjacency, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or (a < 0).any() or not np.isfinite(a).all():
        raise ValueError("adjacency must be a square, finite, non-negative matrix")
    n = a.shape[0]
    m = a + np.eye(n)
    m /= m.sum(axis=0, keepdims=True)
    for _ in range(max_iter):
        previous = m
        m = np.linalg.matrix_power(m, expansion) ** inflation
        m[m < 1e-12] = 0.0
        m /= m.sum(axis=0, keepdims=True)
        if np.abs(m - previous).max() < tol:
            break
    owner = [-1] * n
    for i in range(n):
        if m[i, i] > 0:  # an attractor: its row holds the nodes that flow to it
            for j in np.flatnonzero(m[i] > 0).tolist():
                owner[j] = i if owner[j] == -1 else owner[j]
    for j in range(n):  # not converged: a node without an attractor is on its own
        owner[j] = j if owner[j] == -1 else owner[j]
    groups: dict[int, list[int]] = {}
    for j, i in enumerate(owner):
        groups.setdefault(i, []).append(j)
    return sorted(groups.values(), key=min)


def find_clusters(
    graph: ReasoningGraph,
    *,
    method: ClusterMethod = "modularity",
    resolution: float = 1.0,
    inflation: float = 2.0,
) -> tuple[tuple[str, ...], ...]:
    """The clusters of every node but the root (see the module docstring), oldest first."""
    und = _weights(graph)
    order = {key: i for i, key in enumerate(graph.nx.nodes)}
    if und.number_of_nodes() == 0:
        return ()
    if method == "modularity":
        groups = [
            list(c)
            for c in nx.community.greedy_modularity_communities(
                und, weight="weight", resolution=resolution
            )
        ]
    elif method == "markov":
        keys = list(und.nodes)
        matrix = nx.to_numpy_array(und, nodelist=keys, weight="weight")
        groups = [[keys[i] for i in c] for c in markov_clusters(matrix, inflation=inflation)]
    else:
        raise ValueError(f"method is {method!r}; it must be 'modularity' or 'markov'")
    members = [tuple(sorted(g, key=order.__getitem__)) for g in groups]
    return tuple(sorted(members, key=lambda c: order[c[0]]))


def find_sparse_edges(
    graph: ReasoningGraph,
    assignment: Mapping[str, int],
    *,
    threshold: float = DEFAULT_SPARSE_THRESHOLD,
) -> tuple[tuple[str, str], ...]:
    """Edges u -> v (u not the root) across clusters with P(v | u) <= ``threshold``."""
    if not 0 < threshold <= 1:  # also rejects NaN
        raise ValueError(f"threshold is {threshold!r}; it must be in (0, 1]")
    return tuple(
        (u, v)
        for u, v in graph.nx.edges
        if u != ROOT and assignment[u] != assignment[v] and graph.transition_prob(u, v) <= threshold
    )


def cluster_graph(
    graph: ReasoningGraph,
    *,
    method: ClusterMethod = "modularity",
    threshold: float = DEFAULT_SPARSE_THRESHOLD,
    resolution: float = 1.0,
    inflation: float = 2.0,
) -> Clustering:
    """Find clusters and sparse edges and store them on ``graph`` (node ``cluster``, edge
    ``sparse``, the parameters in ``graph.clustering``).

    Example:
        >>> g = ReasoningGraph()
        >>> for _ in range(4):
        ...     _ = g.add_path(["a", "b", "a", "b"])
        ...     _ = g.add_path(["x", "y", "x", "y"])
        >>> _ = g.add_path(["a", "b", "x", "y"])
        >>> result = cluster_graph(g)
        >>> [[g.node(k).text for k in c] for c in result.clusters]
        [['a', 'b'], ['x', 'y']]
        >>> [(g.node(u).text, g.node(v).text) for u, v in result.sparse_edges]
        [('b', 'x')]
    """
    clusters = find_clusters(graph, method=method, resolution=resolution, inflation=inflation)
    assignment = {key: i for i, members in enumerate(clusters) for key in members}
    sparse = find_sparse_edges(graph, assignment, threshold=threshold)
    params: dict[str, str | int | float | bool] = {"method": method, "threshold": threshold}
    if method == "modularity":
        params["resolution"] = resolution
    else:
        params["inflation"] = inflation
    graph.set_clusters(assignment, sparse, params)
    return Clustering(method=method, clusters=clusters, sparse_edges=sparse, threshold=threshold)


def _normalised(row: Sequence[int]) -> tuple[float, ...]:
    total = sum(row)
    return tuple(c / total if total else 0.0 for c in row)


def meta_chain(graph: ReasoningGraph) -> MetaChain:
    """The cluster-level chain of a clustered graph (ValueError if it is not clustered)."""
    if not graph.clustered:
        raise ValueError("the graph has no clusters: run cluster_graph first")
    cluster = {k: int(c) for k, c in graph.nx.nodes(data="cluster")}
    k = 1 + max((c for c in cluster.values()), default=-1)
    counts = [[0] * k for _ in range(k)]
    initial = [0] * k
    for u, v, count in graph.nx.edges(data="count"):
        if u == ROOT:
            initial[cluster[v]] += int(count)
        else:
            counts[cluster[u]][cluster[v]] += int(count)
    sizes = [0] * k
    for key, c in cluster.items():
        if key != ROOT:
            sizes[c] += 1
    return MetaChain(
        counts=tuple(tuple(r) for r in counts),
        probs=tuple(_normalised(r) for r in counts),
        initial=_normalised(initial),
        sizes=tuple(sizes),
    )
