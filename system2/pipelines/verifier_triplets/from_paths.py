"""Triplets without rollouts: where two sampled paths of one question part, one ending right
and the other wrong, the token each took at the parting is a (prefix, good, bad) triplet.

Per question, the paths are its sampled completions as token ids of the generator's
tokenizer, each judged right or wrong against the gold answer (already generated, e.g. by
self-consistency or a search: no extra generation). Identical paths count once.

1. **Divergences**: for every (right, wrong) pair, their longest common token prefix P and
   the first differing tokens (g, b): g the right path's, b the wrong one's. A pair where
   one path is a prefix of the other has no differing token and gives nothing. Each
   (P, g, b) is kept once however many pairs part there.
2. **Label** from every path, not just the pair: the accuracy of a branch P + x is the share
   of right paths among all paths that start with P + x. (P, g, b) is a triplet when
   acc(P + g) - acc(P + b) >= ``margin``, the rule rollout labelling uses (``labelling``);
   with the default 0.5 a lone right/wrong pair (1.0 vs 0.0) passes, while a parting the
   other samples contradict (a branch whose paths are right as often as the other's) is
   dropped, and never both (P, g, b) and (P, b, g).
3. **Cap**: at most ``max_per_item`` triplets per question, the largest accuracy gaps first
   (then the most paths through the two branches, then the earliest position). A question
   with k right and m wrong samples can part in up to k * m places; the trainer weighs
   every triplet alike (the loss is a mean over triplets), so without a cap a few questions
   with many samples would make most of the data.

Each triplet is recorded on a **reference**: the first right path (in the given order) that
starts with P + g, so ``position`` is len(P) within it and ``gold_id`` its token there,
exactly as rollout triplets sit on their reference (``pipeline``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PathSettings", "PathTriplet", "SampledPath", "divergence_triplets"]

_EPS = 1e-9


@dataclass(frozen=True)
class SampledPath:
    """One sampled completion: its token ids (the generator's tokenizer) and whether its
    answer is right."""

    token_ids: tuple[int, ...]
    correct: bool


@dataclass(frozen=True)
class PathSettings:
    """The knobs of path triplets (defaults and why in brackets).

    margin: a triplet needs acc(P + g) - acc(P + b) >= margin [0.5, as rollout labelling].
    max_per_item: triplets kept per question, 0 for no cap [8: the rollout run's
        positions x alternatives is 6 to 12 per reference, so one question weighs no more
        here than there].
    """

    margin: float = 0.5
    max_per_item: int = 8

    def __post_init__(self) -> None:
        if not 0.0 < self.margin <= 1.0:
            raise ValueError(f"margin is {self.margin!r}; it must lie in (0, 1]")
        if self.max_per_item < 0:
            raise ValueError(f"max_per_item is {self.max_per_item!r}; it must be >= 0")


@dataclass(frozen=True)
class PathTriplet:
    """A triplet on ``paths[reference]`` (a right path): at ``position`` (the length of the
    shared prefix) ``gold_id`` beats ``negative_id``; the accuracies and path counts are
    those of the two branches."""

    reference: int
    position: int
    gold_id: int
    negative_id: int
    gold_accuracy: float
    negative_accuracy: float
    gold_paths: int
    negative_paths: int


def divergence_triplets(
    paths: Sequence[SampledPath], settings: PathSettings | None = None
) -> list[PathTriplet]:
    """The triplets of one question's ``paths`` (see the module doc), largest gap first.

    Example:
        >>> right = SampledPath((5, 6, 7, 8), correct=True)
        >>> wrong = SampledPath((5, 6, 9, 8), correct=False)
        >>> [(t.reference, t.position, t.gold_id, t.negative_id)
        ...  for t in divergence_triplets([right, wrong])]
        [(0, 2, 7, 9)]
    """
    settings = settings or PathSettings()
    unique = list(dict.fromkeys(paths))
    clash = {p.token_ids for p in unique if p.correct} & {
        p.token_ids for p in unique if not p.correct
    }
    if clash:
        raise ValueError("the same token ids are judged both right and wrong")
    parts: dict[tuple[tuple[int, ...], int, int], None] = {}
    for r in unique:
        if not r.correct:
            continue
        for w in unique:
            if w.correct:
                continue
            n = _common_prefix(r.token_ids, w.token_ids)
            if n < len(r.token_ids) and n < len(w.token_ids):
                parts[(r.token_ids[:n], r.token_ids[n], w.token_ids[n])] = None
    found = []
    for prefix, good, bad in parts:
        good_acc, good_n = _branch(unique, prefix, good)
        bad_acc, bad_n = _branch(unique, prefix, bad)
        if good_acc - bad_acc < settings.margin - _EPS:
            continue
        reference = next(
            i
            for i, p in enumerate(paths)
            if p.correct and p.token_ids[: len(prefix) + 1] == (*prefix, good)
        )
        found.append(
            PathTriplet(reference, len(prefix), good, bad, good_acc, bad_acc, good_n, bad_n)
        )
    found.sort(
        key=lambda t: (
            -(t.gold_accuracy - t.negative_accuracy),
            -(t.gold_paths + t.negative_paths),
            t.position,
            t.reference,
        )
    )
    return found[: settings.max_per_item] if settings.max_per_item else found


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _branch(paths: Sequence[SampledPath], prefix: tuple[int, ...], token: int) -> tuple[float, int]:
    """(share right, count) of the paths that start with ``prefix`` + ``token``."""
    head = (*prefix, token)
    through = [p.correct for p in paths if p.token_ids[: len(head)] == head]
    return sum(through) / len(through), len(through)
