"""The trunk-overhead benchmark's arithmetic: the cost is compared per generated token,
so a guided run that writes more tokens in more seconds is not counted as slower."""

from __future__ import annotations

import pytest

from benchmarks.trunk_overhead import ModeTiming, per_token_ratio


def test_ratio_is_per_generated_token() -> None:
    plain = ModeTiming(seconds=10.0, tokens=100)
    longer_at_same_speed = ModeTiming(seconds=20.0, tokens=200)
    slower = ModeTiming(seconds=12.0, tokens=100)
    assert per_token_ratio(longer_at_same_speed, plain) == pytest.approx(1.0)
    assert per_token_ratio(slower, plain) == pytest.approx(1.2)


def test_a_mode_without_tokens_is_an_error_not_a_zero_cost() -> None:
    with pytest.raises(ValueError, match="no tokens"):
        per_token_ratio(ModeTiming(seconds=1.0, tokens=0), ModeTiming(seconds=1.0, tokens=10))
