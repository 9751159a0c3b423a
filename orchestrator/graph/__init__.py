"""Reasoning graphs (methods.md section 5): sampled paths split into steps, merged into a
Markov chain over steps, clustered, with sparse edges, a meta-chain and exports."""

from __future__ import annotations

from orchestrator.graph.build import ROOT, EmbedFn, ReasoningGraph
from orchestrator.graph.clusters import (
    DEFAULT_SPARSE_THRESHOLD,
    Clustering,
    ClusterMethod,
    MetaChain,
    cluster_graph,
    find_clusters,
    find_sparse_edges,
    markov_clusters,
    meta_chain,
)
from orchestrator.graph.export import (
    PreferenceRecord,
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
from orchestrator.graph.normalize import normalize_step
from orchestrator.graph.segment import Segmentation, segment_steps
from orchestrator.graph.view import EdgeInfo, NodeInfo, NodeKind, PathInfo

__all__ = [
    "DEFAULT_SPARSE_THRESHOLD",
    "ROOT",
    "ClusterMethod",
    "Clustering",
    "EdgeInfo",
    "EmbedFn",
    "MetaChain",
    "NodeInfo",
    "NodeKind",
    "PathInfo",
    "PreferenceRecord",
    "ReasoningGraph",
    "Segmentation",
    "cluster_graph",
    "draw_png",
    "find_clusters",
    "find_sparse_edges",
    "from_json",
    "markov_clusters",
    "meta_chain",
    "normalize_step",
    "preference_records",
    "read_graphml",
    "read_json",
    "segment_steps",
    "to_json",
    "write_graphml",
    "write_json",
    "write_preferences",
]
