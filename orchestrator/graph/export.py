"""Write a ``ReasoningGraph`` out: JSON, GraphML, a PNG drawing and preference data.

- JSON is networkx node-link data (edges under ``"edges"``) of ``to_networkx()``: every
  attribute, cluster ids, sparse flags and the paths; ``from_json`` rebuilds an equal graph.
- GraphML holds scalars only: every attribute that is a list, a dict or None somewhere is
  written as a JSON string everywhere in its scope (nodes, edges or the graph), and the
  graph attribute ``json_attrs`` names them so ``read_graphml`` decodes them again.
- The PNG (matplotlib's Agg canvas, no pyplot) colours nodes by cluster (grey when not
  clustered), sizes them by visits, draws the root as a square and answers as diamonds,
  and draws sparse edges red and dashed (a self-loop, a step repeated, is a ring). The
  layout is networkx's spring layout with a fixed ``seed``, so the same graph gives the
  same picture.
- Preference data (``preference_records``): for each sparse edge u -> v and each other
  successor w of u, the value of an edge is the mean ``PathInfo.score`` of the scored paths
  that take it. When both values exist and differ by more than ``min_margin``, the step
  with the higher value is preferred (the sparse step or its sibling: a rare step can also
  be a rare mistake). The prefix is the step texts, up to and including u's, of the first
  path (in the order added) that takes u -> v. Each unordered pair of successors of u gives
  one record. Steps are their node's representative text (an answer node's text is the
  answer).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from orchestrator.graph.build import ROOT, EmbedFn, ReasoningGraph

__all__ = [
    "PreferenceRecord",
    "draw_png",
    "from_json",
    "preference_records",
    "read_graphml",
    "read_json",
    "to_json",
    "write_graphml",
    "write_json",
    "write_preferences",
]

# --- JSON --------------------------------------------------------------------------------


def to_json(graph: ReasoningGraph, *, indent: int | None = None) -> str:
    """The graph as node-link JSON (see the module docstring)."""
    data = nx.node_link_data(graph.to_networkx(), edges="edges")
    return json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False)


def from_json(text: str, *, embed: EmbedFn | None = None) -> ReasoningGraph:
    """The graph ``to_json`` wrote (``embed``: see ``ReasoningGraph.from_networkx``)."""
    data = json.loads(text)
    g = nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")
    return ReasoningGraph.from_networkx(g, embed=embed)


def write_json(graph: ReasoningGraph, path: Path | str) -> Path:
    """Write ``to_json(graph)`` to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(graph, indent=1) + "\n", encoding="utf-8")
    return path


def read_json(path: Path | str, *, embed: EmbedFn | None = None) -> ReasoningGraph:
    """The graph ``write_json`` wrote to ``path``."""
    return from_json(Path(path).read_text(encoding="utf-8"), embed=embed)


# --- GraphML -----------------------------------------------------------------------------

_JSON_ATTRS = "json_attrs"


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _encode(records: Iterable[dict[str, Any]]) -> list[str]:
    """JSON-encode, in place, every attribute that is not a scalar in some record."""
    records = list(records)
    names = sorted({k for r in records for k, v in r.items() if not _is_scalar(v)})
    for r in records:
        for name in names:
            if name in r:
                r[name] = json.dumps(r[name], ensure_ascii=False, allow_nan=False)
    return names


def write_graphml(graph: ReasoningGraph, path: Path | str) -> Path:
    """Write the graph as GraphML (scalars only; see the module docstring)."""
    g = graph.to_networkx()
    encoded = {
        "node": _encode(a for _, a in g.nodes(data=True)),
        "edge": _encode(a for _, _, a in g.edges(data=True)),
        "graph": _encode([g.graph]),
    }
    g.graph[_JSON_ATTRS] = json.dumps(encoded)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(g, path)
    return path


