"""Reading a ``ReasoningGraph``: typed views of its paths, nodes and edges (``PathInfo``,
``NodeInfo``, ``EdgeInfo``) and ``GraphView``, the read-only queries the graph inherits
(nodes, edges, transition probabilities, keys by text)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.graph.normalize import clean_text, normalize_step

__all__ = ["EdgeInfo", "GraphView", "NodeInfo", "NodeKind", "PathInfo"]

NodeKind = Literal["root", "step", "answer"]


@dataclass(frozen=True)
class PathInfo:
    """One added path: its step texts as given, the node keys it visits (root first, its
    answer node last when it has an answer) and its metadata."""

    path_id: str
    steps: tuple[str, ...]
    nodes: tuple[str, ...]
    answer: str | None = None
    correct: bool | None = None
    value: float | None = None
    tokens: int | None = None

    @property
    def score(self) -> float | None:
        """``value`` when given, else 1.0 / 0.0 for ``correct`` True / False, else None."""
        if self.value is not None:
            return self.value
        return None if self.correct is None else float(self.correct)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path_id": self.path_id,
            "steps": list(self.steps),
            "nodes": list(self.nodes),
            "answer": self.answer,
            "correct": self.correct,
            "value": self.value,
            "tokens": self.tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PathInfo:
        return cls(
            path_id=str(data["path_id"]),
            steps=tuple(data["steps"]),
            nodes=tuple(data["nodes"]),
            answer=data.get("answer"),
            correct=data.get("correct"),
            value=data.get("value"),
            tokens=data.get("tokens"),
        )


@dataclass(frozen=True)
class NodeInfo:
    """A node's attributes (``cluster`` None until the graph is clustered, then -1 for the
    root and the cluster id for every other node)."""

    key: str
    kind: NodeKind
    text: str
    norm: str
    aliases: tuple[str, ...]
    visits: int
    path_ids: tuple[str, ...]
    depth_min: int
    depth_max: int
    depth_mean: float
    answers: dict[str, int] = field(default_factory=dict)
    cluster: int | None = None


@dataclass(frozen=True)
class EdgeInfo:
    """A transition: its count, P(target | source), the paths taking it, its sparse flag."""

    source: str
    target: str
    count: int
    prob: float
    path_ids: tuple[str, ...]
    sparse: bool


class GraphView:
    """The read-only half of ``ReasoningGraph`` (``orchestrator.graph.build`` adds paths,
    clusters and conversion): typed nodes and edges and transition probabilities over the
    networkx graph it keeps."""

    _g: Any
    _paths: dict[str, PathInfo]
    _by_norm: dict[str, str]
    _answers: dict[str, str]

    @property
    def nx(self) -> Any:
        """The underlying ``networkx.DiGraph``; read it, do not change it."""
        return self._g

    @property
    def paths(self) -> Mapping[str, PathInfo]:
        """The added paths by id, in the order added."""
        return self._paths

    @property
    def clustered(self) -> bool:
        """True when cluster ids and sparse flags are set (see ``clusters.cluster_graph``)."""
        return "clustering" in self._g.graph

    @property
    def clustering(self) -> dict[str, Any]:
        """The parameters the clusters were found with; empty when not clustered."""
        return dict(self._g.graph.get("clustering", {}))

    def __len__(self) -> int:
        return int(self._g.number_of_nodes())

    def __contains__(self, key: object) -> bool:
        return bool(self._g.has_node(key))

    def key_of(self, text: str) -> str | None:
        """The step node ``text`` merges into by normalised text (or alias), else None."""
        return self._by_norm.get(normalize_step(clean_text(text)))

    def answer_key(self, answer: str) -> str | None:
        """The terminal node of ``answer``, or None."""
        return self._answers.get(answer.strip())

    def node(self, key: str) -> NodeInfo:
        """The node ``key`` (KeyError if there is none)."""
        if key not in self:
            raise KeyError(key)
        a = self._g.nodes[key]
        return NodeInfo(
            key=key,
            kind=a["kind"],
            text=a["text"],
            norm=a["norm"],
            aliases=tuple(a["aliases"]),
            visits=a["visits"],
            path_ids=tuple(a["path_ids"]),
            depth_min=a["depth_min"],
            depth_max=a["depth_max"],
            depth_mean=a["depth_sum"] / a["visits"] if a["visits"] else 0.0,
            answers=dict(a["answers"]),
            cluster=a.get("cluster"),
        )

    def nodes(self, kind: NodeKind | None = None) -> list[NodeInfo]:
        """All nodes (of ``kind`` if given) in the order they were created."""
        return [self.node(k) for k, a in self._g.nodes(data=True) if kind in (None, a["kind"])]

    def out_count(self, key: str) -> int:
        """The number of transitions observed out of ``key`` (KeyError if no such node)."""
        if key not in self:
            raise KeyError(key)
        return sum(int(c) for _, _, c in self._g.out_edges(key, data="count"))

    def transition_prob(self, source: str, target: str) -> float:
        """P(target | source) = count(source -> target) / out_count(source); 0.0 if unseen."""
        if not self._g.has_edge(source, target):
            return 0.0
        return int(self._g.edges[source, target]["count"]) / self.out_count(source)

    def transitions(self, key: str) -> dict[str, float]:
        """P(v | key) for every successor v, in the order the edges were first seen."""
        if key not in self:
            raise KeyError(key)
        total = self.out_count(key)
        return {v: int(c) / total for _, v, c in self._g.out_edges(key, data="count")}

    def edge(self, source: str, target: str) -> EdgeInfo:
        """The edge source -> target (KeyError if there is none)."""
        if not self._g.has_edge(source, target):
            raise KeyError((source, target))
        a = self._g.edges[source, target]
        return EdgeInfo(
            source=source,
            target=target,
            count=a["count"],
            prob=self.transition_prob(source, target),
            path_ids=tuple(a["path_ids"]),
            sparse=a["sparse"],
        )

    def edges(self) -> list[EdgeInfo]:
        """All edges, by source node (in node order), then in the order first seen."""
        return [self.edge(u, v) for u, v in self._g.edges()]

    def sparse_edges(self) -> list[tuple[str, str]]:
        """The edges flagged sparse, in edge order (none until the graph is clustered)."""
        return [(u, v) for u, v, s in self._g.edges(data="sparse") if s]
