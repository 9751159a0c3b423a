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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np

from orchestrator.graph.normalize import clean_text, normalize_step
from orchestrator.graph.view import GraphView, NodeKind, PathInfo

__all__ = ["FORMAT", "ROOT", "EmbedFn", "ReasoningGraph"]

ROOT = "root"
FORMAT = "system2.reasoning_graph/1"
EmbedFn = Callable[[list[str]], Sequence[Sequence[float]]]

_ROOT_TEXT = "<start>"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class ReasoningGraph(GraphView):
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
        texts = [clean_text(s) for s in steps]
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
