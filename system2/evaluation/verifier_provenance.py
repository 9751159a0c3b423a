"""Where a token verifier came from: its kind, the source of the triplets it was trained on,
and the label its guided runs are filed under.

Triplet files say their source in the header: ``paths`` (``verifier triplets-from-runs``
or ``synthesize --source paths``: divergences of already sampled paths, no generation)
or ``rollouts`` (``verifier synthesize``: token alternatives judged by rollouts; files
written before the key existed lack it, and only rollout files could lack it).
``verifier train`` copies the source into the saved verifier's ``metrics.json`` (key
``triplets``, with the file and its cost), where ``trained_source`` reads it back.

A verifier's label is its kind (``llm2``, ``trunk_head``); when two verifiers compared
together share a kind, each is labelled by its directory's name instead. Its weights'
digest (sha256 over the directory's ``*.safetensors`` files) goes into the run headers, so
resuming a run after the directory was retrained into other weights is refused, not mixed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from workers.verifier import VERIFIER_KINDS, VerifierKind, saved_verifier_kind
from workers.verifier.train import METRICS_FILE

__all__ = [
    "TRIPLET_SOURCES",
    "TripletSource",
    "VerifierSpec",
    "describe_verifiers",
    "record_training_data",
    "select_verifiers",
    "trained_source",
    "triplets_source",
    "weights_digest",
]

TripletSource = Literal["rollouts", "paths"]
TRIPLET_SOURCES: tuple[str, ...] = get_args(TripletSource)

_TRAINING_DATA_KEY = "triplets"


def _check_source(source: object, where: str) -> TripletSource:
    if source not in TRIPLET_SOURCES:
        raise ValueError(
            f"{where}: unknown triplet source {source!r} (known: {', '.join(TRIPLET_SOURCES)})"
        )
    return cast("TripletSource", source)


def triplets_source(header: Mapping[str, Any] | None, path: Path | str) -> TripletSource:
    """The source a triplets file's header records (``rollouts`` when it records none, as
    rollout files written before sources were recorded); ValueError naming ``path`` when it
    has no header or an unknown source."""
    if header is None:
        raise ValueError(f"{path}: no header line; not a triplets file")
    return _check_source(header.get("source", "rollouts"), str(path))


def record_training_data(
    directory: Path | str, *, triplets: Path | str, source: TripletSource, stats: Mapping[str, Any]
) -> None:
    """Add the training data's file, source and totals (``stats``: triplet count, the cost
    of making them) to the ``metrics.json`` that training wrote into ``directory``."""
    path = Path(directory) / METRICS_FILE
    metrics = json.loads(path.read_text())
    metrics[_TRAINING_DATA_KEY] = {
        "file": str(triplets),
        "source": _check_source(source, str(triplets)),
        **stats,
    }
    path.write_text(json.dumps(metrics, indent=2) + "\n")


def trained_source(directory: Path | str) -> TripletSource | None:
    """The triplet source recorded for a saved verifier (None for one trained before
    sources were recorded, or saved without ``metrics.json``)."""
    path = Path(directory) / METRICS_FILE
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    data = metrics.get(_TRAINING_DATA_KEY)
    if not isinstance(data, dict) or "source" not in data:
        return None
    return _check_source(data["source"], str(path))


@dataclass(frozen=True)
class VerifierSpec:
    """A saved verifier as a comparison uses it: where it is, its kind, its triplets'
    source (None: not recorded) and the label its modes and run files carry."""

    path: Path
    kind: VerifierKind
    source: TripletSource | None
    label: str
    weights: str | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-ready: what a run file's header and the summary record about it."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "source": self.source,
            "label": self.label,
            "weights_sha256": self.weights,
        }


def describe_verifiers(paths: Sequence[Path | str]) -> list[VerifierSpec]:
    """Each directory's kind and source, labelled (see the module doc). ValueError names
    a directory given twice, one that holds no verifier, or two of one kind whose
    directory names clash."""
    seen: set[Path] = set()
    found: list[tuple[Path, VerifierKind, TripletSource | None]] = []
    for raw in paths:
        path = Path(raw)
        if path.resolve() in seen:
            raise ValueError(f"verifier {path} is given twice")
        seen.add(path.resolve())
        found.append((path, saved_verifier_kind(path), trained_source(path)))
    kinds = [kind for _, kind, _ in found]
    specs = []
    for path, kind, source in found:
        label = kind if kinds.count(kind) == 1 else path.name
        specs.append(VerifierSpec(path, kind, source, label, weights_digest(path)))
    labels = [s.label for s in specs]
    for spec in specs:
        if labels.count(spec.label) > 1:
            clashing = ", ".join(str(s.path) for s in specs if s.label == spec.label)
            raise ValueError(
                f"verifiers {clashing} are of one kind ({spec.kind}) and share the directory "
                f"name {spec.label!r}, which labels their run files; rename one"
            )
    return specs


def select_verifiers(
    specs: Sequence[VerifierSpec],
    *,
    kinds: Collection[str] | None = None,
    source: str | None = None,
) -> list[VerifierSpec]:
    """The verifiers of one of ``kinds`` (None: any) trained on triplets of ``source``
    (None: any). ValueError names an unknown kind or source, or, when none is left, what
    each given verifier is."""
    for kind in kinds or ():
        if kind not in VERIFIER_KINDS:
            raise ValueError(f"unknown kind {kind!r} (known: {', '.join(VERIFIER_KINDS)})")
    if source is not None:
        _check_source(source, "--source")
    chosen = [
        s
        for s in specs
        if (kinds is None or s.kind in kinds) and (source is None or s.source == source)
    ]
    if specs and not chosen:
        given = "; ".join(f"{s.path}: {s.kind}, source {s.source or 'not recorded'}" for s in specs)
        wanted = f"kind {', '.join(kinds) if kinds else 'any'}, source {source or 'any'}"
        raise ValueError(f"no verifier is of {wanted} ({given})")
    return chosen


def weights_digest(directory: Path | str) -> str:
    """sha256 over the saved verifier's weight files (``*.safetensors``, by name)."""
    digest = hashlib.sha256()
    for path in sorted(Path(directory).glob("*.safetensors")):
        digest.update(path.name.encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