def read_graphml(path: Path | str, *, embed: EmbedFn | None = None) -> ReasoningGraph:
    """The graph ``write_graphml`` wrote to ``path``."""
    g = nx.read_graphml(path, node_type=str)
    for name in ("node_default", "edge_default"):  # added by networkx's reader
        g.graph.pop(name, None)
    encoded = json.loads(g.graph.pop(_JSON_ATTRS, "{}"))
    scopes = {
        "node": [a for _, a in g.nodes(data=True)],
        "edge": [a for _, _, a in g.edges(data=True)],
        "graph": [g.graph],
    }
    for scope, records in scopes.items():
        for r in records:
            for name in encoded.get(scope, []):
                if name in r:
                    r[name] = json.loads(r[name])
    return ReasoningGraph.from_networkx(g, embed=embed)


# --- PNG ---------------------------------------------------------------------------------


def _shade(cluster: int) -> int:
    """The tab20 index of a cluster: the ten dark shades first, then the ten light ones."""
    return (2 * cluster) % 20 + (cluster // 10) % 2


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def draw_png(
    graph: ReasoningGraph,
    path: Path | str,
    *,
    seed: int = 0,
    labels: bool = True,
    label_chars: int = 24,
    figsize: tuple[float, float] = (10.0, 8.0),
    dpi: int = 110,
    title: str | None = None,
) -> Path:
    """Draw the graph to ``path`` as a PNG (see the module docstring); returns the path."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    g = graph.nx
    und: nx.Graph[str] = nx.Graph()
    und.add_nodes_from(g.nodes)
    for u, v, count in g.edges(data="count"):
        if u != v:
            previous = und.edges[u, v]["weight"] if und.has_edge(u, v) else 0
            und.add_edge(u, v, weight=previous + int(count))
    pos = {k: (float(x), float(y)) for k, (x, y) in nx.spring_layout(und, seed=seed).items()}

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    palette = colormaps["tab20"]
    max_visits = max((int(v) for _, v in g.nodes(data="visits")), default=1) or 1
    size = {k: 60.0 + 600.0 * math.sqrt(int(n) / max_visits) for k, n in g.nodes(data="visits")}
    colour: dict[str, Any] = {}
    for key, a in g.nodes(data=True):
        c = a.get("cluster")
        # tab20 pairs a dark and a light shade: all the dark ones first, then the light.
        colour[key] = "black" if key == ROOT else "0.7" if c is None else palette(_shade(c))

    max_count = max((int(c) for _, _, c in g.edges(data="count")), default=1) or 1
    for u, v, a in g.edges(data=True):
        sparse = bool(a["sparse"])
        edge_colour = "red" if sparse else "0.55"
        line = "--" if sparse else "-"
        width = (2.2 if sparse else 0.6) + 1.5 * int(a["count"]) / max_count
        z = 3 if sparse else 1
        if u == v:  # a repeated step: a ring around the node
            ax.scatter(
                *pos[u],
                s=2.5 * size[u],
                facecolors="none",
                edgecolors=edge_colour,
                linestyle=line,
                linewidths=width,
                zorder=z,
            )
            continue
        ax.add_patch(
            FancyArrowPatch(
                pos[u],
                pos[v],
                arrowstyle="-|>",
                mutation_scale=10,
                connectionstyle="arc3,rad=0.08",
                shrinkA=6,
                shrinkB=6,
                color=edge_colour,
                linestyle=line,
                linewidth=width,
                zorder=z,
            )
        )
    for kind, marker in (("root", "s"), ("step", "o"), ("answer", "D")):
        keys = [k for k, kd in g.nodes(data="kind") if kd == kind]
        if keys:
            ax.scatter(
                [pos[k][0] for k in keys],
                [pos[k][1] for k in keys],
                s=[size[k] for k in keys],
                c=[colour[k] for k in keys],
                marker=marker,
                edgecolors="black",
                linewidths=0.5,
                zorder=4,
            )
    if labels:
        for key, text in g.nodes(data="text"):
            offset = math.sqrt(size[key]) / 2 + 1  # points: just off the marker
            ax.annotate(
                _short(text, label_chars),
                pos[key],
                xytext=(offset, offset),
                textcoords="offset points",
                fontsize=7,
                zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7, "lw": 0},
            )
    ax.legend(
        handles=[
            Line2D([], [], color="red", linestyle="--", linewidth=2.2, label="sparse edge"),
            Line2D([], [], color="0.55", linewidth=1.0, label="edge (width: count)"),
            Line2D([], [], color="0.3", marker="s", linestyle="", label="start"),
            Line2D([], [], color="0.3", marker="o", linestyle="", label="step (size: visits)"),
            Line2D([], [], color="0.3", marker="D", linestyle="", label="answer"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
    )
    if title:
        ax.set_title(title)
    ax.margins(0.08)
    ax.autoscale_view()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


# --- preference data ---------------------------------------------------------------------


@dataclass(frozen=True)
class PreferenceRecord:
    """One preference pair at the source of a sparse edge (see the module docstring)."""

    sparse_edge: tuple[str, str]
    prefix: tuple[str, ...]
    prefix_path: str
    preferred: str
    dispreferred: str
    preferred_node: str
    dispreferred_node: str
    preferred_value: float
    dispreferred_value: float
    n_preferred: int
    n_dispreferred: int
    sparse_preferred: bool

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sparse_edge"] = list(self.sparse_edge)
        data["prefix"] = list(self.prefix)
        return data


def _edge_value(graph: ReasoningGraph, u: str, v: str) -> tuple[float, int] | None:
    """(mean score, number of scored paths) of the paths taking u -> v; None if none."""
    scores = [s for p in graph.edge(u, v).path_ids if (s := graph.paths[p].score) is not None]
    return (math.fsum(scores) / len(scores), len(scores)) if scores else None


def _prefix(graph: ReasoningGraph, u: str, v: str) -> tuple[str, tuple[str, ...]]:
    """(path id, step texts up to and including u's) of the first path taking u -> v."""
    path = graph.paths[graph.edge(u, v).path_ids[0]]
    i = next(i for i in range(1, len(path.nodes)) if path.nodes[i - 1 : i + 1] == (u, v))
    return path.path_id, path.steps[: i - 1]


def preference_records(graph: ReasoningGraph, *, min_margin: float = 0.0) -> list[PreferenceRecord]:
    """Preference pairs from the graph's sparse edges, in edge order (see the module
    docstring). ValueError if the graph is not clustered (it has no sparse flags yet).

    Example:
        >>> from orchestrator.graph.clusters import cluster_graph
        >>> g = ReasoningGraph()
        >>> for _ in range(4):
        ...     _ = g.add_path(["a", "b", "a", "b"], value=0.0)
        ...     _ = g.add_path(["x", "y", "x", "y"], value=1.0)
        >>> _ = g.add_path(["a", "b", "x", "y"], value=1.0)
        >>> _ = cluster_graph(g)
        >>> [(r.prefix, r.preferred, r.dispreferred) for r in preference_records(g)]
        [(('a', 'b'), 'x', 'a')]
    """
    if not graph.clustered:
        raise ValueError("the graph has no sparse edges yet: run cluster_graph first")
    if not math.isfinite(min_margin) or min_margin < 0:
        raise ValueError(f"min_margin is {min_margin!r}; it must be finite and >= 0")
    records: list[PreferenceRecord] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    for u, v in graph.sparse_edges():
        through_v = _edge_value(graph, u, v)
        if through_v is None:
            continue
        prefix_path, prefix = _prefix(graph, u, v)
        for w in graph.transitions(u):
            pair = (u, frozenset((v, w)))
            if w == v or pair in seen:
                continue
            through_w = _edge_value(graph, u, w)
            if through_w is None or abs(through_v[0] - through_w[0]) <= min_margin:
                continue
            seen.add(pair)
            (good, (gv, gn)), (bad, (bv, bn)) = sorted(
                [(v, through_v), (w, through_w)], key=lambda x: -x[1][0]
            )
            records.append(
                PreferenceRecord(
                    sparse_edge=(u, v),
                    prefix=prefix,
                    prefix_path=prefix_path,
                    preferred=graph.node(good).text,
                    dispreferred=graph.node(bad).text,
                    preferred_node=good,
                    dispreferred_node=bad,
                    preferred_value=gv,
                    dispreferred_value=bv,
                    n_preferred=gn,
                    n_dispreferred=bn,
                    sparse_preferred=good == v,
                )
            )
    return records


def write_preferences(records: Iterable[PreferenceRecord], path: Path | str) -> Path:
    """Write ``records`` as JSON Lines (one ``to_dict()`` per line); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r.to_dict(), ensure_ascii=False, allow_nan=False) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
