"""The served profiles: one ``Orchestrator`` per profile, all on the same built workers
(a model declared once is loaded once, however many profiles plan it)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.orchestrator import Orchestrator
from policies.config import build_policy
from policies.errors import PolicyBuildError
from system2.assembly import build_workers
from system2.config import ConfigError, ServedProfile, System2Config
from workers.base import Worker
from workers.step_verifier_config import build_step_verifier

__all__ = ["ProfileRuntime", "ServedModels", "build_served_models"]


@dataclass(frozen=True)
class ProfileRuntime:
    """A profile and the orchestrator that answers for it."""

    profile: ServedProfile
    orchestrator: Orchestrator


@dataclass(frozen=True)
class ServedModels:
    """Every profile by name, and the workers they share (closed once, here)."""

    profiles: Mapping[str, ProfileRuntime]
    workers: Mapping[str, Worker]

    async def close(self) -> None:
        await asyncio.gather(*(w.close() for w in self.workers.values()))


def build_served_models(
    config: System2Config, *, workers: Mapping[str, Worker] | None = None
) -> ServedModels:
    """Build the config's workers (unless given: tests pass scripted ones), its step
    verifier and each profile's policy; a policy that cannot be built is a ``ConfigError``
    naming the file and the key path."""
    if workers is None:
        workers = build_workers(config)
    step_verifier = None
    if config.step_verifier is not None:
        step_verifier = build_step_verifier(config.step_verifier, workers)
    runtimes = {}
    for name, profile in config.served_profiles().items():
        try:
            policy = build_policy(profile.policy, profile.strategy)
        except PolicyBuildError as exc:
            own = name in config.profiles and config.profiles[name].policy is not None
            key = f"profiles.{name}.policy" if own else "policy"
            where = f"{config.source}: {key}.{exc.key} ({exc.value})"
            raise ConfigError(f"{where}: {exc.problem}") from None
        orchestrator = Orchestrator(
            workers,
            policy,
            task=profile.task,
            prompts=config.prompts,
            step_verifier=step_verifier,
        )
        runtimes[name] = ProfileRuntime(profile, orchestrator)
    return ServedModels(profiles=runtimes, workers=dict(workers))
