"""``ReasoningGraph``: sampled reasoning paths merged into one Markov chain over steps.

Our operational reading of arXiv 2502.01694 (docs/methods.md section 5): every path starts
at one ``root`` node (the start state), passes through step nodes and, when it has an
answer, ends at that answer's terminal node. Equivalent steps are one node; an edge counts
the observed transitions u -> v, and P(v | u) = count(u -> v) / sum of u's out-counts.

Merging rules:

- Steps merge when ``normalize_step`` gives the same text (see it for the exact rules).
- With ``embed`` given, a step whose normalised text is new joins the existing step node
  whose representative text is most similar (cosine of the embeddings, ties to the older
  node) when that similarity is >= ``similarity``; else it opens a node. This is greedy and
  online, so the result depends on the order paths are added. Its normalised text is kept
  as one of the node's ``aliases`` so the same text later merges without embedding.
- Answer nodes merge by the exact (stripped) answer string: normalise answers before
  (e.g. with ``orchestrator.extraction``). Steps and answers never merge with each other.

Node keys are stable: ``"root"``, ``"s:"`` / ``"a:"`` + the first 16 hex digits of the
SHA-1 of the step's normalised text / the answer (a longer prefix on a collision). Node
attributes: ``kind``, ``text`` (the first text seen), ``norm``, ``aliases``, ``visits``,
``path_ids``, ``depth_min``, ``depth_max``, ``depth_sum`` (depth: root 0, i-th step i,
terminal len(steps) + 1), ``answers`` (answer -> number of paths through the node that
reach it) and, once clustered, ``cluster``. Edge attributes: ``count``, ``path_ids`` and
``sparse``. Adding a path clears clusters and sparse flags (they are stale then).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import numpy as np

__all__ = [
    "FORMAT",
    "ROOT",
    "EdgeInfo",
    "EmbedFn",
    "NodeInfo",
    "NodeKind",
    "PathInfo",
    "ReasoningGraph",
    "normalize_step",
]

ROOT = "root"
FORMAT = "system2.reasoning_graph/1"
NodeKind = Literal["root", "step", "answer"]
EmbedFn = Callable[[list[str]], Sequence[Sequence[float]]]

_ROOT_TEXT = "<start>"

# --- normalisation -----------------------------------------------------------------------

_SYMBOLS = str.maketrans(
    {
        "\u00d7": "*",  # multiplication sign
        "\u00b7": "*",  # middle dot
        "\u22c5": "*",  # dot operator
        "\u2217": "*",  # asterisk operator
        "\u00f7": "/",  # division sign
        "\u2212": "-",  # minus sign
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
    }
)
_LATEX = [
    (re.compile(r"\\(?:times|cdot|ast)(?![a-z])"), "*"),
    (re.compile(r"\\div(?![a-z])"), "/"),
    (re.compile(r"\\(?:left|right)(?![a-z])|\\[()\[\]]|\$"), " "),
]
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+]|\(?\d+[.)]|step\s*\d+\s*[:.)-]?)\s+")
_MARKUP = re.compile(r"\*\*|__|`")
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\d])")
_PUNCT = re.compile(r"(?<![0-9])[.,]|[.,](?![0-9])|[;:!?\"'\u201c\u201d\u2018\u2019]")
_SPACE = re.compile(r"\s+")
_OPERATOR_SPACE = re.compile(r"\s*([-+*/=<>^%()\[\]])\s*")


def _number(m: re.Match[str]) -> str:
    whole = m.group(1).replace(",", "").lstrip("0") or "0"
    frac = (m.group(2) or "").rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def normalize_step(text: str) -> str:
    """The merge key of a step's text. Rules, in order:

    1. Unicode NFKC and casefold; the multiplication sign, middle dot, dot and asterisk
       operators and LaTeX ``\\times``/``\\cdot`` become ``*``, the division sign and
       ``\\div`` ``/``, the minus sign and en/em dashes ``-``; ``$``, ``\\(``, ``\\)``,
       ``\\[``, ``\\]``, ``\\left`` and ``\\right`` are dropped.
    2. A leading list or step marker ("- ", "3. ", "(2) ", "step 4:") is dropped, as is
       markdown ``**``, ``__`` and backticks.
    3. Numbers: thousands commas dropped ("1,234" -> "1234"), leading zeros and trailing
       decimal zeros dropped ("007" -> "7", "3.50" -> "3.5", "2.0" -> "2").
    4. Sentence punctuation ``. , ; : ! ?`` and quotes are dropped (a ``.`` or ``,``
       between digits stays); math symbols ``+ - * / = < > ^ % ( ) [ ]`` stay.
    5. Whitespace runs become one space; spaces around math symbols are dropped.

    A text that normalises to nothing keeps its casefolded, space-collapsed self.

    >>> normalize_step("**Step 2:** So, 1,200 \u00d7 3.50 = 4200.00!")
    'so 1200*3.5=4200'
    >>> normalize_step("so 1200 * 3.5 = 4200") == normalize_step("So: 1200*3.5=4200.")
    True
    """
    s = unicodedata.normalize("NFKC", text).casefold().translate(_SYMBOLS)
    for pattern, repl in _LATEX:
        s = pattern.sub(repl, s)
    s = _MARKUP.sub("", s)
    s = _LIST_MARKER.sub("", s, count=1)
    s = _NUMBER.sub(_number, s)
    s = _PUNCT.sub(" ", s)
    s = _OPERATOR_SPACE.sub(r"\1", _SPACE.sub(" ", s)).strip()
    return s or _SPACE.sub(" ", text.casefold()).strip()


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# --- typed views -------------------------------------------------------------------------


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


# --- the graph ---------------------------------------------------------------------------


class ReasoningGraph:
    """Reasoning paths merged into a networkx ``DiGraph`` (see the module docstring).

    Example:
        >>> g = ReasoningGraph()
        >>> _ = g.add_path(["Let x = 6 * 7.", "So x = 42."], answer="42", correct=True)
        >>> _ = g.add_path(["let x = 6*7", "x = 42"], answer="42", correct=True)
        >>> first = g.key_of("Let x = 6 * 7.")
        >>> g.node(first).visits, sorted(g.transitions(first).values())
        (2, [0.5, 0.5])
    """

    def __init__(self, *, embed: EmbedFn | None = None, similarity: float = 0.9) -> None:
        if not -1.0 <= similarity <= 1.0:  # also rejects NaN
            raise ValueError(f"similarity is {similarity!r}; it must be in [-1, 1]")
        self.embed = embed
        self.similarity = similarity
        self._g: Any = nx.DiGraph()
        self._paths: dict[str, PathInfo] = {}
        self._by_norm: dict[str, str] = {}
        self._answers: dict[str, str] = {}
        self._vectors: dict[str, np.ndarray[Any, np.dtype[np.float64]]] = {}
        self._g.add_node(ROOT, **_node_attrs("root", _ROOT_TEXT, _ROOT_TEXT, depth=0))

    # -- reading ------------------------------------------------------------------------

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
        return self._by_norm.get(normalize_step(_clean(text)))

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

    # -- adding -------------------------------------------------------------------------

    def add_path(
        self,
        steps: Sequence[str],
        *,
        answer: str | None = None,
        correct: bool | None = None,
        value: float | None = None,
        tokens: int | None = None,
        path_id: str | None = None,
    ) -> PathInfo:
        """Add one path: root -> its steps -> its answer's node (when ``answer`` is given).

        ``value`` (finite) is e.g. a verifier score; ``correct`` is the answer's
        correctness; ``tokens`` (>= 0) is the path's generated-token count. Steps must be
        non-empty after stripping. ``path_id`` defaults to "p<n>"; a taken id raises
        ValueError. Nothing changes if the arguments (or ``embed``) raise.
        """
        if isinstance(steps, str):
            raise TypeError("steps is a sequence of step texts, not one string")
        texts = [_clean(s) for s in steps]
        if any(not t for t in texts):
            raise ValueError("a step is empty")
        if value is not None and not math.isfinite(value):
            raise ValueError(f"value is {value!r}; it must be finite")
        if tokens is not None and tokens < 0:
            raise ValueError(f"tokens is {tokens!r}; it must be >= 0")
        if answer is not None and not answer.strip():
            raise ValueError("answer is empty; pass None for a path without an answer")
        if path_id is None:
            n = len(self._paths)
            while f"p{n}" in self._paths:
                n += 1
            path_id = f"p{n}"
        elif not path_id or path_id in self._paths:
            raise ValueError(f"path_id {path_id!r} is empty or already used")
        norms = [normalize_step(t) for t in texts]
        vectors = self._embed_new(texts, norms)

        if self.clustered:
            self.clear_clusters()
        keys = [ROOT]
        for text, norm in zip(texts, norms, strict=True):
            keys.append(self._step_node(text, norm, vectors))
        if answer is not None:
            keys.append(self._answer_node(answer.strip()))
        self._record(keys, path_id, answer.strip() if answer is not None else None)
        info = PathInfo(
            path_id=path_id,
            steps=tuple(texts),
            nodes=tuple(keys),
            answer=answer.strip() if answer is not None else None,
            correct=correct,
            value=float(value) if value is not None else None,
            tokens=tokens,
        )
        self._paths[path_id] = info
        return info

    def _embed_new(
        self, texts: list[str], norms: list[str]
    ) -> dict[str, np.ndarray[Any, np.dtype[np.float64]]]:
        """Embeddings (one ``embed`` call) of this path's texts with unseen normalised text
        and of existing step nodes not embedded yet (e.g. after loading); {} without embed."""
        if self.embed is None:
            return {}
        new = list(
            dict.fromkeys(t for t, n in zip(texts, norms, strict=True) if n not in self._by_norm)
        )
        missing = [
            k for k, a in self._g.nodes(data=True) if a["kind"] == "step" and k not in self._vectors
        ]
        batch = new + [self._g.nodes[k]["text"] for k in missing]
        if not batch:
            return {}
        matrix = np.asarray(self.embed(batch), dtype=np.float64)
        known_dim = next(iter(self._vectors.values())).shape[0] if self._vectors else None
        if matrix.ndim != 2 or matrix.shape[0] != len(batch):
            raise ValueError(f"embed returned shape {matrix.shape} for {len(batch)} texts")
        if known_dim is not None and matrix.shape[1] != known_dim:
            raise ValueError(f"embed returned {matrix.shape[1]}-d vectors, earlier {known_dim}-d")
        if not np.isfinite(matrix).all():
            raise ValueError("embed returned a non-finite value")
        for key, row in zip(missing, matrix[len(new) :], strict=True):
            self._vectors[key] = row
        return dict(zip(new, matrix[: len(new)], strict=True))

    def _nearest(self, vector: np.ndarray[Any, np.dtype[np.float64]]) -> str | None:
        """The step node most similar to ``vector`` if its cosine is >= ``similarity``."""
        if not self._vectors:
            return None
        keys = list(self._vectors)
        matrix = np.stack([self._vectors[k] for k in keys])
        norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(vector)
        cosines = np.divide(matrix @ vector, norms, out=np.zeros(len(keys)), where=norms > 0)
        best = int(np.argmax(cosines))  # the first maximum: ties go to the older node
        return keys[best] if cosines[best] >= self.similarity else None

    def _fresh_key(self, prefix: str, text: str) -> str:
        digest = _digest(text)
        for length in range(16, len(digest) + 1):
            key = f"{prefix}:{digest[:length]}"
            if key not in self:
                return key
        raise RuntimeError(f"no free key for {text!r}")  # a full SHA-1 collision

    def _step_node(
        self, text: str, norm: str, vectors: Mapping[str, np.ndarray[Any, np.dtype[np.float64]]]
    ) -> str:
        key = self._by_norm.get(norm)
        if key is None and text in vectors:
            key = self._nearest(vectors[text])
            if key is not None:
                self._g.nodes[key]["aliases"].append(norm)
        if key is None:
            key = self._fresh_key("s", norm)
            self._g.add_node(key, **_node_attrs("step", text, norm, depth=0))
            if text in vectors:
                self._vectors[key] = vectors[text]
        self._by_norm[norm] = key
        return key

    def _answer_node(self, answer: str) -> str:
        key = self._answers.get(answer)
        if key is None:
            key = self._answers[answer] = self._fresh_key("a", answer)
            self._g.add_node(key, **_node_attrs("answer", answer, answer, depth=0))
        return key

    def _record(self, keys: list[str], path_id: str, answer: str | None) -> None:
        for depth, key in enumerate(keys):
            a = self._g.nodes[key]
            first_visit = a["visits"] == 0
            a["visits"] += 1
            a["depth_sum"] += depth
            a["depth_min"] = depth if first_visit else min(a["depth_min"], depth)
            a["depth_max"] = depth if first_visit else max(a["depth_max"], depth)
            if path_id not in a["path_ids"]:
                a["path_ids"].append(path_id)
                if answer is not None:
                    a["answers"][answer] = a["answers"].get(answer, 0) + 1
        for u, v in itertools.pairwise(keys):
            if not self._g.has_edge(u, v):
                self._g.add_edge(u, v, count=0, path_ids=[], sparse=False)
            e = self._g.edges[u, v]
            e["count"] += 1
            if path_id not in e["path_ids"]:
                e["path_ids"].append(path_id)

    # -- clusters -----------------------------------------------------------------------

    def set_clusters(
        self,
        assignment: Mapping[str, int],
        sparse: Iterable[tuple[str, str]],
        params: Mapping[str, str | int | float | bool],
    ) -> None:
        """Store cluster ids (every node but the root needs one; the root gets -1), the
        sparse edges and the parameters that produced them. ``clusters.cluster_graph``
        calls this; call it yourself only to store clusters found another way."""
        missing = [k for k in self._g.nodes if k != ROOT and k not in assignment]
        if missing:
            raise ValueError(f"no cluster for nodes {missing[:5]}")
        sparse = set(sparse)
        unknown = [e for e in sparse if not self._g.has_edge(*e)]
        if unknown:
            raise ValueError(f"no such edges: {unknown[:5]}")
        for key, a in self._g.nodes(data=True):
            a["cluster"] = -1 if key == ROOT else int(assignment[key])
        for u, v, a in self._g.edges(data=True):
            a["sparse"] = (u, v) in sparse
        self._g.graph["clustering"] = dict(params)

    def clear_clusters(self) -> None:
        """Drop cluster ids, sparse flags and the clustering parameters."""
        for _, a in self._g.nodes(data=True):
            a.pop("cluster", None)
        for _, _, a in self._g.edges(data=True):
            a["sparse"] = False
        self._g.graph.pop("clustering", None)

    # -- conversion ---------------------------------------------------------------------

    def to_networkx(self) -> Any:
        """A deep copy of the graph with the paths (``graph["paths"]``), the format and
        ``similarity`` in its graph attributes: everything needed to rebuild it."""
        g = copy.deepcopy(self._g)
        g.graph["format"] = FORMAT
        g.graph["similarity"] = self.similarity
        g.graph["paths"] = [p.to_dict() for p in self._paths.values()]
        return g

    @classmethod
    def from_networkx(
        cls, g: Any, *, embed: EmbedFn | None = None, similarity: float | None = None
    ) -> ReasoningGraph:
        """Rebuild a graph from ``to_networkx``'s output (``embed`` is not stored: pass it
        again to keep merging by embeddings; ``similarity`` defaults to the stored one)."""
        if g.graph.get("format") != FORMAT:
            raise ValueError(f"not a reasoning graph: format is {g.graph.get('format')!r}")
        if not g.is_directed() or ROOT not in g:
            raise ValueError("a reasoning graph is directed and has a root node")
        stored = float(g.graph["similarity"])
        out = cls(embed=embed, similarity=stored if similarity is None else similarity)
        out._g = copy.deepcopy(g)
        for name in ("format", "similarity", "paths"):
            out._g.graph.pop(name, None)
        for data in g.graph.get("paths", []):
            path = PathInfo.from_dict(data)
            out._paths[path.path_id] = path
        for key, a in out._g.nodes(data=True):
            if a["kind"] == "step":
                for norm in (a["norm"], *a["aliases"]):
                    out._by_norm[norm] = key
            elif a["kind"] == "answer":
                out._answers[a["text"]] = key
        return out

    def __eq__(self, other: object) -> bool:
        """Same nodes, edges, attributes and paths, in the same order."""
        if not isinstance(other, ReasoningGraph):
            return NotImplemented
        a, b = self.to_networkx(), other.to_networkx()
        return bool(
            list(a.nodes(data=True)) == list(b.nodes(data=True))
            and list(a.edges(data=True)) == list(b.edges(data=True))
            and a.graph == b.graph
        )

    __hash__ = None  # type: ignore[assignment]


def _node_attrs(kind: NodeKind, text: str, norm: str, *, depth: int) -> dict[str, Any]:
    return {
        "kind": kind,
        "text": text,
        "norm": norm,
        "aliases": [],
        "visits": 0,
        "path_ids": [],
        "depth_min": depth,
        "depth_max": depth,
        "depth_sum": 0,
        "answers": {},
    }
