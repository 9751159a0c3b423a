"""Errors the policies raise while being built from their configs.

ValueError
└── PolicyBuildError    a policy config that cannot be built (e.g. its router is missing,
                        damaged, or trained for another pool); names the policy key at fault

Loading a router outside a config raises ``policies.selectllm.router.RouterLoadError`` (also
a ``ValueError``); the SelectLLM builder reports it as a ``PolicyBuildError`` on ``router``.
The application (``system2.assembly``) adds the config file and the ``policy.`` prefix.
"""

from __future__ import annotations

__all__ = ["PolicyBuildError"]


class PolicyBuildError(ValueError):
    """The policy config's ``key`` (a key path inside the policy, e.g. ``router``), whose
    value is ``value``, cannot be built; ``problem`` says why."""

    def __init__(self, key: str, value: object, problem: str) -> None:
        self.key, self.value, self.problem = key, value, problem
        super().__init__(f"{key} ({value}): {problem}")
