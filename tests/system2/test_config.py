"""Config loading: valid files load, and every kind of bad input names where and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.strategies.config import SelfConsistencyConfig
from system2.config import ConfigError, load_config, parse_config

VALID = """
models:
  small: {kind: scripted, responses: ["The answer is 1."]}
policy: {kind: fixed, models: [small]}
strategy:
  kind: self_consistency
  n: 3
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_valid_config_loads(tmp_path: Path) -> None:
    """A well-formed file gives typed configs with defaults filled in."""
    config = load_config(_write(tmp_path, VALID))
    assert isinstance(config.strategy, SelfConsistencyConfig)
    assert config.strategy.n == 3
    assert config.task == "math"


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    """Broken YAML syntax is reported with the file and the line of the problem."""
    path = _write(tmp_path, "models:\n  small: {kind: scripted\npolicy: [\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: malformed YAML at line \d+"):
        load_config(path)


def test_unknown_key_is_rejected_with_its_path(tmp_path: Path) -> None:
    """An unexpected key is an error naming its full key path."""
    path = _write(tmp_path, VALID + "  temprature: 0.5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "strategy.self_consistency.temprature" in str(info.value)
    assert "Extra inputs are not permitted" in str(info.value)


def test_bad_value_names_value_and_expectation(tmp_path: Path) -> None:
    """A value of the wrong range is reported with the value given and the bound expected."""
    path = _write(tmp_path, VALID.replace("n: 3", "n: 0"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "strategy" in message
    assert ".n:" in message
    assert "greater than or equal to 1" in message
    assert "(got 0)" in message


def test_unknown_strategy_kind_lists_valid_kinds(tmp_path: Path) -> None:
    """A strategy kind that does not exist is refused with the valid kinds listed."""
    path = _write(tmp_path, VALID.replace("kind: self_consistency", "kind: beam"))
    with pytest.raises(ConfigError, match=r"greedy.*sample.*self_consistency"):
        load_config(path)


def test_policy_model_must_be_declared(tmp_path: Path) -> None:
    """A policy naming an undeclared model is refused, naming both sides."""
    path = _write(tmp_path, VALID.replace("models: [small]", "models: [large]"))
    with pytest.raises(ConfigError, match=r"'large'.*declared: small"):
        load_config(path)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    """A missing file and a top level that is not a mapping are clear errors."""
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(_write(tmp_path, "- just\n- a list\n"))


def test_rule_across_keys_names_file_key_path_and_value(tmp_path: Path) -> None:
    """A broken rule across keys is reported at the key path of the value that breaks it,
    with that value, not at the top level with the whole file's data."""
    path = _write(tmp_path, VALID.replace("models: [small]", "models: [large, small]"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).splitlines() == [
        f"{path}: invalid config (1 error(s))",
        "  policy.models: policy names model(s) 'large' that are not declared under 'models' "
        "(declared: small) (got ['large', 'small'])",
    ]


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (
            "step_verifier: {kind: token, model: nope}\n",
            "  step_verifier.model: step_verifier names model 'nope', which is not declared",
        ),
        (
            "step_verifier: {kind: pooled, model: small}\n",
            "  step_verifier.model: step_verifier kind 'pooled' needs model 'small'",
        ),
    ],
    ids=["undeclared", "wrong-backend"],
)
def test_step_verifier_rules_name_their_key_path(tmp_path: Path, extra: str, line: str) -> None:
    """A step verifier on an undeclared or unfit model is reported at step_verifier.model."""
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, VALID + extra))
    assert info.value.args[0].splitlines()[1].startswith(line)


def test_strategy_rules_name_the_strategy_that_breaks_them(tmp_path: Path) -> None:
    """A default strategy asking for a missing step verifier is reported at ``strategy``
    with the strategy's settings; one set by the policy at ``policy.strategy``."""
    voting = VALID.replace("n: 3", "n: 3\n  vote: verifier")
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, voting))
    message = str(info.value)
    assert "\n  strategy: strategy 'self_consistency' asks for a step verifier" in message
    assert message.endswith("(got {'kind': 'self_consistency', 'n': 3, 'vote': 'verifier'})")
    own = VALID.replace(
        'small: {kind: scripted, responses: ["The answer is 1."]}',
        "small: {kind: transformers, model: some-model}",
    ).replace(
        "policy: {kind: fixed, models: [small]}",
        "policy: {kind: fixed, models: [small], strategy: {kind: system2}}",
    )
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, own))
    message = str(info.value)
    assert "\n  policy.strategy.kind: strategy 'system2' needs a token verifier" in message
    assert message.endswith("(got 'system2')")


def test_a_loaded_config_remembers_its_file(tmp_path: Path) -> None:
    """``source`` is the file a config was loaded from (``<config>`` for data), so errors
    found later, when it is built, can name it."""
    path = _write(tmp_path, VALID)
    assert load_config(path).source == str(path)
    assert parse_config(yaml.safe_load(VALID)).source == "<config>"
    assert parse_config(yaml.safe_load(VALID), source="x.yaml").source == "x.yaml"
