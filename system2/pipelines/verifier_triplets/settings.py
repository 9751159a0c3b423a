"""The knobs of token quality exploration, and the seeds derived from them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["ExplorationSettings", "derived_seed"]


@dataclass(frozen=True)
class ExplorationSettings:
    """The knobs of token quality exploration (defaults and why in brackets).

    references: correct reference solutions kept per item [1: positions, not references,
        are where the data comes from].
    reference_samples: sampled tries after the greedy one [4].
    gold_rationale: fall back to the task's gold rationale [False: off-distribution text].
    alternatives: alternatives rolled out per position [3; with alpha 0.1 more are rare].
    positions: positions explored per reference [4: the CPU budget, 4 x 4 x 4 = 64
        rollouts per reference with the defaults].
    gold_prob_threshold: only positions with p(gold) below it [0.9, methods.md].
    alpha: an alternative needs p(v) >= alpha * max p [0.1, decoding's V_t rule].
    plausible_gold: the gold token needs it too [True: without it the least certain
        positions of a gold rationale are mostly wording the generator would never pick].
    rollouts: rollouts per token [4, methods.md].
    margin: negative when acc(v) <= acc(gold) - margin [0.5, methods.md].
    temperature, top_p: of reference samples and rollouts [0.7, 0.95, as self-consistency].
    max_tokens: per reference and per rollout [384, the default config's].
    seed: every sample's seed derives from it, the item and the position [0].
    """

    references: int = 1
    reference_samples: int = 4
    gold_rationale: bool = False
    alternatives: int = 3
    positions: int = 4
    gold_prob_threshold: float = 0.9
    alpha: float = 0.1
    plausible_gold: bool = True
    rollouts: int = 4
    margin: float = 0.5
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 384
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("references", "alternatives", "positions", "rollouts", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.reference_samples < 0:
            raise ValueError("reference_samples must be >= 0")
        if not 0.0 < self.gold_prob_threshold <= 1.0:
            raise ValueError("gold_prob_threshold must lie in (0, 1]")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError("alpha must lie in [0, 1]")
        if not 0.0 < self.margin <= 1.0:
            raise ValueError("margin must lie in (0, 1]")
        if self.temperature <= 0.0:
            raise ValueError("temperature must be > 0 (rollouts are sampled)")


def derived_seed(settings: ExplorationSettings, *parts: object) -> int:
    """A stable 31-bit seed for one call, from the run's seed and where the call is."""
    digest = hashlib.sha256(repr((settings.seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1
