"""``ArrivalWindow``: calls arriving close together are released together."""

from __future__ import annotations

import asyncio

import pytest

from system2.ray.arrivals import ArrivalWindow


async def _released_at(window: ArrivalWindow, delay: float, loop_start: float) -> float:
    await asyncio.sleep(delay)
    await window.wait()
    return asyncio.get_running_loop().time() - loop_start


async def test_calls_arriving_close_together_go_at_once() -> None:
    """Three calls 10 ms apart, window 50 ms: one release, 50 ms after the last arrival."""
    window = ArrivalWindow(0.05)
    start = asyncio.get_running_loop().time()
    times = await asyncio.gather(*(_released_at(window, d, start) for d in (0.0, 0.01, 0.02)))
    assert max(times) - min(times) < 0.005
    assert min(times) >= 0.07 - 0.005


async def test_a_steady_stream_is_released_by_max_wait() -> None:
    """Arrivals that never pause 30 ms go out max_wait_s after the first of each group
    (without the cap, the first would wait for the last: 130 ms)."""
    window = ArrivalWindow(0.03, max_wait_s=0.06)
    start = asyncio.get_running_loop().time()
    times = await asyncio.gather(*(_released_at(window, 0.02 * i, start) for i in range(6)))
    assert times[0] < 0.11
    assert times[-1] - times[0] > 0.02  # a later group


async def test_zero_window_holds_nothing_and_cancelling_one_keeps_the_group() -> None:
    """Window 0 lets calls pass; a cancelled waiter does not cancel its group."""
    await asyncio.wait_for(ArrivalWindow(0.0).wait(), 0.01)
    window = ArrivalWindow(0.05)
    first = asyncio.ensure_future(window.wait())
    second = asyncio.ensure_future(window.wait())
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.wait_for(second, 1.0)
    assert first.cancelled()
    with pytest.raises(ValueError, match="at least 0"):
        ArrivalWindow(-1.0)
