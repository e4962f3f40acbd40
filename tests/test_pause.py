"""Unit tests of the local rate-limit pause (a fake clock: no sleeping)."""

from __future__ import annotations

import asyncio

from pgy_spider.pause import LocalRatePause


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bursts_double_the_pause_up_to_the_cap_and_a_success_resets_it() -> None:
    clock = Clock()
    pause = LocalRatePause(5, 12, clock=clock)
    assert pause.paused_until() <= clock.now
    assert asyncio.run(pause.rate_limited()) == 5
    assert pause.paused_until() == 1005
    clock.now = 1002  # a 302 of a call in flight: inside the pause, nothing changes
    assert asyncio.run(pause.rate_limited()) is None
    assert pause.paused_until() == 1005
    clock.now = 1006
    assert asyncio.run(pause.rate_limited()) == 10
    clock.now = 1020
    assert asyncio.run(pause.rate_limited()) == 12  # capped
    pause.succeeded()
    clock.now = 1040
    assert asyncio.run(pause.rate_limited()) == 5
