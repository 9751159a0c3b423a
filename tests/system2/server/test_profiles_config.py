"""``profiles`` and ``server`` in the YAML: defaults, and every rule at its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.strategies.config import GreedyConfig, SelfConsistencyConfig
from system2.config import DEFAULT_PROFILE, ConfigError, ServerConfig, load_config

BASE = """
models:
  small: {kind: scripted, responses: ["The answer is 1."]}
  big: {kind: scripted, responses: ["The answer is 2."]}
policy: {kind: fixed, models: [small]}
strategy: {kind: self_consistency, n: 3}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    return str(info.value).splitlines()


def test_no_profiles_serves_default(tmp_path: Path) -> None:
    """Without profiles, one profile named ``default`` runs the config's policy and
    strategy; server settings have their defaults."""
    config = load_config(_write(tmp_path, BASE))
    served = config.served_profiles()
    assert list(served) == [DEFAULT_PROFILE]
    assert served["default"].planned_strategy == SelfConsistencyConfig(n=3)
    assert config.server == ServerConfig()
    assert config.server.host == "127.0.0.1"


def test_profiles_fill_in_from_the_config(tmp_path: Path) -> None:
    """A profile's missing policy, strategy and task come from the config's own."""
    config = load_config(_write(tmp_path, BASE + """
task: math
profiles:
  quick: {strategy: {kind: greedy}, task: text, budget: {max_total_tokens: 500}}
  pair: {policy: {kind: all, models: [small, big]}}
server: {port: 9000, max_n: 8}
"""))  # fmt: skip
    served = config.served_profiles()
    assert list(served) == ["quick", "pair"]
    assert served["quick"].planned_strategy == GreedyConfig()
    assert served["quick"].policy.models == ("small",)
    assert (served["quick"].task, served["pair"].task) == ("text", "math")
    assert served["quick"].budget.max_total_tokens == 500
    assert served["pair"].planned_strategy == SelfConsistencyConfig(n=3)
    assert served["pair"].policy.models == ("small", "big")
    assert (config.server.port, config.server.max_n) == (9000, 8)


def test_a_profile_naming_an_undeclared_model(tmp_path: Path) -> None:
    """A profile's policy naming an undeclared model is reported at its own key path."""
    lines = _error(tmp_path, BASE + "profiles:\n  x: {policy: {kind: fixed, models: [huge]}}\n")
    assert lines[0].endswith("serve.yaml: invalid config (1 error(s))")
    assert lines[1] == (
        "  profiles.x.policy.models: policy names model(s) 'huge' that are not declared under "
        "'models' (declared: big, small) (got ['huge'])"
    )


def test_a_profile_strategy_breaking_a_rule(tmp_path: Path) -> None:
    """A profile's strategy asking for a missing step verifier names profiles.X.strategy."""
    lines = _error(
        tmp_path, BASE + "profiles:\n  v: {strategy: {kind: self_consistency, vote: verifier}}\n"
    )
    assert lines[1].startswith("  profiles.v.strategy: strategy 'self_consistency' asks for")


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ("profiles:\n  x: {stratgy: {kind: greedy}}\n", "profiles.x.stratgy"),
        ("profiles:\n  'bad name': {}\n", "profiles.bad name.[key]"),
        ("profiles:\n  x: {budget: {max_total_tokens: 0}}\n", "profiles.x.budget.max_total_tokens"),
        ("server: {max_running: 0}\n", "server.max_running"),
        ("server: {prot: 1}\n", "server.prot"),
    ],
)
def test_bad_profile_and_server_keys_name_their_path(tmp_path: Path, extra: str, path: str) -> None:
    """Unknown keys, bad names and bad values under profiles/server name their key path."""
    lines = _error(tmp_path, BASE + extra)
    assert lines[1].startswith(f"  {path}:"), lines
